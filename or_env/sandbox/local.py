"""The local sandbox: a pool of warm fork-server processes on this machine."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

from or_env.sandbox.base import ExecResult, SandboxBase, SandboxFailure
from or_env.sandbox.confine import remove_tree
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
    "LocalSandbox runs programs as processes on this machine, without Linux namespaces: "
    "much weaker isolation than the Docker sandbox (programs share the network, /tmp, "
    "IPC and the process table, and can read whatever this user can read, ground truths "
    "included). Use it for development only; use the Docker backend, or a kernel that "
    "allows user namespaces, for training."
)
# Cgroup memory on top of `memory_mb`: the preloaded worker itself and the private tmpfs.
CGROUP_MARGIN_MB = 512


class LocalSandbox(SandboxBase):
    """Runs programs in a pool of warm local workers (fork servers), one program per fork.

    Each worker has numpy, pulp, highspy and scipy already imported and forks one child
    per program. The child gets a fresh scratch directory, a scrubbed environment,
    rlimits (address space, file size, core, processes) and a wall-clock kill of its
    whole process group; processes it leaves behind are killed before the next program.
    When this process runs as root, programs run as a dedicated unprivileged uid per
    worker; otherwise as the current user, which is weaker still (see the worker's log).

    Where the kernel allows (as root, or for anyone where unprivileged user namespaces
    are enabled, as on most current distributions), each worker runs in new user (when
    not root), mount, PID, IPC and network namespaces: no network, host processes
    invisible, every mount read-only, the package's data, the benchmark folder
    (`$OR_ENV_DATA_DIR`), the project tree and the home directory hidden (the Python
    installation stays visible), and each execution gets fresh tmpfs on /tmp, /var/tmp,
    /dev/shm and /run/lock and a fresh IPC namespace, so nothing it leaves is seen by the
    next one. As root a memory cgroup per worker also counts kernel memory (socket
    buffers, tmpfs). `isolation` says which mode a worker got. Without namespaces
    (`namespaces=False`, or a kernel that refuses them) isolation is much weaker and a
    warning says so.

    The kernel is still shared with the host: prefer Docker for untrusted code at scale.

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
        namespaces: use Linux namespaces where the kernel allows them (see above).
        tmpfs_mb: size of each private tmpfs an execution gets (namespaces only).
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
        namespaces: bool = True,
        tmpfs_mb: int = 128,
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
        self.namespaces = namespaces
        self.tmpfs_mb = tmpfs_mb
        self._starter = _LocalWorkers(self)
        self._pool = WorkerPool(self.workers, self._starter.start, label="local sandbox")
        self._finalizer = weakref.finalize(self, self._pool.close)

    @property
    def isolation(self) -> str | None:
        """How programs are confined, known once a worker has started.

        "namespaces+uid" (root: namespaces and a sandbox uid), "namespaces" (a user
        namespace, programs without capabilities), "uid" or "session" (no namespaces:
        weak; see the warning).
        """
        info = self._starter.ready_info
        return None if info is None else isolation_mode(info)

    @property
    def isolation_details(self) -> dict[str, object] | None:
        """What a started worker reported: mode, network, memory limit, hidden paths."""
        info = self._starter.ready_info
        if info is None:
            return None
        return {
            "mode": isolation_mode(info),
            "network": "none" if info.get("namespaces") else "host",
            "memory_limit": info.get("memory_limit"),
            "hidden": info.get("hidden", []),
            "warnings": info.get("warnings", []),
        }

    # ------------------------------------------------------------------ public API

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Run `code` as a complete program; never raises for the program's own failures."""
        limit = self.timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {limit}")
        try:
            worker = self._pool.checkout()
            while getattr(worker, "hidden_generation", _hidden_generation) != _hidden_generation:
                # Started before a data path was hidden: it still shows that path.
                self._pool.checkin(worker, healthy=False)
                worker = self._pool.checkout()
        except WorkerError as exc:
            return ExecResult(
                "",
                "",
                None,
                sandbox_error=f"could not start a sandbox worker: {exc}",
                failure=SandboxFailure.START,
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
        self.namespaces = box.namespaces
        self.tmpfs_mb = box.tmpfs_mb
        self.cgroup_memory_mb = None if box.memory_mb is None else box.memory_mb + CGROUP_MARGIN_MB
        self.ready_info: dict | None = None
        self._warned = False

    def start(self, index: int) -> WorkerProcess:
        generation = _hidden_generation
        argv = default_worker_argv(
            python=self.python,
            preload=self.preload,
            uid_base=self.uid_base,
            uid_offset=index % 1000,
            nproc=self.nproc,
            fsize_mb=self.fsize_mb,
            namespaces=self.namespaces,
            hide=hidden_paths() if self.namespaces else (),
            cgroup_memory_mb=self.cgroup_memory_mb,
            tmpfs_mb=self.tmpfs_mb,
        )
        worker = WorkerProcess(
            argv,
            env=worker_environment(self.extra_env),
            start_timeout=self.start_timeout,
            on_stop=clean_after_worker,
            name=f"local-sandbox-worker-{index}",
        )
        worker.hidden_generation = generation  # type: ignore[attr-defined]
        info = worker.start()
        self.ready_info = info
        if not info.get("namespaces") and not self._warned:
            self._warned = True
            logger.warning("%s", ISOLATION_WARNING)
        return worker


def isolation_mode(ready_info: Mapping[str, object]) -> str:
    """The isolation a worker reported in its ready frame, as one word (see LocalSandbox)."""
    base = str(ready_info.get("isolation"))
    if ready_info.get("namespaces"):
        return "namespaces+uid" if base == "uid" else "namespaces"
    return base


# Folders problems were read from in this process (`hide_from_programs`); a worker started
# before the last addition is replaced before it runs another program.
_extra_hidden: list[str] = []
_hidden_generation = 0
_hidden_lock = threading.Lock()


def hide_from_programs(path: str | os.PathLike[str]) -> None:
    """Hide a folder (or a file's folder) from the programs of every local sandbox of this
    process, from their next execution on.

    `or_env.load_problems` calls it for every file it reads problems from, so a benchmark
    loaded from anywhere (`path=`, `data_path=`, `serve --data-dir`) is out of the programs'
    sight, not only `$OR_ENV_DATA_DIR`. Workers started before are replaced.
    """
    global _hidden_generation
    target = Path(path).resolve()
    folder = target if target.is_dir() else target.parent
    covered = [Path(p).resolve() for p in hidden_paths()]
    if any(folder.is_relative_to(p) for p in covered):
        return  # already out of sight: no need to replace any worker
    with _hidden_lock:
        _extra_hidden.append(str(folder))
        _hidden_generation += 1


def hidden_paths() -> list[str]:
    """What programs must not read: ground truths and anything near them.

    The package's bundled problems, the benchmark folder, every folder problems were loaded
    from in this process (`hide_from_programs`), the project tree when the package runs from
    a source checkout (tests, run folders), and the home directory (API keys, caches of other
    runs). The worker keeps its Python installation visible.
    """
    package = Path(__file__).resolve().parents[1]
    paths = [package / "data", Path.home()]
    if (package.parent / "pyproject.toml").exists():
        paths.append(package.parent)
    data_dir = os.environ.get("OR_ENV_DATA_DIR")
    if data_dir:
        paths.append(Path(data_dir))
    with _hidden_lock:
        paths.extend(map(Path, _extra_hidden))
    return [str(p) for p in paths]


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
        try:
            remove_tree(scratch, time.monotonic() + 60)
        except OSError as exc:
            logger.warning("could not remove the scratch directory %s: %s", scratch, exc)
