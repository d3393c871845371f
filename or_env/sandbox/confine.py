"""Kernel-level confinement for the fork-server worker: namespaces, mounts, cgroups, cleanup.

Standard library only, like `worker.py`, which imports it (the sandbox image copies both
files side by side). Each function is one mechanism; `worker.py` decides which apply.

Why each exists (every one answers an attack a policy can emit):
  namespaces     a fresh user (when not root), mount, PID, IPC and network namespace per
                 worker: programs see no host process, no network, no host IPC, and dying
                 with the worker takes every process they started.
  private tmp    a new mount and IPC namespace per execution with fresh tmpfs on every
                 writable place: nothing a program writes or creates survives it.
  hidden paths   the package's data, the benchmark folder and the project tree hold ground
                 truths: an empty read-only tmpfs covers them.
  read-only view every host mount is remounted read-only in the worker's namespace, so a
                 program cannot plant a `.pth` file or anything else for a later host run.
  memory cgroup  RLIMIT_AS misses kernel memory (socket buffers, tmpfs pages): a cgroup
                 charges all of it to the worker.
  cleanup        where namespaces are not available (inside a container), state is
                 removed after each execution and then verified, iteratively and in
                 bounded time.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import signal
import stat
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME = 0x400, 0x800, 0x200000
_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP(_LOCKED) | KEEP_CAPS_LOCKED
_SECUREBITS_LOCKED_DOWN = 0x1 | 0x2 | 0x4 | 0x8 | 0x20
_KEYCTL_JOIN_SESSION_KEYRING, _KEYCTL_CLEAR = 1, 7
_KEY_SPEC_SESSION_KEYRING, _KEY_SPEC_USER_KEYRING, _KEY_SPEC_USER_SESSION_KEYRING = -3, -4, -5
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
_IPC_RMID = 0
# Writable places every Linux program expects; each gets its own tmpfs per execution.
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
CGROUP_PARENT = "or-env-sandbox"


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(lib: ctypes.CDLL, option: int, arg: int) -> None:
    _check(lib.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def mount(
    lib: ctypes.CDLL,
    src: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    def enc(v: str | None) -> bytes | None:
        return None if v is None else v.encode()

    result = lib.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
    _check(result, f"mount {src} on {target}")


def unshare(lib: ctypes.CDLL, flags: int) -> None:
    _check(lib.unshare(flags), f"unshare({flags:#x})")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- namespaces


def enter_namespaces(lib: ctypes.CDLL, cgroup: str | None = None) -> None:
    """Move into new namespaces and continue in a child that is PID 1 there.

    Root gets new mount, PID, IPC and network namespaces; anyone else also a new user
    namespace in which their uid is root (with capabilities over that namespace only).
    Returns in the child. The calling process becomes a waiter: it exits with the child's
    status, and its death (the host killing the worker) kills the child and with it the
    whole PID namespace: no process a program started can outlive the worker. Raises
    OSError in the calling process when the kernel refuses (the caller falls back).
    """
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID
    unshare(lib, flags if root else flags | CLONE_NEWUSER)
    if not root:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    pid = os.fork()
    if pid == 0:
        # (getppid() is 0 here, the parent being outside the namespace, so the usual
        # check that it is still alive cannot be made; it is blocked in waitpid.)
        prctl(lib, _PR_SET_PDEATHSIG, signal.SIGKILL)
        return
    # The waiter keeps nothing of the protocol open, so the host sees the server's end.
    for fd in (0, 1):
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = 1
    while True:
        try:
            _, wstatus = os.waitpid(pid, 0)
            status = os.waitstatus_to_exitcode(wstatus)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    if cgroup:
        leave_cgroup(cgroup)
    os._exit(status if status >= 0 else 128 - status)


# seccomp: refuse the key-management syscalls (as Docker's default profile does). Kernel
# keys outlive processes and a program can make them un-clearable (KEYCTL_SETPERM), so
# the only sure way that none carries over is that none is made.
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_KEY_SYSCALLS = {"x86_64": (248, 249, 250), "aarch64": (217, 218, 219)}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


class _Filter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def kernel_keys_filter() -> ctypes.Structure | None:
    """The seccomp program of `forbid_kernel_keys`, built ahead (None: unknown machine).

    Building it costs a few hundred microseconds of ctypes work; a fork server builds it
    once, and each execution only installs it.
    """
    machine = os.uname().machine
    if machine not in _AUDIT_ARCH:
        return None
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    add_key, request_key, keyctl = _KEY_SYSCALLS[machine]
    program = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, _AUDIT_ARCH[machine]),
        (ret, 0, 0, _SECCOMP_RET_ERRNO | errno.EPERM),  # another ABI: refuse everything
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jeq, 3, 0, add_key),
        (jeq, 2, 0, request_key),
        (jeq, 1, 0, keyctl),
        (ret, 0, 0, _SECCOMP_RET_ALLOW),
        (ret, 0, 0, _SECCOMP_RET_ERRNO | errno.EPERM),
    ]
    filters = (_Filter * len(program))(*[_Filter(*row) for row in program])
    prog = _Program(len(program), filters)
    prog._keep = filters  # the pointer does not keep the array alive by itself
    return prog


def forbid_kernel_keys(lib: ctypes.CDLL, prog: ctypes.Structure | None = None) -> bool:
    """Install a seccomp filter: add_key, request_key and keyctl fail with EPERM.

    Needs no_new_privs (or CAP_SYS_ADMIN). `prog` is `kernel_keys_filter()`, when built
    ahead. Returns False on an architecture it does not know (the keys are then settled
    after the program instead).
    """
    prog = prog if prog is not None else kernel_keys_filter()
    if prog is None:
        return False
    _check(
        lib.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
        "seccomp filter",
    )
    return True


def userns_rlimits_are_per_namespace() -> bool:
    """RLIMIT_NPROC counts per user namespace since Linux 5.14 (ucounts)."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def drop_capabilities(lib: ctypes.CDLL) -> None:
    """Give up every capability for good (a user namespace's root running a program)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except OSError:
        last = 40
    for cap in range(last + 1):
        dropped = lib.prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) == 0
        if not dropped and ctypes.get_errno() != errno.EINVAL:  # EINVAL: no such capability
            _check(-1, f"drop capability {cap} from the bounding set")
    prctl(lib, _PR_SET_SECUREBITS, _SECUREBITS_LOCKED_DOWN)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(lib.capset(ctypes.byref(header), data), "capset")


def join_new_session_keyring(lib: ctypes.CDLL) -> None:
    """Leave the inherited session keyring (the host's keys) for a new, empty one."""
    nr = _SYS_KEYCTL.get(os.uname().machine)
    if nr is not None:  # refused inside containers (seccomp), where there is none to leave
        lib.syscall(nr, _KEYCTL_JOIN_SESSION_KEYRING, None)


def clear_keyrings(lib: ctypes.CDLL, session: bool = False) -> None:
    """Empty this uid's user keyrings (and the session keyring): keys outlive processes."""
    nr = _SYS_KEYCTL.get(os.uname().machine)
    if nr is None:
        return
    rings = [_KEY_SPEC_USER_KEYRING, _KEY_SPEC_USER_SESSION_KEYRING]
    for ring in rings + ([_KEY_SPEC_SESSION_KEYRING] if session else []):
        lib.syscall(nr, _KEYCTL_CLEAR, ctypes.c_long(ring))


def key_count(uid: int) -> int | None:
    """How many keys the kernel holds for `uid` (/proc/key-users); None if it cannot tell.

    Keys a program added stay listed in /proc/keys (descriptions of up to 4 KiB) until the
    kernel's garbage collector has run, even once unlinked: counting them tells when that
    has happened.
    """
    try:
        with open("/proc/key-users") as f:
            for line in f:
                head, _, rest = line.partition(":")
                if head.strip() == str(uid):
                    return int(rest.split()[1].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return 0


# ----------------------------------------------------------------------------- mounts


def mount_fresh_proc(lib: ctypes.CDLL) -> None:
    """A /proc for the new PID namespace: host processes disappear from it."""
    mount(lib, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _inside(path: str, parent: str) -> bool:
    return path != parent and path.startswith(parent.rstrip("/") + "/")


def hide_paths(lib: ctypes.CDLL, hide: list[str], keep: list[str]) -> list[str]:
    """Cover each directory of `hide` with an empty read-only tmpfs; return those covered.

    Paths of `keep` that lie strictly inside a hidden directory (a venv inside the
    project, a Python installation inside the home directory) are bind-mounted back at
    their place. Runs in a private mount namespace: nothing changes on the host.
    """
    keep = sorted({os.path.realpath(p) for p in keep if os.path.exists(p)})
    covered: list[str] = []
    for target in sorted({os.path.realpath(p) for p in hide}, key=lambda p: p.count("/")):
        if not os.path.isdir(target) or os.path.islink(target) or target == "/":
            continue
        inner = [k for k in keep if _inside(k, target)]
        inner = [k for k in inner if not any(_inside(k, other) for other in inner)]
        fds = {k: os.open(k, os.O_PATH | os.O_CLOEXEC) for k in inner}
        try:
            mount(lib, "tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
            for k, fd in fds.items():
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.makedirs(k, 0o755, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(k), 0o755, exist_ok=True)
                    os.close(os.open(k, os.O_CREAT | os.O_WRONLY, 0o644))
                mount(lib, f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
        finally:
            for fd in fds.values():
                os.close(fd)
        mount(lib, None, target, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        covered.append(target)
    return covered


_FLAG_BITS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": _MS_NOATIME,
    "nodiratime": _MS_NODIRATIME,
    "relatime": _MS_RELATIME,
}


def make_mounts_readonly(lib: ctypes.CDLL) -> list[str]:
    """Remount every mount of this namespace read-only; return those that refused.

    Mount flags inherited from a parent user namespace are locked and must be kept,
    hence each mount's current flags are passed back with MS_RDONLY added.
    """
    refused = []
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for opt in fields[5].split(","):
            flags |= _FLAG_BITS.get(opt, 0)
        # The worker's waiter leaves its memory cgroup through /sys/fs/cgroup; its files
        # are root's, so programs cannot write there anyway.
        if point.startswith(("/proc", "/sys/fs/cgroup")) or fields[5].startswith("ro"):
            continue
        try:
            mount(lib, None, point, None, flags)
        except OSError as exc:
            refused.append(f"{point} ({exc.strerror})")
    return refused


def kept_inside_private_dirs(keep: list[str]) -> list[str]:
    """The paths of `keep` (a Python installation) that a private tmpfs would cover."""
    found = {
        os.path.realpath(k)
        for k in keep
        if os.path.exists(k) and any(_inside(os.path.realpath(k), d) for d in PRIVATE_DIRS)
    }
    return sorted(k for k in found if not any(_inside(k, other) for other in found))


def private_tmp(lib: ctypes.CDLL, size_mb: int, inodes: int, keep: list[str] = ()) -> None:
    """New mount and IPC namespaces with an empty tmpfs on each writable place.

    Called in the execution's own process before it drops privileges: everything the
    program writes (files, SysV IPC, POSIX message queues) lives in namespaces that die
    with its last process, so the next execution cannot see any of it. `keep` (from
    `kept_inside_private_dirs`) is bind-mounted back, read-only: a virtualenv under /tmp
    must stay importable.
    """
    unshare(lib, CLONE_NEWNS | CLONE_NEWIPC)
    fds = {k: os.open(k, os.O_PATH | os.O_CLOEXEC) for k in keep}
    opts = f"mode=1777,size={size_mb}m,nr_inodes={inodes}"
    ro = MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    try:
        for path in PRIVATE_DIRS:
            if os.path.isdir(path):
                mount(lib, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts)
        # The way to each kept path is a small read-only tmpfs of its own, so that the
        # program cannot write there either (in a user namespace it owns what it finds).
        tops = {}
        for k in fds:
            parent = next(d for d in PRIVATE_DIRS if _inside(k, d))
            top = os.path.join(parent, os.path.relpath(k, parent).split("/")[0])
            tops.setdefault(top, []).append(k)
        for top, kept in tops.items():
            os.makedirs(top, 0o755, exist_ok=True)
            mount(lib, "tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
            for k in kept:
                os.makedirs(k, 0o755, exist_ok=True)
                mount(lib, f"/proc/self/fd/{fds[k]}", k, None, MS_BIND | MS_REC)
                mount(lib, None, k, None, MS_BIND | ro)
            mount(lib, None, top, None, ro)
    finally:
        for fd in fds.values():
            os.close(fd)
    if os.path.isdir("/dev/mqueue"):
        with contextlib.suppress(OSError):  # a fresh view of the new IPC namespace's queues
            mount(lib, "mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)


# ----------------------------------------------------------------------------- cgroups


def _cgroup_roots() -> tuple[str, str] | None:
    """(version, directory under which memory cgroups are made), or None."""
    with contextlib.suppress(OSError), open("/sys/fs/cgroup/cgroup.controllers") as f:
        if "memory" in f.read().split():
            return "v2", "/sys/fs/cgroup"
    if os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        return "v1", "/sys/fs/cgroup/memory"
    return None


def join_memory_cgroup(limit_mb: int) -> tuple[str, str]:
    """Put this process in a new memory cgroup of `limit_mb` MiB; (version, its path).

    Everything its descendants allocate counts, kernel memory included (socket buffers,
    tmpfs pages, page tables), so a program cannot pin memory around RLIMIT_AS. Raises
    OSError when the machine offers no writable memory controller.
    """
    found = _cgroup_roots()
    if found is None:
        raise OSError(errno.ENOENT, "no memory cgroup controller is mounted")
    version, root = found
    parent = os.path.join(root, CGROUP_PARENT)
    os.makedirs(parent, exist_ok=True)
    remove_empty_cgroups(parent)
    if version == "v2":
        with contextlib.suppress(OSError):
            _write(os.path.join(root, "cgroup.subtree_control"), "+memory")
        _write(os.path.join(parent, "cgroup.subtree_control"), "+memory")
    path = os.path.join(parent, f"w{os.getpid()}-{secrets.token_hex(3)}")
    os.mkdir(path)
    limit = str(limit_mb << 20)
    try:
        if version == "v2":
            _write(os.path.join(path, "memory.max"), limit)
            _write(os.path.join(path, "memory.swap.max"), "0")
        else:
            _write(os.path.join(path, "memory.limit_in_bytes"), limit)
            with contextlib.suppress(OSError):  # absent without swap accounting
                _write(os.path.join(path, "memory.memsw.limit_in_bytes"), limit)
        _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        raise
    return version, path


def oom_kills(path: str) -> int:
    """How many processes the kernel killed for this cgroup's memory limit so far."""
    name = "memory.events" if os.path.exists(os.path.join(path, "memory.events")) else None
    try:
        with open(os.path.join(path, name or "memory.oom_control")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def leave_cgroup(path: str) -> None:
    """Move this process to the parent of `path` and remove `path` (if now empty)."""
    with contextlib.suppress(OSError):
        _write(os.path.join(os.path.dirname(os.path.dirname(path)), "cgroup.procs"), "0")
    with contextlib.suppress(OSError):
        os.rmdir(path)


def remove_empty_cgroups(parent: str) -> None:
    """Remove the cgroups left under `parent` by workers that were killed.

    Only those whose worker (the pid in the name) is gone: another worker starting at the
    same moment may have made its cgroup and not yet entered it.
    """
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            full = os.path.join(parent, name)
            try:
                os.kill(int(name[1:].split("-")[0]), 0)
                continue  # its worker still runs
            except (ValueError, ProcessLookupError):
                pass
            except PermissionError:
                continue
            if os.path.isdir(full):
                with contextlib.suppress(OSError):
                    os.rmdir(full)  # fails (EBUSY) while processes are in it


# ----------------------------------------------------------------------------- cleanup


class CleanupTimeout(OSError):
    """Removing what a program left took longer than allowed."""


def remove_tree(path: str, deadline: float | None = None) -> None:
    """Remove a directory tree, however deep or unwritable, without recursion.

    Subdirectories are renamed up into `path` itself rather than descended into, so
    depth costs neither stack nor file descriptors; every directory is opened by fd with
    O_NOFOLLOW, so a symlink swapped in by a still-running program leads nowhere.
    Raises CleanupTimeout past `deadline` (time.monotonic()), OSError when stuck.
    """
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o700)
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.ENOTDIR:
            raise
        os.unlink(path)  # a symlink or a file
        return
    try:
        _empty_dir(top, deadline)
    finally:
        os.close(top)
    os.rmdir(path)


def _empty_dir(top: int, deadline: float | None) -> None:
    pending = [None]  # directories inside `top` still to empty (None: top itself)
    counter = 0
    while pending:
        name = pending.pop()
        if name is None:
            fd = os.dup(top)
        else:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, dir_fd=top)
        try:
            if name is not None:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, 0o700)
            with os.scandir(fd) as entries:
                children = list(entries)
            for entry in children:
                counter += 1
                if deadline is not None and counter % 256 == 0 and time.monotonic() > deadline:
                    raise CleanupTimeout(errno.ETIMEDOUT, "cleanup ran out of time")
                if entry.is_dir(follow_symlinks=False):
                    # Entering it and moving it (its ".." changes) both need its own
                    # permissions. Following a link here is safe: whatever could swap one
                    # in was killed before cleanup began.
                    with contextlib.suppress(OSError):
                        os.chmod(entry.name, 0o700, dir_fd=fd)
                    if name is None:
                        pending.append(entry.name)
                    else:  # flatten: one level below top, whatever the depth was
                        flat = f".rm-{secrets.token_hex(8)}"
                        os.rename(entry.name, flat, src_dir_fd=fd, dst_dir_fd=top)
                        pending.append(flat)
                else:
                    os.unlink(entry.name, dir_fd=fd)
        finally:
            os.close(fd)
        if name is not None:
            try:
                os.rmdir(name, dir_fd=top)
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    raise
                pending.append(name)  # something appeared meanwhile: go again


def wipe_contents(path: str, keep: str = "", deadline: float | None = None) -> None:
    """Empty directory `path` (sparing the entry `keep`, a full path); raises like remove_tree."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        full = os.path.join(path, name)
        if full == keep:
            continue
        remove_tree(full, deadline)


def remove_ipc_objects() -> int:
    """Remove every SysV IPC object and POSIX message queue this process may remove."""
    removed = 0
    lib = libc()
    calls = {
        "shm": lambda i: lib.shmctl(i, _IPC_RMID, None),
        "msg": lambda i: lib.msgctl(i, _IPC_RMID, None),
        "sem": lambda i: lib.semctl(i, 0, _IPC_RMID),
    }
    for kind, rmid in calls.items():
        for ident in _ipc_ids(kind):
            if rmid(ident) == 0:
                removed += 1
    with contextlib.suppress(OSError):
        for name in os.listdir("/dev/mqueue"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join("/dev/mqueue", name))
                removed += 1
    return removed


def _ipc_ids(kind: str) -> list[int]:
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    return [int(r.split()[1]) for r in rows if r.split()]  # columns: key, id, ...


def leftover_state(
    paths: list[str], baseline: dict[str, int], keep: str = "", ipc: bool = True
) -> list[str]:
    """What an execution left behind that cleanup did not remove (empty: clean).

    Checks that `paths` are empty (but for `keep`, a full path) with their free space
    back at `baseline` (bytes, from `free_space`), and, with `ipc` (in an IPC namespace
    of the sandbox's own), that no SysV IPC object and no POSIX message queue is left.
    """
    found = []
    for path in paths:
        with contextlib.suppress(OSError):
            names = [n for n in os.listdir(path) if os.path.join(path, n) != keep]
            if names:
                found.append(f"{len(names)} entries left in {path}")
        free = free_space(path)
        if path in baseline and free is not None and free < baseline[path] - (1 << 20):
            found.append(f"{(baseline[path] - free) >> 20} MiB of {path} still used")
    if not ipc:
        return found
    for kind in ("shm", "msg", "sem"):
        if _ipc_ids(kind):
            found.append(f"SysV {kind} objects left")
    with contextlib.suppress(OSError):
        if os.listdir("/dev/mqueue"):
            found.append("POSIX message queues left")
    return found


def resident_memory() -> int | None:
    """Anonymous + shared (tmpfs, SysV) memory of this process's cgroup, in bytes.

    Page cache is left out: reading a solver's libraries is not state a program left.
    Meaningful where the cgroup is the sandbox's own (a container).
    """
    for path, keys in (
        ("/sys/fs/cgroup/memory/memory.stat", ("total_rss", "total_shmem")),
        ("/sys/fs/cgroup/memory.stat", ("anon", "shmem")),
    ):
        try:
            with open(path) as f:
                values = dict(line.split() for line in f if line.strip())
        except (OSError, ValueError):
            continue
        if all(k in values for k in keys):
            return sum(int(values[k]) for k in keys)
    return None


def free_space(path: str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
