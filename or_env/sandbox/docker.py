"""The Docker sandbox: a pool of warm, hardened containers, each running the fork server.

Every container is what `docker run -i --rm` of the sandbox image would make, created
through the Docker SDK for Python (no `docker` binary needed; DOCKER_HOST and the TLS
variables are honoured, so rootless daemons and Podman's compatible socket work), with the
worker as PID 1 (no `--init`: as the namespace's init it cannot be killed from inside),
talking the framed protocol over the attached stdin/stdout (see `docker_attach`).
Containers are labelled so that they can be found and removed after a crash (see
`or_env.sandbox.containers`), and the daemon's events tell the pool at once when one dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from or_env.sandbox import docker_attach
from or_env.sandbox.base import ExecResult, SandboxBase, SandboxFailure
from or_env.sandbox.containers import (
    CLI_TIMEOUT_S,
    LABEL,
    OWNER_LABEL,
    POOL_LABEL,
    install_sigterm_handler,
    list_containers,
    owner_id,
    remove_all_containers,
    remove_containers,
    remove_stale_containers,
    remove_stale_once,
)
from or_env.sandbox.image import daemon_status, explain_docker_error, image_exists, image_tag
from or_env.sandbox.pool import WorkerPool, default_pool_size
from or_env.sandbox.worker_client import WorkerError, WorkerProcess

logger = logging.getLogger(__name__)

__all__ = [
    "ContainerSpec",
    "DockerSandbox",
    "default_image",
    "docker_usable",
    "list_containers",
    "remove_all_containers",
    "remove_stale_containers",
]

NAME_PREFIX = "or-env-sandbox"
IMAGE_ENV = "OR_ENV_SANDBOX_IMAGE"
_PING_TIMEOUT_S = 5.0
_SWEEP_WAIT_S = 5.0
_BUILD_HINT = "run `or-env sandbox build` to build it, or use sandbox='local'"


def default_image() -> str:
    """The image the sandbox runs: $OR_ENV_SANDBOX_IMAGE, else this package's version tag."""
    return os.environ.get(IMAGE_ENV) or image_tag()


def docker_usable(image: str | None = None) -> tuple[bool, str]:
    """Whether the Docker backend can run now (daemon answers and image exists), and why."""
    ok, why = daemon_status()
    if not ok:
        return False, why
    tag = image or default_image()
    if not image_exists(tag):
        return False, f"{why}, but the sandbox image {tag} is not built: {_BUILD_HINT}"
    return True, f"{why} and the sandbox image {tag} exists"


@dataclass(frozen=True)
class ContainerSpec:
    """How each sandbox container is run; every limit is per container."""

    image: str
    container_memory_mb: int = 1536
    cpus: float = 1.0
    pids_limit: int = 64
    tmpfs_mb: int = 64
    shm_mb: int = 64
    fsize_mb: int = 64
    nofile: int = 1024
    # The worker runs as root with only the capabilities it needs to hand each program to
    # the image's unprivileged user (uid 1000, which owns nothing the worker needs) and to
    # kill and clean up after it; programs keep no capability at all.
    user: str = "0:0"
    program_uid: int = 1000
    tmpfs_inodes: int = 16384
    preload: tuple[str, ...] | None = None
    program_env: tuple[tuple[str, str], ...] = ()
    extra_run_args: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = field(default=())

    def hardening_flags(self) -> list[str]:
        """The `docker run` flags that confine a container (limits, no network, user)."""
        mem = f"{self.container_memory_mb}m"
        fsize = self.fsize_mb << 20
        return [
            "--pull", "never",
            "--network", "none",
            "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmpfs_mb}m,nr_inodes={self.tmpfs_inodes}",
            "--shm-size", f"{self.shm_mb}m",
            "--memory", mem,
            "--memory-swap", mem,  # equal: no swap, so the memory limit is real
            "--cpus", f"{self.cpus:g}",
            "--pids-limit", str(self.pids_limit),
            "--cap-drop", "ALL",
            "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "CHOWN",
            "--cap-add", "KILL",
            "--security-opt", "no-new-privileges",
            "--user", self.user,
            "--ulimit", f"fsize={fsize}:{fsize}",
            "--ulimit", f"nofile={self.nofile}:{self.nofile}",
            "--log-driver", "none",
            # PID 1 ignores SIGTERM; `docker stop` and a daemon shutdown need not wait.
            "--stop-signal", "SIGKILL",
        ]  # fmt: skip

    def container_flags(self) -> list[str]:
        """Every `docker run` flag of a container: hardening, labels, `extra_run_args`.

        The SDK path translates exactly these (`docker_attach.flags_to_config`), so the
        CLI command and the API's container are confined alike.
        """
        args = self.hardening_flags()
        for key, value in self.labels:
            args += ["--label", f"{key}={value}"]
        return [*args, *self.extra_run_args]

    def run_args(self, name: str) -> list[str]:
        """The equivalent `docker run` command for a worker container called `name`."""
        args = ["docker", "run", "-i", "--rm", "--name", name, *self.container_flags()]
        return [*args, self.image, *self.worker_args()]

    def worker_args(self) -> list[str]:
        """Arguments appended to the image's entrypoint (the worker with --preload etc.)."""
        args = ["--wipe", "/tmp", "--wipe", "/dev/shm", "--fsize-mb", str(self.fsize_mb)]
        args += ["--uid", str(self.program_uid), "--log-level", "ERROR"]
        if self.preload is not None:
            args += ["--preload", ",".join(self.preload)]
        for key, value in self.program_env:
            args += ["--env", f"{key}={value}"]
        return args


class ContainerWorker(WorkerProcess):
    """A `WorkerProcess` whose worker is a container created and attached over the API."""

    def __init__(self, spec: ContainerSpec, name: str, **kwargs: object) -> None:
        super().__init__(spec.run_args(name), env={}, name=name, **kwargs)  # type: ignore[arg-type]
        self.spec = spec
        self.container: docker_attach.AttachedContainer | None = None

    def _launch(self) -> docker_attach.AttachedContainer:  # type: ignore[override]
        try:
            self.container = docker_attach.attach_new(
                self.name,
                self.spec.image,
                self.spec.worker_args(),
                self.spec.container_flags(),
                watch_label=f"{LABEL}=1",
            )
        except Exception as exc:
            error = docker_attach.error_text(exc)
            raise WorkerError(explain_start_failure(error, self.spec.image)) from exc
        return self.container


class _Containers:
    """Starts containers for one pool and removes the ones that did not exit cleanly.

    Holds no reference to the sandbox, so the sandbox's finalizer can use it.
    """

    def __init__(self, spec: ContainerSpec, pool_id: str, start_timeout: float, margin: float):
        self.spec = spec
        self.pool_id = pool_id
        self.start_timeout = start_timeout
        self.reply_margin = margin
        self._removals: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def start(self, index: int) -> WorkerProcess:
        remove_stale_once()
        name = f"{NAME_PREFIX}-{os.getpid()}-{self.pool_id}-{index}"
        worker = ContainerWorker(
            self.spec,
            name,
            start_timeout=self.start_timeout,
            reply_margin=self.reply_margin,
            on_stop=self._after_stop,
        )
        try:
            worker.start()
        except WorkerError as exc:
            if exc.__cause__ is not None:  # _launch explained it already
                raise
            raise WorkerError(explain_start_failure(str(exc), self.spec.image)) from exc
        return worker

    def _after_stop(self, worker: WorkerProcess) -> None:
        # A container whose worker exited by itself is gone already (auto-remove). One
        # that was detached (deadline, protocol error) or died may still be there: remove
        # it in the background, so that a failing call returns now, not after the daemon.
        if worker.exit_status == 0 and not worker.killed:
            return
        thread = threading.Thread(
            target=self._remove, args=(worker.name,), name=f"rm-{worker.name}", daemon=True
        )
        with self._lock:
            self._removals.add(thread)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown: the final sweep removes it
            with self._lock:
                self._removals.discard(thread)

    def _remove(self, name: str) -> None:
        try:
            remove_containers([name])
        finally:
            with self._lock:
                self._removals.discard(threading.current_thread())

    def sweep(self) -> None:
        """Wait for pending removals, then remove whatever of this pool is still there."""
        with self._lock:
            pending = list(self._removals)
        for thread in pending:
            thread.join(CLI_TIMEOUT_S)
        try:
            left = list_containers(f"label={POOL_LABEL}={self.pool_id}")
        except RuntimeError as exc:
            logger.warning(
                "could not check that every sandbox container was removed (%s); the next "
                "sandbox removes leftovers, or call remove_stale_containers()",
                exc,
            )
            return
        if not left:
            return
        remove_containers(cid for cid, _, _ in left)
        # A container the daemon was already removing (auto-remove) answers "in
        # progress": wait a little for it, so that a closed sandbox leaves nothing.
        deadline = time.monotonic() + _SWEEP_WAIT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                if not list_containers(f"label={POOL_LABEL}={self.pool_id}"):
                    return
            time.sleep(0.05)


def explain_start_failure(error: str, image: str) -> str:
    """Say why a container did not start and what to do about it."""
    low = error.lower()
    if "unable to find image" in low or "no such image" in low:
        return f"the sandbox image {image} is not built: {_BUILD_HINT}"
    if "docker daemon" in low or "docker.sock" in low:
        return f"could not start a sandbox container: {explain_docker_error(error)}"
    ok, why = daemon_status(timeout=5)
    if not ok:
        return f"could not start a sandbox container: {why}"
    return f"could not start a sandbox container from {image}: {error}"


def _shutdown(pool: WorkerPool, containers: _Containers, owner_pid: int) -> None:
    pool.close()
    if os.getpid() == owner_pid:  # not in a forked copy of the owner
        containers.sweep()


class DockerSandbox(SandboxBase):
    """Runs programs in a pool of warm, hardened Docker containers, one fork per program.

    Each container runs the sandbox image's fork server as PID 1, with numpy, scipy, pulp
    and highspy already imported; a program is a forked child with a fresh scratch
    directory, a scrubbed environment, RLIMIT_AS (a readable MemoryError), a wall-clock
    SIGKILL, and an output cap. Programs run as the image's unprivileged user (uid 1000,
    which owns nothing the server needs) without any capability. After each program the
    server kills every other process in the container, removes every file, SysV IPC
    object and POSIX message queue the program left (/tmp, /dev/shm, /dev/mqueue), then
    checks: free space back, no IPC object left, no memory still held. A container that
    is not clean is replaced before its next program, never reused dirty. The
    container adds: no network, a read-only root, a small tmpfs, memory = memory+swap,
    CPU and pid limits, only the capabilities the server needs (SETUID, SETGID, CHOWN,
    KILL), no-new-privileges, no log driver.

    Concurrency: at most `workers` programs run at once (one per container); more
    callers wait for a free container (`queue_timeout` bounds that wait). `run` is
    thread-safe; `arun` runs on the sandbox's own threads and never blocks the loop.
    The cap is per instance: to share one cap among many envs of a process, share one
    sandbox (`or_env.sandbox.shared_sandbox`, which envs use by default).

    Failures: a container that misbehaves (the program outlived the host-side deadline,
    the worker died or garbled the protocol, the container was killed from outside, the
    daemon went away) makes that one call return `ExecResult(sandbox_error=...)`, and
    the container is removed and replaced by a new one on a later call, never reused.
    There is no automatic retry: the program may itself be what broke the container,
    and a retry would double the cost of every such program; the caller (the env) sees
    the error as an observation and may run again. An idle container found dead is
    replaced before use (one idle for over `idle_ping_s` is pinged first), so a daemon
    restart between calls costs only a container start.
    Every host-side wait is bounded (start: `start_timeout`; a program: its timeout
    plus `reply_margin`), and when the daemon is gone the error says what to do.

    Cleanup: `close()` (or the `with` block, garbage collection, interpreter exit)
    stops every container and removes any left. On SIGTERM (when the application has
    no handler of its own) the containers of this process are removed before it dies.
    After a hard crash, the next DockerSandbox removes containers whose owning process
    is gone; `remove_all_containers()` removes every sandbox container.

    Args:
        workers: containers in the pool (default: the number of CPUs).
        timeout: default wall-clock limit per program, in seconds.
        memory_mb: address space a program may add to the preloaded server (RLIMIT_AS),
            so that a runaway allocation raises MemoryError; None: only the container
            limit (the kernel then kills the program).
        container_memory_mb: memory (and memory+swap) of each container, tmpfs included.
        cpus: CPUs per container.
        pids_limit: processes and threads per container (the worker needs one; a fork
            bomb's cleanup time grows with it: about 0.3 s at 64, 0.6-1 s at 128 here).
        tmpfs_mb: size of the /tmp tmpfs; shm_mb: size of /dev/shm.
        fsize_mb: largest file a program may write.
        nofile: open files per process.
        max_output_chars: cap on each of stdout and stderr (head and tail kept).
        image: the image to run (default: $OR_ENV_SANDBOX_IMAGE or this version's tag).
        preload: modules the server imports (default: the image's choice).
        extra_env: variables added to the programs' environment.
        start_timeout: seconds a container may take to become ready.
        reply_margin: seconds beyond a program's timeout before the host gives up on it.
        queue_timeout: seconds a call may wait for a free container (None: no limit).
        extra_run_args: more `docker run` flags (e.g. `--runtime runsc`).
        handle_sigterm: install the SIGTERM cleanup described above.
        idle_ping_s: a container idle this long is pinged before it gets a program.
    """

    name = "docker"

    def __init__(
        self,
        *,
        workers: int | None = None,
        timeout: float = 30.0,
        memory_mb: int | None = 1024,
        container_memory_mb: int = 1536,
        cpus: float = 1.0,
        pids_limit: int = 64,
        tmpfs_mb: int = 64,
        shm_mb: int = 64,
        fsize_mb: int = 64,
        nofile: int = 1024,
        max_output_chars: int = 16000,
        image: str | None = None,
        preload: Iterable[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        reply_margin: float = 10.0,
        queue_timeout: float | None = None,
        extra_run_args: Sequence[str] = (),
        handle_sigterm: bool = True,
        idle_ping_s: float = 1.0,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if memory_mb is not None and memory_mb >= container_memory_mb:
            raise ValueError(
                f"memory_mb ({memory_mb}) must be below container_memory_mb "
                f"({container_memory_mb}), or a big allocation is killed by the kernel "
                "instead of raising MemoryError"
            )
        self.workers = workers or default_pool_size()
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.queue_timeout = queue_timeout
        self.idle_ping_s = idle_ping_s
        self._last_used: dict[str, float] = {}
        self.image = image or default_image()
        self.pool_id = secrets.token_hex(4)
        self.spec = ContainerSpec(
            image=self.image,
            container_memory_mb=container_memory_mb,
            cpus=cpus,
            pids_limit=pids_limit,
            tmpfs_mb=tmpfs_mb,
            shm_mb=shm_mb,
            fsize_mb=fsize_mb,
            nofile=nofile,
            preload=None if preload is None else tuple(preload),
            program_env=tuple(sorted((extra_env or {}).items())),
            extra_run_args=tuple(extra_run_args),
            labels=((LABEL, "1"), (OWNER_LABEL, owner_id()), (POOL_LABEL, self.pool_id)),
        )
        # Unknown extra_run_args fail here, not at the first container start.
        docker_attach.flags_to_config(self.spec.container_flags())
        self._containers = _Containers(self.spec, self.pool_id, start_timeout, reply_margin)
        self._pool = WorkerPool(self.workers, self._containers.start, label="docker sandbox")
        self._finalizer = weakref.finalize(
            self, _shutdown, self._pool, self._containers, os.getpid()
        )
        if handle_sigterm:
            install_sigterm_handler()

    # ------------------------------------------------------------------ public API

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Run `code` as a complete program; never raises for the program's own failures."""
        limit = self.timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {limit}")
        try:
            worker = self._checkout()
        except WorkerError as exc:
            return ExecResult("", "", None, sandbox_error=str(exc), failure=SandboxFailure.START)
        except TimeoutError as exc:
            return ExecResult(
                "", "", None, sandbox_error=f"{exc}; try again later", failure=SandboxFailure.BUSY
            )
        healthy = False
        try:
            result = worker.run(
                code, timeout=limit, max_output=self.max_output_chars, memory_mb=self.memory_mb
            )
            healthy = result.sandbox_error is None
            if not healthy:
                result = self._explain(result)
            return result
        finally:
            self._checkin(worker, healthy=healthy)

    async def arun(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Like `run`, on the sandbox's own threads, so the event loop keeps running."""
        return await self._pool.run_async(self.run, code, timeout=timeout)

    def start(self) -> None:
        """Start every container now (in parallel) instead of on first use.

        Raises WorkerError with the reason when a container cannot start.
        """
        errors = self._pool.prestart()
        if errors:
            raise errors[0]

    def container_names(self) -> list[str]:
        """Names of the pool's containers (for monitoring and tests)."""
        return sorted(w.name for w in self._pool.workers())

    @property
    def containers_started(self) -> int:
        """Containers started so far, replacements included."""
        return self._pool.started_total

    @property
    def isolation(self) -> str:
        """Always "container" (see `isolation_details`)."""
        return "container"

    @property
    def isolation_details(self) -> dict[str, object]:
        """How programs are confined, in the shape of `LocalSandbox.isolation_details`."""
        return {
            "mode": "container",
            "network": "none",
            "memory_limit": f"container cgroup ({self.spec.container_memory_mb} MiB) + "
            "RLIMIT_AS per program",
            "hidden": ["the whole host filesystem (the container has its own root)"],
            "warnings": [],
        }

    def close(self) -> None:
        """Stop and remove every container; running programs get a sandbox_error. Idempotent."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"DockerSandbox(image={self.image!r}, workers={self.workers}, pool={self.pool_id})"

    # ------------------------------------------------------------------ internals

    def _checkout(self) -> WorkerProcess:
        # A container idle for a while may have died without its client noticing yet
        # (a daemon restart, `docker kill`): ask it first, so that the program does not
        # pay for it. Busy containers skip this; it costs one round trip.
        for _ in range(self.workers + 1):
            worker = self._pool.checkout(wait=self.queue_timeout)
            last = self._last_used.get(worker.name)
            if last is None or time.monotonic() - last < self.idle_ping_s:
                return worker
            if worker.ping(timeout=_PING_TIMEOUT_S):
                return worker
            self._checkin(worker, healthy=False)
        raise WorkerError("no sandbox container answered a ping; is the Docker daemon healthy?")

    def _checkin(self, worker: WorkerProcess, *, healthy: bool) -> None:
        if healthy:
            self._last_used[worker.name] = time.monotonic()
        else:
            self._last_used.pop(worker.name, None)
        self._pool.checkin(worker, healthy=healthy)

    def _explain(self, result: ExecResult) -> ExecResult:
        if self._pool.closed:
            return result
        error = str(result.sandbox_error)
        ok, why = daemon_status(timeout=5)
        if not ok:
            error += (
                f"; the Docker daemon is not usable now ({why}). New containers start "
                "when it is back"
            )
        elif "exit status 137" in error:
            error += (
                "; status 137 means the container was killed from outside (docker kill "
                "or rm, a daemon restart, or the host's OOM killer)"
            )
        return dataclasses.replace(result, sandbox_error=error)
