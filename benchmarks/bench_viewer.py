"""How the trajectory viewer scales: a synthetic run of many episodes, opened in headless Chromium.

Writes a synthetic eval run folder of `--episodes` episodes (default 10,000; records shaped
like the rollout runner's, about 8 kB each: reasoning, code, solver logs, some 400-line
outputs, program errors, timeouts; `tests/support/view_runs.py`), builds its page with
`or-env view`'s code, opens it in headless Chromium (Debian's `chromium`, driven over the
DevTools pipe by `tests/support/chromium.py`) and measures, each in the page's own clock
(`view_runs.time_viewer`):

- open: navigation start to the overview drawn (the viewer's first render), and to the
  load event (every episode's data parsed);
- filter: choosing an outcome in the select, until the list and counts are redrawn;
- search: typing two words into the search box, until redrawn;
- sort: sorting the filtered list by wall time;
- episode: opening an episode (its record parsed and drawn).

    python benchmarks/bench_viewer.py --episodes 10000 [--json OUT.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.chromium import Chromium
from support.view_runs import make_synthetic_run, time_viewer

from agents.viewer import load_run, write_html


def measure(episodes: int, folder: Path) -> dict[str, float | int | str]:
    """Build the run and its page in `folder`, open it, return the timings (see the doc)."""
    start = time.perf_counter()
    run = make_synthetic_run(folder / "run", episodes)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    page_path = write_html(load_run(run), folder / "view.html")
    built = time.perf_counter() - start
    results: dict[str, float | int | str] = {
        "episodes": episodes,
        "page_mb": round(page_path.stat().st_size / 1e6, 1),
        "episodes_jsonl_mb": round((run / "episodes.jsonl").stat().st_size / 1e6, 1),
        "generate_s": round(generated, 2),
        "build_s": round(built, 2),
    }
    with Chromium() as browser:
        results["chromium"] = browser.send("Browser.getVersion")["product"]
        page = browser.new_page(1400, 1000)
        wall = time.perf_counter()
        timings = time_viewer(page, page_path.resolve().as_uri(), episodes)
        results["open_to_episode_wall_ms"] = round(1000 * (time.perf_counter() - wall))
        results.update(timings)
        if page.console_errors:
            raise AssertionError(f"the page threw: {page.console_errors}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", help="build in this folder (kept) instead of a temporary one")
    args = parser.parse_args()
    if args.keep:
        results = measure(args.episodes, Path(args.keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = measure(args.episodes, Path(tmp))
    results["machine"] = f"{platform.machine()}, Linux {platform.release()}"
    for key, value in results.items():
        sys.stdout.write(f"{key}: {value}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
