"""The `or-env` command: benchmarks, problems, sandboxes, and episodes from the shell."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from or_env.problems import DatasetError, load_problems

logger = logging.getLogger("or_env.cli")


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
    raise SystemExit(
        f"error: no problem {args.problem_id!r} in {args.benchmark}; "
        f"see `or-env problems {args.benchmark}`"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Run a Python file through a sandbox and print what it produced."""
    from or_env.sandbox import make_sandbox

    code = Path(args.file).read_text()
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
                    raise SystemExit(
                        f'error: {path}:{number}: expected {{"text": ...}}: {exc}'
                    ) from exc
        return turns
    if path.suffix == ".json":
        data = json.loads(raw)
        if not (isinstance(data, list) and all(isinstance(t, str) for t in data)):
            raise SystemExit(f"error: {path}: expected a JSON list of strings")
        return data
    return [chunk.strip("\n") + "\n" for chunk in raw.split("\n---\n") if chunk.strip()]


def cmd_play(args: argparse.Namespace) -> int:
    """Play an episode from a file of policy turns and print the transcript."""
    from or_env.env import ORModelingEnv

    turns = _read_turns(Path(args.turns))
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
    """Say which sandbox `auto` picks and why."""
    from or_env.sandbox import resolve_backend

    backend, why = resolve_backend("auto")
    _out(f"sandbox='auto' uses: {backend}\nwhy: {why}")
    return 0


def cmd_sandbox_build(args: argparse.Namespace) -> int:
    """Build the Docker sandbox image (online, or offline from Debian packages and wheels)."""
    from or_env.sandbox.image import ImageBuildError, build_image

    logging.getLogger("or_env.sandbox.image").setLevel(logging.INFO)
    try:
        tag = build_image(offline=args.offline)
    except ImageBuildError as exc:
        _out(f"error: {exc}")
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
    parser = argparse.ArgumentParser(prog="or-env", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_args(p: argparse.ArgumentParser, benchmark: bool = True) -> None:
        if benchmark:
            p.add_argument("benchmark", help="a name from `or-env benchmarks`, e.g. nl4opt, sample")
            p.add_argument("--version", help="a version of the benchmark (default: its default)")
        p.add_argument("--data-dir", help="the benchmark data folder (default: $OR_ENV_DATA_DIR)")

    p = sub.add_parser("benchmarks", help="list benchmarks, versions and problem counts")
    data_args(p, benchmark=False)
    p.set_defaults(func=cmd_benchmarks)

    p = sub.add_parser("problems", help="list the problems of a benchmark")
    data_args(p)
    p.add_argument("--limit", type=int, default=0, help="show at most N (default: all)")
    p.set_defaults(func=cmd_problems)

    p = sub.add_parser("show", help="show one problem")
    data_args(p)
    p.add_argument("problem_id")
    p.set_defaults(func=cmd_show)

    sandbox_choices = ["auto", "local", "docker"]
    p = sub.add_parser("run", help="run a Python file in a sandbox")
    p.add_argument("file")
    p.add_argument("--sandbox", choices=sandbox_choices, default="auto")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("play", help="play an episode from a file of policy turns")
    p.add_argument(
        "turns",
        help=".jsonl ({'text': ...} per line), .json list, or text with "
        "turns separated by '---' lines",
    )
    p.add_argument("--benchmark", default="sample")
    p.add_argument("--version")
    p.add_argument("--data-dir")
    p.add_argument("--problem-id", help="default: the first problem")
    p.add_argument("--rendering", choices=["inline", "chat"], default="inline")
    p.add_argument("--sandbox", choices=sandbox_choices, default="auto")
    p.set_defaults(func=cmd_play)

    p = sub.add_parser(
        "demo",
        help="grade the bundled sample problems with their reference "
        "programs (no GPU, no model needed)",
    )
    p.add_argument("--sandbox", choices=sandbox_choices, default="auto")
    p.add_argument("--limit", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sandbox", help="sandbox tools")
    sandbox_sub = p.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    c = sandbox_sub.add_parser("check", help="say which backend sandbox='auto' picks, and why")
    c.set_defaults(func=cmd_sandbox_check)
    c = sandbox_sub.add_parser("build", help="build the Docker sandbox image")
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
    c = sandbox_sub.add_parser(
        "clean", help="remove sandbox containers whose owning process is gone"
    )
    c.add_argument(
        "--all", action="store_true", help="also those of running processes (stops their pools)"
    )
    c.set_defaults(func=cmd_sandbox_clean)
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (DatasetError, ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        _out(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
