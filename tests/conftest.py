"""Suite-wide settings.

CI sets OR_ENV_REQUIRE_DOCKER=1 after starting the daemon and building the image: then a
docker-marked test that would skip for lack of Docker fails instead, so a broken setup
cannot pass as a green run of skipped tests. Likewise OR_ENV_REQUIRE_DATA=1 (the
benchmark folder is there): a `benchmark_data` or red-team test that skips fails instead,
so neither a missing data folder nor a sandbox mode that could not be set up (say, the
unprivileged one) hides behind a skip. For the optional stacks the same holds per marker:
OR_ENV_REQUIRE_<MARKER>=1 turns a skip of a test marked `ray`, `trl`, `serve`, `skyrl`,
`verifiers` or `podman` into a failure.

`--isolation-report=PATH.md` (opt-in) writes what the red-team suite measured: a
markdown table with one row per attack category (tests marked `redteam(category)`) and
one column per backend mode (docker, local-root, local-unprivileged), each cell the
attacks passed (contained) out of those run, then the attacks that got through:

    python -m pytest tests/test_redteam_sandbox.py --isolation-report=isolation.md
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import pytest

REDTEAM_CATEGORIES = ("network", "filesystem", "processes", "memory", "ipc", "time")
# Markers of tests that need an optional stack; CI installs each and sets its flag.
REQUIRABLE_MARKERS = ("ray", "trl", "serve", "skyrl", "verifiers", "podman")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--isolation-report",
        metavar="PATH",
        default=None,
        help="write a markdown table of the red-team attacks contained per category and "
        "sandbox backend/mode (tests marked redteam) to PATH",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redteam(category): an attack on the sandboxes, counted in --isolation-report; "
        f"category is one of {', '.join(REDTEAM_CATEGORIES)}",
    )
    path = config.getoption("--isolation-report", default=None)
    if path:
        config.pluginmanager.register(IsolationReport(path), "or-env-isolation-report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("redteam")
        if marker and (not marker.args or marker.args[0] not in REDTEAM_CATEGORIES):
            raise pytest.UsageError(
                f"{item.nodeid}: redteam marker needs one of {REDTEAM_CATEGORIES}, "
                f"got {marker.args}"
            )
    if os.environ.get("OR_ENV_REQUIRE_DATA") == "1":
        data = os.environ.get("OR_ENV_DATA_DIR", "")
        if not data or not Path(data).is_dir():
            raise pytest.UsageError(
                f"OR_ENV_REQUIRE_DATA=1 but OR_ENV_DATA_DIR ({data!r}) is not a folder"
            )
    if os.environ.get("OR_ENV_REQUIRE_DOCKER") != "1":
        return
    if not any(item.get_closest_marker("docker") for item in items):
        return
    from or_env.sandbox.docker import docker_usable

    usable, why = docker_usable()
    if not usable:
        raise pytest.UsageError(f"OR_ENV_REQUIRE_DOCKER=1 but Docker is unusable: {why}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    required = [
        f"OR_ENV_REQUIRE_{marker.upper()}"
        for marker in REQUIRABLE_MARKERS
        if item.get_closest_marker(marker)
        and os.environ.get(f"OR_ENV_REQUIRE_{marker.upper()}") == "1"
    ]
    if os.environ.get("OR_ENV_REQUIRE_DATA") == "1" and (
        item.get_closest_marker("benchmark_data") or item.get_closest_marker("redteam")
    ):
        required.append("OR_ENV_REQUIRE_DATA")
    if required:
        report.outcome = "failed"
        report.longrepr = f"skipped, but {required[0]}=1 requires it to run: {reason}"


class IsolationReport:
    """Collects the outcome of every red-team test per (category, mode) and writes a table."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.cells: dict[str, tuple[str, str, str]] = {}  # nodeid -> (category, mode, name)
        self.outcomes: dict[str, str] = {}
        self.skip_reasons: dict[str, str] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from support.redteam import backend_mode

        for item in items:
            marker = item.get_closest_marker("redteam")
            callspec = getattr(item, "callspec", None)
            backend = callspec.params.get("backend") if callspec else None
            if marker is None or backend is None:
                continue
            name = item.originalname if hasattr(item, "originalname") else item.name
            extra = [v for k, v in callspec.params.items() if k != "backend"]
            if extra:
                name += "[" + "-".join(str(v)[:20].replace("\n", " ") for v in extra) + "]"
            self.cells[item.nodeid] = (marker.args[0], backend_mode(backend), name)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.cells:
            return
        if report.failed or hasattr(report, "wasxfail"):  # a known gap is still a gap
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = "skipped"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.skip_reasons[report.nodeid] = str(reason).removeprefix("Skipped: ")
        elif report.when == "call" and report.passed and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = "passed"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from support.redteam import MODES

        table: dict[tuple[str, str], dict[str, list[str]]] = {}
        for nodeid, (category, mode, name) in self.cells.items():
            outcome = self.outcomes.get(nodeid)
            if outcome is None:  # deselected or not run
                continue
            table.setdefault((category, mode), {}).setdefault(outcome, []).append(name)
        lines = [
            "# What each sandbox backend and mode isolates",
            "",
            f"Measured by `tests/test_redteam_sandbox.py` on {platform.node()} "
            f"(Linux {platform.release()}, {platform.machine()}), "
            f"{datetime.datetime.now().isoformat(timespec='minutes')}. A cell counts the "
            "attacks of that category the sandbox contained (test passed) out of those run.",
            "",
            "| category | " + " | ".join(MODES) + " |",
            "|---|" + "---|" * len(MODES),
        ]
        for category in REDTEAM_CATEGORIES:
            row = [category]
            for mode in MODES:
                cell = table.get((category, mode), {})
                passed, failed = len(cell.get("passed", [])), len(cell.get("failed", []))
                if passed + failed == 0:
                    row.append("skipped" if cell.get("skipped") else "-")
                elif failed:
                    row.append(f"**{passed}/{passed + failed}** ({failed} got through)")
                else:
                    row.append(f"{passed}/{passed}")
            lines.append("| " + " | ".join(row) + " |")
        failures = [
            (category, mode, sorted(cell["failed"]))
            for (category, mode), cell in sorted(table.items())
            if cell.get("failed")
        ]
        if failures:
            lines += ["", "## Attacks that got through", ""]
            for category, mode, names in failures:
                lines.append(f"- {mode} / {category}: " + ", ".join(f"`{n}`" for n in names))
        skipped = sorted({(self.cells[n][1], r) for n, r in self.skip_reasons.items()})
        if skipped:
            lines += ["", "## Skipped", ""]
            lines += [f"- {mode}: {reason}" for mode, reason in skipped]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n")
