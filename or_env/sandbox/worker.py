#!/usr/bin/env python3
"""Fork server that runs untrusted Python programs, one forked child per request.

This file is self-contained (standard library only) so it can be copied alone into a
container image and run there as PID 1. A host-side client (`worker_client.WorkerProcess`)
starts it, waits for its ready frame and then sends requests.

Protocol, over the server's stdin/stdout: frames of a 4-byte big-endian length followed by
UTF-8 JSON.

    server, once:   {"ready": true, "version": 1, "preloaded": [...], "missing": [...],
                     "pid": int, "isolation": "uid" | "session", "uid": int | null,
                     "reap_all": bool, "scratch_root": str, "covered": [...],
                     "huge_pages_mib": int, "python": str, "warnings": [...]}
    {"op": "ping"}  -> {"ok": true}
    {"op": "run", "code": str, "timeout": float, "max_output": int, "memory_mb": int | null,
     "output_limit": int (optional)}
                    -> {"stdout", "stderr", "exit_code", "timed_out", "wall_s", "truncated",
                        "leftovers", "settle"?, "error"?, "dirty"?}
                    then, with "settle": true, once the program's processes are killed and
                    reaped and what it left is removed and checked (before the next request
                    is read): {"settled": true, "leftovers": int, "error"?, "dirty"?}
    end of stdin    -> clean up and exit 0.

`max_output` caps each stream in bytes (head and tail kept, with a marker in between);
`output_limit` is the total number of bytes after which the program is killed. "error" in a
run response means the sandbox itself failed; with "dirty" the server could not clean up
after the program and exits after answering, so the client must start a new one.

Isolation, chosen at start:
  uid      the server runs as root: every child drops to a dedicated unprivileged uid
           (allocated from --uid-base with a lock file, so two servers never share one).
           RLIMIT_NPROC then bounds the child's processes, the child cannot signal or
           trace the server, and every process left behind is killed with kill(-1)
           issued as that uid. If that uid cannot reach the Python installation (say, in
           a 0700 home directory), the server makes it reachable in a private mount
           namespace ("covered" in the ready frame) or warns that lazy imports may fail.
  session  the server is not root: children keep its uid; leftovers are found as the
           server's descendants (it is a child subreaper). Weaker: the program can signal
           the server and other processes of the same user, and RLIMIT_NPROC is not set.
  --reap-all (PID 1 of a container only) additionally kills every other process in the
           PID namespace after each execution and reaps all zombies.

Each program runs as `__main__` from `main.py` in an empty scratch directory (also its
HOME and TMPDIR), with a small fixed environment, stdin at end of file, line-buffered
stdout, numpy's global RNG reseeded, and RLIMIT_AS / FSIZE / CORE (and NPROC) set.
"""

from __future__ import annotations

import argparse
import atexit
import builtins
import contextlib
import ctypes
import errno
import fcntl
import io
import json
import logging
import os
import pwd
import random  # noqa: F401  (imported here so that it reseeds itself in every forked child)
import resource
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable

if __package__:
    from or_env.sandbox import confine
else:  # run as a script (the sandbox image copies both files side by side)
    import confine  # type: ignore[no-redef]

PROTOCOL_VERSION = 2  # 2: the settle frame after each run reply
DEFAULT_PRELOAD = ("numpy", "numpy.random", "pulp", "highspy", "scipy", "scipy.optimize")
DEFAULT_UID_BASE = 61000
MAX_FRAME = 64 << 20
MAIN_FILENAME = "main.py"
# Since Linux 5.3 the user keyrings belong to the user namespace; before, clearing them
# inside one would clear the real user's.
_KEYRINGS_PER_USERNS = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit()) >= (
    5,
    3,
)
# A uid's own user and user-session keyrings: what /proc/key-users counts between programs.
_OWN_KEYRINGS = 2
# Seconds allowed to remove the files and IPC objects a program left (no namespaces).
CLEAN_BUDGET_S = 2.0
# Exit status of a child whose sandbox setup failed before the program started.
SETUP_FAILED = 121

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_PARENT = 0x00008000
# Threads of numerical libraries: one per execution keeps per-core capacity predictable,
# and these must be in the environment before numpy is imported by the server.
_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}

log = logging.getLogger("or_env.worker")


class ProtocolError(Exception):
    """A frame could not be read or decoded: the stream cannot be trusted any more."""


# ----------------------------------------------------------------------------- framing


def read_frame(fd: int) -> dict | None:
    """Read one frame; None on a clean end of stream."""
    header = _read_exact(fd, 4)
    if header is None:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    body = _read_exact(fd, size) if size else b""
    if body is None:
        raise ProtocolError("stream ended inside a frame")
    try:
        obj = json.loads(body.decode("utf-8"))
    except ValueError as exc:
        raise ProtocolError(f"frame is not UTF-8 JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object")
    return obj


def write_frame(fd: int, obj: dict) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    data = memoryview(struct.pack(">I", len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            if buf:
                raise ProtocolError("stream ended inside a frame")
            return None
        buf += chunk
    return bytes(buf)


# ----------------------------------------------------------------------------- output capture


class Capture:
    """Keeps the first and last bytes of a stream, counting what falls in between."""

    def __init__(self, cap: int) -> None:
        self.tail_cap = cap // 2
        self.head_cap = cap - self.tail_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_cap:
            self.tail += data
            if len(self.tail) > 2 * self.tail_cap:
                del self.tail[: -self.tail_cap]

    def text(self) -> tuple[str, bool]:
        """The captured text and whether anything was cut out."""
        if len(self.tail) > self.tail_cap:
            del self.tail[: -self.tail_cap]
        if self.total <= len(self.head) + len(self.tail):
            return bytes(self.head + self.tail).decode("utf-8", "replace"), False
        head, tail = _trim_utf8_end(bytes(self.head)), _trim_utf8_start(bytes(self.tail))
        dropped = self.total - len(head) - len(tail)
        marker = f"\n... [{dropped} bytes truncated] ...\n"
        return head.decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace"), True


def _trim_utf8_end(data: bytes) -> bytes:
    # Drop a multi-byte character cut in half at the end of the head.
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 6 else 3 if byte >> 4 == 14 else 4
            return data if need <= back else data[:-back]
    return data


def _trim_utf8_start(data: bytes) -> bytes:
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1
    return data[skip:]


# ----------------------------------------------------------------------------- process helpers


_libc = confine.libc
prctl = confine.prctl
remove_tree = confine.remove_tree


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid`, atomically, from a helper that takes that uid.

    kill(-1) sent by an unprivileged process reaches exactly the processes of its own uid
    and is atomic with respect to fork, so a fork bomb cannot outrun it.
    """
    if uid <= 0:
        raise ValueError(f"refusing to kill all processes of uid {uid}")
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(f"the helper that kills the processes of uid {uid} failed ({status})")


def direct_children() -> list[int]:
    """Pids of this (single-threaded) process's children."""
    me = os.getpid()
    try:
        with open(f"/proc/self/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []  # kernels without CONFIG_PROC_CHILDREN: scan /proc for our children
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == me:
                found.append(int(name))
    return found


def _reap_all() -> bool:
    """Reap every exited child; True when no child is left at all."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False


def _vm_bytes() -> int:
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        return int(os.read(fd, 256).split()[0]) * os.sysconf("SC_PAGE_SIZE")
    finally:
        os.close(fd)


def _set_nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _read_available(fd: int, sink: Capture, budget: int) -> bool:
    """Read what a non-blocking fd holds now, up to about `budget` bytes; False at EOF."""
    got = 0
    while got < budget:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        sink.add(data)
        got += len(data)
    return True


def _searchable(st: os.stat_result, uid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == uid:  # the sandbox gid equals its uid
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def _first_blocked(path: str, uid: int) -> tuple[str, str] | None:
    """The first directory on the way to `path` that `uid` may not enter, and the next name."""
    cur = "/"
    for part in filter(None, path.split("/")):
        if not _searchable(os.stat(cur), uid):
            return cur, part
        cur = os.path.join(cur, part)
    return None


def expose_paths(libc: ctypes.CDLL, paths: list[str], uid: int) -> list[str]:
    """Make `paths` reachable by `uid` inside a private mount namespace of this process.

    A directory on the way that `uid` may not enter (typically a 0700 home directory that
    holds the Python installation) is covered with a small tmpfs into which only the
    needed entries are bind-mounted back. Nothing changes on the host; the rest of that
    directory becomes invisible to this process and its children. Returns the covered
    directories.
    """
    paths = sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})
    covered: list[str] = []
    for _ in range(16):
        blocked: dict[str, set[str]] = {}
        for path in paths:
            hit = _first_blocked(path, uid)
            if hit:
                blocked.setdefault(hit[0], set()).add(hit[1])
        if not blocked:
            return covered
        if not covered:
            confine.unshare(libc, confine.CLONE_NEWNS)
            # never propagate to the host
            confine.mount(libc, None, "/", None, confine.MS_REC | confine.MS_PRIVATE)
        for parent, names in sorted(blocked.items()):
            fds = {n: os.open(os.path.join(parent, n), os.O_PATH | os.O_CLOEXEC) for n in names}
            try:
                confine.mount(
                    libc,
                    "tmpfs",
                    parent,
                    "tmpfs",
                    confine.MS_NOSUID | confine.MS_NODEV,
                    "mode=0711,size=64k",
                )
                for name, fd in fds.items():
                    target = os.path.join(parent, name)
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        os.mkdir(target, 0o755)
                    else:
                        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
                    confine.mount(
                        libc, f"/proc/self/fd/{fd}", target, None, confine.MS_BIND | confine.MS_REC
                    )
            finally:
                for fd in fds.values():
                    os.close(fd)
            covered.append(parent)
    raise OSError(f"could not make {paths} reachable for uid {uid}")


def inaccessible_for(uid: int, paths: list[str], mode: int = os.R_OK) -> list[str]:
    """Which of `paths` a process of `uid` cannot access with `mode` (checked in a helper)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            bad = [p for p in paths if not os.access(p, mode)]
            os.write(w, "\n".join(bad).encode())
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return [p for p in out.split("\n") if p]


def _acquire_uid(base: int, count: int, offset: int, lock_dir: str) -> tuple[int, int]:
    """Lock and return a free sandbox uid in [base, base + count), starting at base + offset."""
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    st = os.stat(lock_dir)
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise SystemExit(
            f"lock directory {lock_dir} must be owned by root and not group/world writable; "
            "remove it or pass --lock-dir"
        )
    for i in range(count):
        uid = base + (offset + i) % count
        try:
            pwd.getpwuid(uid)
            continue  # a real account: never run sandboxed code as (or kill) it
        except KeyError:
            pass
        # Read-only: flock needs no more, and a file open for writing would keep its
        # mount from being made read-only in the worker's namespace.
        lock = os.path.join(lock_dir, f"uid-{uid}.lock")
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        os.set_inheritable(fd, False)
        return uid, fd
    raise SystemExit(f"no free sandbox uid in [{base}, {base + count}); raise --uid-count")


# ----------------------------------------------------------------------------- the server


class _Prefork:
    """A waiting execution process and the server's ends of its pipes."""

    def __init__(self, pid: int, go_w: int, out_r: int, err_r: int, st_r: int) -> None:
        self.pid, self.go_w, self.out_r, self.err_r, self.st_r = pid, go_w, out_r, err_r, st_r

    def close(self) -> None:
        for name in ("go_w", "out_r", "err_r", "st_r"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)


class Server:
    """Owns the sandbox identity, the scratch root and the request loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.libc = _libc()
        self.pid = os.getpid()
        self.warnings: list[str] = []
        self.uid: int | None = None
        self.uid_lock: int | None = None
        # Bound for closing inherited fds in children; ours are all far below it.
        self.fd_limit = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 16)
        self.scratch_root = self.scratch = ""
        self.covered: list[str] = []
        # Set by main() when the server runs in namespaces of its own (see confine.py):
        # "root" (as root: programs also drop to a sandbox uid) or "user" (a user
        # namespace: programs drop every capability instead); None: no namespaces.
        self.namespaces: str | None = getattr(args, "namespace_mode", None)
        self.cgroup: tuple[str, str] | None = getattr(args, "cgroup", None)
        self.hidden: list[str] = []
        self.baseline: dict[str, int] = {}
        self.baseline_memory: int | None = None
        self.keys_baseline: int | None = None
        self.forker_pid: int | None = None
        self.forker_sock: socket.socket | None = None
        # The next execution's process, made ahead (see "pre-forked processes" below).
        self.prefork: _Prefork | None = None
        self.prefork_pending: _Prefork | None = None  # asked for, pid not read yet
        self.prefork_error: str | None = None
        self.early_prefork = False  # made while the previous program runs (uid isolation)
        self.warm_up = False
        self.last_pid: int | None = None  # the last program's process, until reaped
        self.done_fd = -1  # in an execution process: where it says it is done
        self.keys_filter = confine.kernel_keys_filter()  # built once, installed per program
        self.tmp_keep: list[str] = []  # parts of the Python installation under /tmp
        self.env_extra = dict(kv.split("=", 1) for kv in args.env)
        # Take the protocol streams private, so that stray prints (from preloaded modules
        # or from a child before it redirects) can never corrupt the frames.
        self.proto_in = os.dup(0)
        self.proto_out = os.dup(1)
        self.devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(self.devnull, 0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        for fd in (self.proto_in, self.proto_out, self.devnull):
            os.set_inheritable(fd, False)

    def setup(self) -> None:
        args = self.args
        prctl(self.libc, _PR_SET_DUMPABLE, 0)  # children cannot ptrace or read our memory
        if args.reap_all:
            if self.pid != 1:
                raise SystemExit(
                    "--reap-all kills every other process in the PID namespace, so it needs "
                    "the server to be PID 1 of its own namespace (docker run without --init)"
                )
        else:
            prctl(self.libc, _PR_SET_CHILD_SUBREAPER, 1)  # orphans of a child come back to us
        if self.namespaces == "user":
            pass  # one uid only is mapped: programs give up capabilities instead
        elif os.geteuid() == 0 and not args.no_drop_privileges:
            if args.uid is not None:
                self.uid, self.uid_lock = args.uid, None
            else:
                self.uid, self.uid_lock = _acquire_uid(
                    args.uid_base, args.uid_count, args.uid_offset, args.lock_dir
                )
            kill_uid(self.uid)  # leftovers of an earlier server that held this uid
        elif not self.namespaces:
            self.warnings.append(
                "the server is not root (or --no-drop-privileges): programs run as the "
                "server's own uid, can signal it and other processes of that user, and "
                "RLIMIT_NPROC is not applied; isolation is weaker"
            )
        if self.namespaces:
            self._setup_namespace_view()
            return
        root = args.scratch_root or tempfile.gettempdir()
        self.scratch_root = tempfile.mkdtemp(prefix="or-env-sandbox-", dir=root)
        # One path, emptied and made afresh for every program: the environment that
        # names it can then be installed once, here, instead of in every child.
        self.scratch = os.path.join(self.scratch_root, "work")
        if self.uid is not None:
            os.chmod(self.scratch_root, 0o711)  # the sandbox uid may enter, never list
            self._give_uid_access()
        for w in self.warnings:
            log.warning("%s", w)

    def _setup_namespace_view(self) -> None:
        """The server's own view of the machine: private, read-only, answers hidden.

        Every execution then mounts fresh tmpfs over the writable places in a mount
        namespace of its own (confine.private_tmp), where its scratch directory lives.
        """
        lib = self.libc
        confine.mount(lib, None, "/", None, confine.MS_REC | confine.MS_PRIVATE)
        try:
            confine.mount_fresh_proc(lib)
        except OSError as exc:  # with the host's /proc, /proc/<pid>/root reaches everything
            raise SystemExit(
                f"could not mount a private /proc in the sandbox's namespaces ({exc}); "
                "use the docker sandbox, or namespaces=False to accept weak isolation"
            ) from exc
        keep = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
        keep += [os.path.dirname(os.path.realpath(sys.executable))]
        keep += [p for p in sys.path[1:] if p]
        self.tmp_keep = confine.kept_inside_private_dirs(keep)
        # /run holds the host's sockets (docker.sock, the user's D-Bus, the journal): a
        # read-only mount does not stop connect(), hiding does.
        hide = [*self.args.hide, "/run", "/var/run"]
        try:
            self.hidden = confine.hide_paths(lib, hide, keep)
        except OSError as exc:
            raise SystemExit(
                f"could not hide {hide} from programs ({exc}); use the docker sandbox, or "
                "namespaces=False to accept weak isolation"
            ) from exc
        if self.uid is not None:
            self._give_uid_access()
        refused = confine.make_mounts_readonly(lib)
        if refused:
            self.warnings.append(f"these mounts stay writable for programs: {refused}")
        self.scratch_root = ""  # nothing of ours on the host: each execution has its own tmpfs
        self.scratch = "/tmp/work"

    def _give_uid_access(self) -> None:
        """Let the sandbox uid reach the Python installation (for lazy imports) and scratch."""
        assert self.uid is not None
        exe = sys.executable
        needed = [p for p in sys.path[1:] if p and os.path.isdir(p)]
        needed += [exe, os.path.realpath(exe)]
        if self.scratch_root:
            needed.append(self.scratch_root)
        try:
            self.covered = expose_paths(self.libc, needed, self.uid)
        except OSError as exc:
            self.warnings.append(
                f"could not expose the Python installation to the sandbox uid: {exc}"
            )
        readable = needed[:-1] if self.scratch_root else needed
        bad = inaccessible_for(self.uid, readable)
        if self.scratch_root:  # the uid must enter it, never list it
            bad += inaccessible_for(self.uid, [self.scratch_root], os.X_OK)
        if bad:
            self.warnings.append(
                f"the sandbox uid {self.uid} cannot read {bad}: modules that are not preloaded "
                "may fail to import. Use a world-readable Python installation, or run the "
                "server with the capability to mount (CAP_SYS_ADMIN)"
            )

    def preload(self) -> tuple[list[str], list[str]]:
        loaded, missing = [], []
        for name in filter(None, (m.strip() for m in self.args.preload.split(","))):
            try:
                __import__(name)
                loaded.append(name)
            except Exception as exc:  # a broken optional module must not stop the server
                log.info("preload %s skipped: %s: %s", name, type(exc).__name__, exc)
                missing.append(name)
        return loaded, missing

    def serve(self) -> None:
        loaded, missing = self.preload()
        self.warm_up = "highspy" in loaded
        if self.warm_up:
            _warm_up_solvers()
        self.early_prefork = self.uid is not None
        # From here on the server's own environment is the one programs get: setting it per
        # child costs far more (every touched page is copied after fork).
        os.environ.clear()
        os.environ.update(self._program_env())
        tempfile.tempdir = None  # computed again from TMPDIR when a program asks
        import gc

        gc.freeze()  # keep the preloaded objects out of the children's collections (less COW)
        huge = _collapse_to_huge_pages(self.libc)
        self._start_forker()
        self.baseline = {p: confine.free_space(p) or 0 for p in self.args.wipe}
        self._request_prefork()
        if self.namespaces == "user":
            confine.join_new_session_keyring(self.libc)  # not the host session's keys
            self.keys_baseline = confine.key_count(0)
        self.baseline_memory = confine.resident_memory()
        write_frame(
            self.proto_out,
            {
                "ready": True,
                "version": PROTOCOL_VERSION,
                "preloaded": loaded,
                "missing": missing,
                "pid": self.pid,
                "isolation": "uid" if self.uid is not None else "session",
                "uid": self.uid,
                "reap_all": bool(self.args.reap_all),
                "covered": self.covered,
                "namespaces": self.namespaces,
                "hidden": self.hidden,
                "memory_limit": self._memory_limit_text(),
                "huge_pages_mib": huge >> 20,
                "scratch_root": self.scratch_root,
                "python": sys.version.split()[0],
                "warnings": self.warnings,
            },
        )
        while True:
            try:
                req = read_frame(self.proto_in)
            except ProtocolError as exc:
                log.error("protocol error, exiting: %s", exc)
                with contextlib.suppress(OSError):
                    write_frame(self.proto_out, {"error": f"protocol error: {exc}", "fatal": True})
                return
            if req is None:
                return
            op = req.get("op")
            if op == "run":
                resp = self.run(req)
            elif op == "ping":
                resp = {"ok": True}
            else:
                resp = {"error": f"unknown op {op!r}; expected 'run' or 'ping'"}
            write_frame(self.proto_out, resp)
            if resp.get("settle"):
                resp = self.settle()
                write_frame(self.proto_out, resp)
            if resp.get("dirty"):
                log.error("exiting: %s", resp.get("error"))
                return

    @property
    def _in_container(self) -> bool:
        """PID 1 of a container (not of namespaces of our own)."""
        return bool(self.args.reap_all) and not self.namespaces

    def _memory_limit_text(self) -> str:
        parts = []
        if self.cgroup:
            parts.append(f"memory cgroup {self.cgroup[0]} ({self.args.cgroup_memory_mb} MiB)")
        parts.append("RLIMIT_AS per program")
        return " + ".join(parts)

    def _program_env(self) -> dict[str, str]:
        return {
            "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": self.scratch,
            "TMPDIR": self.scratch,
            "TMP": self.scratch,
            "TEMP": self.scratch,
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "USER": "sandbox",
            "LOGNAME": "sandbox",
            **_THREAD_ENV,
            **self.env_extra,
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._drop_prefork()
        if self.forker_sock is not None:
            self.forker_sock.close()  # the forker sees the end of its socket and exits
            self.forker_sock = None
        if self.forker_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.forker_pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.forker_pid, 0)
            self.forker_pid = None
        with contextlib.suppress(Exception):
            self.cleanup(time.monotonic() + self.args.cleanup_timeout)
            if self.uid is not None:
                kill_uid(self.uid)
        if self.scratch_root:
            with contextlib.suppress(OSError):
                remove_tree(self.scratch_root)

    # ------------------------------------------------------------------ one execution

    def run(self, req: dict) -> dict:
        """Start one program and answer as soon as it is done; `settle()` cleans up after.

        The reply goes out before the kill, reap, cleanup and checks of `settle()`, which
        the caller (the request loop) runs before it reads the next request: the next
        program still never starts before every check of this one has passed.
        """
        try:
            code = req["code"]
            if not isinstance(code, str):
                raise TypeError("'code' must be a string")
            timeout = float(req.get("timeout", 30.0))
            max_output = int(req.get("max_output", 65536))
            memory_mb = req.get("memory_mb")
            memory_mb = None if memory_mb is None else int(memory_mb)
            output_limit = int(req.get("output_limit") or max(1 << 20, 64 * max_output))
            if not 0 < timeout <= 86400 or max_output < 0 or (memory_mb or 1) <= 0:
                raise ValueError("timeout, max_output or memory_mb out of range")
        except (KeyError, TypeError, ValueError) as exc:
            return {"error": f"bad run request: {type(exc).__name__}: {exc}"}

        if not self.namespaces:  # else the execution makes its own, on its own tmpfs
            try:
                self._make_scratch(self.scratch, code)
            except OSError as exc:
                return {"error": f"could not prepare the scratch directory: {exc}", "dirty": True}
        as_limit = None if memory_mb is None else _vm_bytes() + (memory_mb << 20)
        ooms = confine.oom_kills(self.cgroup[1]) if self.cgroup else 0
        payload = struct.pack("q", -1 if as_limit is None else as_limit)
        payload += code.encode("utf-8", "surrogatepass")
        child = None
        for _ in range(2):  # a second try when the waiting process died meanwhile
            try:
                child = self._take_prefork()
            except OSError as exc:
                return {"error": f"could not start the execution process: {exc}", "dirty": True}
            t0 = time.monotonic()
            try:
                _write_all(child.go_w, payload)
                break
            except BrokenPipeError:  # it died before reading: the reap loop collects it
                child.close()
                child = None
            finally:
                if child is not None:
                    os.close(child.go_w)
                    child.go_w = -1
        if child is None:
            return {"error": "the execution process died before its program", "dirty": True}
        if self.early_prefork:
            # The next execution's process starts its setup while this program runs: as
            # root, which the program's uid can neither signal nor trace (see _Prefork).
            self._request_prefork()
        try:
            resp = self._supervise(
                child.pid, t0, timeout, max_output, output_limit, child.out_r, child.err_r,
                child.st_r,
            )  # fmt: skip
        finally:
            child.close()
        if self.cgroup and confine.oom_kills(self.cgroup[1]) > ooms:
            resp["stderr"] += (
                f"\n[killed: the program went over the sandbox's memory limit "
                f"({self.args.cgroup_memory_mb} MiB, kernel buffers and files in /tmp included)]"
            )
        if not resp.get("dirty"):
            resp["settle"] = True  # a settle frame follows, once settle() is done
        return resp

    def settle(self) -> dict:
        """After the reply: kill, reap, clean and check what the last program left.

        Returns the settle frame: {"settled": true, "leftovers": n}, plus "error" and
        "dirty" when something could not be undone (the server then exits).
        """
        self._collect_prefork()  # its pid must be known before anything is killed
        clean, seen = self.cleanup(time.monotonic() + self.args.cleanup_timeout)
        if not clean:
            return {
                "settled": True,
                "leftovers": seen,
                "dirty": True,
                "error": "could not kill and reap every process the program started within "
                f"{self.args.cleanup_timeout} s; this worker is exiting and must be replaced",
            }
        if not self.early_prefork:
            # Same uid as the programs: the next execution's process is made only now, when
            # no process of the last program is left to signal or trace it.
            self._request_prefork()
        frame: dict = {"settled": True, "leftovers": seen}
        left_keys = self._settle_keys()
        if left_keys:
            frame["error"] = f"{left_keys}; this worker is exiting and must be replaced"
            frame["dirty"] = True
        elif not self.namespaces:
            # Bounded: past it the worker is replaced (its tmpfs goes with its container)
            # rather than making the caller wait on, say, 250,000 files being unlinked.
            budget = min(self.args.cleanup_timeout, CLEAN_BUDGET_S)
            left = self._clean_state(self.scratch, time.monotonic() + budget)
            if left:
                frame["error"] = (
                    f"the program left state that could not be removed ({'; '.join(left)}); "
                    "this worker is exiting and must be replaced"
                )
                frame["dirty"] = True
        return frame

    def _settle_keys(self) -> str | None:
        """Remove the kernel keys the program added, and wait until they are gone for good.

        Keys outlive processes, and even unlinked ones stay listed in /proc/keys until the
        kernel collects them: the next program must not find them there. Only where the
        program has a uid of its own (root) or keyrings of its own (a user namespace).
        """
        if self._in_container:
            return None  # Docker's seccomp profile refuses the key syscalls
        if self.uid is not None:
            uid, baseline = self.uid, _OWN_KEYRINGS
        elif self.namespaces == "user" and _KEYRINGS_PER_USERNS:
            uid, baseline = 0, self.keys_baseline
        else:
            return None
        count = confine.key_count(uid)
        if count is None or baseline is None or count <= baseline:
            return None
        if self.uid is not None:
            _run_as(uid, lambda: confine.clear_keyrings(confine.libc()))
        else:
            confine.clear_keyrings(self.libc, session=True)
        limit = time.monotonic() + 1.0
        while time.monotonic() < limit:
            count = confine.key_count(uid)
            if count is None or count <= baseline:
                return None
            time.sleep(0.002)
        if self.uid is None:  # the host user's own keys count here too: never blame them
            log.warning("%d kernel keys are still listed after cleanup", count - baseline)
            return None
        return f"{count - baseline} kernel keys the program made are still listed"

    def _make_scratch(self, scratch: str, code: str) -> None:
        if os.path.lexists(scratch):  # only after an earlier failure to remove it
            remove_tree(scratch)
        os.mkdir(scratch, 0o700)
        _write_main(scratch, code, self.uid)
        if self.uid is not None:
            os.chown(scratch, self.uid, self.uid)

    def _clean_state(self, scratch: str, deadline: float) -> list[str]:
        """Remove what the program left (files, IPC objects), then check; [] when clean.

        Run as the sandbox uid when there is one: it owns whatever the program made, even
        directories it made unreadable, and the server needs no capability to remove them.
        Only the effective uid is switched, in this process: every process of that uid was
        killed and reaped before, and with the real and saved uids still root none could
        signal or trace the server anyway; a helper process would cost a fork of the
        preloaded server (milliseconds) per execution.
        """

        # IPC objects are the program's alone only in a container's IPC namespace or under
        # a dedicated uid: never remove (or count) those of the user running the host.
        own_ipc = bool(self.args.reap_all)

        def clean() -> None:
            confine.wipe_contents(scratch, deadline=deadline)
            for path in self.args.wipe:
                confine.wipe_contents(path, keep=self.scratch_root, deadline=deadline)
            if own_ipc or self.uid is not None:
                confine.remove_ipc_objects()

        try:
            if self.uid is not None:
                _as_effective_uid(self.uid, clean)
            else:
                clean()
            os.rmdir(scratch)
        except OSError as exc:
            return [f"cleanup failed: {exc}"]
        left = confine.leftover_state(
            self.args.wipe, self.baseline, keep=self.scratch_root, ipc=own_ipc
        )
        if self.args.reap_all and self.baseline_memory is not None:
            # PID 1 of a container: its cgroup is ours alone, so anything still resident
            # beyond the server's own memory was left by the program.
            now = confine.resident_memory()
            if now is not None and now > self.baseline_memory + (64 << 20):
                left.append(f"{(now - self.baseline_memory) >> 20} MiB of memory still in use")
        return left

    def _supervise(
        self,
        pid: int,
        t0: float,
        timeout: float,
        max_output: int,
        output_limit: int,
        out_r: int,
        err_r: int,
        st_r: int,
    ) -> dict:
        caps = {out_r: Capture(max_output), err_r: Capture(max_output)}
        poller = select.poll()
        for fd in caps:
            _set_nonblocking(fd)
            poller.register(fd, select.POLLIN)
        _set_nonblocking(st_r)
        poller.register(st_r, select.POLLIN)
        try:
            pidfd: int | None = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        except (AttributeError, OSError):
            pidfd = None  # old kernel: poll the child with waitpid instead
        deadline = t0 + timeout
        open_fds = set(caps)
        timed_out = flooded = exited = False
        status_bytes = bytearray()  # b"R" once set up, then b"D" + the exit status
        done: int | None = None
        status = None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                wait_ms = remaining * 1000 if pidfd is not None else min(remaining * 1000, 5)
                for fd, _ in poller.poll(max(1, int(wait_ms + 0.999))):
                    if fd == pidfd:
                        exited = True
                    elif fd == st_r:
                        done = self._read_status(st_r, status_bytes, poller)
                    elif not _read_available(fd, caps[fd], 1 << 18):
                        poller.unregister(fd)
                        open_fds.discard(fd)
                if pidfd is None and not exited:
                    wpid, status = os.waitpid(pid, os.WNOHANG)
                    exited = wpid != 0
                if sum(c.total for c in caps.values()) > output_limit:
                    flooded = True
                    break
                if exited or done is not None:
                    break
            # Kill the group before reaping, so its id cannot be reused by a stranger.
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            if status is None and (exited or done is None):  # ended, timed out or flooded
                status = self._wait_child(pid, pidfd)
            # Else the program said it is done: its process is left to die and be reaped
            # in settle(), after the reply (tearing down its memory takes milliseconds).
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if status is not None:
            self.last_pid = None  # reaped: its pid may already be someone else's
        end = time.monotonic()
        for fd in open_fds:  # what was written before the end; never wait for more
            _read_available(fd, caps[fd], max(0, output_limit - caps[fd].total))
        with contextlib.suppress(OSError):
            self._read_status(st_r, status_bytes, None)

        stdout, cut_out = caps[out_r].text()
        stderr, cut_err = caps[err_r].text()
        setup_ok = status_bytes[:1] == b"R"
        if flooded:
            stderr += (
                f"\n[output limit exceeded: the program was killed after writing more than "
                f"{output_limit} bytes]"
            )
        if status is not None:
            exit_code: int | None = os.waitstatus_to_exitcode(status)
        else:
            exit_code = done
        resp: dict = {
            "stdout": stdout,
            "stderr": stderr,
            "exit_code": exit_code,
            "timed_out": timed_out,
            "wall_s": round(end - t0, 6),
            "truncated": cut_out or cut_err or flooded,
            "leftovers": 0,  # counted after the reply: see the settle frame
        }
        if not setup_ok and not timed_out:
            resp["error"] = f"sandbox setup failed in the execution process: {stderr.strip()}"
        if exit_code is None and not timed_out and not flooded:
            resp["error"] = (
                "could not reap the program's process within "
                f"{self.args.cleanup_timeout} s; this worker is exiting and must be replaced"
            )
            resp["dirty"] = True
        return resp

    @staticmethod
    def _read_status(fd: int, buf: bytearray, poller: select.poll | None) -> int | None:
        """Read the execution's status pipe; the exit status once it says it is done.

        The program could write here too (the pipe is open in its process), but all it can
        claim is an early end of its own execution: everything is killed and checked
        after it anyway.
        """
        ended = False
        while len(buf) < 3:
            try:
                data = os.read(fd, 3 - len(buf))
            except BlockingIOError:
                break
            if not data:
                ended = True
                break
            buf += data
        if len(buf) >= 3 or not b"RD".startswith(bytes(buf[:2])):
            ended = True  # all there is to read, or not ours: rely on the exit
        if ended and poller is not None:
            with contextlib.suppress(KeyError):
                poller.unregister(fd)
        if len(buf) == 3 and buf[:2] == b"RD":
            return buf[2]
        return None

    def _wait_child(self, pid: int, pidfd: int | None) -> int | None:
        limit = time.monotonic() + self.args.cleanup_timeout
        while time.monotonic() < limit:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                return status
            if pidfd is not None:
                select.select([pidfd], [], [], 0.05)
            else:
                time.sleep(0.002)
        return None

    def cleanup(self, deadline: float) -> tuple[bool, int]:
        """Kill and reap every process left by the last execution; (clean, how many seen)."""
        seen = 0
        self._reap_program(deadline)
        if self.args.reap_all:
            self._kill_the_namespace()
        while not self._reap_all():
            if time.monotonic() > deadline:
                return False, seen
            kids = [k for k in direct_children() if k not in self._spared()]
            seen = max(seen, len(kids))
            if self.uid is not None:
                kill_uid(self.uid)
            for kid in kids:
                with contextlib.suppress(OSError):
                    os.killpg(os.getpgid(kid), signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.kill(kid, signal.SIGKILL)
            if self.args.reap_all:
                self._kill_the_namespace()
            # Killed processes take a moment to exit, and their orphans are reparented to
            # us only then: let them go before killing again.
            settle = time.monotonic() + 0.05
            while time.monotonic() < settle and not self._reap_all():
                time.sleep(0.001)
        return True, seen

    def _kill_the_namespace(self) -> None:
        """PID 1: kill every other process of the namespace but the forker."""
        if self.forker_pid is None:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)
            return
        spared = self._spared()
        others = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        others = [pid for pid in others if pid not in spared]
        if others and self.uid is not None:  # every program process has this uid:
            kill_uid(self.uid)  # atomic, so a fork bomb cannot outrun it
        for pid in others:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def _reap_all(self) -> bool:
        """Reap every exited child; True when no child but the forker is left."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                break
            if pid == self.forker_pid:
                self.forker_pid = None  # it died: the next execution cannot start
            if self.prefork is not None and pid == self.prefork.pid:
                self.prefork.close()  # it died waiting (killed, OOM): made again on demand
                self.prefork = None
        if self.forker_pid is None:
            return False
        spared = self._spared()
        return not [k for k in direct_children() if k not in spared]

    def _reap_program(self, deadline: float) -> None:
        """Wait for the last program's own process, killed already, to be gone.

        Its exit unmaps its copy of the server, which takes a moment: until it is reaped
        it would count as a process left behind (and cost a kill-everything helper).
        """
        pid, self.last_pid = self.last_pid, None
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return
        try:
            select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(pidfd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    # ------------------------------------------------------------------ the forker
    #
    # Programs are not forked from the server: its heap holds earlier requests' code and
    # the output it captured, which a forked program could read in its own copy of that
    # memory (say, a sibling rollout's printed objective). They are forked by the forker,
    # a process forked from the server before the first request, which only ever receives
    # file descriptors and two numbers; with CLONE_PARENT each program is still the
    # server's child, so the server waits for, kills and reaps it as before.

    def _start_forker(self) -> None:
        server_end, forker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                server_end.close()
                for fd in (self.proto_in, self.proto_out):
                    os.close(fd)
                prctl(self.libc, _PR_SET_PDEATHSIG, signal.SIGKILL)
                # Undo the server's signal choices for every program at once (they inherit
                # them; in each program this cost about 36 page faults): SIGINT as in any
                # Python script.
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                self._forker_loop(forker_end)
            finally:
                os._exit(0)
        forker_end.close()
        self.forker_pid, self.forker_sock = pid, server_end

    # ------------------------------------------------------------------ pre-forked processes
    #
    # The forker makes each execution's process ahead of time: it goes through the setup
    # that does not depend on the program (session, descriptors, rlimits, private tmpfs
    # and IPC namespace, a warm-up solve that pages the solvers in) and then waits on its
    # "go" pipe. A request then only sends the program (and its address-space limit), and
    # the setup that depends on it (the uid switch and what follows it) takes microseconds.
    #
    # Why a waiting process cannot be reached by the program that runs before it (the one
    # it is made during, or right after):
    #   uid isolation (root: Docker, local as root): it is made while the previous program
    #     runs, but it stays root (the container's root in Docker) and non-dumpable until
    #     its own program arrives. The program runs as the sandbox uid without any
    #     capability, so kill(2) on it fails (EPERM: no uid of the two processes match),
    #     ptrace and /proc/<pid>/{mem,fd,root,environ} fail (ptrace access check), and
    #     setns needs a capability. It writes nothing before its program arrives, and that
    #     happens only once settle() has killed the previous program, removed what it left
    #     and checked it all. Its private /tmp (with namespaces) is in a mount namespace of
    #     its own, out of the previous program's reach.
    #   same uid (a user namespace, or no isolation): it is made only in settle(), after
    #     every process of the previous program has been killed and reaped, so no process
    #     that could signal or trace it exists while it waits.
    # Either way what the previous program left on shared places (files, IPC objects) has
    # been removed and checked before the next program is sent, as without pre-forking.

    def _request_prefork(self) -> None:
        """Ask the forker for the next execution's process; its pid is collected later."""
        if self.prefork or self.prefork_pending or self.forker_sock is None:
            return
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(4)]
        (go_r, go_w), (out_r, out_w), (err_r, err_w), (st_r, st_w) = pipes
        try:
            socket.send_fds(self.forker_sock, [b"P"], [go_r, out_w, err_w, st_w])
        except OSError as exc:
            log.warning("could not reach the forker: %s", exc)
            for fd in (go_w, out_r, err_r, st_r):
                os.close(fd)
            return
        finally:
            for fd in (go_r, out_w, err_w, st_w):
                os.close(fd)
        self.prefork_pending = _Prefork(0, go_w, out_r, err_r, st_r)

    def _collect_prefork(self) -> None:
        """Receive the pid of the process asked for, if any (blocks until it is made)."""
        pending, self.prefork_pending = self.prefork_pending, None
        if pending is None or self.forker_sock is None:
            if pending is not None:
                pending.close()
            return
        try:
            reply = self.forker_sock.recv(16)
        except OSError:
            reply = b""
        if len(reply) != 8:
            pending.close()
            self.prefork_error = "the forker did not answer"
            return
        (pid,) = struct.unpack("q", reply)
        if pid < 0:
            pending.close()
            self.prefork_error = f"clone: {os.strerror(-pid)}"
            return
        pending.pid = pid
        self.prefork = pending

    def _take_prefork(self) -> _Prefork:
        """The waiting execution process (made now if there is none); raise OSError if none."""
        self._collect_prefork()
        if self.prefork is None:
            self._request_prefork()
            self._collect_prefork()
        if self.prefork is None:
            raise OSError(self.prefork_error or "the forker is gone")
        child, self.prefork = self.prefork, None
        self.last_pid = child.pid
        return child

    def _drop_prefork(self) -> None:
        """Kill the waiting process (it is reaped with everything else)."""
        self._collect_prefork()
        if self.prefork is not None:
            with contextlib.suppress(OSError):
                os.kill(self.prefork.pid, signal.SIGKILL)
            self.prefork.close()
            self.prefork = None

    def _spared(self) -> set[int]:
        """Our children that are not programs: the forker and the waiting process."""
        spared = {self.pid}
        if self.forker_pid is not None:
            spared.add(self.forker_pid)
        if self.prefork is not None:
            spared.add(self.prefork.pid)
        return spared

    def _forker_loop(self, sock: socket.socket) -> None:
        clone = _clone_parent_function(self.libc)
        while True:
            msg, fds, _, _ = socket.recv_fds(sock, 64, 4)
            if not msg:
                return
            if len(fds) != 4:
                for fd in fds:
                    os.close(fd)
                sock.send(struct.pack("q", -errno.EBADF))
                continue
            pid = clone()
            if pid == 0:
                self._prefork_child(*fds)  # never returns
            for fd in fds:
                os.close(fd)
            sock.send(struct.pack("q", pid))

    # ------------------------------------------------------------------ the child side

    def _prefork_child(self, go_r: int, out_w: int, err_w: int, st_w: int) -> None:
        # Everything here runs after fork, where each first write to a page copies it:
        # raw os calls, no text I/O, nothing that can be done once in the server.
        try:
            self._prefork_setup(go_r, out_w, err_w, st_w)
            if self.warm_up and self.args.warm_children:
                _warm_up_solvers(in_child=True)
            self._prefork_ready()
            payload = _read_all(4)
            os.close(4)
            (as_limit,) = struct.unpack("q", payload[:8])
            code = payload[8:].decode("utf-8", "surrogatepass")
            self._dispatch_setup(code, None if as_limit < 0 else as_limit)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.dup2(6, 2)  # still /dev/null before the program arrived
            with contextlib.suppress(BaseException):
                os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
            os._exit(SETUP_FAILED)
        status = _run_program(code)
        with contextlib.suppress(BaseException):
            # Done: the server answers now instead of after this process's exit, which
            # unmaps a copy of the preloaded server (milliseconds).
            os.write(self.done_fd, b"D" + bytes([status & 0xFF]))
        os._exit(status)

    def _prefork_setup(self, go_r: int, out_w: int, err_w: int, st_w: int) -> None:
        """The part of an execution's setup that does not depend on its program."""
        os.setsid()
        prctl(self.libc, _PR_SET_PDEATHSIG, signal.SIGKILL)  # the server's end is ours
        if os.getppid() != self.pid:
            os._exit(SETUP_FAILED)  # the server died while we were starting
        if not self.early_prefork:
            # Inherited from the server: while non-dumpable our /proc/self files belong to
            # root. With uid isolation it stays so until the program's uid is taken.
            prctl(self.libc, _PR_SET_DUMPABLE, 1)
        # The received descriptors may have any numbers, 3 to 5 included: lift them first.
        lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (go_r, out_w, err_w, st_w)]
        go_r, out_w, err_w, st_w = lifted
        for fd in (0, 1, 2):  # the warm-up prints nothing into the program's output
            os.dup2(self.devnull, fd)
        os.dup2(st_w, 3)
        os.dup2(go_r, 4)
        os.dup2(out_w, 5)  # fd 1 at dispatch
        os.dup2(err_w, 6)  # fd 2 at dispatch
        os.closerange(7, self.fd_limit)  # protocol streams, uid lock, everything else
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(fd, b"1000")  # the OOM killer takes the program, not the server
        os.close(fd)
        fsize = self.args.fsize_mb << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.namespaces:
            confine.private_tmp(
                self.libc, self.args.tmpfs_mb, self.args.tmpfs_inodes, self.tmp_keep
            )
            os.mkdir(self.scratch, 0o700)
            if self.uid is not None:
                os.chown(self.scratch, self.uid, self.uid)
        if self.uid is not None:
            # Joined as root, the new session keyring belongs to root: it is not counted
            # among the uid's keys, so only keys the program itself adds need settling.
            confine.join_new_session_keyring(self.libc)

    def _prefork_ready(self) -> None:
        """Last steps before waiting: after the warm-up, which must not see them."""
        # `random` reseeds itself after fork; numpy's legacy global RNG does not: reseed it
        # from urandom here, in this process that serves exactly one program. An integer
        # seed is a short C loop; seed() builds a SeedSequence in Python, which in a
        # fresh fork costs twice the page faults (about 80 more, 0.4 ms of CPU).
        np_random = sys.modules.get("numpy.random")
        if np_random is not None:
            np_random.seed(int.from_bytes(os.urandom(4), "little"))

    def _dispatch_setup(self, code: str, as_limit: int | None) -> None:
        """The rest, once the program is known: its file, limits, uid, then no way back."""
        scratch = self.scratch
        os.dup2(5, 1)
        os.dup2(6, 2)
        os.close(5)
        os.close(6)
        if as_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
        if self.namespaces:
            _write_main(scratch, code, self.uid)
        # Below the server in CPU priority, so that cleaning up after a fork bomb is not
        # starved by the bomb itself (not before: the setup above is on the way).
        os.nice(10)
        if self.uid is not None:
            if not self._in_container:  # there the pid cgroup bounds processes, and the
                # uid is shared with the host's own uid 1000, whose tasks NPROC would count
                resource.setrlimit(resource.RLIMIT_NPROC, (self.args.nproc, self.args.nproc))
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            os.setresuid(self.uid, self.uid, self.uid)
            confine.clear_keyrings(self.libc)
        elif self.namespaces == "user":
            if confine.userns_rlimits_are_per_namespace():
                resource.setrlimit(resource.RLIMIT_NPROC, (self.args.nproc, self.args.nproc))
            confine.drop_capabilities(self.libc)
            # The server's own (fresh) session keyring; user keyrings only where they
            # belong to the namespace, never the real user's.
            if _KEYRINGS_PER_USERNS:
                confine.clear_keyrings(self.libc, session=True)
        prctl(self.libc, _PR_SET_NO_NEW_PRIVS, 1)  # no setuid binaries back to root
        confine.forbid_kernel_keys(self.libc, self.keys_filter)
        prctl(self.libc, _PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
        if os.getppid() != self.pid:
            os._exit(SETUP_FAILED)  # the server died while we were starting
        prctl(self.libc, _PR_SET_DUMPABLE, 1)  # setuid cleared it; keep /proc/self usable
        os.chdir(scratch)
        sys.path[0] = scratch
        sys.argv = [MAIN_FILENAME]
        for handler in list(log.handlers):
            log.removeHandler(handler)
        os.write(3, b"R")
        # Kept for the "done" message, out of the way of the program's own descriptors.
        self.done_fd = fcntl.fcntl(3, fcntl.F_DUPFD_CLOEXEC, max(10, self.fd_limit - 1))
        os.close(3)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _clone_parent_function(lib: ctypes.CDLL) -> Callable[[], int]:
    """fork(), except that the child's parent is the caller's parent (CLONE_PARENT).

    Done as os.fork() does it: the interpreter's own before/after-fork hooks around the
    raw clone(2). Returns the child's pid (0 in the child), or -errno.
    """
    nr = {"x86_64": 56, "aarch64": 220}[os.uname().machine]
    api = ctypes.pythonapi
    flags = ctypes.c_ulong(_CLONE_PARENT | signal.SIGCHLD)
    zero = ctypes.c_ulong(0)

    def clone() -> int:
        api.PyOS_BeforeFork()
        pid = lib.syscall(ctypes.c_long(nr), flags, zero, zero, zero, zero)
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return 0
        err = ctypes.get_errno()
        api.PyOS_AfterFork_Parent()
        return pid if pid > 0 else -err

    return clone


def _write_main(scratch: str, code: str, uid: int | None) -> None:
    fd = os.open(
        os.path.join(scratch, MAIN_FILENAME),
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o644,
    )
    try:
        # A lone surrogate is valid in a Python str and must not stop the program here.
        os.write(fd, code.encode("utf-8", "surrogatepass"))
        if uid is not None:
            os.fchown(fd, uid, uid)
    finally:
        os.close(fd)


def _as_effective_uid(uid: int, fn: Callable[[], None]) -> None:
    """Run `fn` in this process with effective uid and gid `uid` (real and saved stay)."""
    os.setresgid(-1, uid, -1)
    try:
        os.setresuid(-1, uid, -1)
        try:
            fn()
        finally:
            os.setresuid(-1, 0, -1)
    finally:
        os.setresgid(-1, 0, -1)


def _run_as(uid: int, fn: Callable[[], None]) -> None:
    """Run `fn` in a helper process that has taken `uid`; raise OSError if it failed."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            fn()
            os._exit(0)
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(w, f"{type(exc).__name__}: {exc}".encode()[:4000])
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        why = f.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(why or f"helper as uid {uid} failed ({status})")


def _warm_up_solvers(in_child: bool = False) -> None:
    """Solve a tiny LP with each preloaded solver, output to /dev/null.

    In the server, before anything is forked: lazy initialisation (and HiGHS's banner,
    "Running HiGHS ... Copyright", printed at a process's first solve) happens once, so
    no program prints the banner (tokens the policy pays for) or pays for it. In a
    pre-forked execution process (`in_child`), while it waits for its program: its first
    solve copies the pages it writes and maps the solver's code, milliseconds a program
    would otherwise pay on its critical path. Results are unchanged.
    """
    if "highspy" not in sys.modules:
        return
    try:
        import highspy

        saved = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            if not in_child:
                _one_thread_highs_scheduler(highspy)  # prints the banner, to /dev/null
            pulp = sys.modules.get("pulp")
            if pulp is not None:
                m = pulp.LpProblem("warm_up", pulp.LpMaximize)
                x = pulp.LpVariable("x", lowBound=0)
                y = pulp.LpVariable("y", lowBound=0)
                m += 3 * x + 2 * y
                m += x + y <= 4
                m += x + 3 * y <= 6
                # One thread, as the scheduler is left: in a child, should the server have
                # failed to make it, no worker thread a forking program would lose.
                m.solve(pulp.HiGHS(msg=0, threads=1))
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
    except Exception as exc:  # the warm-up is a nicety; a failure must not stop the server
        if not in_child:
            log.info("solver warm-up skipped: %s: %s", type(exc).__name__, exc)


def _one_thread_highs_scheduler(highspy: types.ModuleType) -> None:
    """Leave HiGHS's global task scheduler made for one thread: no worker thread at all.

    HiGHS makes its scheduler at a process's first solve, sized by its `threads` option,
    whose default (0) derives the size from the CPUs the process may run on, not from
    the sandbox's CPU share: one worker thread beside the main one on 2 vCPUs, several
    on a large node. Made in each program, those workers spin while the program runs
    (`HighsTaskExecutor::run_worker` is among the top symbols of a system profile of a
    loop of small LPs). A scheduler of one thread has no worker to spin, and no thread a
    fork could lose (a forked copy of a scheduler with workers hangs in its first
    parallel solve). A program that sets `threads` to more than 1 gets HiGHS's own error,
    which names the way out (`highspy.Highs.resetGlobalScheduler(True)` first).
    """
    highspy.Highs.resetGlobalScheduler(True)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.addVar(0.0, 1.0)
    h.changeColCost(0, 1.0)
    h.run()


_MADV_COLLAPSE = 25  # Linux 6.1
_HUGE = 2 << 20


def _collapse_to_huge_pages(lib: ctypes.CDLL) -> int:
    """Back the preloaded heap with 2 MiB pages; returns the bytes now on huge pages.

    Every execution forks a copy of the forker and then tears it down. Both cost in
    proportion to the page-table entries of the private memory the imports wrote (tens of
    MiB): 4 KiB pages take 512 entries where one huge page takes one, and a program's
    first write to one still copies only 4 KiB (the kernel splits the mapping in the
    writer's copy only). Each process's own writes split its copy in the same way, so
    the forker, made right after this, keeps on huge pages what its loop never writes
    (about a third of the 24 MiB collapsed on the 2-vCPU test machine; see
    tests/test_sandbox_confine.py). `benchmarks/fork_floor.py --no-huge-pages` measures
    a fork from a process that writes little, without it. MADV_COLLAPSE is synchronous
    and does not depend on the system's THP setting; kernels before 6.1 or without THP
    refuse it, which only costs that speed-up. Ranges it refuses (unpopulated arenas,
    thread stacks on kernels that mark them) are skipped.
    """
    madvise = lib.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    try:
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
    except OSError:
        return 0
    for line in maps:
        fields = line.split()
        if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue  # private anonymous memory and the brk heap only
        start, end = (int(x, 16) for x in fields[0].split("-"))
        start = (start + _HUGE - 1) & ~(_HUGE - 1)
        end &= ~(_HUGE - 1)
        if end > start:
            madvise(start, end - start, _MADV_COLLAPSE)
    done = _anon_huge_bytes()
    log.info("%d MiB of the preloaded heap is on huge pages", done >> 20)
    return done


def _anon_huge_bytes() -> int:
    """AnonHugePages of this process (what a partial collapse achieved counts too)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _run_program(code: str) -> int:
    """Run `code` as the __main__ script of this child process; return the exit status."""
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"
    )
    # Line-buffered (unlike a plain pipe) so what was printed before a timeout is kept.
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", line_buffering=True
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    atexit._clear()  # handlers registered in the server are not the program's
    main = types.ModuleType("__main__")
    main.__dict__.update({"__file__": MAIN_FILENAME, "__builtins__": builtins, "__spec__": None})
    sys.modules["__main__"] = main
    status = 0
    try:
        exec(compile(code, MAIN_FILENAME, "exec"), main.__dict__)
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code is _run_program.__code__:
            tb = tb.tb_next  # hide this wrapper's frame: the traceback starts in main.py
        with contextlib.suppress(BaseException):
            # The default hook prints exc.__traceback__, not its argument.
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        status = 1
    for step in (threading._shutdown, atexit._run_exitfuncs):  # type: ignore[attr-defined]
        try:
            step()
        except SystemExit as exc:
            status = _exit_status(exc)
        except BaseException:
            pass
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):
            stream.flush()
    return status


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    with contextlib.suppress(BaseException):
        print(exc.code, file=sys.stderr)
    return 1


# ----------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preload",
        default=",".join(DEFAULT_PRELOAD),
        help="comma-separated modules to import before forking; missing ones are skipped",
    )
    p.add_argument(
        "--reap-all",
        action="store_true",
        help="PID 1 of a container only: after each execution kill every other process",
    )
    p.add_argument(
        "--uid-base",
        type=int,
        default=DEFAULT_UID_BASE,
        help="first uid of the range the sandbox uid is taken from (root only)",
    )
    p.add_argument("--uid-count", type=int, default=1000, help="size of that range")
    p.add_argument(
        "--uid-offset",
        type=int,
        default=0,
        help="where in the range to start looking (e.g. the worker index)",
    )
    p.add_argument(
        "--uid",
        type=int,
        default=None,
        help="use exactly this sandbox uid, without a lock (the caller keeps it unique)",
    )
    p.add_argument(
        "--no-drop-privileges",
        action="store_true",
        help="run programs as the server's uid even when it is root",
    )
    p.add_argument(
        "--lock-dir",
        default=None,
        help="where sandbox uids are locked (default /run/or-env-sandbox or the temp dir)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=256,
        help="RLIMIT_NPROC for programs (processes + threads; uid isolation only)",
    )
    p.add_argument("--fsize-mb", type=int, default=64, help="RLIMIT_FSIZE for programs, in MiB")
    p.add_argument(
        "--scratch-root",
        default=None,
        help="where per-execution scratch directories are made (default: temp dir)",
    )
    p.add_argument(
        "--wipe",
        action="append",
        default=[],
        metavar="DIR",
        help="empty DIR after each execution (e.g. /tmp in a container); repeatable",
    )
    p.add_argument(
        "--namespaces",
        action="store_true",
        help="run in new user (unless root), mount, PID, IPC and network namespaces, each "
        "execution with private tmpfs and IPC; falls back, with a warning, where the kernel "
        "refuses",
    )
    p.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="DIR",
        help="with --namespaces: cover DIR with an empty read-only tmpfs (ground truths, "
        "the project tree); the Python installation inside it stays visible; repeatable",
    )
    p.add_argument(
        "--cgroup-memory-mb",
        type=int,
        default=None,
        help="root with --namespaces: a memory cgroup of this size for the worker and its "
        "programs (counts kernel memory that RLIMIT_AS misses)",
    )
    p.add_argument("--tmpfs-mb", type=int, default=128, help="size of each private tmpfs")
    p.add_argument(
        "--tmpfs-inodes", type=int, default=16384, help="files each private tmpfs may hold"
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment variable for programs; repeatable",
    )
    p.add_argument(
        "--cleanup-timeout",
        type=float,
        default=5.0,
        help="seconds allowed to kill and reap what a program left behind",
    )
    p.add_argument(
        "--kill-uid",
        type=int,
        default=None,
        metavar="UID",
        help="utility: kill every process of UID (a sandbox uid) and exit",
    )
    p.add_argument(
        "--warm-children",
        action="store_true",
        help="each waiting execution process also solves a tiny LP before its program: "
        "lower LP latency when callers pause between programs, but one more solve of CPU "
        "per execution (measured slower in CPU-quota containers under load)",
    )
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if args.lock_dir is None:
        run_dir = "/run"
        usable = os.path.isdir(run_dir) and os.access(run_dir, os.W_OK)
        base = run_dir if usable else tempfile.gettempdir()
        args.lock_dir = os.path.join(base, "or-env-sandbox")
    for kv in args.env:
        if "=" not in kv:
            p.error(f"--env expects KEY=VALUE, got {kv!r}")
    return args


def _isolate(args: argparse.Namespace) -> str | None:
    """Enter namespaces (and a memory cgroup) per --namespaces; a warning if not possible.

    On success this returns in the server, which is then PID 1 of its namespace and so
    also kills everything else there after each execution (--reap-all).
    """
    lib = confine.libc()
    root = os.geteuid() == 0
    cgroup = None
    if root and args.cgroup_memory_mb:
        try:
            cgroup = confine.join_memory_cgroup(args.cgroup_memory_mb)
        except OSError as exc:
            log.warning("no memory cgroup (%s): memory is bounded by RLIMIT_AS only", exc)
    try:
        confine.enter_namespaces(lib, cgroup[1] if cgroup else None)
    except OSError as exc:
        if cgroup:
            confine.leave_cgroup(cgroup[1])
        return (
            f"the kernel refused new namespaces ({exc}): programs share this machine's "
            "network, /tmp, IPC and process table, and can read what this user can read; "
            "use the docker sandbox, or a kernel that allows (unprivileged) user namespaces"
        )
    args.namespace_mode = "root" if root else "user"
    args.cgroup = cgroup
    args.reap_all = True
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s or_env.worker[%(process)d]: %(message)s"))
    log.addHandler(handler)
    log.setLevel(args.log_level.upper())
    log.propagate = False
    if args.kill_uid is not None:
        try:
            account = pwd.getpwuid(args.kill_uid).pw_name
        except KeyError:
            kill_uid(args.kill_uid)
            return 0
        log.error(
            "refusing --kill-uid %d: it is the account %r, not a sandbox uid",
            args.kill_uid,
            account,
        )
        return 2
    for key, value in _THREAD_ENV.items():
        os.environ.setdefault(key, value)
    fallback = _isolate(args) if args.namespaces else None
    server = Server(args)
    if fallback:
        server.warnings.append(fallback)

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    if os.getpid() == 1:
        # The kernel drops signals sent to a namespace's init from inside it, but only those
        # without a handler: keep none, so programs cannot stop the server. The client
        # ends it by closing stdin; the host can still SIGKILL it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    else:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        server.setup()
        server.serve()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
