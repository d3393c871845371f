"""The env's `direct` protocol (ORLM / LLMOPT / SIRL paradigm) on the real local sandbox."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from or_env import ORModelingEnv, load_problems
from or_env.direct import (
    DEFAULT_DIRECT_SYSTEM_PROMPT,
    ORLM_EPILOGUE,
    extract_program,
    get_direct_rule,
    read_answer,
)
from or_env.sandbox.base import ExecResult
from or_env.sandbox.local import LocalSandbox

HAS_COPTPY = importlib.util.find_spec("coptpy") is not None
needs_coptpy = pytest.mark.skipif(not HAS_COPTPY, reason="coptpy is not installed")
SAMPLE = load_problems("sample")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(workers=2) as box:
        yield box


def direct_env(sandbox, answer: object = 12.0, **kwargs) -> ORModelingEnv:
    env = ORModelingEnv(
        [{"id": "p", "question": "q", "answer": answer}],
        sandbox=sandbox,
        protocol="direct",
        **kwargs,
    )
    env.reset(options={"index": 0})
    return env


# ----------------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    ("response", "program"),
    [
        ("no code here", None),
        ("```python\n\n```", None),
        ("Model:\n```python\nprint(1)\n```\ntext", "\nprint(1)\n"),
        ("```python\nA\n```\nthen\n```python\nB\n```", "\nA\n"),  # the FIRST block, as ORLM
        ("```python\nprint(1)\n", "\nprint(1)"),  # unclosed: ORLM's slice drops a character
        ("```py\nprint(1)\n```", None),  # ORLM searches for "```python" only
    ],
)
def test_extract_program_follows_orlm(response: str, program: str | None) -> None:
    assert extract_program(response) == program


def ok(stdout: str, **kwargs) -> ExecResult:
    return ExecResult(stdout=stdout, stderr="", exit_code=0, **kwargs)


@pytest.mark.parametrize(
    ("result", "answer", "reason"),
    [
        (ok("log\nJust print the best solution: 1160.0\n"), "1160.0", "answered"),
        (ok("Just print the best solution:   42  \nmore"), "42", "answered"),
        (ok("Just print the best solution: 1\nJust print the best solution: 2\n"), "1", "answered"),
        (ok("Just print the best solution: 5\nNo Best Solution\n"), "5", "answered"),
        (ok("Status: infeasible\nNo Best Solution\n"), "No Best Solution", "answered"),
        (ok("Objective: 12\n"), None, "no_answer"),
        (
            ExecResult("Just print the best solution: 3\n", "Traceback...", exit_code=1),
            None,
            "execution_error",
        ),
        (ExecResult("", "", exit_code=-9, timed_out=True), None, "timeout"),
        (ExecResult("", "", exit_code=None, sandbox_error="worker died"), None, "sandbox_error"),
    ],
)
def test_read_answer(result: ExecResult, answer: str | None, reason: str) -> None:
    reading = read_answer(result)
    assert (reading.answer, reading.reason) == (answer, reason)


def test_rules_by_name() -> None:
    assert get_direct_rule("orlm").epilogue == ORLM_EPILOGUE
    with pytest.raises(ValueError, match="unknown direct rule 'gurobi'"):
        get_direct_rule("gurobi")
    with pytest.raises(ValueError, match="protocol must be one of"):
        ORModelingEnv([{"id": "p", "question": "q", "answer": 1}], protocol="oneshot")


# ----------------------------------------------------------------------- episodes
def test_every_sample_reference_program_is_read_by_the_generic_epilogue(sandbox) -> None:
    env = ORModelingEnv(sandbox=sandbox, protocol="direct")
    for problem in SAMPLE:
        env.reset(options={"problem": problem})
        code = problem.meta["reference_code"]
        _, reward, terminated, truncated, info = env.step(f"The model.\n```python\n{code}\n```\n")
        assert (reward, terminated, truncated) == (1.0, True, False), (problem.id, info)
        assert info["termination_reason"] == "answered" and info["executions"] == 1


LP = (
    "import pulp\n"
    "{name} = pulp.LpProblem('p', pulp.LpMaximize)\n"
    "x = pulp.LpVariable('x', 0, {ub})\n"
    "{name} += 2 * x\n"
    "{name} += x <= 100\n"
    "{name}.solve(pulp.PULP_CBC_CMD(msg=0))\n"
)


@pytest.mark.parametrize(
    ("program", "answer", "reason"),
    [
        (LP.format(name="prob", ub=6), "12.0", "answered"),
        # Two models: the one named `model` is the answer.
        (LP.format(name="other", ub=1) + LP.format(name="model", ub=6), "12.0", "answered"),
        # Two models, neither named `model`: ambiguous, so no answer.
        (LP.format(name="a", ub=1) + LP.format(name="b", ub=6), None, "no_answer"),
        # Not solved: no answer, not "infeasible".
        ("import pulp\nprob = pulp.LpProblem('p')\n", None, "no_answer"),
        # A program that prints the marker itself needs no recognised model.
        ("print('Just print the best solution: 12')\n", "12", "answered"),
        (
            "import highspy\nh = highspy.Highs()\nh.setOptionValue('output_flag', False)\n"
            "h.addVar(0, 6)\nh.changeColCost(0, -2)\nh.run()\n",
            "-12.0",
            "answered",
        ),
        ("raise SystemExit(3)\n", None, "execution_error"),
        ("print(undefined_name)\n", None, "execution_error"),
    ],
)
def test_generic_epilogue(sandbox, program: str, answer: str | None, reason: str) -> None:
    env = direct_env(sandbox)
    _, reward, terminated, _, info = env.step(f"```python\n{program}```")
    assert terminated and info["answer"] == answer and info["termination_reason"] == reason
    assert reward == (1.0 if answer == "12.0" or answer == "12" else 0.0)


def test_infeasible_program_matches_an_infeasible_ground_truth(sandbox) -> None:
    env = direct_env(sandbox, answer="No Best Solution")
    program = (
        LP.format(name="model", ub=6) + "model += x >= 200\nmodel.solve(pulp.PULP_CBC_CMD(msg=0))\n"
    )
    _, reward, _, _, info = env.step(f"```python\n{program}```")
    assert info["answer"] == "No Best Solution" and reward == 1.0


def test_no_code_ends_the_episode_unanswered(sandbox) -> None:
    env = direct_env(sandbox)
    observation, reward, terminated, truncated, info = env.step("The answer is \\boxed{12}.")
    assert (observation, reward, terminated, truncated) == ("", 0.0, True, False)
    assert info["termination_reason"] == "no_code" and info["executions"] == 0
    assert info["grade"]["reason"] == "no_answer" and "execution" not in info
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step("again")


def test_timeout_is_an_outcome(sandbox) -> None:
    env = direct_env(sandbox, timeout=1.0)
    _, reward, terminated, _, info = env.step("```python\nwhile True:\n    pass\n```")
    assert terminated and reward == 0.0 and info["termination_reason"] == "timeout"
    assert info["execution"]["timed_out"] is True


def test_transcript_and_prompt_of_a_direct_episode(sandbox) -> None:
    env = direct_env(sandbox, tolerance="orlm")
    assert env.transcript.messages[0].content == DEFAULT_DIRECT_SYSTEM_PROMPT
    observation, _, _, _, info = env.step(
        "```python\nprint('Just print the best solution: 12.4')\n```"
    )
    assert info["correct"] and info["grade"]["tolerance"] == "orlm"  # 12.4 rounds to 12
    assert [(m.role, m.source) for m in env.transcript] == [
        ("system", "env"),
        ("user", "env"),
        ("assistant", "policy"),
        ("assistant", "env"),
    ]
    assert observation.startswith("\n```output\nJust print the best solution: 12.4")
    assert (
        info["protocol"] == "direct"
        and info["code"] == "\nprint('Just print the best solution: 12.4')\n"
    )


@needs_coptpy
@pytest.mark.parametrize("rule", ["orlm", "default"])
def test_coptpy_program_under_both_rules(sandbox, rule: str) -> None:
    program = (
        "import coptpy as cp\nfrom coptpy import COPT\nenv = cp.Envr()\n"
        "model = env.createModel('m')\n"
        "x = model.addVar(lb=0, ub=6, vtype=COPT.INTEGER, name='x')\n"
        "model.setObjective(2 * x, sense=COPT.MAXIMIZE)\nmodel.solve()\n"
    )
    env = direct_env(sandbox, direct_rule=rule, timeout=60.0)
    _, reward, _, _, info = env.step(f"## Model\n...\n```python\n{program}```\nDone.")
    assert info["termination_reason"] == "answered", info["execution"]
    assert float(info["answer"]) == 12.0 and reward == 1.0


def test_orlm_rule_without_a_model_variable_is_an_execution_error(sandbox) -> None:
    env = direct_env(sandbox, direct_rule="orlm")
    _, _, _, _, info = env.step("```python\nprint(12)\n```")
    assert info["termination_reason"] == "execution_error"  # ORLM's epilogue: NameError
