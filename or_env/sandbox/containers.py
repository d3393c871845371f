"""Sandbox containers on the Docker daemon: who owns them, finding and removing them.

Every sandbox container carries the label `or-env.sandbox=1`, an owner label
(`host/pid/process-start-ticks` of the process that started it) and its pool's id. After a
crash, containers whose owner is gone can be told apart from those of live processes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from or_env.sandbox import docker_attach
from or_env.sandbox.image import explain_docker_error

logger = logging.getLogger(__name__)

LABEL = "or-env.sandbox"
OWNER_LABEL = "or-env.sandbox.owner"
POOL_LABEL = "or-env.sandbox.pool"
# The docker CLI needs these to find the daemon; nothing else of ours reaches it. The
# backend itself talks to the daemon through the SDK, which reads the same variables
# (benchmarks and tests still run the CLI with this environment).
_DOCKER_CLI_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "HOME",
    "XDG_RUNTIME_DIR",
)
CLI_TIMEOUT_S = 20.0


def docker_cli_env() -> dict[str, str]:
    """Environment for `docker` commands: how to reach the daemon, nothing secret of ours."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in _DOCKER_CLI_ENV if k in os.environ})
    return env


def _start_ticks(pid: int) -> str | None:
    """The process start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[19].decode()


def owner_id(pid: int | None = None) -> str:
    """`host/pid/start-ticks` of a process (default: this one), as in the owner label."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid) or '?'}"


def owner_is_dead(owner: str) -> bool:
    """Whether the process an owner label names is gone (False when it cannot tell)."""
    host, _, rest = owner.partition("/")
    pid, _, ticks = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's (or namespace's) process: we cannot tell
    return _start_ticks(int(pid)) != ticks


def _filters(filters: Iterable[str]) -> dict[str, list[str]]:
    """`docker ps --filter` expressions (`label=k=v`, `name=x`) as the API's filter map."""
    out: dict[str, list[str]] = {"label": [f"{LABEL}=1"]}
    for expr in filters:
        key, sep, value = expr.partition("=")
        if not sep:
            raise ValueError(f"filter {expr!r} must look like KEY=VALUE")
        out.setdefault(key, []).append(value)
    return out


def list_containers(*filters: str, client: Any = None) -> list[tuple[str, str, str]]:
    """(id, name, owner) of every sandbox container (running or not) matching `filters`.

    Each filter is a `docker ps --filter` expression, e.g. `label=or-env.sandbox.pool=ab12`.
    Raises RuntimeError when the daemon does not answer. `client`: an SDK APIClient to use
    instead of the process's shared one.
    """
    try:
        api = client if client is not None else docker_attach.api()
        found = api.containers(all=True, filters=_filters(filters))
    except docker_attach.SDKMissingError as exc:
        raise RuntimeError(f"listing sandbox containers failed: {exc}") from exc
    except Exception as exc:
        why = explain_docker_error(docker_attach.error_text(exc))
        raise RuntimeError(f"listing sandbox containers failed: {why}") from exc
    rows = []
    for item in found:
        names = item.get("Names") or [""]
        owner = (item.get("Labels") or {}).get(OWNER_LABEL, "")
        rows.append((str(item["Id"]), names[0].lstrip("/"), owner))
    return rows


def _remove_one(api: Any, cid: str) -> bool:
    try:
        api.remove_container(cid, force=True)
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        text = docker_attach.error_text(exc).lower()
        # Gone already, or the daemon is removing it (auto-remove of an exited container).
        if status == 404 or "no such container" in text or "already in progress" in text:
            return True
        logger.warning("removing sandbox container %s failed: %s", cid, text)
        return False
    return True


def remove_containers(
    ids: Iterable[str], timeout: float = CLI_TIMEOUT_S, *, client: Any = None
) -> bool:
    """Force-remove the given containers; True when the daemon did it (missing ones count).

    Each call to the daemon is bounded by `timeout` seconds (or `client`'s own limit).
    """
    ids = list(ids)
    if not ids:
        return True
    try:
        api = client if client is not None else docker_attach.api(timeout)
    except Exception as exc:
        logger.warning("removing sandbox containers %s failed: %s", ids, exc)
        return False
    if len(ids) == 1:
        return _remove_one(api, ids[0])
    with ThreadPoolExecutor(min(8, len(ids)), thread_name_prefix="or-env-rm") as pool:
        return all(pool.map(lambda cid: _remove_one(api, cid), ids))


def remove_stale_containers() -> list[str]:
    """Remove sandbox containers left by processes of this host that are gone; their names."""
    stale = [(cid, name) for cid, name, owner in list_containers() if owner_is_dead(owner)]
    if stale:
        logger.warning("removing %d sandbox containers left by dead processes", len(stale))
        remove_containers(cid for cid, _ in stale)
    return [name for _, name in stale]


def remove_all_containers() -> list[str]:
    """Remove every sandbox container on this daemon, whoever started it; their names.

    For cleaning up by hand: it also ends the containers of sandboxes that are running.
    """
    found = list_containers()
    remove_containers(cid for cid, _, _ in found)
    return [name for _, name, _ in found]


_stale_checked = False
_stale_lock = threading.Lock()


def remove_stale_once() -> None:
    global _stale_checked
    with _stale_lock:
        if _stale_checked:
            return
        _stale_checked = True
    try:
        remove_stale_containers()
    except RuntimeError as exc:
        logger.warning("could not look for stale sandbox containers: %s", exc)


# ----------------------------------------------------------------------------- SIGTERM


_sigterm_lock = threading.Lock()
_sigterm_installed = False


def _on_sigterm(signum: int, _frame: object) -> None:
    # Default SIGTERM would end us without running any cleanup: remove our containers
    # first (only labels are needed), then die the default way. A client of its own: the
    # signal may have interrupted a thread in the middle of the shared client's pool.
    try:
        client = docker_attach.new_api(10)
        mine = list_containers(f"label={OWNER_LABEL}={owner_id()}", client=client)
        remove_containers((cid for cid, _, _ in mine), client=client)
    except Exception:  # dying anyway; the next run removes what is left as stale
        logger.exception("removing sandbox containers on SIGTERM failed")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_sigterm_handler() -> None:
    """Clean up containers on SIGTERM, when SIGTERM has its default action and we can."""
    global _sigterm_installed
    with _sigterm_lock:
        if _sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the application handles SIGTERM itself: leave that alone
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True
