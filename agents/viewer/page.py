"""The viewer page: one self-contained HTML file (inline CSS and script, no network).

Layout of the file:

- a Content-Security-Policy that allows nothing but this file's own style and script (by
  their SHA-256) and `data:` images: no request can leave the page, and no script or event
  handler other than the viewer's can run, even if some text were ever parsed as HTML;
- the index (`RunView.index()`) in `<script type="application/json" id="run-index">`;
- the viewer's script, which renders the overview as soon as the index is parsed;
- one `<script type="application/json" id="e<N>">` per episode record, parsed only when
  the episode is opened (lazy: a 10,000-episode run opens without parsing every record).

Data goes in as JSON with `<`, `>` and `&` written as `\\u003c`, `\\u003e`, `\\u0026`, so no
text (a program that prints `</script>`) can end its block. The script builds every element
with `textContent`; no data is ever parsed as HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from agents.viewer.data import RunView

ASSETS = ("viewer.css", "viewer.js")


def _asset(name: str) -> str:
    return resources.files("agents.viewer").joinpath("assets", name).read_text(encoding="utf-8")


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as strings (JSON.parse refuses them as numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def script_json(value: Any) -> str:
    """JSON safe inside a `<script>` element: `<`, `>`, `&` escaped, no NaN."""
    try:
        text = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str
        )
    except ValueError:
        text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _sha256(text: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
    )


def content_security_policy(css: str, script: str) -> str:
    """The page's policy: only its own style and script (by hash), data: images."""
    return (
        "default-src 'none'; "
        f"style-src {_sha256(css)}; "
        f"script-src {_sha256(script)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def render_chunks(view: RunView) -> Iterator[str]:
    """The page as text chunks (written one after the other: no 100 MB string in memory)."""
    css, script = _asset("viewer.css"), _asset("viewer.js")
    policy = content_security_policy(css, script)
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{html.escape(view.title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        "<noscript>This viewer needs JavaScript.</noscript>\n"
        '<div id="app"></div>\n'
        f'<script type="application/json" id="run-index">{script_json(view.index())}</script>\n'
        f"<script>{script}</script>\n"
    )
    for index, record in enumerate(view.records):
        yield f'<script type="application/json" id="e{index}">{script_json(record)}</script>\n'
    yield "</body>\n</html>\n"


def render_html(view: RunView) -> str:
    """The whole page as one string (see `write_html` for large runs)."""
    return "".join(render_chunks(view))


def write_html(view: RunView, path: str | Path) -> Path:
    """Write the page to `path` (its folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for chunk in render_chunks(view):
            handle.write(chunk)
    tmp.replace(path)
    return path
