"""Many concurrent episodes through the rollout runner on the local sandbox.

Plays `--episodes` episodes (default 256) all at once (`--concurrency`, default 256) with a
replay policy that answers each bundled sample problem with its reference program and
then its stated answer: two policy turns and one code execution per episode in the native
protocol, one turn in the direct protocol. No model is involved, so the figures are the
env's own cost: the runner, the transcripts, the sandbox executions (real pulp/HiGHS
programs in the warm local workers). Checks that every episode ends without error and
correct, then prints episodes/s and the peak memory of this process plus the sandbox
workers and the programs they forked (sampled every 20 ms: summed RSS, which counts the
pages forked workers share once per process, and summed PSS, which splits them).

    python benchmarks/bench_rollouts.py --episodes 256 --concurrency 256 --json OUT.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

from agents.replay import ReplayPolicy
from agents.runner import RolloutRunner, plan_episodes
from or_env import load_problems
from or_env.sandbox.local import LocalSandbox
from or_env.sandbox.proc_memory import descendants, memory_kib


class MemorySampler:
    """Samples the summed RSS of a process tree (this process and its descendants)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_kib = 0  # summed RSS: counts pages shared between processes once per process
        self.peak_pss_kib = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        root = os.getpid()
        while not self._stop.is_set():
            pids = [root, *descendants(root)]
            readings = [memory_kib(pid) for pid in pids]
            total = sum(rss for rss, _ in readings)
            if total > self.peak_kib:
                self.peak_kib, self.peak_processes = total, len(pids)
            self.peak_pss_kib = max(self.peak_pss_kib, sum(pss for _, pss in readings))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def recorded_turns(problems, protocol: str, samples: int) -> dict:
    turns = {}
    for problem in problems:
        code = problem.meta["reference_code"]
        block = f"I will model it and solve it.\n```python\n{code}\n```\n"
        recorded = [block] if protocol == "direct" else [block, f"\\boxed{{{problem.answer}}}"]
        for sample in range(samples):
            turns[(problem.id, sample)] = recorded
    return turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--protocol", choices=["native", "direct"], default="native")
    parser.add_argument("--workers", type=int, help="sandbox workers (default: one per CPU)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    problems = load_problems("sample")
    samples = math.ceil(args.episodes / len(problems))
    specs = plan_episodes(problems, samples)[: args.episodes]
    policy = ReplayPolicy(recorded_turns(problems, args.protocol, samples), source="reference")
    with LocalSandbox(workers=args.workers) as sandbox:
        sandbox.start()  # measure episodes, not worker start-up
        runner = RolloutRunner(
            policy,
            env_kwargs={"sandbox": sandbox, "protocol": args.protocol},
            concurrency=args.concurrency,
            progress=False,
        )
        with MemorySampler() as memory:
            start = time.perf_counter()
            records = asyncio.run(runner.arun(specs))
            wall = time.perf_counter() - start
        workers = sandbox.workers

    errors = [r for r in records if r["status"] != "ok"]
    wrong = [r for r in records if r["status"] == "ok" and not r["correct"]]
    executions = sum(r["executions"] for r in records)
    env_s = sorted(r["timings"]["wall_s"] for r in records)
    figures = {
        "episodes": len(records),
        "concurrency": args.concurrency,
        "protocol": args.protocol,
        "sandbox_workers": workers,
        "cpus": os.cpu_count(),
        "wall_s": round(wall, 2),
        "episodes_per_s": round(len(records) / wall, 1),
        "executions_per_s": round(executions / wall, 1),
        "episode_wall_p50_s": round(env_s[len(env_s) // 2], 2),
        "episode_wall_max_s": round(env_s[-1], 2),
        "peak_rss_mib": round(memory.peak_kib / 1024, 1),
        "peak_pss_mib": round(memory.peak_pss_kib / 1024, 1),
        "processes_at_peak": memory.peak_processes,
        "errors": len(errors),
        "incorrect": len(wrong),
        "python": platform.python_version(),
    }
    sys.stdout.write(
        "| episodes | concurrency | protocol | workers | wall s | episodes/s | executions/s "
        "| episode p50 s | peak RSS / PSS MiB (process + workers) | errors |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {figures['episodes']} | {args.concurrency} | {args.protocol} | {workers} "
        f"| {figures['wall_s']} | {figures['episodes_per_s']} | {figures['executions_per_s']} "
        f"| {figures['episode_wall_p50_s']} "
        f"| {figures['peak_rss_mib']} / {figures['peak_pss_mib']} "
        f"| {len(errors) + len(wrong)} |\n"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    for record in (errors + wrong)[:5]:
        sys.stderr.write(f"failed: {record['problem_id']}/{record['sample']}: {record['error']}\n")
    return 1 if errors or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
