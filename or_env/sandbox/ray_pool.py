"""`sandbox="ray"`: the sandbox as a cluster service, a pool of async Ray actors.

Each actor holds a warm sandbox of its own (`make_sandbox(backend, workers=W)`: the
local or Docker backend, on the node the actor landed on) and runs at most W programs at
once. Actors go on the nodes that offer a custom resource (default `or_env_sandbox`) or
match a label selector, so sandbox capacity grows by adding CPU nodes:

    ray start --address HEAD:6379 --resources='{"or_env_sandbox": 64}'   # on each CPU node

One unit of the resource is one sandbox worker (one program at a time, about one core):
an actor with W workers asks for W units, and by default each eligible node gets one
actor with as many workers as the node offers units.

The pool is created once per cluster. A small named head actor (`pool_name` in
`namespace`, created with `get_if_exists`) creates the sandbox actors and hands their
handles to every process that asks, so every env, agent-loop worker and eval process
that says `sandbox="ray"` with the same pool name shares the same actors. The first
process to ask sets the layout; later ones use it as it is (a warning says when their
options differ).

Routing is done by each caller, not by a router actor: a caller keeps the number of its
own executions in flight per actor and sends the next one to the actor with the fewest
per worker. Executions are stateless, so any actor will do, and a router actor would add
a hop and a single point of failure to every execution; many callers each balancing
their own load balance the sum well enough. An actor whose execution was lost is left
out until it answers again (a thread of the caller watches it); while no actor is up,
callers wait for one (at most `start_timeout`) rather than fail.

Failures: an actor that dies (killed, out of memory, node lost) fails the executions it
had in flight with `ExecResult(sandbox_error=..., failure=LOST)`, which the env shows as
an observation; Ray restarts it (`max_restarts`) and later executions succeed. Calls are
never retried by Ray (`max_task_retries=0`): a program may be what killed the actor.

Lifetime: the pool lives as long as the process that created it (its owner), unless
`detached=True`. `close()` in the creating process shuts the pool down (each actor closes
its sandbox, then the actors and the head are killed); in any other process, or for a
detached pool, `close()` only lets go of the handles (`shutdown_pool` removes a detached
pool).

Ray is imported lazily; install it with `pip install 'or-env[ray]'`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from or_env.errors import MissingExtraError, SandboxError
from or_env.sandbox.base import ExecResult, SandboxBase, SandboxFailure
from or_env.sandbox.proc_memory import descendants, memory_kib

logger = logging.getLogger(__name__)

DEFAULT_RESOURCE = "or_env_sandbox"
DEFAULT_NAMESPACE = "or_env"
DEFAULT_POOL_NAME = "or_env_sandbox"
# Isolation modes that keep programs away from ground truths and from each other.
ISOLATED_MODES = ("container", "namespaces")


def import_ray() -> Any:
    """The `ray` module, or a MissingExtraError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("sandbox='ray' needs Ray: pip install 'or-env[ray]'") from exc
    return ray


class NoSandboxNodeError(SandboxError):
    """No alive node offers the pool's resource or matches its label selector."""


# ---------------------------------------------------------------------------- layout


def matches_labels(labels: Mapping[str, str], selector: Mapping[str, str] | None) -> bool:
    """Whether node `labels` satisfy a Ray label selector.

    Supports Ray's forms: "value", "!value", "in(a,b)" and "!in(a,b)".
    """
    for key, wanted in (selector or {}).items():
        value = labels.get(key)
        negate = wanted.startswith("!")
        expr = wanted[1:] if negate else wanted
        if expr.startswith("in(") and expr.endswith(")"):
            ok = value in {v.strip() for v in expr[3:-1].split(",")}
        else:
            ok = value == expr
        if ok == negate:
            return False
    return True


def node_capacity(node: Mapping[str, Any], resource: str | None) -> int:
    """Sandbox workers a node offers: its units of `resource`, else its CPUs."""
    resources = node.get("Resources") or {}
    amount = resources.get(resource, 0) if resource else resources.get("CPU", 1)
    return max(0, int(amount))


def eligible_nodes(
    nodes: Sequence[Mapping[str, Any]],
    resource: str | None,
    label_selector: Mapping[str, str] | None,
) -> list[Mapping[str, Any]]:
    """Alive nodes that offer at least one unit of `resource` and match the selector."""
    return [
        node
        for node in nodes
        if node.get("Alive", True)
        and node_capacity(node, resource) >= 1
        and matches_labels(node.get("Labels") or {}, label_selector)
    ]


def plan_layout(
    nodes: Sequence[Mapping[str, Any]],
    *,
    resource: str | None,
    label_selector: Mapping[str, str] | None = None,
    actors: int | None = None,
    actors_per_node: int | None = None,
    workers_per_actor: int | None = None,
) -> list[dict[str, Any]]:
    """The actors to create: [{"node_id": id or None (anywhere), "workers": W}, ...].

    `actors=N`: N actors spread over the eligible nodes, W workers each (default: the
    eligible units divided by N). Otherwise `actors_per_node` (default 1) actors on each
    eligible node, W each (default: that node's units divided by the actors per node).
    """
    found = eligible_nodes(nodes, resource, label_selector)
    if actors is not None:
        if workers_per_actor is None:
            if not found:
                raise NoSandboxNodeError(_no_node_message(resource, label_selector))
            total = sum(node_capacity(n, resource) for n in found)
            workers_per_actor = max(1, total // actors)
        return [{"node_id": None, "workers": workers_per_actor} for _ in range(actors)]
    if not found:
        raise NoSandboxNodeError(_no_node_message(resource, label_selector))
    per_node = actors_per_node or 1
    layout = []
    for node in found:
        workers = workers_per_actor or max(1, node_capacity(node, resource) // per_node)
        layout += [{"node_id": node["NodeID"], "workers": workers} for _ in range(per_node)]
    return layout


def _no_node_message(resource: str | None, label_selector: Mapping[str, str] | None) -> str:
    wanted = []
    if resource:
        wanted.append(f"offers the resource {resource!r}")
    if label_selector:
        wanted.append(f"matches the labels {dict(label_selector)}")
    return (
        f"no alive Ray node {' and '.join(wanted) or 'is there'}: start CPU nodes with "
        f"`ray start --address HEAD:6379 --resources='{{\"{resource or DEFAULT_RESOURCE}\": 64}}'`"
        " (one unit per sandbox worker), or pass actors=N with workers_per_actor=W to let "
        "the autoscaler add them"
    )


# ---------------------------------------------------------------------------- actors


class SandboxActor:
    """One Ray actor of the pool: a warm sandbox and a bound on programs in flight.

    Wrapped with `ray.remote` when the pool is created; its methods are coroutines, so
    it is an asyncio actor that serves many callers at once while at most `workers`
    programs run (the rest wait on a semaphore, in the actor, not in Ray's queue).
    """

    def __init__(
        self, backend: str, workers: int, options: Mapping[str, Any], prestart: bool
    ) -> None:
        from or_env.sandbox import make_sandbox

        self.workers = workers
        self.sandbox = make_sandbox(backend, workers=workers, **dict(options))
        self.semaphore = asyncio.Semaphore(workers)
        self.in_flight = 0
        self.executions = 0
        self.failures = 0
        if prestart and hasattr(self.sandbox, "start"):
            self.sandbox.start()  # warm: the first programs do not pay worker start-up

    async def run(self, code: str, timeout: float | None) -> dict[str, Any]:
        """Run one program; the ExecResult as a dict (plain data crosses Ray best)."""
        self.in_flight += 1
        try:
            async with self.semaphore:
                result = await self.sandbox.arun(code, timeout=timeout)
        finally:
            self.in_flight -= 1
        self.executions += 1
        self.failures += result.sandbox_error is not None
        data = result.to_dict()
        data["failure"] = None if result.failure is None else str(result.failure)
        return data

    async def describe(self) -> dict[str, Any]:
        """Where this actor runs and how its sandbox confines programs."""
        import ray

        if getattr(self.sandbox, "isolation", "") is None:
            await self.sandbox.arun("pass")  # a local sandbox knows its mode once a worker ran
        context = ray.get_runtime_context()
        return {
            "node_id": context.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "backend": self.sandbox.name,
            "workers": self.workers,
            "isolation": getattr(self.sandbox, "isolation", None),
            "isolation_details": getattr(self.sandbox, "isolation_details", None),
        }

    async def stats(self) -> dict[str, Any]:
        """Counters and memory: this process, and it plus its sandbox processes."""
        pid = os.getpid()
        own_rss, own_pss = memory_kib(pid)
        children = descendants(pid)
        readings = [memory_kib(p) for p in children]
        return {
            "pid": pid,
            "descendants": children,
            "in_flight": self.in_flight,
            "executions": self.executions,
            "failures": self.failures,
            "actor_rss_kib": own_rss,
            "tree_rss_kib": own_rss + sum(r for r, _ in readings),
            "tree_pss_kib": own_pss + sum(p for _, p in readings),
            "processes": 1 + len(readings),
        }

    async def close(self) -> None:
        """Close the sandbox (stops its workers or containers)."""
        await asyncio.to_thread(self.sandbox.close)


class PoolHead:
    """The named actor that creates a pool's sandbox actors and hands them out.

    Creating it with `get_if_exists` makes the pool a once-per-cluster thing: the first
    process creates it (and, through it, the actors, which it owns), later ones find it.
    """

    def __init__(self, spec: Mapping[str, Any], token: str) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.spec = dict(spec)
        self.token = token
        self.layout = plan_layout(
            ray.nodes(),
            resource=spec["resource"],
            label_selector=spec["label_selector"],
            actors=spec["actors"],
            actors_per_node=spec["actors_per_node"],
            workers_per_actor=spec["workers_per_actor"],
        )
        remote_class = ray.remote(SandboxActor)
        self.names: list[str] = []
        self.handles: list[Any] = []
        for index, slot in enumerate(self.layout):
            options: dict[str, Any] = {
                "name": f"{spec['pool_name']}:{index}",
                "namespace": spec["namespace"],
                "num_cpus": spec["num_cpus"],
                "max_restarts": spec["max_restarts"],
                "max_task_retries": 0,  # never re-run a program silently
                "max_concurrency": spec["max_concurrency"],
            }
            if spec["resource"]:
                options["resources"] = {spec["resource"]: slot["workers"]}
            if spec["label_selector"]:
                options["label_selector"] = dict(spec["label_selector"])
            if slot["node_id"] is None:
                options["scheduling_strategy"] = "SPREAD"
            else:
                # soft: a restart after the node is lost may go to another eligible node.
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                    slot["node_id"], soft=True
                )
            handle = remote_class.options(**options).remote(
                spec["backend"], slot["workers"], spec["sandbox_options"], spec["prestart"]
            )
            self.names.append(options["name"])
            self.handles.append(handle)

    async def info(self) -> dict[str, Any]:
        """The pool's spec, the token of its creator, and the actors' names and handles."""
        return {
            "spec": self.spec,
            "token": self.token,
            "layout": self.layout,
            "names": self.names,
            "handles": self.handles,
        }

    async def shutdown(self, grace_s: float = 30.0) -> None:
        """Close every actor's sandbox (bounded by `grace_s`), then kill the actors."""
        import ray

        closing = [handle.close.remote() for handle in self.handles]
        if closing:
            await asyncio.wait([asyncio.ensure_future(ref) for ref in closing], timeout=grace_s)
        for handle in self.handles:
            try:
                ray.kill(handle, no_restart=True)
            except Exception:  # an actor already gone is what we want
                logger.debug("kill of a sandbox actor failed", exc_info=True)


def shutdown_pool(
    pool_name: str = DEFAULT_POOL_NAME, namespace: str = DEFAULT_NAMESPACE, grace_s: float = 30.0
) -> bool:
    """Shut down a pool by name (a detached one, or one created elsewhere); False if none."""
    ray = import_ray()
    try:
        head = ray.get_actor(pool_name, namespace=namespace)
    except ValueError:
        return False
    try:
        ray.get(head.shutdown.remote(grace_s), timeout=grace_s + 30)
    except ray.exceptions.RayError:
        logger.warning("the sandbox pool %s did not shut down cleanly", pool_name, exc_info=True)
    ray.kill(head, no_restart=True)
    return True


# ---------------------------------------------------------------------------- client


@dataclass
class _Actor:
    name: str
    handle: Any
    workers: int
    in_flight: int = 0
    state: str = "up"  # "recovering" after a lost execution until it answers; "dead"
    info: dict[str, Any] = field(default_factory=dict)


class RaySandbox(SandboxBase):
    """Runs programs on a cluster-wide pool of Ray sandbox actors (see the module doc).

    `run` and `arun` send each program to the actor with the fewest of this process's
    executions in flight per worker; `arun` only awaits Ray object refs (no `ray.get` on
    the event loop); the first call finds or creates the pool (`astart()` does it ahead,
    off the loop). An actor lost mid-execution yields `sandbox_error` with failure LOST.

    Args:
        backend: the sandbox inside each actor: "local", "docker" or "auto" (decided on
            each actor's node).
        actors: number of actors, spread over the eligible nodes; default: one actor per
            eligible node (or `actors_per_node` each).
        actors_per_node: actors on each eligible node (when `actors` is not given).
        workers_per_actor: programs one actor runs at once (its sandbox's pool size);
            default: the node's units of `resource` (its CPUs without one) divided among
            its actors. `workers` is accepted as the same thing (`--sandbox-workers`).
        resource: the custom resource marking sandbox nodes; an actor asks for one unit
            per worker. None: no resource (place by `label_selector`, or anywhere).
        label_selector: node labels the actors need, e.g. {"node-role": "env"}.
        namespace: the Ray namespace of the pool's actors.
        pool_name: the head actor's name; processes asking for the same name share a pool.
        max_restarts: restarts of a failed actor (-1: unlimited).
        num_cpus: logical CPUs each actor reserves (default 0: the resource does the
            accounting, and Ray's CPUs stay free for training workers).
        max_concurrency: calls an actor accepts at once (more queue in Ray).
        address: the cluster to connect to when Ray is not initialised yet (None:
            `$RAY_ADDRESS` if set, else a new local instance offering one unit of
            `resource` per CPU, shut down by `close`).
        timeout: default wall-clock limit per program, in seconds.
        start_timeout: seconds to wait for every actor to be placed and ready.
        reply_timeout: seconds a call may wait beyond its program's timeout before it
            returns LOST (None: no limit; Ray reports dead actors and nodes anyway, and
            queueing behind other programs can be long under load).
        prestart: start every actor's workers when it is created (warm pool).
        detached: the pool outlives its creator (remove it with `shutdown_pool`).
        **sandbox_options: more options of the sandbox inside each actor (memory_mb, ...).
    """

    name = "ray"

    def __init__(
        self,
        *,
        backend: str = "auto",
        actors: int | None = None,
        actors_per_node: int | None = None,
        workers_per_actor: int | None = None,
        workers: int | None = None,
        resource: str | None = DEFAULT_RESOURCE,
        label_selector: Mapping[str, str] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        pool_name: str = DEFAULT_POOL_NAME,
        max_restarts: int = 16,
        num_cpus: float = 0,
        max_concurrency: int = 1000,
        address: str | None = None,
        timeout: float = 30.0,
        start_timeout: float = 300.0,
        reply_timeout: float | None = None,
        prestart: bool = True,
        detached: bool = False,
        **sandbox_options: Any,
    ) -> None:
        if backend not in ("auto", "local", "docker"):
            raise ValueError(f"backend must be 'auto', 'local' or 'docker', got {backend!r}")
        if workers is not None and workers_per_actor is not None and workers != workers_per_actor:
            raise ValueError("pass workers_per_actor or workers (the same thing), not both")
        workers_per_actor = workers_per_actor if workers_per_actor is not None else workers
        for label, value in (
            ("actors", actors),
            ("actors_per_node", actors_per_node),
            ("workers_per_actor", workers_per_actor),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be at least 1, got {value}")
        if actors is not None and actors_per_node is not None:
            raise ValueError("pass actors or actors_per_node, not both")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._ray = import_ray()
        self.timeout = timeout
        self.address = address
        self.start_timeout = start_timeout
        self.reply_timeout = reply_timeout
        self.detached = detached
        self.pool_name = pool_name
        self.namespace = namespace
        self.spec: dict[str, Any] = {
            "backend": backend,
            "actors": actors,
            "actors_per_node": actors_per_node,
            "workers_per_actor": workers_per_actor,
            "resource": resource,
            "label_selector": dict(label_selector) if label_selector else None,
            "namespace": namespace,
            "pool_name": pool_name,
            "max_restarts": max_restarts,
            "num_cpus": num_cpus,
            "max_concurrency": max_concurrency,
            "prestart": prestart,
            "sandbox_options": {"timeout": timeout, **sandbox_options},
        }
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._actors: list[_Actor] = []
        self._head: Any = None
        self._created = False
        self._started_ray = False
        self._closed = False
        self._next = 0

    # ------------------------------------------------------------------ pool set-up

    @property
    def started(self) -> bool:
        """Whether this process has found (or created) the pool."""
        return bool(self._actors)

    @property
    def created(self) -> bool:
        """Whether this process created the pool (and so shuts it down on close)."""
        return self._created

    def start(self) -> None:
        """Find or create the pool and wait until every actor is ready (blocking)."""
        with self._start_lock:
            if self._closed:
                raise SandboxError("this RaySandbox is closed; create a new one")
            if self._actors:
                return
            self._connect()
            ray = self._ray
            token = uuid.uuid4().hex
            head_options: dict[str, Any] = {
                "name": self.pool_name,
                "namespace": self.namespace,
                "get_if_exists": True,
                "num_cpus": 0,
                "max_restarts": 0,
            }
            if self.detached:
                head_options["lifetime"] = "detached"
            head = ray.remote(PoolHead).options(**head_options).remote(self.spec, token)
            try:
                info = ray.get(head.info.remote(), timeout=self.start_timeout)
            except ray.exceptions.RayActorError as exc:
                cause = exc.__cause__ or exc
                raise SandboxError(f"the sandbox pool {self.pool_name!r} failed: {cause}") from exc
            except ray.exceptions.GetTimeoutError as exc:
                raise SandboxError(
                    f"the sandbox pool head {self.pool_name!r} did not start within "
                    f"{self.start_timeout} s"
                ) from exc
            self._created = info["token"] == token
            if not self._created and info["spec"] != self.spec:
                logger.warning(
                    "sandbox pool %r exists with other options; using it as it is: %s",
                    self.pool_name,
                    info["spec"],
                )
            actors = [
                _Actor(name, handle, slot["workers"])
                for name, handle, slot in zip(
                    info["names"], info["handles"], info["layout"], strict=True
                )
            ]
            self._wait_ready(actors, info["spec"])
            self._head = head
            self._actors = actors
            logger.info(
                "sandbox pool %r: %d actors, %d workers (%s)",
                self.pool_name,
                len(actors),
                sum(a.workers for a in actors),
                "created here" if self._created else "found",
            )

    async def astart(self) -> None:
        """`start` on a thread, so the event loop keeps running meanwhile."""
        if not self._actors:
            await asyncio.to_thread(self.start)

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        if self.address is not None:
            ray.init(address=self.address)
            return
        if os.environ.get("RAY_ADDRESS"):
            ray.init()  # the cluster RAY_ADDRESS names
            return
        # No cluster named: a local one for development, offering one unit per CPU. (Not
        # address="auto", which would join whatever cluster this machine last started.)
        resource = self.spec["resource"]
        resources = {resource: float(os.cpu_count() or 1)} if resource else None
        ray.init(resources=resources, include_dashboard=False)
        self._started_ray = True
        logger.info("started a local Ray instance for the sandbox pool")

    def _wait_ready(self, actors: list[_Actor], spec: Mapping[str, Any]) -> None:
        ray = self._ray
        refs = [actor.handle.describe.remote() for actor in actors]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        if pending:
            waiting = [a.name for a, r in zip(actors, refs, strict=True) if r in pending]
            resource = spec["resource"]
            raise SandboxError(
                f"{len(pending)} of {len(refs)} sandbox actors were not ready within "
                f"{self.start_timeout} s ({', '.join(waiting[:4])}"
                f"{', ...' if len(waiting) > 4 else ''}): "
                + (
                    f"each asks for {{{resource!r}: its workers}}; "
                    if resource
                    else "no node fits them; "
                )
                + _no_node_message(resource, spec["label_selector"])
            )
        for actor, ref in zip(actors, refs, strict=True):
            try:
                actor.info = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise SandboxError(f"sandbox actor {actor.name} failed to start: {exc}") from exc

    # ------------------------------------------------------------------ running

    def _pick(self) -> _Actor | None:
        """The up actor with the fewest of our executions in flight per worker (counted)."""
        with self._lock:
            count = len(self._actors)
            start, self._next = self._next, (self._next + 1) % max(1, count)
            # Rotate the scan so that ties spread over the actors.
            up = [self._actors[(start + k) % count] for k in range(count)]
            up = [a for a in up if a.state == "up"]
            if not up:
                return None
            best = min(up, key=lambda a: a.in_flight / a.workers)
            best.in_flight += 1
            return best

    def _release(self, actor: _Actor, *, lost: bool) -> None:
        with self._lock:
            actor.in_flight -= 1
            if not lost or actor.state != "up":
                return
            actor.state = "recovering"
        # Route around the actor until it answers again: programs sent to an actor that
        # Ray is restarting fail at once. A thread, so that neither `run` nor `arun` waits.
        threading.Thread(
            target=self._watch, args=(actor,), name=f"or-env-ray-watch-{actor.name}", daemon=True
        ).start()

    def _watch(self, actor: _Actor) -> None:
        """Wait until a failed actor is back (Ray restarts it), or mark it dead."""
        ray = self._ray
        deadline = time.monotonic() + self.start_timeout
        delay = 0.1
        while not self._closed:
            try:
                info = ray.get(actor.handle.describe.remote(), timeout=30)
            except ray.exceptions.ActorDiedError:
                break  # out of restarts (or killed for good)
            except ray.exceptions.RayError:
                if time.monotonic() > deadline:
                    break
                time.sleep(delay)
                delay = min(2.0, delay * 2)
                continue
            with self._lock:
                actor.info, actor.state = info, "up"
            logger.info("sandbox actor %s is back (pid %s)", actor.name, info.get("pid"))
            return
        with self._lock:
            actor.state = "dead"
        if not self._closed:
            logger.error("sandbox actor %s is gone for good; %s", actor.name, self._up_summary())

    def _up_summary(self) -> str:
        with self._lock:
            up = [a for a in self._actors if a.state == "up"]
        return f"{len(up)} of {len(self._actors)} actors up"

    def _unavailable(self) -> ExecResult | None:
        """Why no actor can take a program now, or None when one may become free."""
        with self._lock:
            states = {a.state for a in self._actors}
        if "up" in states or "recovering" in states:
            return None
        return ExecResult(
            "",
            "",
            None,
            sandbox_error=f"every actor of the sandbox pool {self.pool_name!r} is dead "
            "(out of restarts): create the pool again",
            failure=SandboxFailure.LOST,
        )

    def _no_actor_up(self, waited: float) -> ExecResult:
        return ExecResult(
            "",
            "",
            None,
            sandbox_error=f"no actor of the sandbox pool {self.pool_name!r} came back within "
            f"{waited:.0f} s ({self._up_summary()})",
            failure=SandboxFailure.LOST,
        )

    def _closed_result(self) -> ExecResult:
        return ExecResult(
            "",
            "",
            None,
            sandbox_error="this RaySandbox is closed; create a new one",
            failure=SandboxFailure.CLOSED,
        )

    def _lost(self, actor: _Actor, exc: BaseException) -> ExecResult:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return ExecResult(
            "",
            "",
            None,
            sandbox_error=(
                f"the sandbox actor {actor.name} failed during this execution "
                f"({type(exc).__name__}{': ' + detail[:300] if detail else ''}); Ray restarts "
                "it, and later executions go to the other actors meanwhile: run again"
            ),
            failure=SandboxFailure.LOST,
        )

    def _deadline(self, limit: float) -> float | None:
        return None if self.reply_timeout is None else limit + self.reply_timeout

    def _stop_waiting(self, waited_since: float) -> ExecResult | None:
        """While no actor is up: the result to return instead of waiting on, if any."""
        if self._closed:
            return self._closed_result()
        if (why := self._unavailable()) is not None:
            return why
        if time.monotonic() - waited_since > self.start_timeout:
            return self._no_actor_up(self.start_timeout)
        return None

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Run `code` on the least-loaded actor (blocking); never raises for the program."""
        limit = self.timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {limit}")
        if self._closed:
            return self._closed_result()
        self.start()
        ray = self._ray
        waited_since = time.monotonic()
        while (actor := self._pick()) is None:
            # Every actor is being restarted: wait for one (bounded), never fail at once.
            if (why := self._stop_waiting(waited_since)) is not None:
                return why
            time.sleep(0.05)
        lost = False
        try:
            ref = actor.handle.run.remote(code, limit)
            return _result(ray.get(ref, timeout=self._deadline(limit)))
        except ray.exceptions.RayError as exc:
            lost = True
            return self._closed_result() if self._closed else self._lost(actor, exc)
        finally:
            self._release(actor, lost=lost)

    async def arun(self, code: str, *, timeout: float | None = None) -> ExecResult:
        """Like `run`, awaiting the actor's reply (the event loop is never blocked)."""
        limit = self.timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {limit}")
        if self._closed:
            return self._closed_result()
        await self.astart()
        ray = self._ray
        waited_since = time.monotonic()
        while (actor := self._pick()) is None:
            if (why := self._stop_waiting(waited_since)) is not None:
                return why
            await asyncio.sleep(0.05)
        lost = False
        try:
            ref = actor.handle.run.remote(code, limit)
            deadline = self._deadline(limit)
            data = await (ref if deadline is None else asyncio.wait_for(ref, deadline))
            return _result(data)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            lost = True
            return self._closed_result() if self._closed else self._lost(actor, exc)
        finally:
            self._release(actor, lost=lost)

    # ------------------------------------------------------------------ inspection

    def actor_descriptions(self) -> list[dict[str, Any]]:
        """Per actor: name, node id and IP, pid, backend, workers, isolation (as at start)."""
        self.start()
        return [{"name": a.name, **a.info} for a in self._actors]

    def isolation_modes(self) -> dict[str, str | None]:
        """Actor name -> how its sandbox confines programs ("namespaces+uid", "container")."""
        return {d["name"]: d.get("isolation") for d in self.actor_descriptions()}

    @property
    def isolation(self) -> str | None:
        """The weakest isolation mode among the actors (None until the pool is found)."""
        if not self._actors:
            return None
        modes = [a.info.get("isolation") for a in self._actors]
        weak = [m for m in modes if not is_isolated(m)]
        return str(weak[0]) if weak else str(modes[0])

    def stats(self) -> list[dict[str, Any]]:
        """Per actor: executions, failures, in flight, memory (RSS/PSS in KiB)."""
        self.start()
        ray = self._ray
        refs = [a.handle.stats.remote() for a in self._actors]
        out = []
        for actor, ref in zip(self._actors, refs, strict=True):
            try:
                out.append({"name": actor.name, **ray.get(ref, timeout=60)})
            except ray.exceptions.RayError as exc:
                out.append({"name": actor.name, "error": f"{type(exc).__name__}: {exc}"})
        return out

    def actor_handles(self) -> list[Any]:
        """The actors' Ray handles (for tests and monitoring)."""
        self.start()
        return [a.handle for a in self._actors]

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Shut the pool down if this process created it (and it is not detached), else
        let go of it. Executions still waiting return CLOSED. Idempotent."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            actors, head = self._actors, self._head
            self._actors, self._head = [], None
        ray = self._ray
        if not ray.is_initialized():
            return  # Ray already shut down (at exit): an owned pool died with it
        if head is not None and self._created and not self.detached:
            try:
                ray.get(head.shutdown.remote(), timeout=90)
            except ray.exceptions.RayError:
                logger.warning("sandbox pool %r: shutdown failed", self.pool_name, exc_info=True)
                for actor in actors:
                    try:
                        ray.kill(actor.handle, no_restart=True)
                    except Exception:  # already gone
                        logger.debug("kill of %s failed", actor.name, exc_info=True)
            try:
                ray.kill(head, no_restart=True)
            except Exception:  # already gone
                logger.debug("kill of the pool head failed", exc_info=True)
        if self._started_ray:
            ray.shutdown()

    def __repr__(self) -> str:
        state = f"{len(self._actors)} actors" if self._actors else "not started"
        return f"RaySandbox(pool={self.pool_name!r}, namespace={self.namespace!r}, {state})"


def is_isolated(mode: str | None) -> bool:
    """Whether an isolation mode keeps programs from ground truths and from each other."""
    return mode is not None and mode.startswith(ISOLATED_MODES)


def _result(data: Mapping[str, Any]) -> ExecResult:
    fields = dict(data)
    failure = fields.get("failure")
    fields["failure"] = None if failure is None else SandboxFailure(failure)
    return ExecResult(**fields)


__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_POOL_NAME",
    "DEFAULT_RESOURCE",
    "NoSandboxNodeError",
    "PoolHead",
    "RaySandbox",
    "SandboxActor",
    "import_ray",
    "is_isolated",
    "matches_labels",
    "plan_layout",
    "shutdown_pool",
]
