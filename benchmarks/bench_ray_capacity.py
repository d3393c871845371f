"""Sandbox capacity through `sandbox="ray"`: N concurrent episodes on a local Ray cluster.

Starts a local Ray cluster offering `--cores` units of `or_env_sandbox`, creates the
sandbox pool (`--actors` actors x `--workers-per-actor` local workers, all warm), then for
each N in `--episodes` plays N episodes at once with `ORModelingEnv.astep` from one
asyncio loop: a replay policy that sends each bundled sample problem's reference program,
then the answer it printed (two steps, one code execution per episode). Reports
episodes/s, executions/s (and per sandbox core), p50/p99 latency of the steps that ran
code (queueing included), and per actor the peak memory of the actor process and of it
plus its sandbox workers (RSS, and PSS, which splits pages the forked workers share).
Every episode must end correct (reward 1) and no execution may fail.

    python benchmarks/bench_ray_capacity.py --episodes 64 256 1024 --json OUT.json

`--baseline` also plays the largest N on a `LocalSandbox` with the same number of workers
in this process, to show what the Ray hop costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

from or_env import ORModelingEnv, load_problems
from or_env.reference import read_reported_answer, reference_code
from or_env.sandbox import Sandbox


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def play(env: ORModelingEnv, problem: Any, latencies: list[float]) -> tuple[float, bool]:
    """One replayed episode; (reward, whether an execution failed in the sandbox)."""
    await env.areset(options={"problem": problem})
    turn = f"I will model this and solve it.\n```python\n{reference_code(problem)}\n```\n"
    start = time.perf_counter()
    observation, reward, terminated, truncated, info = await env.astep(turn)
    latencies.append(time.perf_counter() - start)
    failed = bool((info.get("execution") or {}).get("sandbox_error"))
    if not (terminated or truncated):
        answer = read_reported_answer(observation)
        _, reward, *_ = await env.astep(f"The answer is \\boxed{{{answer}}}.")
    return reward, failed


async def play_all(sandbox: Sandbox, problems: list[Any], n: int) -> dict[str, Any]:
    envs = [ORModelingEnv(problems, sandbox=sandbox) for _ in range(n)]
    latencies: list[float] = []
    start = time.perf_counter()
    outcomes = await asyncio.gather(
        *(play(env, problems[i % len(problems)], latencies) for i, env in enumerate(envs))
    )
    wall = time.perf_counter() - start
    return {
        "episodes": n,
        "wall_s": round(wall, 2),
        "episodes_per_s": round(n / wall, 1),
        "executions_per_s": round(len(latencies) / wall, 1),
        "step_p50_s": round(percentile(latencies, 0.50), 3),
        "step_p99_s": round(percentile(latencies, 0.99), 3),
        "incorrect": sum(reward != 1.0 for reward, _ in outcomes),
        "sandbox_errors": sum(failed for _, failed in outcomes),
    }


class ActorMemory:
    """Samples `RaySandbox.stats()` every `interval` s; keeps the peaks per actor."""

    def __init__(self, sandbox: Any, interval: float = 0.5) -> None:
        self.sandbox = sandbox
        self.interval = interval
        self.peaks: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for stats in self.sandbox.stats():
            peak = self.peaks.setdefault(stats["name"], {})
            for key in ("actor_rss_kib", "tree_rss_kib", "tree_pss_kib", "processes"):
                peak[key] = max(peak.get(key, 0), int(stats.get(key, 0)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ActorMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def summary(self) -> dict[str, float]:
        def mean_mib(key: str) -> float:
            values = [p[key] for p in self.peaks.values()]
            return round(sum(values) / max(1, len(values)) / 1024, 1)

        return {
            "actor_rss_mib": mean_mib("actor_rss_kib"),
            "actor_and_workers_rss_mib": mean_mib("tree_rss_kib"),
            "actor_and_workers_pss_mib": mean_mib("tree_pss_kib"),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument(
        "--cores",
        type=int,
        default=os.cpu_count() or 1,
        help="units of or_env_sandbox the local cluster offers",
    )
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument(
        "--workers-per-actor", type=int, default=None, help="default: cores / actors"
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also play the largest N on an in-process LocalSandbox",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from or_env.sandbox.ray_pool import RaySandbox

    workers = args.workers_per_actor or max(1, args.cores // args.actors)
    start = time.perf_counter()
    ray.init(
        num_cpus=args.cores,
        resources={"or_env_sandbox": args.cores},
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    ray_init_s = time.perf_counter() - start
    problems = load_problems("sample")
    rows = []
    sandbox = RaySandbox(
        backend="local", actors=args.actors, workers_per_actor=workers, pool_name="or_env_bench"
    )
    try:
        start = time.perf_counter()
        sandbox.start()
        pool_start_s = time.perf_counter() - start
        asyncio.run(play_all(sandbox, problems, 16))  # warm the path; not measured
        for n in args.episodes:
            with ActorMemory(sandbox) as memory:
                row = asyncio.run(play_all(sandbox, problems, n))
            row.update(memory.summary())
            row["sandbox"] = "ray"
            rows.append(row)
            sys.stderr.write(f"{row}\n")
    finally:
        sandbox.close()
        ray.shutdown()
    sandbox_cores = args.actors * workers
    if args.baseline:
        from or_env.sandbox.local import LocalSandbox

        with LocalSandbox(workers=sandbox_cores) as local:
            local.start()
            asyncio.run(play_all(local, problems, 16))
            row = asyncio.run(play_all(local, problems, max(args.episodes)))
        row["sandbox"] = "local (in-process, baseline)"
        rows.append(row)
        sys.stderr.write(f"{row}\n")

    for row in rows:
        row["executions_per_s_per_core"] = round(row["executions_per_s"] / sandbox_cores, 1)
    figures = {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "actors": args.actors,
        "workers_per_actor": workers,
        "sandbox_cores": sandbox_cores,
        "ray_init_s": round(ray_init_s, 1),
        "pool_start_s": round(pool_start_s, 1),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "rows": rows,
    }
    out = [
        "| sandbox | episodes | wall s | episodes/s | executions/s | exec/s per core "
        "| step p50 s | step p99 s | actor RSS MiB | actor+workers RSS / PSS MiB | failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        memory = (
            f"| {row['actor_rss_mib']} | {row['actor_and_workers_rss_mib']} / "
            f"{row['actor_and_workers_pss_mib']} "
            if "actor_rss_mib" in row
            else "| - | - "
        )
        out.append(
            f"| {row['sandbox']} | {row['episodes']} | {row['wall_s']} | {row['episodes_per_s']} "
            f"| {row['executions_per_s']} | {row['executions_per_s_per_core']} "
            f"| {row['step_p50_s']} | {row['step_p99_s']} {memory}"
            f"| {row['incorrect'] + row['sandbox_errors']} |"
        )
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.write(
        f"{args.actors} actors x {workers} workers = {sandbox_cores} sandbox cores on "
        f"{figures['cpus']} CPUs (load {figures['load_average_1m']}); ray.init "
        f"{figures['ray_init_s']} s, pool start {figures['pool_start_s']} s\n"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    failed = any(row["incorrect"] or row["sandbox_errors"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
