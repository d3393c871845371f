"""The local sandbox: a pool of warm fork-server processes on this machine."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import weakref
from collections.abc import Iterable, Mapping

from or_env.sandbox.base import ExecResult, SandboxBase
from or_env.sandbox.pool import WorkerPool, default_pool_size
from or_env.sandbox.worker import DEFAULT_PRELOAD, DEFAULT_UID_BASE
from or_env.sandbox.worker_client import (
    WORKER_PATH,
    WorkerError,
    WorkerProcess,
    default_worker_argv,
    worker_environment,
)

logger = logging.getLogger(__name__)

ISOLATION_WARNING = (
    "LocalSandbox runs programs as processes on this machine: weaker isolation than the "
    "Docker sandbox (shared kernel and filesystem, the host network is reachable, memory "
    "is limited per process only). Use it for development and trusted workloads; use the "
    "Docker backend for untrusted code at scale."
)


class LocalSandbox(SandboxBase):
    """Runs programs in a pool of warm local workers (fork servers), one program per fork.

    Each worker has numpy, pulp, highspy and scipy already imported and forks one child
    per program. The child gets a fresh scratch directory, a scrubbed environment,
    rlimits (address space, file size, core, processes) and a wall-clock kill of its
    whole process group; processes it leaves behind are killed before the next program.
    When this process runs as root, programs run as a dedicated unprivileged uid per
    worker; otherwise as the current user, which is weaker still (see the worker's log).

    This is weaker isolation than the Docker sandbox: the kernel and the filesystem are
    shared, the host network is reachable, and memory is bounded per process, not per
    program. Prefer Docker for untrusted code at scale.

    Thread-safe: `run` checks a worker out of the pool per call (blocking while all are
    busy); `arun` does the same on a dedicated thread pool, so it never blocks the event
    loop. Workers start lazily (or all at once with `start()`); a worker that misbehaved
    (any `sandbox_error`) is discarded and replaced, never reused. `close()` (or leaving
    the `with` block, or interpreter exit) stops every worker.

    Args:
        workers: pool size (default: the number of CPUs this process may use).
        timeout: default wall-clock limit per program, in seconds.
        memory_mb: address space a program may add on top of the preloaded worker
            (RLIMIT_AS), so that a runaway allocation raises MemoryError; None: no limit.
        max_output_chars: cap on each of stdout and stderr; the head and the tail are kept
            around a "... [N bytes truncated] ..." marker.
        preload: modules each worker imports once (missing ones are skipped).
        python: interpreter for the workers (default: this one).
        uid_base: first uid of the range sandbox uids are taken from (when root).
        nproc: processes + threads a program may have (when root).
        fsize_mb: largest file a program may write.
        start_timeout: seconds a worker may take to start (imports included).
        extra_env: variables added to the workers' own environment.
    """

    name = "local"

    def __init__(
        self,
        *,
        workers: int | None = None,
        timeout: float = 30.0,
        memory_mb: int | None = 1024,
        max_output_chars: int = 16000,
        preload: Iterable[str] = DEFAULT_PRELOAD,
        python: str | None = None,
        uid_base: int = DEFAULT_UID_BASE,
        nproc: int = 256,
        fsize_mb: int = 64,
        start_timeout: float = 120.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.workers = workers or default_pool_size()
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.preload = tuple(preload)
        self.python = python or sys.executable
        self.uid_base = uid_base
        self.nproc = nproc
        self.fsize_mb = fsize_mb
        self.start_timeout = start_timeout
        self.extra_env = dict(extra_env or {})
        self._starter = _LocalWorkers(self)
        self._pool = WorkerPool(self.workers, self._starter.start, label="local sandbox")
        self._finalizer = weakref.finalize(self, self._pool.close)

    @property
    def isolation(self) -> str | None:
        """ "uid" or "session" (see worker.py), known once a worker has started."""
        return self._starter.isolation

    # ------------------------------------------------------------------ public API

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Run `code` as a complete program; never raises for the program's own failures."""
        limit = self.timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {limit}")
        try:
            worker = self._pool.checkout()
        except WorkerError as exc:
            return ExecResult(
                "", "", None, sandbox_error=f"could not start a sandbox worker: {exc}"
            )
        healthy = False
        try:
            result = worker.run(
                code,
                timeout=limit,
                max_output=self.max_output_chars,
                memory_mb=self.memory_mb,
            )
            healthy = result.sandbox_error is None
            return result
        finally:
            self._pool.checkin(worker, healthy=healthy)

    async def arun(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Like `run`, on the sandbox's own threads, so the event loop keeps running."""
        return await self._pool.run_async(self.run, code, timeout=timeout)

    def start(self) -> None:
        """Start every worker now (in parallel) instead of on first use."""
        for exc in self._pool.prestart():
            logger.error("could not start a sandbox worker: %s", exc)

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (for monitoring and tests)."""
        return [w.pid for w in self._pool.workers() if w.pid is not None]

    def close(self) -> None:
        """Stop every worker; programs still running get a sandbox_error. Idempotent."""
        self._finalizer()


class _LocalWorkers:
    """Starts local workers with a sandbox's settings (a copy: it must not keep it alive)."""

    def __init__(self, box: LocalSandbox) -> None:
        self.python = box.python
        self.preload = box.preload
        self.uid_base = box.uid_base
        self.nproc = box.nproc
        self.fsize_mb = box.fsize_mb
        self.start_timeout = box.start_timeout
        self.extra_env = dict(box.extra_env)
        self.isolation: str | None = None
        self._warned = False

    def start(self, index: int) -> WorkerProcess:
        if not self._warned:
            self._warned = True
            logger.warning("%s", ISOLATION_WARNING)
        argv = default_worker_argv(
            python=self.python,
            preload=self.preload,
            uid_base=self.uid_base,
            uid_offset=index % 1000,
            nproc=self.nproc,
            fsize_mb=self.fsize_mb,
        )
        worker = WorkerProcess(
            argv,
            env=worker_environment(self.extra_env),
            start_timeout=self.start_timeout,
            on_stop=clean_after_worker,
            name=f"local-sandbox-worker-{index}",
        )
        info = worker.start()
        self.isolation = info.get("isolation")
        return worker


def clean_after_worker(worker: WorkerProcess) -> None:
    """`on_stop` hook for local workers: remove what a worker that did not exit cleanly left."""
    # A worker that exits normally has cleaned up after itself. One that died or had to be
    # killed may leave its scratch directory and processes of its sandbox uid behind; only
    # root can kill those, via the worker's own utility mode (kill(-1) issued as that uid).
    info = worker.ready_info or {}
    if worker.exit_status == 0 or not info:
        return
    uid = info.get("uid")
    if isinstance(uid, int) and os.geteuid() == 0:
        subprocess.run(
            [worker.argv[0], str(WORKER_PATH), "--kill-uid", str(uid)],
            env=worker_environment(),
            timeout=30,
            check=False,
        )
    scratch = info.get("scratch_root")
    if isinstance(scratch, str) and os.path.basename(scratch).startswith("or-env-sandbox-"):
        shutil.rmtree(scratch, ignore_errors=True)
