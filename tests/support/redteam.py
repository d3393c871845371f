"""Infrastructure of the red-team sandbox suite (tests/test_redteam_sandbox.py).

The suite runs every attack against each backend and mode:

    docker              DockerSandbox (containers from sandbox_image/)
    local               LocalSandbox in this process: "local-root" when the tests run as
                        root (programs get a dedicated uid), else "local-unprivileged"
    local-unprivileged  LocalSandbox in a driver process (support/unprivileged_driver.py)
                        run as uid 65534 with a secret in its environment: a laptop or
                        cluster user without Docker. Needs the tests to run as root.

Everything here looks at the sandboxes from the host: which processes exist, which files
another uid can read, what is left in /tmp; never at how a backend is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import itertools
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from or_env.sandbox.base import ExecResult

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("unprivileged_driver.py")

SECRET_NAME = "OR_ENV_TEST_SECRET_TOKEN"
SECRET_VALUE = "s3cr3t-value-that-must-not-leak"
# The unprivileged driver's own "API key": what a user's shell would hold.
DRIVER_SECRET_NAME = "OR_ENV_TEST_API_KEY"
DRIVER_SECRET_VALUE = "sk-redteam-driver-key-that-must-not-leak"

UNPRIVILEGED_UID = 65534  # the driver: "the user running the sandbox without root"
OTHER_UID = 65533  # another user of the same machine

# Places a program can usually write to besides its own directory.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")

BACKENDS = ("docker", "local", "local-unprivileged")
MODES = ("docker", "local-root", "local-unprivileged")


def backend_mode(backend: str) -> str:
    """The column of the isolation report a backend parameter measures here."""
    if backend == "local":
        return "local-root" if os.geteuid() == 0 else "local-unprivileged"
    return backend


def new_token() -> str:
    return secrets.token_hex(8)


def comm_marker(token: str) -> str:
    """A process name (at most 15 bytes) a program gives itself so the host can find it."""
    return f"rt{token[:12]}"


# ----------------------------------------------------------------------------- docker


_docker_usable: tuple[bool, str] | None = None


def docker_unusable_reason() -> str | None:
    global _docker_usable
    if _docker_usable is None:
        from or_env.sandbox.docker import docker_usable

        _docker_usable = docker_usable()
    return None if _docker_usable[0] else _docker_usable[1]


# ----------------------------------------------------------------------------- processes


def _python_for(uid: int) -> str | None:
    """An interpreter that `uid` can run (any Python 3), for small helper scripts."""
    candidates = [
        sys.executable,
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
    ]
    for cand in dict.fromkeys(candidates):
        if not os.path.exists(cand):
            continue
        try:
            probe = subprocess.run(
                [cand, "-c", "print('ok')"],
                user=uid,
                group=uid,
                extra_groups=[],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.stdout.strip() == "ok":
            return cand
    return None


_helper_python: dict[int, str | None] = {}


def python_for(uid: int) -> str | None:
    if uid not in _helper_python:
        _helper_python[uid] = _python_for(uid)
    return _helper_python[uid]


def _proc_field(pid: str, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def processes_named(marker: str) -> list[int]:
    """Live (not zombie) processes of this machine whose name (comm) is `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        comm = _proc_field(name, "comm")
        if comm is None or comm.strip() != marker:
            continue
        stat = _proc_field(name, "stat")
        if stat and stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] != "Z":
            found.append(int(name))
    return found


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def kill_named(marker: str) -> None:
    """Safety net after a test: SIGKILL what a program left running on the host."""
    for pid in processes_named(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- host files


def remove_host_leftovers(token: str, extra_dirs: Iterable[str] = ()) -> None:
    """Remove what a program named with `token` left in the host's shared places."""
    for place in dict.fromkeys([tempfile.gettempdir(), *SHARED_WRITABLE, *extra_dirs]):
        try:
            names = os.listdir(place)
        except OSError:
            continue
        for name in names:
            if token in name:
                path = os.path.join(place, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)


def remove_trees(paths: Iterable[str]) -> None:
    """rm -rf (which copes with trees too deep for shutil.rmtree)."""
    for path in paths:
        if path and os.path.lexists(path):
            subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


READER = r"""
import json, os, sys
token, roots = sys.argv[1], json.loads(sys.argv[2])
found, seen = [], 0
def visit(path, depth):
    global seen
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        seen += 1
        if seen > 50000:
            return
        if token in entry.name:
            try:
                with open(entry.path, "rb") as f:
                    found.append([entry.path, f.read(200).decode(errors="replace")])
            except OSError as exc:
                found.append([entry.path, "unreadable: " + type(exc).__name__])
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir and depth < 4:
            visit(entry.path, depth + 1)
for root in roots:
    visit(root, 0)
print(json.dumps(found))
"""


def files_seen_by(uid: int, token: str, roots: Iterable[str]) -> list[list[str]] | None:
    """What user `uid` can find and read of files whose name holds `token` under `roots`.

    None when no interpreter is runnable by that uid (the caller skips).
    """
    python = python_for(uid)
    if python is None:
        return None
    proc = subprocess.run(
        [python, "-c", READER, token, json.dumps(list(roots))],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the reader as uid {uid} failed: {proc.stderr}")
    return json.loads(proc.stdout)


# ----------------------------------------------------------------------------- host IPC


def ipc_keys(token: str, count: int = 32) -> list[int]:
    """SysV IPC keys a program derives from `token` (so the host can find and remove them)."""
    base = 0x52000000 | (int(token[:5], 16) << 6)
    return [base + i for i in range(count)]


def mqueue_names(token: str, count: int = 8) -> list[str]:
    return [f"/rt-{token}-{i}" for i in range(count)]


def remove_host_ipc(token: str) -> None:
    """Remove the SysV IPC objects and POSIX queues a program made with `token`'s names."""
    keys = set(ipc_keys(token))
    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 2 or int(fields[0]) not in keys:
                continue
            ident = int(fields[1])
            if kind == "shm":
                libc.shmctl(ident, ipc_rmid, None)
            elif kind == "msg":
                libc.msgctl(ident, ipc_rmid, None)
            else:
                libc.semctl(ident, 0, ipc_rmid)
    try:
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
    except OSError:
        rt = libc
    for name in mqueue_names(token):
        rt.mq_unlink(name.encode())


# ----------------------------------------------------------------------------- unprivileged host


@dataclass
class UnprivilegedHost:
    """A venv owned by the unprivileged user, with this project's packages, and a home."""

    root: str
    python: str
    site_packages: str
    home: str
    env: dict[str, str] = field(default_factory=dict)
    uid: int = UNPRIVILEGED_UID

    def remove(self) -> None:
        remove_trees([self.root])


def _runs_as(uid: int, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None):
    return subprocess.run(
        argv,
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )


def make_unprivileged_host(extra_env: dict[str, str]) -> UnprivilegedHost:
    """Set up what a non-root user running the local sandbox would have.

    A fresh venv owned by that user (so the program's `.pth` attack has a real target),
    made from an interpreter of this Python version that the user can run, which reaches
    this project's packages through a `.pth` (site.addsitedir of this venv). Raises
    RuntimeError with the reason when the machine does not allow it (the caller skips).
    """
    if os.geteuid() != 0:
        raise RuntimeError("switching to an unprivileged uid needs the tests to run as root")
    if shutil.which("setpriv") is None:
        raise RuntimeError("setpriv (util-linux) is not installed")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        os.path.realpath(sys.executable),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
        shutil.which(f"python{version}") or "",
    ]
    base = None
    for cand in dict.fromkeys(c for c in candidates if c and os.path.exists(c)):
        try:
            probe = _runs_as(
                UNPRIVILEGED_UID, [cand, "-c", "import sys, venv; print(sys.version_info[:2])"]
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            base = cand
            break
    if base is None:
        raise RuntimeError(
            f"no Python {version} interpreter is runnable by uid {UNPRIVILEGED_UID} "
            f"(tried {candidates}); the project's venv lives where that user cannot read"
        )
    ours = [p for p in site.getsitepackages() if os.path.isdir(p)]
    unreadable = [
        p for p in ours if _runs_as(UNPRIVILEGED_UID, ["test", "-r", p, "-a", "-x", p]).returncode
    ]
    if unreadable:
        raise RuntimeError(f"uid {UNPRIVILEGED_UID} cannot read {unreadable}")
    root = tempfile.mkdtemp(prefix="or-env-redteam-user-")
    os.chmod(root, 0o755)
    venv = os.path.join(root, "venv")
    home = os.path.join(root, "home")
    made = subprocess.run(
        [base, "-m", "venv", "--without-pip", venv], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        remove_trees([root])
        raise RuntimeError(f"could not make a venv with {base}: {made.stderr.strip()}")
    (site_packages,) = Path(venv).glob("lib/python*/site-packages")
    lines = [f"import site; site.addsitedir({p!r})" for p in ours]
    (site_packages / "_or_env_project.pth").write_text("\n".join(lines) + "\n")
    os.makedirs(home)
    subprocess.run(["chown", "-R", f"{UNPRIVILEGED_UID}:{UNPRIVILEGED_UID}", root], check=True)
    python = os.path.join(venv, "bin", "python")
    env = {
        "PATH": f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "USER": "nobody",
        **extra_env,
    }
    host = UnprivilegedHost(root, python, str(site_packages), home, env)
    probe = _runs_as(
        UNPRIVILEGED_UID,
        [python, "-c", "import or_env.sandbox.local, numpy, pulp; print('ok')"],
        env=env,
        cwd=home,
    )
    if probe.stdout.strip() != "ok":
        host.remove()
        raise RuntimeError(f"the unprivileged venv cannot import the project: {probe.stderr}")
    return host


class DriverSandbox:
    """A LocalSandbox living in the unprivileged driver process, used like a sandbox.

    `run`/`arun`/`close`/`worker_pids`/`isolation` as on LocalSandbox; `pid` is the
    driver's pid (the host process whose secrets programs must not reach).
    """

    name = "local-unprivileged"

    def __init__(self, host: UnprivilegedHost, options: dict[str, Any], start_timeout=180.0):
        self.host = host
        self.timeout = float(options.get("timeout", 30.0))
        self.max_output_chars = int(options.get("max_output_chars", 16000))
        self.workers = int(options.get("workers") or 1)
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={host.uid}",
                f"--regid={host.uid}",
                "--clear-groups",
                "--",
                host.python,
                str(DRIVER),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=host.env,
            cwd=host.home,
        )
        self.pid = self._proc.pid  # setpriv execs the driver: same process
        # Safety net for a shared test machine: without root the sandbox sets no
        # RLIMIT_NPROC, and a fork bomb would otherwise be bounded by nothing.
        with contextlib.suppress(OSError):
            resource.prlimit(self.pid, resource.RLIMIT_NPROC, (2048, 2048))
        self._ids = itertools.count()
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="driver-reader", daemon=True)
        self._reader.start()
        self.info = self.call("start", wait=start_timeout, options=options)

    # -- plumbing

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                fut = self._pending.pop(msg.get("id"), None)
            if fut is not None:
                fut.set_result(msg)
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            fut.set_exception(RuntimeError(f"the driver exited: {self.log_tail()}"))

    def log_tail(self) -> str:
        with contextlib.suppress(Exception):
            self._log.seek(0)
            return self._log.read()[-3000:]
        return ""

    def call(self, op: str, *, wait: float = 60.0, **fields: Any) -> dict:
        if self._closed and op != "close":
            raise RuntimeError("the sandbox is closed")
        fut: Future = Future()
        with self._lock:
            ident = next(self._ids)
            self._pending[ident] = fut
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"id": ident, "op": op, **fields}) + "\n")
                self._proc.stdin.flush()
            except OSError as exc:
                self._pending.pop(ident, None)
                raise RuntimeError(f"the driver is gone: {self.log_tail()}") from exc
        msg = fut.result(wait)
        if "error" in msg:
            raise RuntimeError(f"driver: {msg['error']}")
        msg.pop("id", None)
        return msg

    # -- the sandbox API

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult:
        limit = self.timeout if timeout is None else timeout
        answer = self.call("run", wait=limit + 60, code=code, timeout=limit)
        known = {f.name for f in dataclasses.fields(ExecResult)}
        return ExecResult(**{k: v for k, v in answer.items() if k in known})

    async def arun(self, code: str, *, timeout: float | None = None) -> ExecResult:
        return await asyncio.to_thread(self.run, code, timeout=timeout)

    def start(self) -> None:
        pass

    def worker_pids(self) -> list[int]:
        return self.call("info")["worker_pids"]

    @property
    def isolation(self) -> str | None:
        return self.call("info")["isolation"]

    def kill_workers(self) -> list[int]:
        return self.call("kill_workers")["killed"]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.call("close", wait=60)
        with contextlib.suppress(Exception):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()

    def __enter__(self) -> DriverSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- all backends


def make_box(backend: str, host: UnprivilegedHost | None, **options: Any):
    """A sandbox of `backend` with backend-neutral options (workers, timeout, memory_mb)."""
    options.setdefault("workers", 1)
    options.setdefault("timeout", 10.0)
    if backend == "docker":
        from or_env.sandbox.docker import DockerSandbox

        memory = options.get("memory_mb", 1024)
        if memory is not None and "container_memory_mb" not in options:
            options["container_memory_mb"] = max(1536, memory + 512)
        box = DockerSandbox(**options)
    elif backend == "local":
        from or_env.sandbox.local import LocalSandbox

        box = LocalSandbox(**options)
    elif backend == "local-unprivileged":
        assert host is not None
        return DriverSandbox(host, options)
    else:
        raise ValueError(backend)
    box.start()
    return box


def secret_holder_pid(box: Any) -> int:
    """The host process whose environment holds a secret a program must not reach."""
    return box.pid if isinstance(box, DriverSandbox) else os.getpid()


def worker_pids(box: Any) -> list[int]:
    return box.worker_pids() if hasattr(box, "worker_pids") else []


def worker_identity(box: Any) -> tuple:
    """Changes exactly when a worker (process or container) was replaced."""
    if hasattr(box, "containers_started"):
        return (box.containers_started, tuple(box.container_names()))
    return tuple(sorted(worker_pids(box)))


def scratch_roots(box: Any) -> list[str]:
    """Host paths of the local workers' scratch roots (from their ready frames)."""
    if isinstance(box, DriverSandbox):
        return box.call("info")["scratch_roots"]
    pool = getattr(box, "_pool", None)
    if pool is None or not hasattr(pool, "workers") or hasattr(box, "containers_started"):
        return []
    roots = []
    for worker in pool.workers():
        info = getattr(worker, "ready_info", None) or {}
        if isinstance(info.get("scratch_root"), str):
            roots.append(info["scratch_root"])
    return roots


def kill_workers(box: Any) -> None:
    """Kill every worker from the host: the local worker processes, or the containers."""
    if isinstance(box, DriverSandbox):
        box.kill_workers()
    elif hasattr(box, "container_names"):
        from or_env.sandbox.containers import docker_cli_env

        for name in box.container_names():
            subprocess.run(
                ["docker", "kill", name],
                capture_output=True,
                timeout=30,
                env=docker_cli_env(),
                check=False,
            )
    else:
        for pid in box.worker_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def arch_syscalls() -> dict[str, int] | None:
    """Numbers of the key-management syscalls on this machine (ctypes has no wrapper)."""
    return {
        "x86_64": {"add_key": 248, "keyctl": 250},
        "aarch64": {"add_key": 217, "keyctl": 219},
    }.get(platform.machine())
