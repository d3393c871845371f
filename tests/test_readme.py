"""The README's Python example runs as written and prints what its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_episode_example_runs() -> None:
    text = README.read_text()
    match = re.search(r"^```python\n(import gymnasium.*?)^```$", text, re.S | re.M)
    assert match, "the README lost its episode example"
    result = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "```output\n11.0\n```" in result.stdout
    assert "1.0 True answered" in result.stdout
