"""Run folders for the trajectory viewer's tests: a real CALM run, the ORLM replay, and a
synthetic eval run of any size.

- `make_calm_run(out)`: `or-env calm curate` end to end against two `ScriptedOpenAIServer`s
  (a scripted reasoner and a scripted judge), real env, real local sandbox. Its problems:
  "careful" (code at once, judged flawless), "sloppy" (answered by hand and wrongly, the
  judge flags turn 1, the hint makes it run code and answer right), "hostile" (its program
  prints HTML and script, and its question holds markup) and "mute" (the judge never gives
  a verdict). The reasoner thinks aloud in `<think>` blocks.
- `make_orlm_run(out, data_dir)`: ORLM-LLaMA-3-8B's recorded responses replayed (the
  README's fidelity command, through the `or-env` command line).
- `make_synthetic_run(out, episodes)`: an eval run folder written directly (episodes.jsonl,
  results.json and results.md from `agents.metrics` / `agents.report`) with the record
  shape of `agents.runner`: thinking, code, solver logs (some long), program errors,
  timeouts, a sandbox failure, errored episodes. For the scale measurement and unit tests.
- `cached_run(tmp_path_factory, name, make)`: a run folder made once per test session.
- `time_viewer(page, url, episodes)`: opens a viewer page in headless Chromium and times the
  overview, a filter, a search, a sort and opening an episode (`benchmarks/bench_viewer.py`).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from agents.metrics import score_benchmarks
from agents.records import SCHEMA_VERSION, write_records
from agents.report import markdown_report, results_json
from or_env.cli import main

# Runs JavaScript statements and resolves with the milliseconds until the page has redrawn:
# after the viewer's own handlers (registered first) and the next frame. `done()` ends it.
TIMED = """new Promise(function (resolve) {
  var t0 = performance.now();
  function done() { requestAnimationFrame(function () { setTimeout(function () {
    resolve(performance.now() - t0); }, 0); }); }
  %s
})"""
READY = "document.documentElement.dataset.ready === '1'"

REASONER = "scripted-reasoner"
JUDGE = "scripted-judge"
HINT = "Wait, I worked this out by hand; I should run the computation in code."
# What the hostile problem's program prints: script, a tag closing the viewer's data block,
# an event handler. Any of them running marks the document (`data-pwned`) or opens a dialog.
HOSTILE_OUTPUT = (
    "<script>alert(1)</script>\n"
    "</script><script>document.documentElement.setAttribute('data-pwned','1')</script>\n"
    "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','2')\">"
)
CALM_PROBLEMS = [
    {"id": "careful", "question": "[careful] Compute 5 + 7 as the objective.", "answer": 12},
    {"id": "sloppy", "question": "[sloppy] Compute 20 * 3 as the objective.", "answer": 60},
    {
        "id": "hostile",
        "question": "[hostile] Compute 3 * 4 as the objective. <b>not bold</b> &amp; more",
        "answer": 12,
    },
    {"id": "mute", "question": "[careful] Compute 9 - 4 as the objective.", "answer": 5},
]
ORLM_BENCHMARKS = "nl4opt,mamo-complexlp,industryor"


def scripted_reasoner(body: dict[str, Any]) -> str:
    """Careful and hostile problems get code at once; sloppy ones are answered by hand (wrongly)
    until a hint is in the conversation. The answer is read from the last printed line."""
    messages = body["messages"]
    question = messages[1]["content"]
    expression = re.search(r"Compute (.+?) as", question).group(1)
    seen = "\n".join(m["content"] for m in messages[2:])
    printed = re.findall(r"```output\n(.*?)\n```", seen, re.DOTALL)
    if printed:
        value = printed[-1].strip().splitlines()[-1]
        return f"<think>The program printed {value}.</think>\nSo the optimum is \\boxed{{{value}}}."
    if "[sloppy]" in question and "Wait," not in seen:
        wrong = eval(expression) + 1
        return f"<think>Easy, no code needed.</think>\nBy hand, {expression} is \\boxed{{{wrong}}}."
    program = f"print({expression})"
    if "[hostile]" in question:
        program = f"print({HOSTILE_OUTPUT!r})\n{program}"
    return (
        "<think>I should compute this in code, not by hand.</think>\n"
        f"Let me run it.\n```python\n{program}\n```\n```output\nhallucinated\n```"
    )


def scripted_judge(body: dict[str, Any]) -> str:
    """Flags hand calculations, passes code-backed answers, never answers about 9 - 4."""
    prompt = body["messages"][1]["content"]
    if "9 - 4" in prompt:
        return "I am not sure what to say about this one."
    if "graded correct" in prompt and "```python" in prompt:
        return 'Looks right.\n```json\n{"flawless": true}\n```'
    return json.dumps(
        {
            "flawless": False,
            "turn": 1,
            "flaw_type": "manual_calculation",
            "hint": HINT,
            "rationale": "no code was run",
        }
    )


def make_calm_run(out: Path) -> Path:
    """A CALM run folder made by `or-env calm curate` with scripted servers (see the module
    doc); returns `out`."""
    from test_agents_openai import ScriptedOpenAIServer

    out.mkdir(parents=True, exist_ok=True)
    problems = out.parent / f"{out.name}-problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in CALM_PROBLEMS))
    reasoner = ScriptedOpenAIServer(scripted_reasoner, model=REASONER).start()
    judge = ScriptedOpenAIServer(scripted_judge, model=JUDGE).start()
    try:
        status = main(
            [
                "calm",
                "curate",
                "--reasoner-base-url",
                reasoner.base_url,
                "--reasoner-model",
                REASONER,
                "--intervener-base-url",
                judge.base_url,
                "--intervener-model",
                JUDGE,
                "--problems",
                str(problems),
                "--concurrency",
                "4",
                "--sandbox",
                "local",
                "--sandbox-workers",
                "2",
                "--max-retries",
                "1",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
    finally:
        reasoner.stop()
        judge.stop()
    if status != 0:
        raise RuntimeError(f"or-env calm curate exited with {status}")
    return out


def make_orlm_run(out: Path, data_dir: str) -> Path:
    """The ORLM replay run (README "Fidelity") made with `or-env eval`; returns `out`."""
    import os

    before = os.environ.get("OR_ENV_DATA_DIR")
    os.environ["OR_ENV_DATA_DIR"] = data_dir
    try:
        status = main(
            [
                "eval",
                "--policy",
                "replay",
                "--replay",
                "orlm",
                "--benchmarks",
                ORLM_BENCHMARKS,
                "--version",
                "orlm-hf",
                "--protocol",
                "direct",
                "--direct-rule",
                "orlm",
                "--tolerance",
                "orlm",
                "--prompt",
                "orlm",
                "--sandbox",
                "local",
                "--concurrency",
                "16",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
    finally:
        if before is None:
            os.environ.pop("OR_ENV_DATA_DIR", None)
        else:
            os.environ["OR_ENV_DATA_DIR"] = before
    if status != 0:
        raise RuntimeError(f"or-env eval exited with {status}")
    return out


# ------------------------------------------------------------------------- synthetic runs
SYNTHETIC_BENCHMARKS = ("nl4opt", "mamo-easylp", "industryor", "optmath")
_WORDS = tuple(
    [
        "factory",
        "produces",
        "chairs",
        "tables",
        "labour",
        "hours",
        "profit",
        "maximize",
        "minimize",
        "warehouse",
        "demand",
        "truck",
        "route",
        "cost",
        "capacity",
        "shift",
        "nurses",
        "schedule",
        "budget",
        "steel",
        "plant",
        "supply",
        "blend",
        "diet",
        "protein",
        "vitamin",
        "crop",
        "acres",
        "fertilizer",
        "water",
        "machine",
        "time",
        "units",
        "product",
        "each",
        "week",
    ]
)


def _question(rng: random.Random, index: int) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(80, 160)))
    return f"Problem {index}: A company must plan. {words}. What is the optimal objective value?"


def _solver_log(rng: random.Random, lines: int) -> str:
    rows = [
        f"{k:6d} {rng.uniform(0, 1e4):14.4f} {rng.uniform(0, 1e4):14.4f} {rng.randint(0, 99):3d}s"
        for k in range(lines)
    ]
    return "Running HiGHS 1.16.0\n" + "\n".join(rows)


def synthetic_record(rng: random.Random, index: int, benchmark: str, sample: int) -> dict:
    """One episode record shaped like `agents.runner`'s (native protocol, inline)."""
    truth = round(rng.uniform(10, 5000), 2)
    question = _question(random.Random(index), index)  # the same for every sample
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": "You solve OR problems with code.",
            "source": "env",
            "turn": 0,
        },
        {"role": "user", "content": question, "source": "env", "turn": 0},
    ]
    steps: list[dict[str, Any]] = []
    roll = rng.random()
    turn = 0
    reason = "answered"
    executions = 0
    for _ in range(rng.randint(1, 3)):
        turn += 1
        code = "\n".join(
            ["import highspy", "h = highspy.Highs()"]
            + [f"x{k} = h.addVariable(lb=0)  # {rng.choice(_WORDS)}" for k in range(12)]
            + ["h.run()", "print(h.getInfo().objective_function_value)"]
        )
        text = (
            f"<think>{' '.join(rng.choice(_WORDS) for _ in range(60))}</think>\n"
            f"Let me model it.\n```python\n{code}\n```\n"
        )
        messages.append({"role": "assistant", "content": text, "source": "policy", "turn": turn})
        timed_out = roll < 0.03 and turn == 1
        failure = "lost" if 0.03 <= roll < 0.035 and turn == 1 else None
        exit_code = None if failure else (-9 if timed_out else (1 if roll < 0.15 else 0))
        log_lines = 400 if rng.random() < 0.05 else rng.randint(5, 30)
        output = (
            "Traceback (most recent call last):\nValueError: infeasible bounds"
            if exit_code == 1
            else _solver_log(rng, log_lines) + f"\n{truth}"
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"\n```output\n{output}\n```\n",
                "source": "env",
                "turn": turn,
            }
        )
        executions += 1
        steps.append(
            {
                "turn": turn,
                "action_kind": "code",
                "latency_s": round(rng.uniform(0.5, 20), 4),
                "env_s": round(rng.uniform(0.01, 3), 4),
                "prompt_tokens": rng.randint(300, 3000),
                "completion_tokens": rng.randint(50, 1500),
                "finish_reason": "stop",
                "attempts": 1,
                "reasoning": None,
                "execution": {
                    "exit_code": exit_code,
                    "timed_out": timed_out,
                    "wall_s": 30.0 if timed_out else round(rng.uniform(0.01, 2), 4),
                    "truncated": log_lines > 300,
                    "sandbox_error": "the worker died" if failure else None,
                    "failure": failure,
                },
                "rewound_to": None,
            }
        )
    status, error = "ok", None
    correct = roll >= 0.45
    answer: str | None = str(truth if correct else round(truth * rng.uniform(1.2, 2), 2))
    if roll > 0.98:
        status, error, reason, correct, answer = "error", "policy error: 503", "error", False, None
    elif 0.35 <= roll < 0.4:
        reason, answer = "max_turns", None
    if status == "ok" and answer is not None:
        turn += 1
        messages.append(
            {
                "role": "assistant",
                "content": f"The optimum is \\boxed{{{answer}}}.",
                "source": "policy",
                "turn": turn,
            }
        )
        steps.append(
            {
                "turn": turn,
                "action_kind": "answer",
                "latency_s": round(rng.uniform(0.2, 5), 4),
                "env_s": 0.0,
                "prompt_tokens": rng.randint(300, 3000),
                "completion_tokens": rng.randint(5, 50),
                "finish_reason": "stop",
                "attempts": 1,
                "reasoning": None,
                "execution": None,
                "rewound_to": None,
            }
        )
    grade = None
    if status == "ok" and answer is not None:
        rel = abs(float(answer) - truth) / truth
        grade = {
            "correct": correct,
            "predicted": float(answer),
            "ground_truth": truth,
            "rel_error": rel,
            "abs_error": abs(float(answer) - truth),
            "reason": "correct" if correct else "wrong_value",
            "raw_answer": answer,
            "tolerance": "default",
            "reward": 1.0 if correct else 0.0,
        }
    policy_s = sum(s["latency_s"] for s in steps)
    env_s = sum(s["env_s"] for s in steps)
    return {
        "schema": SCHEMA_VERSION,
        "problem_id": f"{benchmark}-{index}",
        "benchmark": benchmark,
        "version": "synthetic",
        "sample": sample,
        "seed": rng.randint(0, 2**31 - 1),
        "status": status,
        "error": error,
        "reward": 1.0 if correct else 0.0,
        "correct": correct,
        "answer": answer,
        "ground_truth": truth,
        "grade": grade,
        "termination_reason": reason,
        "turns": turn,
        "generated_turns": len(steps),
        "executions": executions,
        "messages": messages,
        "steps": steps,
        "tokens": {
            "prompt": sum(s["prompt_tokens"] for s in steps),
            "completion": sum(s["completion_tokens"] for s in steps),
        },
        "timings": {
            "wall_s": round(policy_s + env_s + 0.01, 4),
            "policy_s": round(policy_s, 4),
            "env_s": round(env_s, 4),
            "started_at": "2026-01-01T00:00:00+00:00",
        },
        "protocol": "native",
        "rendering": "inline",
        "tolerance": "default",
        "policy": {"policy": "openai", "model": "synthetic-model"},
    }


def make_synthetic_run(out: Path, episodes: int, samples: int = 2, seed: int = 0) -> Path:
    """An eval run folder of `episodes` synthetic episodes (see the module doc)."""
    rng = random.Random(seed)
    records = []
    problems = max(episodes // samples, 1)
    for index in range(problems):
        benchmark = SYNTHETIC_BENCHMARKS[index % len(SYNTHETIC_BENCHMARKS)]
        for sample in range(samples):
            if len(records) < episodes:
                records.append(synthetic_record(rng, index, benchmark, sample))
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "episodes.jsonl", records)
    scores = score_benchmarks(records)
    settings = {"protocol": "native", "rendering": "inline", "samples": samples, "policy": "openai"}
    (out / "results.json").write_text(
        json.dumps(results_json(scores, "synthetic-model", settings), indent=2) + "\n"
    )
    (out / "results.md").write_text(markdown_report(scores, "synthetic-model", settings))
    (out / "run_config.json").write_text(json.dumps({"protocol": "native"}, indent=2) + "\n")
    return out


def cached_run(factory: pytest.TempPathFactory, name: str, make: Any) -> Path:
    """A run folder made once per test session by `make(folder)` (test modules share it)."""
    folder = factory.getbasetemp() / "viewer-runs" / name
    if not (folder / "episodes.jsonl").exists():
        make(folder)
    return folder


def time_viewer(page: Any, url: str, episodes: int) -> dict[str, int]:
    """Open a viewer page in a `support.chromium.Page` and time it, in the page's own clock:
    the overview drawn and the load event after navigation start, then choosing an outcome
    filter, typing a search, sorting by wall time and opening the last episode, each until
    redrawn. Checks the list holds `episodes` before filtering."""
    page.goto(url, ready=READY)
    timings = {
        "overview_drawn_ms": int(page.evaluate("document.documentElement.dataset.readyMs")),
        "load_event_ms": round(
            page.evaluate("performance.getEntriesByType('navigation')[0].loadEventStart")
        ),
    }
    shown = int(page.evaluate("document.getElementById('shown-count').textContent"))
    if shown != episodes:
        raise AssertionError(f"the page lists {shown} episodes, not {episodes}")

    def timed(action: str) -> int:
        return round(page.evaluate(TIMED % action))

    def count() -> int:
        return int(page.evaluate("document.getElementById('shown-count').textContent"))

    on_hash = "window.addEventListener('hashchange', done, {once: true});"
    timings["filter_ms"] = timed(
        on_hash + "var s = document.getElementById('filter-outcome'); s.value = 'wrong';"
        "s.dispatchEvent(new Event('change'));"
    )
    timings["filtered_episodes"] = count()
    timings["search_ms"] = timed(
        "var q = document.getElementById('filter-q'); q.value = 'warehouse diet';"
        "q.dispatchEvent(new Event('input')); done();"
    )
    timings["searched_episodes"] = count()
    timings["sort_ms"] = timed(
        on_hash + "document.querySelector('a[data-sort=\"wall_s\"]').click();"
    )
    timings["open_episode_ms"] = timed(on_hash + f"location.hash = '#/episode/{episodes - 1}';")
    if page.evaluate("document.documentElement.dataset.view") != "episode":
        raise AssertionError("the episode did not open")
    return timings
