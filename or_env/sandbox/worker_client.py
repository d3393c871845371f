"""Host side of a sandbox worker: start `worker.py`, send it programs, never hang on it.

`WorkerProcess` is generic over how the worker is launched: `argv` may be
`[python, worker.py, ...]` for a local worker or `["docker", "run", "-i", ...]` for one in a
container; only the framed protocol on stdin/stdout is assumed (see `worker.py`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from or_env.errors import SandboxError
from or_env.sandbox.base import ExecResult, SandboxFailure
from or_env.sandbox.worker import DEFAULT_PRELOAD, MAX_FRAME

logger = logging.getLogger(__name__)
worker_logger = logging.getLogger("or_env.sandbox.worker")

WORKER_PATH = Path(__file__).with_name("worker.py")
# Extra seconds the host waits beyond a program's timeout: the worker needs them to kill,
# reap and clean up (its own cleanup limit is 5 s by default).
DEFAULT_REPLY_MARGIN = 10.0
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def worker_flags(
    *,
    preload: Iterable[str] = DEFAULT_PRELOAD,
    reap_all: bool = False,
    no_drop_privileges: bool = False,
    uid_base: int | None = None,
    uid_offset: int | None = None,
    nproc: int | None = None,
    fsize_mb: int | None = None,
    scratch_root: str | None = None,
    wipe: Iterable[str] = (),
    namespaces: bool = False,
    hide: Iterable[str] = (),
    cgroup_memory_mb: int | None = None,
    tmpfs_mb: int | None = None,
    env: Mapping[str, str] | None = None,
    cleanup_timeout: float | None = None,
    log_level: str | None = None,
) -> list[str]:
    """Command-line flags for `worker.py`; None leaves the worker's own default."""
    flags = ["--preload", ",".join(preload)]
    if reap_all:
        flags.append("--reap-all")
    if no_drop_privileges:
        flags.append("--no-drop-privileges")
    if namespaces:
        flags.append("--namespaces")
    for name, value in (
        ("--uid-base", uid_base),
        ("--uid-offset", uid_offset),
        ("--nproc", nproc),
        ("--fsize-mb", fsize_mb),
        ("--scratch-root", scratch_root),
        ("--cgroup-memory-mb", cgroup_memory_mb),
        ("--tmpfs-mb", tmpfs_mb),
        ("--cleanup-timeout", cleanup_timeout),
        ("--log-level", log_level),
    ):
        if value is not None:
            flags += [name, str(value)]
    for path in wipe:
        flags += ["--wipe", path]
    for path in hide:
        flags += ["--hide", path]
    for key, value in (env or {}).items():
        flags += ["--env", f"{key}={value}"]
    return flags


def default_worker_argv(
    *, python: str | None = None, worker_path: str | Path = WORKER_PATH, **flags: Any
) -> list[str]:
    """`[python, worker.py, flags...]`; `flags` are those of `worker_flags`."""
    return [python or sys.executable, str(worker_path), *worker_flags(**flags)]


def worker_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small environment to start a worker with: nothing secret of the caller leaks in.

    The forked programs inherit the worker's memory, so the worker must not hold API keys
    or the like even though it gives each program a scrubbed environment of its own.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Fewer malloc arenas: each thread's arena reserves address space under RLIMIT_AS.
        "MALLOC_ARENA_MAX": "2",
    }
    for key in ("PYTHONPATH", "LD_LIBRARY_PATH"):  # needed to find the preloaded packages
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra or {})
    return env


class WorkerError(SandboxError):
    """The worker process died, stopped answering, or sent something that is not a frame."""


class WorkerProcess:
    """One worker process and the request/response conversation with it.

    Thread-safe (one request at a time). Every call is bounded by a host-side deadline;
    a worker that dies, times out or garbles a frame is killed and marked broken, and
    `run` reports that as `ExecResult(sandbox_error=...)`; `stop()` then `start()` makes a
    fresh one.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 120.0,
        reply_margin: float = DEFAULT_REPLY_MARGIN,
        on_stop: Callable[[WorkerProcess], None] | None = None,
        name: str = "sandbox-worker",
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env) if env is not None else worker_environment()
        self.start_timeout = start_timeout
        self.reply_margin = reply_margin
        self.on_stop = on_stop
        self.name = name
        self.ready_info: dict[str, Any] | None = None
        self.broken: str | None = None
        self.killed = False
        self.exit_status: int | None = None  # of the last process, once it is gone
        self._proc: subprocess.Popen[bytes] | None = None
        # The worker answers a run before cleaning up after it, then sends a settle frame
        # (protocol version 2): it must be read, and say "clean", before the next request.
        self._settle_pending = False
        self._lock = threading.Lock()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._stderr_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Started, still running and never broken."""
        return self._proc is not None and self._proc.poll() is None and self.broken is None

    def start(self) -> dict[str, Any]:
        """Launch the worker and wait for its ready frame; returns that frame."""
        with self._lock:
            if self._proc is not None:
                raise RuntimeError(f"{self.name} is already started; stop() it first")
            self.broken, self.killed, self.ready_info = None, False, None
            self.exit_status = None
            self._settle_pending = False
            self._stderr_tail.clear()
            try:
                self._proc = self._launch()
            except OSError as exc:
                raise WorkerError(f"could not launch {self.argv[0]!r}: {exc}") from exc
            assert self._proc.stdin is not None
            # Partial writes instead of blocking, so a stuck worker cannot outlast a deadline.
            os.set_blocking(self._proc.stdin.fileno(), False)
            self._stderr_thread = threading.Thread(
                target=self._drain_stderr, name=f"{self.name}-stderr", daemon=True
            )
            self._stderr_thread.start()
            try:
                info = self._read_frame(time.monotonic() + self.start_timeout, "start")
            except WorkerError:
                self._kill_locked()
                raise
            if info.get("ready") is not True:
                self._kill_locked()
                raise WorkerError(f"{self.name} sent {info!r} instead of its ready frame")
            self.ready_info = info  # its "warnings" also reach our log through stderr
        return info

    def _launch(self) -> subprocess.Popen[bytes]:
        """Start the worker; a subclass may return a Popen-like object (see docker_attach)."""
        return subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            start_new_session=True,  # a Ctrl-C in the terminal is not for the worker
            bufsize=0,
        )

    def stop(self, grace: float = 2.0) -> None:
        """End the worker: close its stdin and let it clean up, or kill it if it is busy."""
        if self._lock.acquire(blocking=False):
            try:
                proc = self._proc
                if proc is not None and proc.poll() is None and proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()  # end of stream: the worker cleans up and exits
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(grace)
                self._kill_locked()
            finally:
                self._lock.release()
        else:
            # A request is in flight in another thread: kill, and that request fails.
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker now (thread-safe; an in-flight request gets a WorkerError)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self.killed = True
            with contextlib.suppress(OSError):
                proc.kill()

    def _kill_locked(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.exit_status = proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._stderr_thread is not None:
            self._stderr_thread.join(2)
        if proc.stderr is not None:
            with contextlib.suppress(OSError):
                proc.stderr.close()
        self._proc = None
        if self.on_stop is not None:
            try:
                self.on_stop(self)
            except Exception:
                logger.exception("%s: on_stop hook failed", self.name)

    def __enter__(self) -> WorkerProcess:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ requests

    def request(self, payload: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        """Send one request and return the response, within `timeout` seconds."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                raise WorkerError(f"{self.name} is not running{self._exit_note()}")
            if self.broken is not None:
                raise WorkerError(f"{self.name} is broken: {self.broken}")
            self._settle_locked()
            deadline = time.monotonic() + timeout
            try:
                self._write_frame(payload, deadline)
                resp = self._read_frame(deadline, str(payload.get("op")))
            except WorkerError as exc:
                self.broken = str(exc)
                self._kill_locked()
                raise
            if resp.get("fatal"):
                self.broken = str(resp.get("error"))
                self._kill_locked()
            self._settle_pending = bool(resp.get("settle"))
            return resp

    @property
    def settling(self) -> bool:
        """Whether the worker may still be cleaning up after its last program, right now.

        A hint for choosing among idle workers without waiting; `settle()` is the check.
        """
        proc = self._proc
        if not self._settle_pending or proc is None or proc.stdout is None:
            return False
        poller = select.poll()
        try:
            poller.register(proc.stdout.fileno(), select.POLLIN)
        except (ValueError, OSError):  # stopped meanwhile: settle() says what happened
            return False
        return not poller.poll(0)

    def settle(self) -> bool:
        """Wait until the worker has cleaned up after its last program; False if it could not.

        A worker that could not (the program left state it cannot remove) is killed and
        marked broken, so that a pool replaces it before it is handed to anyone. Cheap when
        nothing is pending.
        """
        with self._lock:
            if not self._settle_pending:
                return self.broken is None
            try:
                self._settle_locked()
            except WorkerError:
                return False
            return True

    def _settle_locked(self) -> None:
        if not self._settle_pending:
            return
        self._settle_pending = False
        try:
            frame = self._read_frame(time.monotonic() + self.reply_margin, "cleanup")
        except WorkerError as exc:
            self.broken = str(exc)
            self._kill_locked()
            raise
        if frame.get("settled") is not True or frame.get("dirty"):
            self.broken = str(frame.get("error") or f"unexpected frame {frame!r:.200}")
            self._kill_locked()
            raise WorkerError(
                f"{self.name} could not clean up after the last program: {self.broken}"
            )

    def ping(self, timeout: float = 5.0) -> bool:
        try:
            return self.request({"op": "ping"}, timeout=timeout).get("ok") is True
        except WorkerError:
            return False

    def run(
        self,
        code: str,
        *,
        timeout: float,
        max_output: int,
        memory_mb: int | None,
        output_limit: int | None = None,
    ) -> ExecResult:
        """Run one program; failures of the worker come back as `sandbox_error`."""
        payload: dict[str, Any] = {
            "op": "run",
            "code": code,
            "timeout": timeout,
            "max_output": max_output,
            "memory_mb": memory_mb,
        }
        if output_limit is not None:
            payload["output_limit"] = output_limit
        t0 = time.monotonic()
        try:
            resp = self.request(payload, timeout=timeout + self.reply_margin)
        except WorkerError as exc:
            return ExecResult(
                "",
                "",
                None,
                wall_s=time.monotonic() - t0,
                sandbox_error=f"{exc}; the worker was stopped and will be replaced",
                failure=SandboxFailure.LOST,
            )
        if resp.get("dirty"):
            self.broken = str(resp.get("error"))
        if "stdout" not in resp and resp.get("error"):  # the worker refused the request
            kind = SandboxFailure.DIRTY if resp.get("dirty") else SandboxFailure.REFUSED
            return ExecResult("", "", None, sandbox_error=str(resp["error"]), failure=kind)
        try:
            return ExecResult(
                stdout=str(resp["stdout"]),
                stderr=str(resp["stderr"]),
                exit_code=None if resp["exit_code"] is None else int(resp["exit_code"]),
                timed_out=bool(resp["timed_out"]),
                wall_s=float(resp["wall_s"]),
                truncated=bool(resp["truncated"]),
                sandbox_error=resp.get("error"),
                failure=(SandboxFailure.DIRTY if resp.get("dirty") else SandboxFailure.LOST)
                if resp.get("error")
                else None,
            )
        except (KeyError, TypeError, ValueError):
            self.broken = f"malformed run response {resp!r:.300}"
            return ExecResult(
                "",
                "",
                None,
                wall_s=time.monotonic() - t0,
                sandbox_error=f"{self.name} answered {resp!r:.300}; it will be replaced",
                failure=SandboxFailure.LOST,
            )

    # ------------------------------------------------------------------ framing

    def _write_frame(self, payload: Mapping[str, Any], deadline: float) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        data = memoryview(struct.pack(">I", len(body)) + body)
        fd = self._proc.stdin.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while data:
            self._wait(poller, deadline, "to accept the request")
            try:
                data = data[os.write(fd, data[:65536]) :]
            except BlockingIOError:
                continue
            except OSError as exc:  # EPIPE: the worker is gone
                raise WorkerError(f"{self.name} is gone ({exc}){self._exit_note()}") from exc

    def _read_frame(self, deadline: float, what: str) -> dict[str, Any]:
        header = self._read_exact(4, deadline, what)
        (size,) = struct.unpack(">I", header)
        if size > MAX_FRAME:
            raise WorkerError(f"{self.name} sent a garbled frame header ({header!r})")
        try:
            obj = json.loads(self._read_exact(size, deadline, what).decode("utf-8"))
        except ValueError as exc:
            raise WorkerError(f"{self.name} sent a frame that is not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise WorkerError(f"{self.name} sent {obj!r:.200} instead of a JSON object")
        return obj

    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        buf = bytearray()
        while len(buf) < n:
            self._wait(poller, deadline, f"to answer ({what})")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise WorkerError(f"{self.name} exited unexpectedly{self._exit_note()}")
            buf += chunk
        return bytes(buf)

    def _wait(self, poller: select.poll, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(max(1, int(remaining * 1000))):
            raise WorkerError(f"{self.name} did not manage {what} in time; it was killed")

    def _exit_note(self) -> str:
        proc = self._proc
        code = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(0.5)
        note = ""
        if code is not None:
            note = f" (killed by signal {-code})" if code < 0 else f" (exit status {code})"
        tail = " | ".join(list(self._stderr_tail)[-5:])
        return note + (f"; its last log lines: {tail}" if tail else "")

    def _drain_stderr(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            self._stderr_tail.append(line)
            level = _LEVELS.get(line.split(" ", 1)[0], logging.DEBUG)
            worker_logger.log(level, "%s: %s", self.name, line)
