"""`sandbox="ray"`: the cluster sandbox pool, on a local Ray cluster started once per module.

The cluster has 2 CPUs and 8 units of the `or_env_sandbox` resource; the sandbox actors
take no CPU (`num_cpus=0`) and run the local backend inside.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest

from or_env import ORModelingEnv, load_problems
from or_env.reference import play_reference_episode, read_reported_answer, reference_code
from or_env.sandbox import (
    BACKENDS,
    SandboxFailure,
    UnisolatedSandboxError,
    make_sandbox,
    require_isolation,
    shared_sandbox,
)
from or_env.sandbox.ray_pool import (
    NoSandboxNodeError,
    RaySandbox,
    is_isolated,
    matches_labels,
    plan_layout,
)

SAMPLE = load_problems("sample")
POOL = "or_env_test_pool"
NAMESPACE = "or_env_test"


def _node(node_id: str, units: float, cpus: float = 4, **labels: str) -> dict:
    return {
        "NodeID": node_id,
        "Alive": True,
        "Resources": {"CPU": cpus, "or_env_sandbox": units} if units else {"CPU": cpus},
        "Labels": labels,
    }


# ---------------------------------------------------------------- layout (no Ray needed)


def test_plan_layout_fills_each_eligible_node() -> None:
    nodes = [_node("gpu", 0, cpus=96), _node("cpu-a", 64), _node("cpu-b", 32)]
    layout = plan_layout(nodes, resource="or_env_sandbox")
    assert layout == [{"node_id": "cpu-a", "workers": 64}, {"node_id": "cpu-b", "workers": 32}]
    layout = plan_layout(nodes, resource="or_env_sandbox", actors_per_node=4)
    assert [s["workers"] for s in layout] == [16] * 4 + [8] * 4
    layout = plan_layout(nodes, resource="or_env_sandbox", actors=3, workers_per_actor=5)
    assert layout == [{"node_id": None, "workers": 5}] * 3
    assert plan_layout(nodes, resource="or_env_sandbox", actors=8)[0]["workers"] == 12


def test_plan_layout_by_labels_and_without_nodes() -> None:
    nodes = [_node("a", 0, cpus=8, role="env"), _node("b", 0, cpus=8, role="gpu")]
    layout = plan_layout(nodes, resource=None, label_selector={"role": "env"})
    assert layout == [{"node_id": "a", "workers": 8}]
    with pytest.raises(NoSandboxNodeError, match="ray start"):
        plan_layout(nodes, resource="or_env_sandbox")
    # With a count and a size, actors may wait for the autoscaler to add nodes.
    assert len(plan_layout([], resource="or_env_sandbox", actors=2, workers_per_actor=4)) == 2


def test_matches_labels_operators() -> None:
    labels = {"role": "env", "zone": "a"}
    assert matches_labels(labels, {"role": "env"})
    assert matches_labels(labels, {"role": "!gpu"})
    assert matches_labels(labels, {"zone": "in(a, b)"})
    assert not matches_labels(labels, {"zone": "!in(a,b)"})
    assert not matches_labels(labels, {"missing": "x"})
    assert matches_labels(labels, None)


def test_ray_is_a_backend_and_isolation_modes() -> None:
    assert "ray" in BACKENDS
    assert is_isolated("namespaces+uid") and is_isolated("container")
    assert not is_isolated("uid") and not is_isolated(None)


# ---------------------------------------------------------------- on a local cluster


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            resources={"or_env_sandbox": 8},
            include_dashboard=False,
            log_to_driver=False,
            logging_level="warning",
        )
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def pool(ray_cluster):
    sandbox = make_sandbox(
        "ray",
        backend="local",
        actors=2,
        workers_per_actor=2,
        pool_name=POOL,
        namespace=NAMESPACE,
        start_timeout=120,
    )
    assert isinstance(sandbox, RaySandbox)
    with sandbox:
        yield sandbox


def _pool_actor_names(ray, pool_name: str) -> list[str]:
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE and a["name"].startswith(pool_name)
    ]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _play_async(env: ORModelingEnv, problem) -> float:
    await env.areset(options={"problem": problem})
    turn = f"I will model this and solve it.\n```python\n{reference_code(problem)}\n```\n"
    observation, reward, terminated, truncated, _ = await env.astep(turn)
    if not (terminated or truncated):
        answer = read_reported_answer(observation)
        _, reward, *_ = await env.astep(f"The answer is \\boxed{{{answer}}}.")
    return reward


@pytest.mark.ray
def test_pool_layout_and_isolation(pool: RaySandbox) -> None:
    described = pool.actor_descriptions()
    assert [d["name"] for d in described] == [f"{POOL}:0", f"{POOL}:1"]
    assert all(d["backend"] == "local" and d["workers"] == 2 and d["node_ip"] for d in described)
    assert pool.created
    if all(is_isolated(d["isolation"]) for d in described):
        require_isolation(pool)
    else:
        with pytest.raises(UnisolatedSandboxError):
            require_isolation(pool)


@pytest.mark.ray
def test_sample_set_from_concurrent_callers(pool: RaySandbox) -> None:
    """Threads (blocking `step`) and coroutines (`astep`) at once: every reward is 1."""
    rewards: dict[str, float] = {}
    errors: list[BaseException] = []

    def thread_caller(problems) -> None:
        env = ORModelingEnv(SAMPLE, sandbox=pool)
        try:
            for problem in problems:
                rewards[f"sync/{problem.id}"] = play_reference_episode(env, problem).reward
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    async def async_callers() -> list[float]:
        envs = [ORModelingEnv(SAMPLE, sandbox=pool) for _ in SAMPLE]
        return await asyncio.gather(*(_play_async(e, p) for e, p in zip(envs, SAMPLE, strict=True)))

    threads = [threading.Thread(target=thread_caller, args=(SAMPLE[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    async_rewards = asyncio.run(async_callers())
    for thread in threads:
        thread.join()
    assert not errors
    assert len(rewards) == len(SAMPLE)
    assert set(rewards.values()) == {1.0}, rewards
    assert async_rewards == [1.0] * len(SAMPLE)
    executions = [s["executions"] for s in pool.stats()]
    assert all(n > 0 for n in executions), executions  # both actors got work


@pytest.mark.ray
def test_another_process_finds_the_pool(pool: RaySandbox, ray_cluster) -> None:
    """A Ray task (another process) asking for the same pool uses the same actors."""
    ray = ray_cluster
    problem = SAMPLE[0]

    @ray.remote(num_cpus=0)
    def remote_episode(code: str) -> tuple[bool, list[str], str]:
        sandbox = RaySandbox(pool_name=POOL, namespace=NAMESPACE, backend="local")
        try:
            result = sandbox.run(code)
            names = [d["name"] for d in sandbox.actor_descriptions()]
            return sandbox.created, names, result.stdout
        finally:
            sandbox.close()  # only detaches: this process did not create the pool

    created, names, stdout = ray.get(remote_episode.remote(reference_code(problem)))
    assert not created
    assert names == [d["name"] for d in pool.actor_descriptions()]
    assert read_reported_answer(stdout) is not None
    assert pool.run("print('still here')").stdout == "still here\n"


@pytest.mark.ray
def test_shared_sandbox_ray_attaches_and_detaches(pool: RaySandbox) -> None:
    shared = shared_sandbox("ray", pool_name=POOL, namespace=NAMESPACE, backend="local")
    assert shared is shared_sandbox("ray", pool_name=POOL, namespace=NAMESPACE, backend="local")
    assert isinstance(shared, RaySandbox)
    assert shared.run("print(2 + 2)").stdout == "4\n"
    assert not shared.created
    shared.close()
    assert shared.run("print(1)").failure == SandboxFailure.CLOSED
    assert pool.run("print(3)").stdout == "3\n"  # a detach leaves the pool running


@pytest.mark.ray
def test_killed_actor_recovers_and_close_leaves_nothing(ray_cluster) -> None:
    """An actor killed mid-execution: the step returns an observation, the next steps
    succeed on the restarted actor; then `close` leaves no actor and no process."""
    ray = ray_cluster
    name = f"{POOL}_kill"
    sandbox = RaySandbox(
        backend="local",
        actors=1,
        workers_per_actor=1,
        pool_name=name,
        namespace=NAMESPACE,
        start_timeout=120,
    )
    env = ORModelingEnv(SAMPLE, sandbox=sandbox, timeout=60)
    env.reset(options={"problem": SAMPLE[0]})
    handle = sandbox.actor_handles()[0]
    first = sandbox.stats()[0]
    pids = [first["pid"], *first["descendants"]]

    def kill_soon() -> None:
        time.sleep(1.5)
        ray.kill(handle, no_restart=False)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    start = time.monotonic()
    observation, reward, terminated, _, info = env.step(
        "Let me wait.\n```python\nimport time\ntime.sleep(50)\n```\n"
    )
    killer.join()
    assert time.monotonic() - start < 30
    assert info["execution"]["failure"] == "lost"
    assert "actor" in info["execution"]["sandbox_error"]
    assert not terminated and reward == 0.0 and observation
    # Ray restarts the actor; the next executions wait for it and succeed.
    for problem in SAMPLE[:3]:
        assert play_reference_episode(env, problem).reward == 1.0
    again = sandbox.stats()[0]
    assert again["pid"] != first["pid"] and again["executions"] == 3
    pids += [again["pid"], *again["descendants"]]
    assert sorted(_pool_actor_names(ray, name)) == [name, f"{name}:0"]

    sandbox.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        _pool_actor_names(ray, name) or any(_alive(p) for p in pids)
    ):
        time.sleep(0.2)
    assert _pool_actor_names(ray, name) == []
    assert [p for p in pids if _alive(p)] == []
    sandbox.close()  # idempotent
    assert sandbox.run("print(1)").failure == SandboxFailure.CLOSED


@pytest.mark.ray
def test_sandbox_check_reports_the_pool(pool: RaySandbox, ray_cluster, capsys) -> None:
    from or_env.cli import main

    address = ray_cluster.get_runtime_context().gcs_address
    argv = ["sandbox", "check", "--ray", address, "--pool", POOL, "--namespace", NAMESPACE]
    assert main([*argv, "--no-solvers", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["existed"] and not report["created_for_check"]
    assert [a["name"] for a in report["actors"]] == [f"{POOL}:0", f"{POOL}:1"]
    assert {a["backend"] for a in report["actors"]} == {"local"}
    assert all(a["node_id"] and a["node_ip"] for a in report["actors"])
    assert report["nodes"][0]["units"] == 8
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"ray pool {POOL!r}" in text and f"{POOL}:1" in text and "pulp" in text
    assert pool.run("print(5)").stdout == "5\n"  # the check left the pool running


def _containers_of(pid: int) -> list[str]:
    """Sandbox containers whose owner label names process `pid` (of this host)."""
    import subprocess

    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            "label=or-env.sandbox=1",
            "--format",
            '{{.Names}} {{.Label "or-env.sandbox.owner"}}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if f"/{pid}/" in line]


@pytest.mark.ray
@pytest.mark.docker
def test_docker_backend_in_actors_and_no_container_left(ray_cluster) -> None:
    from or_env.sandbox.docker import docker_usable

    usable, why = docker_usable()
    if not usable:
        pytest.skip(why)
    sandbox = RaySandbox(
        backend="docker",
        actors=1,
        workers_per_actor=1,
        pool_name=f"{POOL}_docker",
        namespace=NAMESPACE,
        start_timeout=120,
    )
    with sandbox:
        assert sandbox.actor_descriptions()[0]["isolation"] == "container"
        require_isolation(sandbox)
        env = ORModelingEnv(SAMPLE, sandbox=sandbox)
        assert play_reference_episode(env, SAMPLE[1]).reward == 1.0
        pid = sandbox.stats()[0]["pid"]
        assert len(_containers_of(pid)) == 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _containers_of(pid):
        time.sleep(0.5)
    assert _containers_of(pid) == []
