"""The `or-env` command: benchmarks, problems, sandboxes, and episodes from the shell.

Every command reports errors the same way: one `error: ...` line on stderr, exit status 2
(1 when the work ran but failed). Ctrl-C exits with 130 and says so; output piped into a
reader that stops early (`or-env problems nl4opt | head`) ends quietly. The help formatter
and argument types here are shared with the commands that plug in (`eval`, `calm`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from or_env.errors import OREnvError
from or_env.problems import DatasetError, load_problems

logger = logging.getLogger("or_env.cli")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `yes | head` reports
# What `or-env sandbox check` tries to import in each sandbox: the solver stack of the
# sandbox image (sandbox_image/requirements.txt, the `solvers` extra) and the printing
# helpers published reference programs use.
SOLVER_MODULES = (
    "numpy",
    "scipy",
    "pulp",
    "highspy",
    "pyomo",
    "ortools",
    "cvxpy",
    "pyscipopt",
    "coptpy",
    "gurobipy",
    "rich",
    "tabulate",
)
_PROBE_MARKER = "OR_ENV_SOLVERS "
PROBE_TIMEOUT_S = 300.0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless it is None or a flag's False) and keeps the
    line breaks of descriptions and epilogs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" in text
            or not action.option_strings
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
        ):
            return text
        return text + " (default: %(default)s)"


def nonnegative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


class CommandError(OREnvError):
    """A command cannot do what was asked; `main` prints `error: <message>` and exits 2."""


def error(message: object) -> None:
    """Print an error the way every `or-env` command does: `error: ...` on stderr."""
    sys.stderr.write(f"error: {message}\n")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _load(args: argparse.Namespace) -> list[Any]:
    return load_problems(args.benchmark, version=args.version, path=args.data_dir)


def cmd_benchmarks(args: argparse.Namespace) -> int:
    """List benchmarks and versions; with data available, count their problems."""
    from or_env.problems import benchmark_counts

    rows = benchmark_counts(args.data_dir)
    _out(f"{'benchmark':<16} {'version':<18} {'default':<7} {'problems':>8} {'skipped':>7}  gym id")
    for row in rows:
        count = "-" if row.count is None else str(row.count)
        skipped = "-" if row.skipped is None else str(row.skipped)
        _out(
            f"{row.benchmark:<16} {row.version:<18} {'yes' if row.default else '':<7} "
            f"{count:>8} {skipped:>7}  {row.gym_id or ''}"
        )
    if any(row.count is None for row in rows):
        _out("\n'-': data not found; set OR_ENV_DATA_DIR or pass --data-dir to count.")
    return 0


def cmd_benchmarks_diff(args: argparse.Namespace) -> int:
    """Align a benchmark's versions; list label changes and problems found in one only."""
    from or_env.problems.diff import changes_table, diff_table, diff_versions

    versions = [v.strip() for v in (args.versions or "").split(",") if v.strip()] or None
    diffs, missing = diff_versions(
        args.benchmark, reference=args.reference, versions=versions, data_dir=args.data_dir
    )
    if args.json:
        _out(
            json.dumps(
                {"diffs": [d.to_dict() for d in diffs], "not_loaded": missing},
                indent=2,
                default=str,
            )
        )
        return 0
    _out(diff_table(diffs))
    for diff in diffs:
        if diff.changes:
            _out("\n" + changes_table(diff, args.show))
            if args.show and len(diff.changes) > args.show:
                _out(f"({len(diff.changes) - args.show} more; --show 0 lists all)")
    for version, why in missing.items():
        _out(f"\n{version}: not compared ({why})")
    return 0


def cmd_problems(args: argparse.Namespace) -> int:
    """List the problems of one benchmark."""
    problems = _load(args)
    for problem in problems[: args.limit or None]:
        question = " ".join(problem.question.split())
        _out(f"{problem.id:<36} {problem.answer!s:>14}  {question[:70]}")
    _out(f"\n{len(problems)} problems in {args.benchmark}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one problem in full."""
    for problem in _load(args):
        if problem.id == args.problem_id:
            _out(f"id:        {problem.id}")
            _out(f"benchmark: {problem.benchmark}")
            _out(f"answer:    {problem.answer}")
            _out(f"\n{problem.question}\n")
            meta = {k: v for k, v in problem.meta.items() if k != "reference_code"}
            if meta:
                _out("meta: " + json.dumps(meta, default=str, ensure_ascii=False)[:2000])
            if "reference_code" in problem.meta:
                _out("\nreference program:\n" + problem.meta["reference_code"])
            return 0
    raise CommandError(
        f"no problem {args.problem_id!r} in {args.benchmark}; "
        f"see `or-env problems {args.benchmark}`"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Run a Python file through a sandbox and print what it produced."""
    from or_env.sandbox import make_sandbox

    code = _read_program(Path(args.file))
    with make_sandbox(args.sandbox) as sandbox:
        result = sandbox.run(code, timeout=args.timeout)
    if args.json:
        _out(json.dumps(result.to_dict(), indent=2))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        _out(
            f"\n[{sandbox.name}] exit_code={result.exit_code} timed_out={result.timed_out} "
            f"wall={result.wall_s:.3f}s truncated={result.truncated}"
            + (f" sandbox_error={result.sandbox_error}" if result.sandbox_error else "")
        )
    return 0 if result.ok else 1


def _read_program(path: Path) -> str:
    if path.is_dir():
        raise CommandError(f"{path} is a directory; give a Python file (or-env run FILE.py)")
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path} is not a text file ({exc.reason})") from exc


def _read_turns(path: Path) -> list[str]:
    """Turns from a .jsonl ({"text": ...} per line), a .json list of strings, or a text file
    with turns separated by lines holding only '---'."""
    raw = path.read_text()
    if path.suffix == ".jsonl":
        turns = []
        for number, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    turns.append(json.loads(line)["text"])
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise CommandError(f'{path}:{number}: expected {{"text": ...}}: {exc}') from exc
        return turns
    if path.suffix == ".json":
        data = json.loads(raw)
        if not (isinstance(data, list) and all(isinstance(t, str) for t in data)):
            raise CommandError(f"{path}: expected a JSON list of strings")
        return data
    return [chunk.strip("\n") + "\n" for chunk in raw.split("\n---\n") if chunk.strip()]


def cmd_play(args: argparse.Namespace) -> int:
    """Play an episode from a file of policy turns and print the transcript."""
    from or_env.env import ORModelingEnv

    path = Path(args.turns)
    if not path.is_file():
        raise CommandError(
            f"{path}: no such file" if not path.exists() else f"{path} is not a file"
        )
    turns = _read_turns(path)
    env = ORModelingEnv(
        benchmark=args.benchmark,
        version=args.version,
        data_path=args.data_dir,
        sandbox=args.sandbox,
        rendering=args.rendering,
    )
    options = {"problem_id": args.problem_id} if args.problem_id else {"index": 0}
    observation, info = env.reset(options=options)
    _out(f"=== problem {info['problem_id']} ===\n{observation}")
    reward, info = 0.0, {}
    for text in turns:
        observation, reward, terminated, truncated, info = env.step(text)
        _out(f"--- policy (turn {info['turn']}) ---\n{text}")
        if observation:
            _out(f"--- env ---\n{observation}")
        if terminated or truncated:
            break
    else:
        _out("(the turns ran out before the episode ended)")
    _out(
        f"=== reward {reward}  reason {info.get('termination_reason')}  "
        f"correct {info.get('correct')} ==="
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Play every bundled sample problem with its reference program and grade it."""
    from or_env.env import ORModelingEnv
    from or_env.reference import play_reference_episode

    env = ORModelingEnv(sandbox=args.sandbox)
    _out(f"sandbox: {env.sandbox.name}\n")
    _out(f"{'problem':<40} {'answer':>16} {'reward':>6} {'exec s':>7}")
    start, rewards = time.perf_counter(), []
    for problem in env.problems[: args.limit or None]:
        episode = play_reference_episode(env, problem)
        rewards.append(episode.reward)
        _out(
            f"{problem.id:<40} {episode.answer!s:>16} {episode.reward:>6.1f} "
            f"{episode.exec_seconds:>7.3f}"
        )
    _out(f"\n{sum(rewards):.0f}/{len(rewards)} correct in {time.perf_counter() - start:.1f} s")
    return 0 if all(r == 1.0 for r in rewards) else 1


def cmd_sandbox_check(args: argparse.Namespace) -> int:
    """Say which sandbox `auto` picks and why, how each backend confines programs (mode,
    network, memory limit, hidden paths), and which solvers each can import."""
    from or_env.sandbox import resolve_backend

    if getattr(args, "ray", None):
        return ray_pool_check(args)
    backend, why = resolve_backend("auto")
    if not args.json:
        _out(f"sandbox='auto' uses: {backend}\nwhy: {why}")
    if args.no_solvers:
        if args.json:
            _out(json.dumps({"auto": backend, "why": why}, indent=2))
        return 0
    reports = {name: probe_solvers(name) for name in ("local", "docker")}
    if args.json:
        _out(json.dumps({"auto": backend, "why": why, "backends": reports}, indent=2))
    else:
        _out("")
        _out(solver_table(reports))
    failed = [r for r in reports.values() if r["available"] and r.get("error")]
    return 1 if failed else 0


def ray_pool_report(
    address: str, pool_name: str, namespace: str, *, probe: bool = True
) -> dict[str, Any]:
    """The Ray sandbox pool as `sandbox check --ray` reports it: the nodes offering the
    resource, the actors (node, IP, backend, workers, isolation, counters, memory) and the
    solver probe run through the pool. A pool that does not exist yet is created for the
    check (with the default options) and shut down afterwards."""
    from or_env.sandbox.ray_pool import DEFAULT_RESOURCE, RaySandbox, import_ray, node_capacity

    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    try:
        ray.get_actor(pool_name, namespace=namespace)
        existed = True
    except ValueError:
        existed = False
    nodes = [
        {
            "node_id": node["NodeID"],
            "ip": node.get("NodeManagerAddress"),
            "units": node_capacity(node, DEFAULT_RESOURCE),
            "cpus": node_capacity(node, None),
        }
        for node in ray.nodes()
        if node.get("Alive")
    ]
    report: dict[str, Any] = {
        "address": address,
        "pool": pool_name,
        "namespace": namespace,
        "existed": existed,
        "nodes": nodes,
        "actors": [],
    }
    sandbox = RaySandbox(pool_name=pool_name, namespace=namespace, address=address)
    try:
        descriptions = sandbox.actor_descriptions()
        stats = {s["name"]: s for s in sandbox.stats()}
        for described in descriptions:
            counters = stats.get(described["name"], {})
            report["actors"].append(
                {
                    **{k: v for k, v in described.items() if k != "isolation_details"},
                    "executions": counters.get("executions"),
                    "failures": counters.get("failures"),
                    "in_flight": counters.get("in_flight"),
                    "memory_mib": round(counters.get("tree_pss_kib", 0) / 1024, 1),
                }
            )
        if probe:
            result = sandbox.run(solver_probe_program(), timeout=PROBE_TIMEOUT_S)
            lines = [ln for ln in result.stdout.splitlines() if ln.startswith(_PROBE_MARKER)]
            if lines:
                report["modules"] = json.loads(lines[-1].removeprefix(_PROBE_MARKER))
            else:
                detail = result.sandbox_error or result.stderr.strip()[-300:] or "no output"
                report["error"] = f"the probe program failed (exit {result.exit_code}): {detail}"
    except Exception as exc:  # reported, not raised: this is a diagnostic
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        report["created_for_check"] = sandbox.created
        sandbox.close()  # shuts the pool down only if this check created it
    return report


def ray_pool_text(report: dict[str, Any]) -> str:
    """The text of `or-env sandbox check --ray`."""
    from or_env.sandbox.ray_pool import DEFAULT_RESOURCE, is_isolated

    how = "found" if report["existed"] else "created for this check, then shut down"
    lines = [
        f"ray pool {report['pool']!r} (namespace {report['namespace']!r}) "
        f"at {report['address']}: {how}"
    ]
    offering = [n for n in report["nodes"] if n["units"]]
    lines.append(
        f"nodes: {len(report['nodes'])} alive, {len(offering)} offering {DEFAULT_RESOURCE!r} "
        f"({sum(n['units'] for n in offering)} units)"
    )
    if report["actors"]:
        lines.append("")
        lines.append(
            f"{'actor':<26} {'node':<14} {'ip':<16} {'backend':<8} {'workers':>7} "
            f"{'isolation':<16} {'execs':>7} {'MiB':>8}"
        )
        for actor in report["actors"]:
            lines.append(
                f"{actor['name']:<26} {actor['node_id'][:12]:<14} {actor['node_ip']:<16} "
                f"{actor['backend']:<8} {actor['workers']:>7} {actor['isolation']!s:<16} "
                f"{actor['executions']!s:>7} {actor['memory_mib']:>8}"
            )
        weak = [a["name"] for a in report["actors"] if not is_isolated(a["isolation"])]
        if weak:
            lines.append(
                f"warning: {len(weak)} actor(s) run programs without namespaces or a container; "
                "training refuses them (allow_unisolated)"
            )
    modules = report.get("modules")
    if modules:
        found = [f"{m} {v.get('version') or ''}".strip() for m, v in modules.items() if v.get("ok")]
        missing = [m for m, v in modules.items() if not v.get("ok")]
        lines.append("")
        lines.append(f"solvers in the pool: {', '.join(found) or '-'}")
        if missing:
            lines.append(f"missing: {', '.join(missing)}")
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    return "\n".join(lines)


def ray_pool_check(args: argparse.Namespace) -> int:
    """`or-env sandbox check --ray ADDRESS`: report the cluster's sandbox pool."""
    report = ray_pool_report(args.ray, args.pool, args.namespace, probe=not args.no_solvers)
    _out(json.dumps(report, indent=2) if args.json else ray_pool_text(report))
    return 1 if report.get("error") or not report["actors"] else 0


def solver_probe_program(modules: tuple[str, ...] = SOLVER_MODULES) -> str:
    """A program that tries to import each module and prints one JSON line of results."""
    return f"""import importlib, json
from importlib import metadata
found = {{}}
for name in {list(modules)!r}:
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        found[name] = {{"ok": False, "error": (type(exc).__name__ + ": " + str(exc))[:200]}}
        continue
    version = getattr(module, "__version__", None)
    if not isinstance(version, str):
        try:
            version = metadata.version(name)
        except Exception:
            version = None
    found[name] = {{"ok": True, "version": version}}
print({_PROBE_MARKER!r} + json.dumps(found))
"""


def probe_solvers(backend: str) -> dict[str, Any]:
    """Run the import probe in a fresh sandbox of `backend`: {"available", "why", "modules"
    (name -> {"ok", "version" | "error"}), "error" (when the probe itself failed)}."""
    from or_env.sandbox import make_sandbox

    if backend == "docker":
        try:
            from or_env.sandbox.docker import docker_usable
        except ImportError as exc:
            return {"available": False, "why": f"the docker backend cannot load: {exc}"}
        usable, why = docker_usable()
        if not usable:
            return {"available": False, "why": why}
    report: dict[str, Any] = {"available": True, "why": "", "modules": {}}
    try:
        with make_sandbox(backend, workers=1, timeout=PROBE_TIMEOUT_S) as sandbox:
            result = sandbox.run(solver_probe_program(), timeout=PROBE_TIMEOUT_S)
            report["isolation"] = getattr(sandbox, "isolation_details", None)
    except Exception as exc:
        report["error"] = f"the sandbox did not start: {type(exc).__name__}: {exc}"
        return report
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(_PROBE_MARKER)]
    if not lines:
        detail = result.sandbox_error or result.stderr.strip()[-300:] or "no output"
        report["error"] = f"the probe program failed (exit {result.exit_code}): {detail}"
        return report
    report["modules"] = json.loads(lines[-1].removeprefix(_PROBE_MARKER))
    return report


def solver_table(reports: dict[str, dict[str, Any]]) -> str:
    """The per-module table of `or-env sandbox check` (ok VERSION / missing per backend)."""
    names = list(reports)
    lines = ["solvers each sandbox can import:"]
    lines.append((f"{'module':<11}" + "".join(f"{name:<22}" for name in names)).rstrip())
    for module in SOLVER_MODULES:
        cells = []
        for name in names:
            report = reports[name]
            if not report["available"]:
                cells.append("-")
            elif report.get("error"):
                cells.append("?")
            else:
                found = report["modules"].get(module) or {}
                cells.append(
                    f"ok {found.get('version') or ''}".strip() if found.get("ok") else "missing"
                )
        lines.append((f"{module:<11}" + "".join(f"{cell:<22}" for cell in cells)).rstrip())
    lines.append("")
    for name in names:
        isolation = reports[name].get("isolation")
        if isolation:
            hidden = ", ".join(isolation.get("hidden") or []) or "-"
            lines.append(
                f"{name} isolation: {isolation['mode']}; network {isolation['network']}; "
                f"memory: {isolation['memory_limit']}; hidden from programs: {hidden}"
            )
            lines += [f"  warning: {w}" for w in isolation.get("warnings") or []]
    for name in names:
        report = reports[name]
        if not report["available"]:
            lines.append(f"{name}: not available ({report['why']})")
        elif report.get("error"):
            lines.append(f"{name}: {report['error']}")
        else:
            missing = [m for m, v in report["modules"].items() if not v.get("ok")]
            if missing:
                lines.append(
                    f"{name}: missing {', '.join(missing)}"
                    + (" (pip install -e '.[solvers]')" if name == "local" else "")
                )
            else:
                lines.append(f"{name}: every module imports")
    return "\n".join(lines)


def cmd_sandbox_build(args: argparse.Namespace) -> int:
    """Build the Docker sandbox image (online, or offline from Debian packages and wheels)."""
    from or_env.sandbox.image import ImageBuildError, build_image

    # The build's progress (both paths, each step of the offline one) is the output.
    for name in ("or_env.sandbox.image", "or_env.sandbox.offline_build"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        tag = build_image(offline=args.offline)
    except ImageBuildError as exc:
        error(exc)
        return 1
    _out(f"built {tag}")
    return 0


def cmd_sandbox_clean(args: argparse.Namespace) -> int:
    """Remove sandbox containers left by crashed runs (or all of them with --all)."""
    from or_env.sandbox.containers import remove_all_containers, remove_stale_containers

    removed = remove_all_containers() if args.all else remove_stale_containers()
    _out(f"removed {len(removed)} container(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="or-env", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_args(p: argparse.ArgumentParser, benchmark: bool = True) -> None:
        if benchmark:
            p.add_argument("benchmark", help="a name from `or-env benchmarks`, e.g. nl4opt, sample")
            p.add_argument("--version", help="a version of the benchmark (default: its default)")
        p.add_argument("--data-dir", help="the benchmark data folder (default: $OR_ENV_DATA_DIR)")

    def add(sub_: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub_.add_parser(name, formatter_class=HelpFormatter, **kwargs)

    p = add(sub, "benchmarks", help="list benchmarks, versions and problem counts")
    data_args(p, benchmark=False)
    p.set_defaults(func=cmd_benchmarks)
    bench_sub = p.add_subparsers(dest="benchmarks_command", required=False, metavar="ACTION")
    d = add(
        bench_sub,
        "diff",
        help="align the versions of a benchmark and list the problems whose ground truth "
        "differs, or that exist in one version only",
    )
    d.add_argument("benchmark", help="a name from `or-env benchmarks`, e.g. nl4opt")
    d.add_argument(
        "--reference",
        help="the version the others are compared with (default: the benchmark's default version)",
    )
    d.add_argument("--versions", help="comma-separated versions to compare (default: all)")
    d.add_argument("--data-dir", help="the benchmark data folder (default: $OR_ENV_DATA_DIR)")
    d.add_argument(
        "--show", type=nonnegative_int, default=20, help="label changes listed per version; 0: all"
    )
    d.add_argument("--json", action="store_true", help="print the diffs as JSON")
    d.set_defaults(func=cmd_benchmarks_diff)

    p = add(sub, "problems", help="list the problems of a benchmark")
    data_args(p)
    p.add_argument("--limit", type=nonnegative_int, default=0, help="show at most N; 0: all")
    p.set_defaults(func=cmd_problems)

    p = add(sub, "show", help="show one problem")
    data_args(p)
    p.add_argument("problem_id")
    p.set_defaults(func=cmd_show)

    from or_env.sandbox import BACKENDS

    sandbox_choices = list(BACKENDS)
    p = add(sub, "run", help="run a Python file in a sandbox")
    p.add_argument("file", help="the program")
    p.add_argument("--sandbox", choices=sandbox_choices, default="auto", help="the backend")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="seconds")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_run)

    p = add(sub, "play", help="play an episode from a file of policy turns")
    p.add_argument(
        "turns",
        help=".jsonl ({'text': ...} per line), .json list, or text with "
        "turns separated by '---' lines",
    )
    p.add_argument("--benchmark", default="sample", help="where the problem comes from")
    p.add_argument("--version", help="a version of the benchmark (default: its default)")
    p.add_argument("--data-dir", help="the benchmark data folder (default: $OR_ENV_DATA_DIR)")
    p.add_argument("--problem-id", help="default: the first problem")
    p.add_argument(
        "--rendering", choices=["inline", "chat"], default="inline", help="the env's rendering"
    )
    p.add_argument("--sandbox", choices=sandbox_choices, default="auto", help="the backend")
    p.set_defaults(func=cmd_play)

    p = add(
        sub,
        "demo",
        help="grade the bundled sample problems with their reference "
        "programs (no GPU, no model needed)",
    )
    p.add_argument("--sandbox", choices=sandbox_choices, default="auto", help="the backend")
    p.add_argument("--limit", type=nonnegative_int, default=0, help="first N problems; 0: all")
    p.set_defaults(func=cmd_demo)

    p = add(sub, "sandbox", help="sandbox tools")
    sandbox_sub = p.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    c = add(
        sandbox_sub,
        "check",
        help="say which backend sandbox='auto' picks and why, and which solvers each "
        "backend can import",
    )
    c.add_argument(
        "--no-solvers", action="store_true", help="skip the solver import probe (faster)"
    )
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="report the Ray sandbox pool of this cluster instead (actors, nodes, backends, "
        "isolation; 'auto': the running cluster); a pool not running yet is created for "
        "the check and shut down",
    )
    c.add_argument("--pool", default="or_env_sandbox", help="the Ray pool's name (with --ray)")
    c.add_argument("--namespace", default="or_env", help="the Ray pool's namespace (with --ray)")
    c.set_defaults(func=cmd_sandbox_check)
    c = add(sandbox_sub, "build", help="build the Docker sandbox image")
    how = c.add_mutually_exclusive_group()
    how.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="debootstrap base + local wheels (no image registry needed)",
    )
    how.add_argument(
        "--online", dest="offline", action="store_false", help="plain docker build from PyPI"
    )
    c.set_defaults(func=cmd_sandbox_build)
    c = add(sandbox_sub, "clean", help="remove sandbox containers whose owning process is gone")
    c.add_argument(
        "--all", action="store_true", help="also those of running processes (stops their pools)"
    )
    c.set_defaults(func=cmd_sandbox_clean)
    from or_env.integrations.serve import add_serve_command  # imports no optional package

    add_serve_command(sub, HelpFormatter)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Commands contributed by packages built on or_env (e.g. `eval` from agents).

    They register through the "or_env.cli" entry-point group, so or_env never imports
    the packages that depend on it.
    """
    for entry_point in entry_points(group="or_env.cli"):
        try:
            register = entry_point.load()
        except ImportError as exc:
            logger.debug("command %r unavailable: %s", entry_point.name, exc)
            continue
        register(sub)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        return args.func(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped early (`| head`): stop writing, quietly. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (
        CommandError,
        DatasetError,
        ValueError,
        KeyError,
        OSError,
        RuntimeError,
    ) as exc:
        error(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
