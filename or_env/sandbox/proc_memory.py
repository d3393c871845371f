"""Memory of a process tree read from /proc (Linux): for pool statistics and benchmarks."""

from __future__ import annotations

import os


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB; (0, 0) when it is gone or /proc has no smaps_rollup.

    PSS splits the pages that forked workers share among them, so PSS sums over a tree
    are what the tree costs; RSS sums count shared pages once per process.
    """
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of all its threads, recursively)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found.extend(children)
            stack.extend(children)
    return found
