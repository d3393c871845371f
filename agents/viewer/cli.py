"""`or-env view`: a run folder's trajectories as one self-contained HTML page.

Registered with the `or-env` command through the "or_env.cli" entry-point group; this module
imports nothing heavy at import time, because every `or-env` invocation loads it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from or_env.cli import HelpFormatter

EPILOG = """examples:
  or-env view runs/orlm-replay                  # writes runs/orlm-replay/view.html
  or-env view runs/calm --out calm.html --open  # and opens it in the default browser

The page is one static file (inline CSS and script, no network): it works offline and can
be attached to a message. Episodes are parsed only when opened, so a run of 10,000 episodes
opens and filters in about a second. Program output and model text are shown as text."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `view` sub-command to the `or-env` parser."""
    p = subparsers.add_parser(
        "view",
        help="write a self-contained HTML trajectory viewer for an eval or CALM run folder",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a folder written by or-env eval or calm curate"
    )
    p.add_argument(
        "--out", metavar="FILE.html", help="where to write the page (default: RUN_DIR/view.html)"
    )
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    """Write the page, print its path and size, open it when asked."""
    from agents.viewer import write_view

    path = write_view(args.run_dir, args.out)
    size = path.stat().st_size
    sys.stdout.write(f"{path} ({size / 1e6:.1f} MB)\n")
    if args.open:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            sys.stderr.write(f"no web browser found: open {Path(path).resolve()} yourself\n")
    return 0
