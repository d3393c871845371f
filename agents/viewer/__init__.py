"""The trajectory viewer: one self-contained HTML page for an eval or a CALM run folder.

`or-env view RUN_DIR [--out FILE.html] [--open]` (or `write_view(run_dir, out)`) reads the
run folder (`agents.viewer.data.load_run`) and writes a static page (`agents.viewer.page`):
no server, no network, inline CSS and script, so it works offline and can be attached to a
message. The overview shows the run's settings, its report (results.md or CALM's
report.md), counts of termination reasons, failure reasons, execution classes and (CALM)
final judgements, filters and a sortable episode list; an episode shows the problem, every
message coloured by source with code and output blocks numbered, reasoning collapsible,
the answer against the ground truth with its grade, per-turn latency and tokens, and for
CALM runs each intervention with its dropped turns, the judge's replies and the final
judgement. Episode records are parsed only when opened, so runs of 10,000 episodes stay
quick. All text is shown as text: program output and model text cannot inject markup.
"""

from __future__ import annotations

from pathlib import Path

from agents.viewer.data import RunFolderError, RunView, load_run, select
from agents.viewer.page import render_html, write_html

__all__ = [
    "RunFolderError",
    "RunView",
    "load_run",
    "render_html",
    "select",
    "write_html",
    "write_view",
]

DEFAULT_PAGE = "view.html"


def write_view(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the viewer page of a run folder (default: RUN_DIR/view.html); returns its path."""
    view = load_run(run_dir)
    return write_html(view, Path(out) if out is not None else Path(run_dir) / DEFAULT_PAGE)
