"""The sandbox worker of two (or more) git revisions, side by side: latency and CPU.

Each revision's `worker.py` and `confine.py` are taken with `git show` into a folder of
their own and started as local workers (namespaces, as `LocalSandbox` starts them). The
rounds alternate between revisions, so that a machine whose speed drifts (a shared VM)
weighs on all of them alike; the figures are medians over rounds of per-round medians.

Per program (`print(1)` and the small pulp LP), back to back at concurrency 1:
  total ms   request to the worker's settle frame (what the next request waits for)
  reply ms   request to reply
  cpu ms     CPU time of the worker's processes (server, forker, programs) per execution
  faults     minor page faults of those processes per execution

    python benchmarks/bench_worker_revisions.py 2b33bc0 HEAD --rounds 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_local_sandbox import PROGRAMS

from or_env.sandbox.worker_client import WorkerProcess, default_worker_argv, worker_environment

ROOT = Path(__file__).resolve().parents[1]
FILES = ("or_env/sandbox/worker.py", "or_env/sandbox/confine.py")


def _checkout(rev: str, into: Path) -> Path:
    into.mkdir(parents=True)
    for name in FILES:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{name}"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"no {name} at revision {rev!r} ({proc.stderr.strip()}); pass a commit, "
                "branch or tag of this repository that has the sandbox worker"
            )
        (into / Path(name).name).write_text(proc.stdout)
    return into / "worker.py"


def _tree_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and minor faults of `pid` and its descendants, reaped children included."""
    cpu, faults, todo = 0.0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
        cpu += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        faults += int(fields[7]) + int(fields[8])  # minflt, cminflt
    return cpu, faults


def _round(worker_path: Path, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    argv = default_worker_argv(worker_path=worker_path, namespaces=True)
    with WorkerProcess(argv, env=worker_environment()) as worker:
        for prog, (code, expect) in PROGRAMS.items():
            request = {"op": "run", "code": code, "timeout": 30, "max_output": 4096}
            for _ in range(10):
                worker.request(request, timeout=60)
                worker.settle()
            totals, replies = [], []
            cpu0, faults0 = _tree_usage(worker.pid)
            for _ in range(n):
                t0 = time.perf_counter()
                resp = worker.request(request, timeout=60)
                t1 = time.perf_counter()
                worker.settle()
                totals.append(time.perf_counter() - t0)
                replies.append(t1 - t0)
                if not str(resp.get("stdout", "")).strip().endswith(expect):
                    raise SystemExit(f"{worker_path}: {prog} answered {resp!r:.300}")
            out[f"{prog} total ms"] = 1000 * statistics.median(totals)
            out[f"{prog} reply ms"] = 1000 * statistics.median(replies)
            cpu1, faults1 = _tree_usage(worker.pid)
            out[f"{prog} cpu ms"] = 1000 * (cpu1 - cpu0) / n
            out[f"{prog} faults"] = (faults1 - faults0) / n
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("revs", nargs="+", help="git revisions to compare (HEAD, a commit, ...)")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    p.add_argument("--n", type=int, default=100, help="executions per program per round")
    args = p.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {rev: [] for rev in args.revs}
    with tempfile.TemporaryDirectory(prefix="or-env-revs-") as tmp:
        paths = {rev: _checkout(rev, Path(tmp) / str(i)) for i, rev in enumerate(args.revs)}
        for r in range(args.rounds):
            for rev in args.revs:
                results[rev].append(_round(paths[rev], args.n))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    keys = list(results[args.revs[0]][0])
    print(f"load average before the last round ended: {os.getloadavg()[0]:.1f}\n")
    print("| revision | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for rev in args.revs:
        cells = [f"{statistics.median(x[k] for x in results[rev]):.2f}" for k in keys]
        print(f"| {rev} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
