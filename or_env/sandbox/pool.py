"""A bounded pool of warm sandbox workers, shared by the local and the Docker backends."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from or_env.errors import SandboxError
from or_env.sandbox.worker_client import WorkerProcess

logger = logging.getLogger(__name__)

T = TypeVar("T")


def default_pool_size() -> int:
    """The number of CPUs this process may use: one busy worker per core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class PoolClosedError(SandboxError):
    """The pool (and so its sandbox) was closed; create a new sandbox."""


class WorkerPool:
    """Hands out started workers, one caller per worker at a time.

    Workers start lazily, up to `size`, through `factory(index)`, which returns a started
    `WorkerProcess` or raises. A caller checks a worker out, uses it, and checks it back
    in saying whether it behaved; one that did not (or died while idle) is stopped and
    replaced by a fresh one on a later checkout, never handed out again. So `size` is also
    the cap on concurrent executions: further callers wait for a worker to come back.

    The pool holds no reference to the sandbox that owns it, so an owner can close it from
    a `weakref.finalize` callback.
    """

    def __init__(
        self, size: int, factory: Callable[[int], WorkerProcess], *, label: str = "sandbox"
    ) -> None:
        if size < 1:
            raise ValueError(f"the pool size must be at least 1, got {size}")
        self.size = size
        self.label = label
        self._factory = factory
        self._cond = threading.Condition()
        self._idle: list[WorkerProcess] = []
        self._all: set[WorkerProcess] = set()
        self._starting = 0
        self._started_total = 0
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None
        self._owner_pid = os.getpid()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def started_total(self) -> int:
        """How many workers this pool has started so far (replacements included)."""
        return self._started_total

    def workers(self) -> list[WorkerProcess]:
        """The workers the pool holds now, busy or idle."""
        with self._cond:
            return list(self._all)

    def checkout(self, wait: float | None = None) -> WorkerProcess:
        """A live worker for the caller's exclusive use; starts one if the pool has room.

        Waits while every worker is busy (at most `wait` seconds, then TimeoutError).
        Raises whatever the factory raises when a new worker cannot start, and
        PoolClosedError once the pool is closed.
        """
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            discard: list[WorkerProcess] = []
            candidate = None
            try:
                with self._cond:
                    while True:
                        if self._closed:
                            raise PoolClosedError(f"this {self.label} is closed; create a new one")
                        if self._idle:
                            worker = self._idle.pop(self._readiest_idle())
                            if worker.alive:
                                candidate = worker
                                break
                            self._all.discard(worker)  # died while idle: never hand it out
                            discard.append(worker)
                            continue
                        if len(self._all) + self._starting < self.size:
                            self._starting += 1
                            index = self._started_total
                            self._started_total += 1
                            break
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise TimeoutError(
                                f"all {self.size} workers of this {self.label} stayed busy for "
                                f"{wait:g} s"
                            )
                        self._cond.wait(remaining)
            finally:
                for worker in discard:
                    logger.warning("replacing %s worker %s: it died idle", self.label, worker.name)
                    worker.stop()
            if candidate is None:
                break
            # Outside the lock: a worker answers before it has cleaned up after its last
            # program; one that could not clean up is replaced, never handed out.
            if candidate.settle():
                return candidate
            with self._cond:
                self._all.discard(candidate)
                self._cond.notify()
            logger.warning(
                "replacing %s worker %s: %s", self.label, candidate.name, candidate.broken
            )
            candidate.stop()
        try:
            worker = self._factory(index)
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
        with self._cond:
            if not self._closed:
                self._all.add(worker)
                return worker
        worker.stop()
        raise PoolClosedError(f"this {self.label} is closed; create a new one")

    def _readiest_idle(self) -> int:
        """The idle worker to hand out: the first that has cleaned up, else the oldest.

        A worker answers before it has cleaned up after its program; one that has not
        finished would make the caller wait, while another has long been ready.
        """
        for i, worker in enumerate(self._idle):
            if not worker.settling:
                return i
        return 0

    def checkin(self, worker: WorkerProcess, *, healthy: bool) -> None:
        """Give a worker back; an unhealthy or dead one is stopped, to be replaced later."""
        with self._cond:
            if healthy and worker.alive and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
            self._all.discard(worker)
            self._cond.notify()
        if not self._closed:
            logger.warning(
                "replacing %s worker %s: %s", self.label, worker.name, worker.broken or "unhealthy"
            )
        worker.stop()

    def prestart(self) -> list[BaseException]:
        """Start every missing worker now, in parallel; returns the start failures."""
        errors: list[BaseException] = []

        def one() -> None:
            try:
                self.checkin(self.checkout(wait=0), healthy=True)
            except TimeoutError:
                pass  # all busy: the pool is full anyway
            except BaseException as exc:
                errors.append(exc)

        with self._cond:
            missing = self.size - len(self._all) - self._starting
        threads = [threading.Thread(target=one, daemon=True) for _ in range(max(0, missing))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return errors

    async def run_async(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run the blocking `fn` on the pool's own threads, so the event loop keeps going.

        The thread pool has `size` threads: excess coroutines queue there, not in the loop.
        """
        with self._cond:
            if self._closed:
                raise PoolClosedError(f"this {self.label} is closed; create a new one")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.size, thread_name_prefix=f"or-env-{self.label}"
                )
            executor = self._executor
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Stop every worker (in parallel); busy ones are killed. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            if os.getpid() != self._owner_pid:
                # A forked copy of the owner exiting: the workers are the parent's.
                self._all.clear()
                self._idle.clear()
                return
            doomed = list(self._all)
            self._all.clear()
            self._idle.clear()
            executor, self._executor = self._executor, None
        # Idle workers exit at once when their stdin closes; stopping them one after the
        # other would cost a container's shutdown time per worker.
        threads = []
        for worker in doomed:
            thread = threading.Thread(target=worker.stop, daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no new threads this late in interpreter shutdown
                worker.stop()
                continue
            threads.append(thread)
        for thread in threads:
            thread.join(30)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
