"""Latency and throughput of the sandbox designs, plus the Docker pool's start cost, idle
memory and kill times, checked against the targets.

Modes, each for `print(1)` and a small pulp LP, at concurrency (callers) 1 and 2:
  in-process       exec() in this process, solvers warm (concurrency 1 only): the floor
  fork floor       a preloaded process forking per program, no sandbox (c=1 only): the
                   floor of any design with a fresh process per execution on this machine
                   (benchmarks/fork_floor.py), with the local workers' preloads and with
                   the image's (which leaves out scipy.optimize)
  docker pool      DockerSandbox: warm containers, one fork per program
  local pool       LocalSandbox: warm fork-server processes on the host
  cold python      a new `python -` process per program (same thread settings)
  docker run       `docker run --rm -i` per program, with the pool's hardening flags

The pools have their default size (one worker per core, at least the number of callers)
and are started before measuring, as a training run's pool is.

Prints a markdown table and the targets; `--json OUT` also writes the raw figures.

    python benchmarks/bench_sandbox.py --n 100 --json bench_sandbox.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_local_sandbox import PROGRAMS, cold_runner  # same programs, same cold baseline

from or_env.sandbox.containers import docker_cli_env
from or_env.sandbox.docker import ContainerSpec, DockerSandbox, default_image, docker_usable
from or_env.sandbox.local import LocalSandbox
from or_env.sandbox.pool import default_pool_size
from or_env.sandbox.worker import DEFAULT_PRELOAD

LP = PROGRAMS["pulp LP (HiGHS)"][0]
Runner = Callable[[str], tuple[str, bool]]


# ----------------------------------------------------------------------------- runners


def _sandbox_runner(box) -> Runner:
    def run(code: str) -> tuple[str, bool]:
        r = box.run(code, timeout=60)
        return r.stdout, r.ok

    return run


def _in_process_runner() -> Runner:
    """exec() in this process: no sandbox at all, the floor the sandboxes are measured to."""
    import pulp  # noqa: F401  (preloaded, as in the workers)

    def run(code: str) -> tuple[str, bool]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "main.py", "exec"), {"__name__": "__main__"})
        return out.getvalue(), True

    return run


def _docker_run_runner(image: str) -> Runner:
    spec = ContainerSpec(image=image)
    env = docker_cli_env()

    def run(code: str) -> tuple[str, bool]:
        name = f"or-env-bench-{os.getpid()}-{secrets.token_hex(3)}"
        cmd = ["docker", "run", "-i", "--rm", "--name", name, *spec.hardening_flags()]
        cmd += ["--label", "or-env.bench=1", "--entrypoint", "python", image, "-"]
        proc = subprocess.run(cmd, input=code, capture_output=True, text=True, env=env, timeout=120)
        return proc.stdout, proc.returncode == 0

    return run


# ----------------------------------------------------------------------------- measuring


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(run: Runner, code: str, expect: str, n: int, c: int) -> dict:
    """n executions with c callers at once: latency percentiles and executions/s."""

    def one(_: int) -> tuple[float, bool]:
        t0 = time.perf_counter()
        stdout, ok = run(code)
        return time.perf_counter() - t0, ok and stdout.strip().endswith(expect)

    for _ in range(c):  # warm-up (workers started, caches filled); not counted
        one(0)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    times = [t for t, _ in results]
    return {
        "n": n,
        "c": c,
        "p50_ms": 1000 * statistics.median(times),
        "p90_ms": 1000 * _pct(times, 0.9),
        "per_s": n / wall,
        "failures": sum(not ok for _, ok in results),
    }


# What the sandbox image's worker preloads (its ENTRYPOINT), against the local default.
IMAGE_PRELOAD = "numpy,scipy,pulp,highspy"


def fork_floor(python: str, n: int) -> list[dict]:
    """Rows of benchmarks/fork_floor.py for the local and the image's preloads."""
    script = Path(__file__).with_name("fork_floor.py")
    rows = []
    for label, preload in (("local", ",".join(DEFAULT_PRELOAD)), ("image", IMAGE_PRELOAD)):
        proc = subprocess.run(
            [python, str(script), "--n", str(n), "--preload", preload],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise SystemExit(f"fork_floor.py failed: {proc.stderr[-2000:]}")
        for prog, v in json.loads(proc.stdout)["programs"].items():
            rows.append(
                {
                    "mode": f"fork floor, {label} preload",
                    "program": prog,
                    "c": 1,
                    "failures": 0,
                    "p90_ms": None,
                    **v,
                }
            )
    return rows


def start_cost(image: str, k: int) -> dict:
    """Seconds from `docker run` to the worker's ready frame, and to a removed container."""
    starts, stops = [], []
    for _ in range(k):
        box = DockerSandbox(workers=1, image=image, handle_sigterm=False)
        t0 = time.perf_counter()
        box.start()
        starts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        box.close()
        stops.append(time.perf_counter() - t0)
    return {
        "k": k,
        "start_p50_ms": 1000 * statistics.median(starts),
        "start_max_ms": 1000 * max(starts),
        "close_p50_ms": 1000 * statistics.median(stops),
    }


def _cgroup_file(container_id: str, controller: str, v1: str, v2: str) -> Path | None:
    candidates = [
        Path(f"/sys/fs/cgroup/{controller}/docker/{container_id}/{v1}"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/{v2}"),
        Path(f"/sys/fs/cgroup/docker/{container_id}/{v2}"),
    ]
    return next((p for p in candidates if p.exists()), None)


def _container_id(name: str) -> str:
    proc = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", name],
        capture_output=True,
        text=True,
        env=docker_cli_env(),
        check=True,
    )
    return proc.stdout.strip()


def idle_memory(box: DockerSandbox) -> dict:
    """cgroup memory usage of each pool container, idle after some LPs."""
    for _ in range(20):
        box.run(LP)
    time.sleep(0.5)
    usage = {}
    for name in box.container_names():
        path = _cgroup_file(
            _container_id(name), "memory", "memory.usage_in_bytes", "memory.current"
        )
        if path is not None:
            usage[name] = int(path.read_text()) / 2**20
    if not usage:
        return {"note": "no cgroup memory file found for the containers"}
    return {
        "per_container_mib": sorted(round(v, 1) for v in usage.values()),
        "mean_mib": statistics.mean(usage.values()),
    }


def _container_cpu_s(container_id: str) -> float | None:
    path = _cgroup_file(container_id, "cpuacct", "cpuacct.usage", "cpu.stat")
    if path is None:
        return None
    text = path.read_text()
    if path.name == "cpu.stat":  # cgroup v2: usage_usec
        return int(dict(line.split() for line in text.splitlines())["usage_usec"]) / 1e6
    return int(text) / 1e9


def _processes_cpu_s(prefix: str) -> float:
    """CPU seconds of the host processes whose name starts with `prefix` (dockerd, ...)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith(prefix):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_breakdown(box: DockerSandbox, n: int, c: int = 2) -> dict:
    """Where the CPU of an LP execution goes: the containers, the daemons, this caller."""
    ids = [_container_id(name) for name in box.container_names()]
    for _ in range(10):
        box.run(LP)

    def sample() -> list[float]:
        containers = [_container_cpu_s(i) for i in ids]
        if None in containers:
            raise LookupError("no cgroup CPU file for the containers")
        return [
            sum(containers),  # type: ignore[arg-type]
            _processes_cpu_s("dockerd"),
            _processes_cpu_s("containerd"),  # and its shims
            time.process_time(),
        ]

    try:
        before = sample()
    except LookupError as exc:
        return {"note": str(exc)}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        list(pool.map(lambda _: box.run(LP), range(n)))
    wall = time.perf_counter() - t0
    after = sample()
    names = ("containers", "dockerd", "containerd", "caller")
    out = {f"{k}_ms": 1000 * (b - a) / n for k, a, b in zip(names, before, after, strict=True)}
    return {"n": n, "c": c, "per_s": n / wall, **out}


def runaway_kill(box: DockerSandbox, k: int, timeout: float = 1.0) -> dict:
    """How long after its deadline a busy loop is killed: in the worker, and at the host."""
    worker_late, host_late = [], []
    for _ in range(k):
        t0 = time.perf_counter()
        r = box.run("while True:\n    pass", timeout=timeout)
        host_late.append(time.perf_counter() - t0 - timeout)
        assert r.timed_out, r
        worker_late.append(r.wall_s - timeout)
    return {
        "k": k,
        "worker_late_p50_ms": 1000 * statistics.median(worker_late),
        "worker_late_max_ms": 1000 * max(worker_late),
        "host_late_p50_ms": 1000 * statistics.median(host_late),
        "host_late_max_ms": 1000 * max(host_late),
    }


FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
PROCESS_COUNT = "import os\nprint(sum(p.isdigit() for p in os.listdir('/proc')))"


def fork_bomb_cleanup(box: DockerSandbox, k: int, timeout: float = 2.0) -> dict:
    """Seconds from a fork bomb's deadline until the call returns with it all reaped."""
    late, clean = [], []
    # What a container shows besides the program: its worker, the forker and the next
    # execution's process (counted before any bomb, as the most any program saw).
    usual = max(int(box.run(PROCESS_COUNT).stdout) for _ in range(6))
    for _ in range(k):
        t0 = time.perf_counter()
        r = box.run(FORK_BOMB, timeout=timeout)
        late.append(time.perf_counter() - t0 - timeout)
        assert r.timed_out, r
        clean.append(all(int(box.run(PROCESS_COUNT).stdout) <= usual for _ in range(3)))
    return {
        "k": k,
        "late_p50_ms": 1000 * statistics.median(late),
        "late_max_ms": 1000 * max(late),
        "all_reaped": all(clean),
    }


# ----------------------------------------------------------------------------- report


def _targets(rows: list[dict], extra: dict) -> list[tuple[str, str, bool | None]]:
    def get(mode: str, prog: str, c: int, key: str) -> float | None:
        for row in rows:
            if (row["mode"], row["program"], row["c"]) == (mode, prog, c):
                return row[key]
        return None

    out: list[tuple[str, str, bool | None]] = []
    lp = "pulp LP (HiGHS)"
    cores = min(2, os.cpu_count() or 1)  # the c=2 pools use one core per worker
    for mode in ("local pool", "docker pool"):
        p1, l1 = get(mode, "print(1)", 1, "p50_ms"), get(mode, lp, 1, "p50_ms")
        if p1 is not None:
            out.append((f"{mode} print(1) p50 <= 2 ms (c=1)", f"{p1:.1f} ms", p1 <= 2))
        if l1 is not None:
            out.append((f"{mode} LP p50 <= 3 ms (c=1)", f"{l1:.1f} ms", l1 <= 3))
        l2 = get(mode, lp, 2, "per_s")
        if l2 is not None:
            per_core = l2 / cores
            out.append(
                (
                    f"{mode} >= 150 LP exec/s per core, 2 callers",
                    f"{per_core:.0f}/s per core ({l2:.0f}/s on {cores})",
                    per_core >= 150,
                )
            )
    floors = [get(f"fork floor, {k} preload", lp, 1, "cpu_ms") for k in ("local", "image")]
    floors = [f for f in floors if f is not None]
    if floors:
        # No fork-per-execution design gets more per core than its CPU per execution allows.
        ceiling = 1000 / min(floors)
        out.append(
            (
                "fork floor (no sandbox) >= 150 LP exec/s per core: is the target reachable here",
                f"{ceiling:.0f}/s per core ({min(floors):.1f} ms CPU per execution)",
                ceiling >= 150,
            )
        )
    dp, lc = get("docker pool", "print(1)", 1, "p50_ms"), get("local pool", "print(1)", 1, "p50_ms")
    if dp is not None and lc is not None:
        out.append(
            (
                "docker pool print(1) p50 within 10 ms of the local pool",
                f"{dp:.1f} vs {lc:.1f} ms ({dp - lc:+.1f})",
                dp - lc <= 10,
            )
        )
    lp50 = get("docker pool", lp, 1, "p50_ms")
    if lp50 is not None:
        out.append(("docker pool LP p50 < 30 ms", f"{lp50:.1f} ms", lp50 < 30))
    lps = get("docker pool", lp, 2, "per_s")
    if lps is not None:
        out.append((">= 40 LP exec/s with 2 workers", f"{lps:.1f}/s", lps >= 40))
    runs = get("docker run", lp, 2, "per_s")
    if lps is not None and runs is not None:
        ratio = lps / runs
        out.append((">= 10x the LP throughput of docker run (c=2)", f"{ratio:.1f}x", ratio >= 10))
    if "runaway_kill" in extra:
        late = extra["runaway_kill"]["host_late_max_ms"]
        out.append(
            (
                "runaway killed within 50 ms of its deadline (host, max)",
                f"{late:.1f} ms",
                late <= 50,
            )
        )
    if "fork_bomb" in extra:
        fb = extra["fork_bomb"]
        out.append(
            (
                "fork bomb cleaned within 1 s (max, all processes reaped)",
                f"{fb['late_max_ms']:.0f} ms, reaped={fb['all_reaped']}",
                fb["late_max_ms"] <= 1000 and fb["all_reaped"],
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="executions per warm-pool measurement")
    p.add_argument("--cold-n", type=int, default=None, help="per cold python (default n/5)")
    p.add_argument("--run-n", type=int, default=None, help="per docker run (default n/10)")
    p.add_argument("--image", default=None, help="sandbox image (default: this version's)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--python", default=sys.executable, help="python for local and cold runs")
    args = p.parse_args(argv)
    cold_n = args.cold_n or max(10, args.n // 5)
    run_n = args.run_n or max(10, args.n // 10)

    usable, why = docker_usable(args.image)
    if not usable:
        print(f"Docker sandbox unusable: {why}", file=sys.stderr)
        return 2
    image = args.image or default_image()

    rows: list[dict] = []
    extra: dict = {}

    def add(mode: str, run: Runner, n: int, c: int) -> None:
        for prog, (code, expect) in PROGRAMS.items():
            row = {"mode": mode, "program": prog, **measure(run, code, expect, n, c)}
            rows.append(row)
            print(f"  {mode:12s} {prog:16s} c={c}: p50 {row['p50_ms']:.1f} ms", file=sys.stderr)

    load_before = os.getloadavg()
    add("in-process", _in_process_runner(), args.n, 1)
    for row in fork_floor(args.python, args.n):
        rows.append(row)
        line = f"  {row['mode']} {row['program']:16s} c=1: p50 {row['p50_ms']:.1f} ms"
        print(line, file=sys.stderr)
    for c in (1, 2):
        workers = max(c, default_pool_size())
        with DockerSandbox(workers=workers, image=image, handle_sigterm=False) as box:
            box.start()
            add("docker pool", _sandbox_runner(box), args.n, c)
        with LocalSandbox(workers=workers, python=args.python) as box:
            box.start()
            add("local pool", _sandbox_runner(box), args.n, c)
        add("cold python", cold_runner(args.python), cold_n, c)
        add("docker run", _docker_run_runner(image), run_n, c)

    extra["start_cost"] = start_cost(image, 5)
    with DockerSandbox(workers=2, image=image, handle_sigterm=False) as box:
        box.start()
        extra["idle_memory"] = idle_memory(box)
        extra["cpu"] = cpu_breakdown(box, max(100, 2 * args.n))
        extra["runaway_kill"] = runaway_kill(box, 5)
        extra["fork_bomb"] = fork_bomb_cleanup(box, 3)

    targets = _targets(rows, extra)
    load_after = os.getloadavg()
    print(f"Host: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        "Load average (1/5/15 min) before: {:.1f} / {:.1f} / {:.1f}, after: {:.1f} / {:.1f} / "
        "{:.1f}".format(*load_before, *load_after)
    )
    print(f"Image: {image}\n")
    print("| mode | program | c | n | p50 ms | p90 ms | exec/s | CPU ms/exec | failures |")
    print("|---|---|---|---|---|---|---|---|---|")

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    for r in rows:
        print(
            f"| {r['mode']} | {r['program']} | {r['c']} | {r['n']} | {r['p50_ms']:.1f} | "
            f"{cell(r['p90_ms'])} | {r['per_s']:.1f} | {cell(r.get('cpu_ms'))} | "
            f"{r['failures']} |"
        )
    sc, mem, cpu = extra["start_cost"], extra["idle_memory"], extra["cpu"]
    rk, fb = extra["runaway_kill"], extra["fork_bomb"]
    print()
    print("| docker pool | value |")
    print("|---|---|")
    print(
        f"| container start to worker ready, p50 / max | {sc['start_p50_ms']:.0f} / "
        f"{sc['start_max_ms']:.0f} ms |"
    )
    print(f"| close (stop + remove), p50 | {sc['close_p50_ms']:.0f} ms |")
    if "mean_mib" in mem:
        print(f"| idle memory per container (cgroup, after 20 LPs) | {mem['mean_mib']:.1f} MiB |")
    if "containers_ms" in cpu:
        print(
            f"| CPU per LP execution, {cpu['c']} callers: containers / dockerd / containerd / "
            f"caller | {cpu['containers_ms']:.2f} / {cpu['dockerd_ms']:.2f} / "
            f"{cpu['containerd_ms']:.2f} / {cpu['caller_ms']:.2f} ms |"
        )
    print(
        f"| runaway kill after deadline: worker p50 / max | {rk['worker_late_p50_ms']:.1f} / "
        f"{rk['worker_late_max_ms']:.1f} ms |"
    )
    print(
        f"| runaway kill after deadline: host p50 / max | {rk['host_late_p50_ms']:.1f} / "
        f"{rk['host_late_max_ms']:.1f} ms |"
    )
    print(
        f"| fork bomb: return after deadline p50 / max | {fb['late_p50_ms']:.0f} / "
        f"{fb['late_max_ms']:.0f} ms (all reaped: {fb['all_reaped']}) |"
    )
    print()
    print("| target | measured | met |")
    print("|---|---|---|")
    for name, value, met in targets:
        print(f"| {name} | {value} | {'yes' if met else 'NO'} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "host": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": {"before": load_before, "after": load_after},
            "image": image,
            "rows": rows,
            **extra,
            "targets": [{"target": t, "measured": v, "met": m} for t, v, m in targets],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
