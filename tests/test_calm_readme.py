"""calm/README.md's Python example runs as written against a scripted judge server.

The example's judge URL points at a `ScriptedOpenAIServer` (real HTTP on 127.0.0.1) whose
scripted judge flags a hand-guessed answer once and then passes; `my_policy` is a scripted
reasoner (it guesses, and after the hint runs the problem's reference program).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from test_agents_openai import ScriptedOpenAIServer

from or_env import load_problems
from or_env.reference import read_reported_answer

README = Path(__file__).resolve().parents[1] / "calm" / "README.md"
HINT = "Wait, I guessed the profit; I should solve the model with pulp."


def scripted_judge(body: dict[str, Any]) -> str:
    if "graded correct" in body["messages"][1]["content"]:
        return '{"flawless": true}'
    return json.dumps(
        {"flawless": False, "turn": 1, "flaw_type": "manual_calculation", "hint": HINT}
    )


def test_calm_readme_example_runs(capsys) -> None:
    text = README.read_text()
    match = re.search(r"^```python\n(import gymnasium.*?)^```$", text, re.S | re.M)
    assert match, "calm/README.md lost its wrapper example"
    code = match.group(1)
    reference = load_problems("sample")[0].meta["reference_code"]

    def my_policy(chat: list[dict[str, str]]) -> str:
        last = chat[-1]["content"] if chat[-1]["role"] == "assistant" else ""
        answer = read_reported_answer(last)
        if answer:
            return f"The solver reports {answer}, so \\boxed{{{answer}}}."
        if last.startswith("Wait,"):
            return f"Let me solve it.\n```python\n{reference}\n```\n"
        return "By hand the profit is about 10000, so \\boxed{10000}."

    server = ScriptedOpenAIServer(scripted_judge, model="my-judge-model").start()
    try:
        code = code.replace('"http://localhost:8001/v1"', repr(server.base_url))
        exec(compile(code, str(README), "exec"), {"my_policy": my_policy})
    finally:
        server.stop()
    assert capsys.readouterr().out.strip() == "flawless 1 1.0"
    assert len(server.requests) == 2
