"""Container lifecycle of the Docker sandbox: the old `docker` CLI path against the SDK path.

For each path, `--n` times:
  start     launch a worker container and get its first reply (ready frame + a ping)
  close     stop it (end of stdin) until the container is gone
  replace   kill the container from outside (the daemon's kill, same for both), then
            notice it is dead and start a replacement up to its first reply
  (detect   the part of `replace` until the pool knows the old one is dead)

The CLI path is what the backend did before it used the SDK: `docker run -i --rm` with
ContainerSpec's flags, one `docker` client process per container, `docker rm -f` after a
kill. The SDK path is `or_env.sandbox.docker.ContainerWorker` (create, attach, start over
the API; the daemon's events say when a container dies). Prints a markdown table of p50
and p90 in milliseconds.

    python benchmarks/bench_docker_lifecycle.py --n 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from or_env.sandbox import docker_attach
from or_env.sandbox.containers import (
    LABEL,
    OWNER_LABEL,
    POOL_LABEL,
    docker_cli_env,
    list_containers,
    owner_id,
    remove_containers,
)
from or_env.sandbox.docker import ContainerSpec, ContainerWorker, default_image, docker_usable
from or_env.sandbox.worker_client import WorkerProcess

POOL = f"bench-{os.getpid()}"
Factory = Callable[[str], WorkerProcess]


def _spec(image: str) -> ContainerSpec:
    labels = ((LABEL, "1"), (OWNER_LABEL, owner_id()), (POOL_LABEL, POOL))
    return ContainerSpec(image=image, labels=labels)


def cli_worker(spec: ContainerSpec) -> Factory:
    """The old path: a `docker run -i --rm ...` client process speaks for the container."""
    env = docker_cli_env()
    return lambda name: WorkerProcess(spec.run_args(name), env=env, start_timeout=60, name=name)


def sdk_worker(spec: ContainerSpec) -> Factory:
    return lambda name: ContainerWorker(spec, name, start_timeout=60)


def cli_remove(name: str) -> None:
    subprocess.run(
        ["docker", "rm", "-f", name], capture_output=True, env=docker_cli_env(), check=False
    )


def sdk_remove(name: str) -> None:
    remove_containers([name])


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.001)


def _gone(name: str) -> bool:
    return not list_containers(f"name={name}")


def measure(make: Factory, remove: Callable[[str], None], n: int, tag: str) -> dict:
    times: dict[str, list[float]] = {"start": [], "close": [], "detect": [], "replace": []}
    api = docker_attach.api()
    for i in range(n):
        name = f"or-env-bench-{tag}-{os.getpid()}-{i}"
        t0 = time.perf_counter()
        worker = make(name)
        worker.start()
        assert worker.ping(10)
        times["start"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        worker.stop()
        _wait(lambda name=name: _gone(name), 30)  # `docker run --rm` waits for this too
        times["close"].append(time.perf_counter() - t0)

        victim = make(name + "-k")
        victim.start()
        assert victim.ping(10)
        t0 = time.perf_counter()
        api.kill(victim.name)
        _wait(lambda victim=victim: not victim.alive, 30)
        times["detect"].append(time.perf_counter() - t0)
        fresh = make(name + "-r")
        fresh.start()
        assert fresh.ping(10)
        times["replace"].append(time.perf_counter() - t0)
        victim.stop()
        remove(victim.name)
        fresh.stop()
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=10, help="repeats per path (default 10)")
    p.add_argument("--image", default=None, help="sandbox image (default: this version's)")
    args = p.parse_args()
    image = args.image or default_image()
    ok, why = docker_usable(image)
    if not ok:
        print(f"Docker unusable: {why}", file=sys.stderr)
        return 2
    spec = _spec(image)
    paths = {
        "CLI (docker run -i --rm)": measure(cli_worker(spec), cli_remove, args.n, "cli"),
        "SDK (create/attach/start)": measure(sdk_worker(spec), sdk_remove, args.n, "sdk"),
    }
    left = list_containers(f"label={POOL_LABEL}={POOL}")
    remove_containers(cid for cid, _, _ in left)

    names = list(paths)
    print(f"\n{why}; image {image}; n={args.n} per path; milliseconds\n")
    header = "| step | " + " | ".join(f"{k} p50 | {k} p90" for k in names) + " |"
    print(header)
    print("|---" * (1 + 2 * len(names)) + "|")
    for step in ("start", "close", "detect", "replace"):
        cells = []
        for key in names:
            values = paths[key][step]
            cells += [f"{_pct(values, 0.5):.0f}", f"{_pct(values, 0.9):.0f}"]
        print(f"| {step} | " + " | ".join(cells) + " |")
    means = {k: statistics.fmean(v["start"]) * 1000 for k, v in paths.items()}
    print("\nmean start: " + ", ".join(f"{k} {m:.0f} ms" for k, m in means.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
