"""Throughput and latency of the local sandbox (warm fork-server workers) vs a cold
`python -` subprocess per execution, for `print(1)` and a small pulp LP, at concurrency 1
and 2. Prints a markdown table; `--json OUT` also writes the raw figures.

    python benchmarks/bench_local_sandbox.py --n 100 --json benchmarks/results/local.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from or_env.sandbox.local import LocalSandbox
from or_env.sandbox.worker_client import worker_environment

PROGRAMS = {
    "print(1)": ("print(1)", "1"),
    "pulp LP (HiGHS)": (
        "import pulp\n"
        "m = pulp.LpProblem('bench', pulp.LpMaximize)\n"
        "x = pulp.LpVariable('x', lowBound=0)\n"
        "y = pulp.LpVariable('y', lowBound=0)\n"
        "m += 3 * x + 2 * y\n"
        "m += x + y <= 4\n"
        "m += x + 3 * y <= 6\n"
        "m += x <= 3\n"
        "m.solve(pulp.HiGHS(msg=0))\n"
        "print(pulp.value(m.objective))\n",
        "11.0",
    ),
}


def cold_runner(python: str) -> Callable[[str], tuple[str, bool]]:
    # Same thread settings as the workers give their programs, so the comparison is fair.
    env = worker_environment({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})

    def run(code: str) -> tuple[str, bool]:
        proc = subprocess.run(
            [python, "-"], input=code, capture_output=True, text=True, env=env, timeout=60
        )
        return proc.stdout, proc.returncode == 0

    return run


def _measure(run: Callable[[str], tuple[str, bool]], code: str, expect: str, n: int, c: int):
    def one(_: int) -> tuple[float, bool]:
        t0 = time.perf_counter()
        stdout, ok = run(code)
        return time.perf_counter() - t0, ok and stdout.strip().endswith(expect)

    with ThreadPoolExecutor(c) as pool:
        list(pool.map(one, range(2 * c)))  # warm-up, not counted
        t0 = time.perf_counter()
        results = list(pool.map(one, range(n)))
        wall = time.perf_counter() - t0
    lat = sorted(r[0] for r in results)
    return {
        "n": n,
        "exec_per_s": n / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p90_ms": 1000 * lat[min(n - 1, int(0.9 * n))],
        "failures": sum(not r[1] for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="executions per cell (default 100)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--python", default=sys.executable, help="interpreter for both modes")
    args = parser.parse_args(argv)

    rows = []
    cold = cold_runner(args.python)
    for c in (1, 2):
        with LocalSandbox(workers=c, python=args.python) as box:
            box.start()

            def warm(code: str, box: LocalSandbox = box) -> tuple[str, bool]:
                r = box.run(code)
                return r.stdout, r.ok

            for prog, (code, expect) in PROGRAMS.items():
                for mode, runner in (("warm worker", warm), ("cold python -", cold)):
                    cell = _measure(runner, code, expect, args.n, c)
                    rows.append({"mode": mode, "program": prog, "concurrency": c, **cell})
                    print(f"done: {mode} / {prog} / c={c}", file=sys.stderr)
            isolation = box.isolation

    by_key = {(r["mode"], r["program"], r["concurrency"]): r for r in rows}
    lines = [
        "| program | concurrency | mode | exec/s | p50 ms | p90 ms | failures | warm speedup |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        speedup = ""
        if r["mode"] == "warm worker":
            other = by_key[("cold python -", r["program"], r["concurrency"])]
            speedup = f"{r['exec_per_s'] / other['exec_per_s']:.1f}x"
        lines.append(
            f"| {r['program']} | {r['concurrency']} | {r['mode']} | {r['exec_per_s']:.1f} | "
            f"{r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['failures']}/{r['n']} | {speedup} |"
        )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"local isolation: {isolation}"
    )
    print(f"\n{machine}\n")
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0 if all(r["failures"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
