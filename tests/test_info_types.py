"""The env's info dicts have the shape `or_env.info` declares; the protocols are objects.

Real episodes on the local sandbox: every info of every step is checked, key by key and
value by value, against its TypedDict, in both protocols and both renderings, sync and async.
"""

from __future__ import annotations

import asyncio
import types
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from or_env import ORModelingEnv
from or_env.direct import DIRECT_RULES, DirectProtocol
from or_env.info import END_KEYS, EndInfo, ResetInfo, StepInfo
from or_env.protocol import NativeProtocol
from or_env.sandbox.local import LocalSandbox

PROBLEMS = [
    {"id": "p1", "question": "What is 5 + 7?", "answer": 12.0},
    {"id": "p2", "question": "No feasible point.", "answer": "No Best Solution"},
]
RUN_12 = "```python\nprint(5 + 7)\n```\n"
DIRECT_12 = "```python\nprint('Just print the best solution: 12')\n```"

# (protocol, problem index, actions): between them every action kind and termination reason.
EPISODES = [
    ("native", 0, [RUN_12, "\\boxed{12}"]),
    ("native", 0, ["Hmm.", "```python\nprint(1)\n", "\\boxed{13}"]),
    ("native", 0, ["```python\nprint('\ud800')\n```", "```python\n1/0\n```", "\\boxed{}"]),
    ("native", 1, ["\\boxed{infeasible}"]),
    ("native", 0, [RUN_12, RUN_12, RUN_12]),  # max_executions
    ("native", 0, ["a", "b", "c", "d"]),  # max_turns
    ("native", 0, ["z" * 1_000_001, "b", "c"]),
    ("direct", 0, [DIRECT_12]),
    ("direct", 0, ["no program \\boxed{12}"]),
    ("direct", 0, ["```python\nimport sys\nsys.exit(2)\n```"]),
    ("direct", 0, ["```python\nprint('\ud800')\n```"]),
    ("direct", 1, ["```python\nprint('No Best Solution')\n```"]),
]


@pytest.fixture(scope="module")
def sandbox():
    with LocalSandbox(workers=2) as box:
        yield box


def conforms(value: Any, expected: Any, where: str = "info") -> None:
    """Assert that `value` has the type `expected` (TypedDicts checked key by key)."""
    if expected is Any:
        return
    if is_typeddict(expected):
        assert isinstance(value, dict), where
        hints = get_type_hints(expected)
        missing = expected.__required_keys__ - value.keys()
        unknown = value.keys() - hints.keys()
        assert not missing, f"{where} lacks {sorted(missing)}"
        assert not unknown, f"{where} has undeclared {sorted(unknown)}"
        for key, item in value.items():
            conforms(item, hints[key], f"{where}[{key!r}]")
        return
    origin = get_origin(expected)
    if origin in (Union, types.UnionType):
        options = get_args(expected)
        errors = []
        for option in options:
            try:
                conforms(value, option, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: {value!r:.80} is none of {options} ({errors})")
    if origin is list:
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            conforms(item, get_args(expected)[0], f"{where}[{i}]")
        return
    if origin is dict:
        assert isinstance(value, dict), where
        return
    if expected is type(None):
        assert value is None, f"{where}: {value!r:.80} is not None"
        return
    if expected is float:
        assert isinstance(value, float), f"{where}: {value!r:.80} is not a float"
        return
    if isinstance(expected, type) and issubclass(expected, Enum):
        assert isinstance(value, expected), where
        return
    # bool is an int; an int where bool is due is not a bool.
    assert isinstance(value, expected), f"{where}: {value!r:.80} is not {expected}"


def play(env: ORModelingEnv, index: int, actions: list[str], mode: str) -> list[tuple]:
    """Reset, then step through `actions` until the episode ends; every return value."""

    async def go() -> list[tuple]:
        steps = [await env.areset(options={"index": index})]
        for action in actions:
            if env.done:
                break
            steps.append(await env.astep(action))
        return steps

    if mode == "async":
        return asyncio.run(go())
    steps = [env.reset(options={"index": index})]
    for action in actions:
        if env.done:
            break
        steps.append(env.step(action))
    return steps


@pytest.mark.parametrize("rendering", ["inline", "chat"])
@pytest.mark.parametrize(("protocol", "index", "actions"), EPISODES)
def test_every_info_has_its_declared_shape(sandbox, protocol, index, actions, rendering) -> None:
    for debug in (False, True):
        env = ORModelingEnv(
            PROBLEMS,
            sandbox=sandbox,
            protocol=protocol,
            rendering=rendering,
            max_turns=3,
            max_executions=2,
            debug=debug,
        )
        (_, reset_info), *steps = play(env, index, actions, "sync")
        conforms(reset_info, ResetInfo, "reset info")
        assert ("ground_truth" in reset_info) is debug
        assert steps, "the episode took no step"
        for turn, (_, _, terminated, truncated, info) in enumerate(steps, start=1):
            conforms(info, StepInfo, f"step {turn} info")
            ended = terminated or truncated
            # The end keys are there exactly when the episode ended (answer, rel_error and
            # grade only when an answer was graded).
            graded = {"answer", "grade"} | ({"rel_error"} if debug else set())
            assert ended == bool(info.keys() & END_KEYS), sorted(info)
            if ended:
                assert END_KEYS - graded - {"rel_error"} <= info.keys()
                assert ("rel_error" in info) is (debug and "grade" in info)
                budget = info["termination_reason"] in ("max_turns", "max_executions")
                assert (graded <= info.keys()) is not budget
                if "grade" in info:
                    for hidden in ("ground_truth", "rel_error", "abs_error"):
                        assert (hidden in info["grade"]) is debug
        assert env.done


def test_end_keys_are_the_end_info_keys() -> None:
    assert set(EndInfo.__annotations__) == END_KEYS
    assert "answer_printed" in END_KEYS and "turn" not in END_KEYS


@pytest.mark.parametrize(("protocol", "index", "actions"), EPISODES)
def test_step_and_astep_play_the_same_episode(sandbox, protocol, index, actions) -> None:
    def played(mode: str) -> list[Any]:
        env = ORModelingEnv(
            PROBLEMS, sandbox=sandbox, protocol=protocol, max_turns=3, max_executions=2
        )
        steps = play(env, index, actions, mode)
        for *_, info in steps:
            if "execution" in info:
                info["execution"]["wall_s"] = 0.0
        return [steps, env.transcript.to_dicts()]

    assert played("sync") == played("async")


def test_the_protocol_is_an_object() -> None:
    native = ORModelingEnv(PROBLEMS, sandbox="local")
    direct = ORModelingEnv(PROBLEMS, sandbox="local", protocol="direct", direct_rule="orlm")
    assert isinstance(native.episode_protocol, NativeProtocol)
    assert isinstance(direct.episode_protocol, DirectProtocol)
    assert direct.episode_protocol.rule is DIRECT_RULES["orlm"]
    assert native.system_prompt == NativeProtocol.system_prompt
    assert direct.system_prompt == DirectProtocol.system_prompt


@pytest.mark.parametrize(
    ("action", "kind", "program", "format_error"),
    [
        (RUN_12, "code", "print(5 + 7)", None),
        ("So \\boxed{12}.", "answer", None, None),
        ("Hmm.", "malformed", None, "no_code_or_answer"),
        ("```python\nprint('\ud800')\n```", "malformed", None, "unencodable_code"),
    ],
)
def test_native_plans(action: str, kind: str, program: str | None, format_error) -> None:
    plan = NativeProtocol().plan(action)
    assert (plan.kind, plan.program, plan.format_error) == (kind, program, format_error)


def test_direct_plans_append_the_rules_epilogue() -> None:
    protocol = DirectProtocol(DIRECT_RULES["orlm"])
    plan = protocol.plan("Model.\n```python\nx = 1\n```\nthen\n```python\ny = 2\n```")
    assert plan.program == "\nx = 1\n" + DIRECT_RULES["orlm"].epilogue
    assert plan.info == {"direct_rule": "orlm", "code": "\nx = 1\n"}
    nothing = protocol.plan("no program")
    assert (nothing.program, nothing.format_error) == (None, None)
    ending = protocol.ending("no program", nothing, None, 12.0, "default")
    assert (ending.reason, ending.answer, ending.grade.reason) == ("no_code", None, "no_answer")
