"""The Docker daemon through its API (the Docker SDK for Python), with no `docker` binary.

Three pieces the Docker backend builds on:

* `api()`: one low-level SDK client per process, found the way the docker CLI finds the
  daemon (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; so also a rootless daemon or
  Podman's Docker-compatible socket).
* `AttachedContainer`: a container created and started over the API with its stdin and
  stdout attached, dressed as a `subprocess.Popen` so that `WorkerProcess` can talk its
  framed protocol to it exactly as to a local worker. Without a tty the daemon
  multiplexes stdout and stderr on the one attach socket (an 8-byte header per chunk);
  a reader thread splits them into two pipes, so the frames on stdout stay intact.
* `EventWatcher`: one thread per process following the daemon's `die`, `kill` and `oom`
  events for sandbox containers, so that a container that dies is known dead at once:
  its pending request fails now and an idle one is never handed out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import ssl
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

API_TIMEOUT_S = 20.0
# Attach sockets hold a connection each for the container's life; the rest is short calls.
_MAX_POOL_SIZE = 64
_READ_CHUNK = 1 << 18
_PIPE_SIZE = 1 << 20
# After the attach stream ends, how long to wait for the daemon's `die` event (to learn the
# exit status) before asking the daemon, and then for its `destroy` event.
_DIE_EVENT_WAIT_S = 1.0
UNKNOWN_EXIT = 255
SDK_HINT = "pip install 'or-env[docker]' (the Docker SDK for Python, `docker` on PyPI)"


class SDKMissingError(ImportError):
    """The Docker SDK for Python (`docker` on PyPI) is not installed."""


def _sdk() -> Any:
    try:
        import docker
    except ImportError as exc:
        raise SDKMissingError(f"the Docker SDK for Python is not installed: {SDK_HINT}") from exc
    return docker


_clients: dict[tuple[int, float], Any] = {}
_clients_lock = threading.Lock()


def api(timeout: float = API_TIMEOUT_S) -> Any:
    """The process's low-level `docker.APIClient` for calls bounded by `timeout` seconds.

    Raises SDKMissingError without the SDK, and `docker.errors.DockerException` when the
    daemon does not answer (the client asks for its API version when it is created, and
    is only kept once that worked).
    """
    key = (os.getpid(), float(timeout))
    with _clients_lock:
        client = _clients.get(key)
    if client is not None:
        return client
    client = new_api(timeout)
    with _clients_lock:
        return _clients.setdefault(key, client)


def new_api(timeout: float = API_TIMEOUT_S) -> Any:
    """A new `docker.APIClient` from the environment (for callers that must not share one)."""
    docker = _sdk()
    return docker.from_env(timeout=timeout, max_pool_size=_MAX_POOL_SIZE).api


def error_text(exc: BaseException) -> str:
    """The most telling text of an SDK or connection error, for `explain_docker_error`."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)
    return str(exc) or type(exc).__name__


# ----------------------------------------------------------------------------- hardening


def _ulimit(value: str) -> dict[str, Any]:
    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}


_KNOWN_FLAGS = frozenset(
    {
        "--pull", "--network", "--read-only", "--tmpfs", "--shm-size", "--memory",
        "--memory-swap", "--cpus", "--cpuset-cpus", "--pids-limit", "--cap-drop", "--cap-add",
        "--security-opt", "--user", "--ulimit", "--log-driver", "--stop-signal", "--label",
        "--runtime", "--env", "-e",
    }
)  # fmt: skip


def flags_to_config(flags: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Translate `docker run` flags into (create_container kwargs, host config kwargs).

    The sandbox's hardening is written once, as `docker run` flags (ContainerSpec), and
    reaches the daemon through this; a flag it does not know raises ValueError rather
    than being dropped, so no limit can silently go missing.
    """
    create: dict[str, Any] = {"labels": {}}
    host: dict[str, Any] = {"cap_add": [], "cap_drop": [], "security_opt": [], "ulimits": []}
    tmpfs: dict[str, str] = {}
    args = list(flags)
    i = 0
    while i < len(args):
        flag = args[i]
        if flag.split("=", 1)[0] not in _KNOWN_FLAGS:
            raise ValueError(
                f"docker flag {flag} is not supported by the SDK-driven sandbox; supported: "
                f"{', '.join(sorted(_KNOWN_FLAGS))}"
            )
        if "=" in flag and flag.startswith("--"):
            flag, value = flag.split("=", 1)
            i += 1
        elif flag == "--read-only":
            host["read_only"] = True
            i += 1
            continue
        else:
            if i + 1 >= len(args):
                raise ValueError(f"docker flag {flag} needs a value")
            value = args[i + 1]
            i += 2
        if flag == "--pull":
            if value != "never":
                raise ValueError("only --pull never is supported: containers never pull")
        elif flag == "--network":
            host["network_mode"] = value
            if value == "none":
                create["network_disabled"] = True
        elif flag == "--tmpfs":
            path, _, options = value.partition(":")
            tmpfs[path] = options
        elif flag == "--shm-size":
            host["shm_size"] = value
        elif flag == "--memory":
            host["mem_limit"] = value
        elif flag == "--memory-swap":
            host["memswap_limit"] = value
        elif flag == "--cpus":
            host["nano_cpus"] = round(float(value) * 1e9)
        elif flag == "--cpuset-cpus":
            host["cpuset_cpus"] = value
        elif flag == "--pids-limit":
            host["pids_limit"] = int(value)
        elif flag == "--cap-drop":
            host["cap_drop"].append(value)
        elif flag == "--cap-add":
            host["cap_add"].append(value)
        elif flag == "--security-opt":
            host["security_opt"].append(value)
        elif flag == "--user":
            create["user"] = value
        elif flag == "--ulimit":
            host["ulimits"].append(_ulimit(value))
        elif flag == "--log-driver":
            host["log_config"] = {"Type": value, "Config": {}}
        elif flag == "--stop-signal":
            create["stop_signal"] = value
        elif flag == "--label":
            key, _, val = value.partition("=")
            create["labels"][key] = val
        elif flag == "--runtime":
            host["runtime"] = value
        elif flag in ("--env", "-e"):
            key, _, val = value.partition("=")
            create.setdefault("environment", {})[key] = val
    if tmpfs:
        host["tmpfs"] = tmpfs
    return create, host


def is_podman(client: Any) -> bool:
    """Whether the daemon behind `client` is Podman's Docker-compatible service."""
    cached = getattr(client, "_or_env_is_podman", None)
    if cached is None:
        try:
            components = client.version().get("Components") or []
            cached = any("podman" in str(c.get("Name", "")).lower() for c in components)
        except Exception:
            cached = False
        client._or_env_is_podman = cached
    return bool(cached)


def create_container(
    client: Any,
    name: str,
    image: str,
    command: Sequence[str],
    flags: Sequence[str],
    *,
    entrypoint: Sequence[str] | None = None,
    auto_remove: bool = True,
) -> str:
    """Create (not start) a container as `docker run -i [--rm] FLAGS IMAGE COMMAND` would;
    its id. Raises the SDK's errors (`docker.errors.ImageNotFound` and the like)."""
    create, host = flags_to_config(flags)
    if is_podman(client) and "tmpfs" in host:
        # Podman (4.x) refuses the nr_inodes tmpfs option; the tmpfs keeps its size limit.
        host["tmpfs"] = {
            path: ",".join(o for o in opts.split(",") if not o.startswith("nr_inodes="))
            for path, opts in host["tmpfs"].items()
        }
    host_config = client.create_host_config(auto_remove=auto_remove, **host)
    container = client.create_container(
        image,
        command=list(command),
        name=name,
        # Not detached with stdin open: the SDK sets AttachStdin and StdinOnce, as
        # `docker run -i` does, so the container's stdin ends when we half-close.
        stdin_open=True,
        detach=False,
        tty=False,
        entrypoint=list(entrypoint) if entrypoint is not None else None,
        host_config=host_config,
        **create,
    )
    return str(container["Id"])


# ----------------------------------------------------------------------------- events


class EventWatcher:
    """Follows the daemon's `die`, `kill`, `oom` and `destroy` events for containers
    labelled `label`.

    One thread per process; it reconnects (with `since`, so nothing is missed while the
    daemon answers) when the stream breaks, e.g. across a daemon restart.
    """

    _EVENTS = ("die", "kill", "oom", "destroy")

    def __init__(self, label: str) -> None:
        self.label = label
        self._targets: dict[str, weakref.ref[AttachedContainer]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def watch(self, container_id: str, target: AttachedContainer) -> None:
        with self._lock:
            self._targets[container_id] = weakref.ref(target)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="or-env-docker-events", daemon=True
                )
                self._thread.start()
        # The first container waits (briefly) for the subscription, so that even its
        # earliest death is seen as an event.
        self._connected.wait(2.0)

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            self._targets.pop(container_id, None)

    def _loop(self) -> None:
        since: int | None = None
        backoff = 0.2
        while True:
            try:
                client = api()
                filters = {"label": [self.label], "event": list(self._EVENTS), "type": "container"}
                stream = client.events(since=since, filters=filters, decode=True)
                self._stream = stream
                self._connected.set()
                backoff = 0.2
                for event in stream:
                    since = int(event.get("time") or time.time())
                    self._dispatch(event)
                # The stream ended: the daemon went away or restarted.
            except Exception as exc:
                logger.debug("docker event stream broke (%s); reconnecting", exc)
            self._connected.clear()
            since = since or int(time.time())
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _dispatch(self, event: Mapping[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or event.get("id") or "")
        attrs = actor.get("Attributes") or {}
        with self._lock:
            ref = self._targets.get(cid)
        target = ref() if ref is not None else None
        if target is None:
            return
        if action in ("die", "died"):  # Podman's compat events may say "died"
            try:
                code = int(attrs.get("exitCode", UNKNOWN_EXIT))
            except ValueError:
                code = UNKNOWN_EXIT
            target.on_died(code)
        elif action == "destroy":
            target.on_removed()
        elif action == "kill":
            target.on_killed(str(attrs.get("signal", "")))
        elif action == "oom":
            target.on_oom()


_watchers: dict[tuple[int, str], EventWatcher] = {}
_watchers_lock = threading.Lock()


def event_watcher(label: str) -> EventWatcher:
    """The process's watcher of events for containers with `label` (`key=value`)."""
    key = (os.getpid(), label)
    with _watchers_lock:
        watcher = _watchers.get(key)
        if watcher is None:
            watcher = _watchers[key] = EventWatcher(label)
        return watcher


# ----------------------------------------------------------------------------- containers


class _Stdin:
    """The write side of an attach: the socket itself, or a pipe pumped into it."""

    def __init__(self, fd: int, on_close: Callable[[], None]) -> None:
        self._fd = fd
        self._on_close = on_close
        self.closed = False

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close()


class AttachedContainer:
    """A started container with stdin, stdout and stderr attached, shaped like `Popen`.

    `stdin.fileno()` takes the framed requests (the socket, or a pipe when the socket is
    TLS), `stdout` and `stderr` are pipes fed by a reader thread that splits the daemon's
    multiplexed stream. `poll()` reports the container's exit status as soon as the
    daemon's `die` event (or the daemon, asked) tells it; `wait()` returns once the daemon
    has also removed the container (auto-remove, like `docker run --rm`), so that a
    stopped worker leaves nothing behind. `kill()` detaches at once and leaves the removal
    to the caller (it must not wait on a daemon that may be gone).
    `stdin.close()` half-closes the attach: the container was created with `StdinOnce`,
    so the worker sees end of input and exits by itself.
    """

    pid: int | None = None

    def __init__(
        self,
        name: str,
        image: str,
        command: Sequence[str],
        flags: Sequence[str],
        *,
        watcher: EventWatcher | None = None,
        entrypoint: Sequence[str] | None = None,
        auto_remove: bool = True,
    ) -> None:
        self.name = name
        self.args = [name]
        self.returncode: int | None = None
        self.killed_by: str | None = None
        self.oom = False
        self.id: str | None = None
        self._watcher = watcher
        self._exited = threading.Event()
        self._lock = threading.Lock()
        self._released = 0
        self._sock: Any = None
        self._raw: Any = None
        client = api()
        self.id = create_container(
            client, name, image, command, flags, entrypoint=entrypoint, auto_remove=auto_remove
        )
        try:
            if watcher is not None:
                watcher.watch(self.id, self)
            # Attach before start, so that the ready frame cannot be sent to nobody.
            self._sock = client.attach_socket(
                self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self._setup_streams()
            client.start(self.id)
        except BaseException:
            self._abandon()
            raise

    # ------------------------------------------------------------------ Popen surface

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """Detach now and mark the container killed; the caller removes it (`rm -f`)."""
        self._set_exit(-9)
        self._gone()
        self._shutdown(socket.SHUT_RDWR)

    def terminate(self) -> None:
        self.kill()

    # ------------------------------------------------------------------ daemon events

    def on_died(self, code: int) -> None:
        """The daemon says the container exited with `code`."""
        if self._set_exit(code):
            logger.debug("%s died with status %s", self.name, code)
        # The stream ends by itself when the container dies, unless the daemon is in
        # trouble: do not wait for that.
        self._shutdown(socket.SHUT_RDWR)

    def on_removed(self) -> None:
        """The daemon removed the container (after its exit)."""
        self._set_exit(UNKNOWN_EXIT)
        self._gone()

    def on_killed(self, sig: str) -> None:
        self.killed_by = sig or "a signal"

    def on_oom(self) -> None:
        self.oom = True
        logger.warning("%s: the kernel's OOM killer fired in the container", self.name)

    # ------------------------------------------------------------------ internals

    def _set_exit(self, code: int) -> bool:
        with self._lock:
            if self.returncode is not None:
                return False
            self.returncode = code
        return True

    def _gone(self) -> None:
        """Nothing more to wait for: removed, detached by us, or the daemon cannot tell."""
        self._exited.set()
        if self._watcher is not None and self.id is not None:
            self._watcher.unwatch(self.id)

    def _setup_streams(self) -> None:
        sock = self._sock
        raw = getattr(sock, "_sock", sock)  # socket.SocketIO wraps the plain socket
        self._raw = raw
        self._plain = isinstance(raw, socket.socket) and not isinstance(raw, ssl.SSLSocket)
        out_r, self._out_w = os.pipe()
        err_r, self._err_w = os.pipe()
        with contextlib.suppress(OSError):  # bigger pipes: fewer wake-ups per big frame
            fcntl.fcntl(out_r, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self.stdout = open(out_r, "rb", buffering=0)  # noqa: SIM115 (closed by the client)
        self.stderr = open(err_r, "rb")  # noqa: SIM115
        if self._plain:
            raw.setblocking(False)
            self.stdin = _Stdin(raw.fileno(), self._stdin_closed)
            self._in_r: int | None = None
        else:
            # A TLS (or SSH) stream must be written through its object, not its fd.
            raw.settimeout(None)
            self._in_r, in_w = os.pipe()
            self.stdin = _Stdin(in_w, self._stdin_closed)
            threading.Thread(target=self._pump_stdin, name=f"{self.name}-in", daemon=True).start()
        threading.Thread(target=self._read, name=f"{self.name}-out", daemon=True).start()

    def _stdin_closed(self) -> None:
        if self._in_r is not None:
            with contextlib.suppress(OSError):
                os.close(self.stdin.fileno())  # the pump sees EOF and half-closes
        else:
            self._shutdown(socket.SHUT_WR)
        self._release()

    def _shutdown(self, how: int) -> None:
        raw = self._raw
        if raw is None:
            return
        with contextlib.suppress(OSError, AttributeError, ValueError):
            raw.shutdown(how)

    def _release(self) -> None:
        # The socket is closed only when both the client (stdin) and the reader are done
        # with it: closing it earlier would let its fd number be reused under them.
        with self._lock:
            self._released += 1
            last = self._released == 2
        if last:
            self._close_socket()

    def _close_socket(self) -> None:
        for obj in (self._raw, self._sock):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        response = getattr(self._sock, "_response", None)
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()

    def _pump_stdin(self) -> None:
        assert self._in_r is not None
        try:
            while chunk := os.read(self._in_r, 65536):
                self._raw.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(self._in_r)
            self._shutdown(socket.SHUT_WR)

    def _recv(self) -> bytes:
        raw = self._raw
        if not self._plain:
            return raw.recv(_READ_CHUNK)
        # The client writes to the same socket without blocking, so it is in
        # non-blocking mode: wait for input with poll.
        poller = select.poll()
        poller.register(raw.fileno(), select.POLLIN)
        while True:
            try:
                return raw.recv(_READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                poller.poll()

    def _read(self) -> None:
        """Split the multiplexed attach stream into the stdout and stderr pipes."""
        buf = bytearray()
        targets = {1: self._out_w, 2: self._err_w}
        try:
            while True:
                try:
                    chunk = self._recv()
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 8:
                    size = int.from_bytes(buf[4:8], "big")
                    if len(buf) < 8 + size:
                        break
                    fd = targets.get(buf[0])
                    if fd is None:
                        logger.error("%s: unknown attach stream %d; detaching", self.name, buf[0])
                        return
                    payload = memoryview(buf)[8 : 8 + size]
                    try:
                        while payload:
                            payload = payload[os.write(fd, payload) :]
                    except OSError as exc:
                        if exc.errno != errno.EPIPE:
                            raise
                        targets[buf[0]] = -1  # nobody reads that stream any more
                    finally:
                        payload.release()
                    del buf[: 8 + size]
        except Exception:
            logger.exception("%s: reading the attach stream failed", self.name)
        finally:
            for fd in (self._out_w, self._err_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._after_stream_end()
            self._release()

    def _after_stream_end(self) -> None:
        # The container exited (or the daemon went away): the die and destroy events
        # normally follow at once; else ask the daemon, else the status is unknown.
        if self._watcher is not None and self._exited.wait(_DIE_EVENT_WAIT_S):
            return
        if self.returncode is None:
            code = UNKNOWN_EXIT
            with contextlib.suppress(Exception):  # gone already, or the daemon is
                code = int(api(5.0).wait(self.id, timeout=5)["StatusCode"])
            self._set_exit(code)
        if self._watcher is None:
            self._gone()
            return
        # Removal (auto-remove) can lag; the owner's final sweep removes what is left.
        self._exited.wait(_DIE_EVENT_WAIT_S)
        self._gone()

    def _abandon(self) -> None:
        """Undo a half-made start: detach and remove the container."""
        self._set_exit(-9)
        self._gone()
        self._shutdown(socket.SHUT_RDWR)
        if hasattr(self, "stdin"):
            self.stdin.close()
            for stream in (self.stdout, self.stderr):
                with contextlib.suppress(OSError):
                    stream.close()
        elif self._sock is not None:
            self._close_socket()
        if self.id is not None:
            with contextlib.suppress(Exception):
                api().remove_container(self.id, force=True)


def run_container(
    image: str,
    command: Sequence[str],
    flags: Sequence[str] = (),
    *,
    entrypoint: Sequence[str] | None = None,
    input: bytes = b"",
    timeout: float = 120.0,
) -> tuple[int, bytes, bytes]:
    """Run a one-off container to its end, like `docker run -i --rm`: (status, out, err).

    Raises TimeoutError (after removing it) when it runs longer than `timeout` seconds.
    """
    name = f"or-env-run-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    box = AttachedContainer(name, image, command, flags, entrypoint=entrypoint, auto_remove=False)
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    try:
        data = memoryview(input)
        fds = {box.stdout.fileno(): out, box.stderr.fileno(): err}
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        if data:
            poller.register(box.stdin.fileno(), select.POLLOUT)
        else:
            box.stdin.close()
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"container {name} ran over {timeout:g} s")
            for fd, _ in poller.poll(left * 1000):
                if fd in fds:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        fds[fd] += chunk
                    else:
                        poller.unregister(fd)
                        del fds[fd]
                elif data:
                    with contextlib.suppress(BlockingIOError):
                        data = data[os.write(fd, data[:65536]) :]
                    if not data:
                        poller.unregister(fd)
                        box.stdin.close()
        return box.wait(max(1.0, deadline - time.monotonic())), bytes(out), bytes(err)
    finally:
        box.kill()
        box.stdin.close()
        for stream in (box.stdout, box.stderr):
            stream.close()
        with contextlib.suppress(Exception):
            api().remove_container(box.id, force=True)


def attach_new(
    name: str,
    image: str,
    command: Sequence[str],
    flags: Sequence[str],
    *,
    watch_label: str | None = None,
) -> AttachedContainer:
    """Create, attach and start a container (see `AttachedContainer`)."""
    watcher = event_watcher(watch_label) if watch_label else None
    return AttachedContainer(name, image, command, flags, watcher=watcher)
