"""Sandboxes that run policy-written programs: the protocol, the backends, and selection.

`make_sandbox("auto")` picks the Docker backend when a daemon answers and the sandbox
image exists, else the local backend (weaker isolation; it logs a warning saying so).
`make_sandbox("ray")` uses a cluster-wide pool of Ray actors, each holding a local or
Docker sandbox on a CPU node (`or_env.sandbox.ray_pool`; needs the `ray` extra).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import threading
import weakref
from typing import Any

from or_env.errors import SandboxError
from or_env.sandbox.base import ExecResult, Sandbox, SandboxBase, SandboxFailure

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "local", "docker", "ray")

__all__ = [
    "BACKENDS",
    "ExecResult",
    "Sandbox",
    "SandboxBase",
    "SandboxFailure",
    "UnisolatedSandboxError",
    "make_sandbox",
    "require_isolation",
    "shared_sandbox",
]


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
    if backend == "ray":
        from or_env.sandbox.ray_pool import RaySandbox

        return RaySandbox(**options)
    if backend == "docker":
        from or_env.sandbox.docker import DockerSandbox

        return DockerSandbox(**options)
    if kind == "auto":
        logger.warning("sandbox='auto' chose the local backend: %s", why)
    from or_env.sandbox.local import LocalSandbox

    return LocalSandbox(**options)


_shared: dict[tuple[str, str], Sandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox(kind: str = "auto", **options: Any) -> Sandbox:
    """A process-wide sandbox per (kind, options), shared by every env that asks for it.

    Many environments in one process (vectorised envs, hundreds of concurrent episodes)
    then share one pool of warm workers sized to the machine instead of starting one
    pool each. Shared sandboxes are closed when the interpreter exits.
    """
    # Options may hold lists and mappings (a YAML config's `extra_env`): key by their JSON.
    key = (kind, json.dumps(options, sort_keys=True, default=repr))
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


class UnisolatedSandboxError(SandboxError):
    """A sandbox without real isolation was about to run a training workload."""


_verified: weakref.WeakSet = weakref.WeakSet()


def require_isolation(sandbox: Sandbox, *, allow_unisolated: bool = False) -> None:
    """Refuse a local sandbox whose workers got no namespaces, unless told otherwise.

    A Ray pool (`sandbox="ray"`) is refused when any of its actors' sandboxes is.

    Without namespaces a program shares the host's network, /tmp and IPC with every
    other execution and can read ground truths: an RL learner will find that and train
    on it. Docker sandboxes and local ones with namespaces pass; the first call starts a
    worker to find out, later calls cost nothing.
    """
    if allow_unisolated or sandbox in _verified:
        return
    from or_env.sandbox.local import LocalSandbox
    from or_env.sandbox.ray_pool import RaySandbox, is_isolated

    inner = getattr(sandbox, "inner", sandbox)  # wrappers that time or count executions
    if isinstance(inner, RaySandbox):
        # Each actor reports its own sandbox's mode (nodes may differ: "auto" decides per node).
        weak = {
            name: mode for name, mode in inner.isolation_modes().items() if not is_isolated(mode)
        }
        if weak:
            raise UnisolatedSandboxError(
                f"{len(weak)} Ray sandbox actor(s) run programs without namespaces or a "
                f"container ({', '.join(f'{n}: {m!r}' for n, m in sorted(weak.items())[:4])}): "
                "programs could read ground truths. Use backend='docker' in sandbox_options, "
                "or nodes that allow user namespaces, or pass allow_unisolated=True"
            )
    elif isinstance(inner, LocalSandbox):
        if inner.isolation is None:
            inner.run("pass")
        mode = inner.isolation
        if mode is None or not mode.startswith("namespaces"):
            raise UnisolatedSandboxError(
                f"the local sandbox runs without Linux namespaces (isolation {mode!r}): "
                "programs could read ground truths and leave state for later episodes. "
                "Use sandbox='docker', or run where user namespaces are allowed "
                "(sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1), "
                "or pass allow_unisolated=True if you accept that"
            )
    with contextlib.suppress(TypeError):
        _verified.add(sandbox)
