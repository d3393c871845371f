"""The floor of one-fork-per-execution on this machine: no sandbox, only the fork.

A process preloads what the sandbox workers preload, warms the solvers and lays out its
heap as they do (`worker._warm_up_solvers`, `worker._collapse_to_huge_pages`), then runs
each program in a forked child: fork, exec() of the program with stdout to a pipe,
exit, reap. No namespaces, uid, limits, pre-forking or protocol. Whatever a worker does
beyond this is the price of its isolation; what this costs is the price of forking a
preloaded interpreter at all, which no design with a fresh process per execution avoids.

Prints one JSON object: per program, the p50 latency and the CPU time per execution
(parent and children together), at concurrency 1.

    python benchmarks/fork_floor.py --n 200
    python benchmarks/fork_floor.py --n 200 --no-huge-pages   # the heap on 4 KiB pages
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

from bench_local_sandbox import PROGRAMS

from or_env.sandbox import worker


def _run_forked(code: str) -> str:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        try:
            exec(compile(code, "main.py", "exec"), {"__name__": "__main__"})
            sys.stdout.flush()
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="executions per program")
    p.add_argument(
        "--preload",
        default=",".join(worker.DEFAULT_PRELOAD),
        help="modules to import before forking (default: the local workers' set)",
    )
    p.add_argument(
        "--no-huge-pages",
        action="store_true",
        help="leave the heap on 4 KiB pages (what the workers did before collapsing it)",
    )
    args = p.parse_args(argv)
    os.environ.update(worker._THREAD_ENV)  # as programs get them, before numpy's import
    preload = [m for m in args.preload.split(",") if m]
    for name in preload:
        __import__(name)
    worker._warm_up_solvers()
    gc.freeze()
    huge = 0 if args.no_huge_pages else worker._collapse_to_huge_pages(worker.confine.libc())
    out: dict = {"preload": preload, "huge_pages_mib": huge >> 20, "programs": {}}
    for prog, (code, expect) in PROGRAMS.items():
        for _ in range(10):
            _run_forked(code)
        times = []
        cpu0 = _cpu()
        for _ in range(args.n):
            t0 = time.perf_counter()
            stdout = _run_forked(code)
            times.append(time.perf_counter() - t0)
            if not stdout.strip().endswith(expect):
                raise SystemExit(f"{prog}: unexpected output {stdout!r}")
        out["programs"][prog] = {
            "n": args.n,
            "p50_ms": 1000 * statistics.median(times),
            "cpu_ms": 1000 * (_cpu() - cpu0) / args.n,
            "per_s": args.n / sum(times),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
