"""Sandboxes that run policy-written programs: the protocol, the backends, and selection.

`make_sandbox("auto")` picks the Docker backend when a daemon answers and the sandbox
image exists, else the local backend (weaker isolation; it logs a warning saying so).
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from or_env.sandbox.base import ExecResult, Sandbox, SandboxBase

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "local", "docker")

__all__ = ["BACKENDS", "ExecResult", "Sandbox", "SandboxBase", "make_sandbox", "shared_sandbox"]


def resolve_backend(kind: str) -> tuple[str, str]:
    """Return (backend, why) for a requested kind; "auto" prefers Docker when usable."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown sandbox {kind!r}; expected one of {BACKENDS} or a Sandbox")
    if kind != "auto":
        return kind, f"requested explicitly (sandbox={kind!r})"
    try:
        from or_env.sandbox import docker as docker_backend
    except ImportError:
        return "local", "the docker backend is not available in this installation"
    usable, why = docker_backend.docker_usable()
    return ("docker", why) if usable else ("local", why)


def make_sandbox(kind: str = "auto", **options: Any) -> Sandbox:
    """Create a new sandbox of the given kind; the caller owns it and must close it."""
    backend, why = resolve_backend(kind)
    if backend == "docker":
        from or_env.sandbox.docker import DockerSandbox

        return DockerSandbox(**options)
    if kind == "auto":
        logger.warning("sandbox='auto' chose the local backend: %s", why)
    from or_env.sandbox.local import LocalSandbox

    return LocalSandbox(**options)


_shared: dict[tuple[str, tuple[tuple[str, Any], ...]], Sandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox(kind: str = "auto", **options: Any) -> Sandbox:
    """A process-wide sandbox per (kind, options), shared by every env that asks for it.

    Many environments in one process (vectorised envs, hundreds of concurrent episodes)
    then share one pool of warm workers sized to the machine instead of starting one
    pool each. Shared sandboxes are closed when the interpreter exits.
    """
    key = (kind, tuple(sorted(options.items())))
    with _shared_lock:
        sandbox = _shared.get(key)
        if sandbox is None:
            sandbox = make_sandbox(kind, **options)
            _shared[key] = sandbox
            if len(_shared) == 1:
                atexit.register(close_shared_sandboxes)
        return sandbox


def close_shared_sandboxes() -> None:
    """Close every shared sandbox (also runs at interpreter exit)."""
    with _shared_lock:
        sandboxes = list(_shared.values())
        _shared.clear()
    for sandbox in sandboxes:
        try:
            sandbox.close()
        except Exception:  # closing is best effort at exit
            logger.exception("closing sandbox %s failed", sandbox)
