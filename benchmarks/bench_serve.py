"""Episodes through `or-env serve` (OpenEnv over WebSockets) against the in-process env.

Plays the bundled sample problems with their reference programs (a scripted policy: one
turn running the program, one answering; no model) with N concurrent sessions, N in
`--sessions` (default 1, 32, 128), twice: through a real server (a separate process on
127.0.0.1, uvicorn, local sandbox) driven by `ORClient`, and with `ORModelingEnv.astep` in
this process on a local sandbox of the same size. Reports episodes/s and the latency of a
step (p50/p90) for both, and the server's overhead per step: a step's latency at the client
minus the env's own time for it inside the server (`metadata["env_step_s"]`), so sandbox
queueing, which both sides share, is left out. Each run is preceded by a warm-up
(one episode per sandbox worker).

    python benchmarks/bench_serve.py                      # 1, 32 and 128 sessions
    python benchmarks/bench_serve.py --sessions 32 --json OUT.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from or_env import ORModelingEnv, load_problems
from or_env.problems import Problem
from or_env.reference import read_reported_answer, reference_code
from or_env.sandbox.local import LocalSandbox

SAMPLE = load_problems("sample")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    """One measured run: where (server or in-process), how many sessions, what it took."""

    mode: str
    sessions: int
    episodes: int = 0
    correct: int = 0
    wall_s: float = 0.0
    step_s: list[float] = field(default_factory=list)
    overhead_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | str | None]:
        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        return {
            "mode": self.mode,
            "sessions": self.sessions,
            "episodes": self.episodes,
            "correct": self.correct,
            "episodes_per_s": self.episodes / self.wall_s if self.wall_s else 0.0,
            "step_p50_ms": pct(self.step_s, 0.5),
            "step_p90_ms": pct(self.step_s, 0.9),
            "overhead_p50_ms": pct(self.overhead_s, 0.5),
            "overhead_p90_ms": pct(self.overhead_s, 0.9),
            "steps": len(self.step_s),
        }


def _turns(problem: Problem) -> str:
    return f"I will solve it.\n```python\n{reference_code(problem)}\n```\n"


def _plan(sessions: int, episodes: int) -> list[list[Problem]]:
    """The problems each session plays, in order (the sample set, round robin)."""
    return [
        [SAMPLE[(s + k * sessions) % len(SAMPLE)] for k in range(episodes)] for s in range(sessions)
    ]


async def _in_process(sandbox: LocalSandbox, plan: list[list[Problem]], run: Run) -> None:
    async def session(problems: list[Problem]) -> None:
        env = ORModelingEnv(SAMPLE, sandbox=sandbox)
        for problem in problems:
            await env.areset(options={"problem_id": problem.id})
            start = time.perf_counter()
            observation, reward, terminated, truncated, _ = await env.astep(_turns(problem))
            run.step_s.append(time.perf_counter() - start)
            if not (terminated or truncated):
                answer = read_reported_answer(str(observation))
                start = time.perf_counter()
                _, reward, *_ = await env.astep(f"The answer is \\boxed{{{answer}}}.")
                run.step_s.append(time.perf_counter() - start)
            run.episodes += 1
            run.correct += reward == 1.0

    start = time.perf_counter()
    await asyncio.gather(*(session(problems) for problems in plan))
    run.wall_s = time.perf_counter() - start


async def _through_server(url: str, plan: list[list[Problem]], run: Run) -> None:
    from or_env.integrations.openenv_client import ORClient

    async def step(env: ORClient, text: str):
        start = time.perf_counter()
        result = await env.step(text)
        latency = time.perf_counter() - start
        run.step_s.append(latency)
        run.overhead_s.append(latency - result.observation.metadata["env_step_s"])
        return result

    async def session(problems: list[Problem]) -> None:
        async with ORClient(base_url=url, message_timeout_s=600) as env:
            for problem in problems:
                await env.reset(problem_id=problem.id)
                result = await step(env, _turns(problem))
                if not result.done:
                    answer = read_reported_answer(result.observation.observation)
                    result = await step(env, f"The answer is \\boxed{{{answer}}}.")
                run.episodes += 1
                run.correct += result.reward == 1.0

    start = time.perf_counter()
    await asyncio.gather(*(session(problems) for problems in plan))
    run.wall_s = time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port: int, max_sessions: int, workers: int) -> subprocess.Popen:
    code = (
        "from or_env.integrations.serve import ServeConfig\n"
        "from or_env.integrations.openenv_server import serve\n"
        f"serve(ServeConfig(port={port}, max_sessions={max_sessions}, sandbox='local',"
        f" sandbox_workers={workers}, allow_unisolated=True, log_level='error'))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,32,128", help="comma-separated counts")
    parser.add_argument(
        "--episodes",
        type=int,
        default=0,
        help="episodes per session (default: 24 for 1 session, 3 for 2-63, 1 above)",
    )
    parser.add_argument("--workers", type=int, default=0, help="sandbox workers (0: CPUs)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    counts = [int(c) for c in args.sessions.split(",")]
    workers = args.workers or len(os.sched_getaffinity(0))

    summaries = []
    port = _free_port()
    server = _start_server(port, max(counts), workers)
    url = f"http://127.0.0.1:{port}"
    try:
        with LocalSandbox(workers=workers) as sandbox:
            # Warm-up: start every worker on both sides and load the solver imports.
            warm = _plan(workers, 1)
            asyncio.run(_in_process(sandbox, warm, Run("warm", workers)))
            asyncio.run(_through_server(url, warm, Run("warm", workers)))
            for sessions in counts:
                # Several episodes per session where that is cheap: the first steps of a run
                # all start at once with the connections; later ones are the steady state.
                episodes = args.episodes or (
                    len(SAMPLE) if sessions == 1 else 3 if sessions < 64 else 1
                )
                plan = _plan(sessions, episodes)
                for mode in ("in-process", "server"):
                    run = Run(mode, sessions)
                    if mode == "server":
                        asyncio.run(_through_server(url, plan, run))
                    else:
                        asyncio.run(_in_process(sandbox, plan, run))
                    summaries.append(run.summary())
                    print(json.dumps(summaries[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print()
    print(
        "| sessions | episodes | episodes/s in-process / server | step p50 in-process / server "
        "(ms) | step p90 in-process / server (ms) | server overhead per step p50 / p90 (ms) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    by_sessions: dict[int, dict[str, dict]] = {}
    for s in summaries:
        by_sessions.setdefault(s["sessions"], {})[s["mode"]] = s
    for sessions, pair in by_sessions.items():
        local, remote = pair["in-process"], pair["server"]
        print(
            f"| {sessions} | {remote['episodes']} "
            f"| {local['episodes_per_s']:.1f} / {remote['episodes_per_s']:.1f} "
            f"| {local['step_p50_ms']:.1f} / {remote['step_p50_ms']:.1f} "
            f"| {local['step_p90_ms']:.1f} / {remote['step_p90_ms']:.1f} "
            f"| {remote['overhead_p50_ms']:.1f} / {remote['overhead_p90_ms']:.1f} |"
        )
    incorrect = [s for s in summaries if s["correct"] != s["episodes"]]
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, {workers} workers"
    print(f"\n{machine}; Python {platform.python_version()}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "runs": summaries}, indent=2) + "\n"
        )
    if incorrect:
        sys.exit(f"episodes without reward 1: {incorrect}")


if __name__ == "__main__":
    main()
