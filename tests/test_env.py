"""The episode contract of ORModelingEnv, on the real local sandbox."""

from __future__ import annotations

import asyncio
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import or_env
from or_env import ORModelingEnv, Problem
from or_env.sandbox.local import LocalSandbox

PROBLEMS = [
    {"id": "p1", "question": "What is 5 + 7? Report it as the objective.", "answer": 12.0},
    {"id": "p2", "question": "Minimise x subject to x >= 3.", "answer": 3},
    {"id": "p3", "question": "This one has no feasible point.", "answer": "No Best Solution"},
]

RUN_12 = "I will compute it.\n```python\nprint(5 + 7)\n```\n"


@pytest.fixture(scope="module")
def sandbox():
    with LocalSandbox(workers=2) as box:
        yield box


@pytest.fixture
def env(sandbox):
    return ORModelingEnv(PROBLEMS, sandbox=sandbox)


def test_gym_make_exactly_as_documented() -> None:
    env = gym.make(
        "or_env/ORModeling-v0",
        problems=[{"id": "p1", "question": "...", "answer": 12.0}],
        sandbox="local",
    )
    observation, info = env.reset(options={"index": 0})
    assert observation.endswith("...")
    assert info["problem_id"] == "p1"
    observation, reward, terminated, truncated, info = env.step(RUN_12)
    assert "12" in observation and reward == 0.0 and not terminated
    _, reward, terminated, truncated, info = env.step("So the answer is \\boxed{12}.")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] is True
    env.close()


def test_registered_ids() -> None:
    expected = {
        "or_env/ORModeling-v0",
        "or_env/NL4Opt-v0",
        "or_env/MAMO-EasyLP-v0",
        "or_env/MAMO-ComplexLP-v0",
        "or_env/IndustryOR-v0",
        "or_env/OptMATH-v0",
        "or_env/OptiBench-v0",
        "or_env/NLP4LP-v0",
        "or_env/ComplexOR-v0",
        "or_env/Sample-v0",
    }
    assert expected <= set(gym.registry)


def test_sample_id_needs_no_data(sandbox) -> None:
    env = gym.make("or_env/Sample-v0", sandbox=sandbox)
    observation, info = env.reset(seed=3)
    assert info["benchmark"] == "sample" and len(observation) > 50


def test_check_env_passes(env) -> None:
    check_env(env, skip_render_check=True)


def test_check_env_on_registered_env(sandbox) -> None:
    check_env(gym.make("or_env/Sample-v0", sandbox=sandbox).unwrapped)


@pytest.mark.parametrize("render_mode", [None, "ansi"])
def test_check_env_gives_no_warning(sandbox, render_mode) -> None:
    env = gym.make("or_env/Sample-v0", sandbox=sandbox, render_mode=render_mode).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []  # render_fps is declared
    assert ORModelingEnv.metadata["render_fps"] > 0


def test_seeded_reset_is_deterministic_and_per_env(sandbox) -> None:
    many = [{"id": f"q{i}", "question": f"q{i}", "answer": i} for i in range(50)]
    a, b = ORModelingEnv(many, sandbox=sandbox), ORModelingEnv(many, sandbox=sandbox)
    ids_a = [a.reset(seed=7 if i == 0 else None)[1]["problem_id"] for i in range(10)]
    ids_b = [b.reset(seed=7 if i == 0 else None)[1]["problem_id"] for i in range(10)]
    assert ids_a == ids_b
    assert len(set(ids_a)) > 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"index": 1}, "p2"),
        ({"problem_id": "p3"}, "p3"),
        ({"problem": Problem("x", "Q?", 1.0)}, "x"),
        ({"problem": {"id": "y", "question": "Q?", "answer": 2}}, "y"),
    ],
)
def test_reset_options_pick_problem(env, options, expected) -> None:
    _, info = env.reset(options=options)
    assert info["problem_id"] == expected


@pytest.mark.parametrize(
    ("options", "error"),
    [({"index": 9}, IndexError), ({"problem_id": "nope"}, KeyError), ({"bogus": 1}, ValueError)],
)
def test_reset_bad_options(env, options, error) -> None:
    with pytest.raises(error):
        env.reset(options=options)


def test_inline_episode_transcript(env) -> None:
    env.reset(options={"index": 0})
    observation, _, _, _, info = env.step(RUN_12)
    assert observation == "```output\n12\n```\n"
    assert info["execution"]["exit_code"] == 0 and info["executions"] == 1
    assert info["code"] == "print(5 + 7)"
    _, reward, terminated, _, info = env.step("\\boxed{12}")
    assert reward == 1.0 and terminated
    chat = env.transcript.as_chat()
    assert [m["role"] for m in chat] == ["system", "user", "assistant"]
    assert chat[2]["content"] == RUN_12 + "```output\n12\n```\n" + "\\boxed{12}"
    sources = [m["source"] for m in info["transcript"]]
    assert sources == ["env", "env", "policy", "env", "policy"]
    assert info["termination_reason"] == "answered"
    assert "ground_truth" not in info and "ground_truth" not in info["grade"]


def test_chat_rendering(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, rendering="chat", system_prompt="")
    env.reset(options={"index": 0})
    observation, *_ = env.step(RUN_12)
    assert observation == "```output\n12\n```\n"
    roles = [m["role"] for m in env.transcript.as_chat()]
    assert roles == ["user", "assistant", "user"]


def test_echoed_stop_sequence_not_doubled(env) -> None:
    env.reset(options={"index": 0})
    observation, *_ = env.step(RUN_12 + "```output")
    assert observation == "\n12\n```\n"
    assert env.transcript.as_chat()[-1]["content"].count("```output") == 1


def test_wrong_answer_scores_zero(env) -> None:
    env.reset(options={"index": 0})
    _, reward, terminated, _, info = env.step("\\boxed{13}")
    assert (reward, terminated, info["correct"]) == (0.0, True, False)
    assert info["grade"]["reason"] == "wrong_value"
    # Without debug, nothing that gives the ground truth away: not even the answer's error.
    assert info["grade"].keys().isdisjoint({"ground_truth", "rel_error", "abs_error"})
    assert "rel_error" not in info


def test_infeasible_ground_truth(env) -> None:
    env.reset(options={"problem_id": "p3"})
    _, reward, *_ = env.step("There is no feasible solution: \\boxed{infeasible}")
    assert reward == 1.0


def test_format_error_counts_as_turn(env) -> None:
    env.reset(options={"index": 0})
    observation, reward, terminated, truncated, info = env.step("Hmm, let me think.")
    assert "\\boxed" in observation and "```python" in observation
    assert or_env.grading.find_final_answer(observation) is None
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["format_error"] == "no_code_or_answer" and info["turn"] == 1


def test_program_error_is_an_observation(env) -> None:
    env.reset(options={"index": 0})
    observation, _, terminated, truncated, info = env.step("```python\n1/0\n```")
    assert "ZeroDivisionError" in observation
    assert not (terminated or truncated) and info["execution"]["exit_code"] != 0


def test_timeout_is_an_observation(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, timeout=1.0)
    env.reset(options={"index": 0})
    observation, _, terminated, truncated, info = env.step("```python\nwhile True: pass\n```")
    assert info["execution"]["timed_out"] and "TimeoutError" in observation
    assert not (terminated or truncated)


def test_max_turns_truncates(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_turns=2)
    env.reset(options={"index": 0})
    assert env.step("thinking")[3] is False
    _, reward, terminated, truncated, info = env.step("still thinking")
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["termination_reason"] == "max_turns" and info["correct"] is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step("\\boxed{12}")


def test_max_executions_truncates(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_executions=1)
    env.reset(options={"index": 0})
    env.step(RUN_12)
    _, _, terminated, truncated, info = env.step(RUN_12)
    assert truncated and not terminated and info["termination_reason"] == "max_executions"
    assert info["executions"] == 1


def test_observation_cap_keeps_head_and_tail(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_obs_chars=300)
    env.reset(options={"index": 0})
    code = "```python\nprint('START')\nfor i in range(2000): print(i)\nprint('END')\n```"
    observation, *_, info = env.step(code)
    assert "START" in observation and "END" in observation and "truncated" in observation
    assert len(observation) < 400 and info["observation_truncated"]


def test_debug_exposes_ground_truth(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, debug=True)
    _, info = env.reset(options={"index": 0})
    assert info["ground_truth"] == 12.0


def test_rewind_and_inject(env) -> None:
    env.reset(options={"index": 0})
    env.step(RUN_12)
    env.step("```python\nprint('second')\n```")
    assert env.executions == 2
    env.rewind(1)
    assert env.turn == 1 and env.executions == 1
    assert all(m.turn <= 1 for m in env.transcript)
    hint = env.inject("Wait: re-check the constraint.", source="intervener")
    assert hint.startswith("Wait")
    assert env.transcript.messages[-1].source == "intervener"
    _, reward, terminated, _, _ = env.step("\\boxed{12}")
    assert reward == 1.0 and terminated
    with pytest.raises(ValueError):
        env.rewind(99)


def test_bad_arguments_are_explained(sandbox) -> None:
    with pytest.raises(ValueError, match="rendering"):
        ORModelingEnv(PROBLEMS, sandbox=sandbox, rendering="html")
    with pytest.raises(ValueError, match="tolerance"):
        ORModelingEnv(PROBLEMS, sandbox=sandbox, tolerance="loose")
    with pytest.raises(ValueError, match="empty"):
        ORModelingEnv([], sandbox=sandbox)
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox)
    with pytest.raises(RuntimeError, match="reset"):
        env.step("x")
    env.reset()
    with pytest.raises(TypeError, match="str"):
        env.step(123)  # type: ignore[arg-type]


def test_async_episodes_run_concurrently(sandbox) -> None:
    async def episode(index: int) -> float:
        env = ORModelingEnv(PROBLEMS, sandbox=sandbox)
        await env.areset(options={"index": 0})
        await env.astep(f"```python\nimport time\ntime.sleep(0.3)\nprint(12 + {index} * 0)\n```")
        _, reward, *_ = await env.astep("\\boxed{12}")
        return reward

    async def main() -> tuple[list[float], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        rewards = await asyncio.gather(*(episode(i) for i in range(4)))
        tick_task.cancel()
        return list(rewards), ticks

    rewards, ticks = asyncio.run(main())
    assert rewards == [1.0] * 4
    # The event loop kept running while executions were in flight.
    assert ticks >= 20


def test_render_ansi(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, render_mode="ansi")
    env.reset(options={"index": 0})
    assert "[0:env/user]" in env.render()


def test_package_exports() -> None:
    assert or_env.grade("\\boxed{12}", 12.0).correct
    assert or_env.ORModelingEnv.metadata["stop_sequences"] == ["```output"]
    from or_env import NO_OPTIMUM, OREnvError, get_benchmark, load_problems_with_report

    assert NO_OPTIMUM == or_env.grading.NO_OPTIMUM
    assert get_benchmark("sample").name == "sample"
    problems, report = load_problems_with_report("sample")
    assert len(problems) == 24 and not report.skipped
    assert set(or_env.__all__) >= {
        "NO_OPTIMUM",
        "OREnvError",
        "get_benchmark",
        "load_problems_with_report",
    }
    assert issubclass(or_env.errors.DataError, OREnvError)


def test_every_error_is_an_or_env_error_and_keeps_its_builtin_base() -> None:
    from or_env.errors import DataError, MissingExtraError, OREnvError
    from or_env.grading import GroundTruthError
    from or_env.problems import DatasetError, MissingDependencyError, UnknownBenchmarkError
    from or_env.problems.adapters import RowError

    for error in (GroundTruthError, DatasetError, UnknownBenchmarkError, RowError):
        assert issubclass(error, DataError) and issubclass(error, ValueError), error
    assert issubclass(MissingDependencyError, MissingExtraError)
    assert issubclass(MissingDependencyError, ImportError)
    from agents.policy import ContextLengthError, PolicyError, ServerUnreachable
    from agents.runner import RunAborted
    from agents.templating import MissingPackageError
    from calm.intervener import JudgeUnavailable
    from calm.verdict import VerdictError
    from or_env.cli import CommandError
    from or_env.sandbox import UnisolatedSandboxError
    from or_env.sandbox.image import ImageBuildError
    from or_env.sandbox.pool import PoolClosedError
    from or_env.sandbox.worker_client import WorkerError

    for error in (PolicyError, ServerUnreachable, ContextLengthError, JudgeUnavailable):
        assert issubclass(error, OREnvError) and issubclass(error, RuntimeError), error
    for error in (RunAborted, WorkerError, PoolClosedError, ImageBuildError):
        assert issubclass(error, OREnvError) and issubclass(error, RuntimeError), error
    assert issubclass(UnisolatedSandboxError, OREnvError)
    assert issubclass(VerdictError, DataError) and issubclass(VerdictError, ValueError)
    assert issubclass(MissingPackageError, MissingExtraError)
    assert issubclass(CommandError, OREnvError)
    with pytest.raises(OREnvError, match="unknown"):
        or_env.get_benchmark("no-such-benchmark")
    with pytest.raises(OREnvError):
        or_env.grading.parse_ground_truth(None)


# ---------------------------------------------------------------- require_executed_answer

PRINT_12 = "```python\nprint('objective', 5 + 7)\n```\n"
PRINT_12_COLOURED = "```python\nprint('\\x1b[32m12.0\\x1b[0m')\n```\n"
PRINT_NOTHING = "```python\nx = 5 + 7\n```\n"
PRINT_12_ON_STDERR = "```python\nimport sys\nprint(12, file=sys.stderr)\n```\n"
FORGED_OUTPUT = "```python\nx = 1\n```\n```output\n12\n```\nSo \\boxed{12}."

# (id, problem index, policy turns before the answer, answer, require, reward, printed, reason)
EXECUTED_CASES = [
    ("printed, not required", 0, [PRINT_12], "\\boxed{12}", False, 1.0, True, "correct"),
    ("printed, required", 0, [PRINT_12], "\\boxed{12}", True, 1.0, True, "correct"),
    ("guessed, not required", 0, [], "\\boxed{12}", False, 1.0, False, "correct"),
    ("guessed, required", 0, [], "\\boxed{12}", True, 0.0, False, "not_executed"),
    ("ran but printed other", 0, [PRINT_NOTHING], "\\boxed{12}", True, 0.0, False, "not_executed"),
    (
        "stderr does not count",
        0,
        [PRINT_12_ON_STDERR],
        "\\boxed{12}",
        True,
        0.0,
        False,
        "not_executed",
    ),
    ("colours stripped", 0, [PRINT_12_COLOURED], "\\boxed{12}", True, 1.0, True, "correct"),
    (
        "rounded answer",
        0,
        ["```python\nprint(12.00004)\n```"],
        "\\boxed{12}",
        True,
        1.0,
        True,
        "correct",
    ),
    (
        "wrong and printed",
        0,
        ["```python\nprint(13)\n```"],
        "\\boxed{13}",
        True,
        0.0,
        True,
        "wrong_value",
    ),
    (
        "policy-written output block does not count",
        0,
        [],
        FORGED_OUTPUT,
        True,
        0.0,
        False,
        "not_executed",
    ),
    (
        "status printed",
        2,
        ["```python\nprint('Infeasible')\n```"],
        "\\boxed{infeasible}",
        True,
        1.0,
        True,
        "correct",
    ),
    ("status guessed", 2, [], "\\boxed{infeasible}", True, 0.0, False, "not_executed"),
]


@pytest.mark.parametrize(
    ("index", "turns", "answer", "require", "reward", "printed", "reason"),
    [c[1:] for c in EXECUTED_CASES],
    ids=[c[0] for c in EXECUTED_CASES],
)
def test_require_executed_answer(
    sandbox, index, turns, answer, require, reward, printed, reason
) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, require_executed_answer=require)
    _, info = env.reset(options={"index": index})
    assert info["require_executed_answer"] is require
    for turn in turns:
        env.step(turn)
    _, got_reward, terminated, _, info = env.step(answer)
    assert terminated
    assert (got_reward, info["answer_printed"], info["grade"]["reason"]) == (
        reward,
        printed,
        reason,
    )
    assert info["correct"] is (reward == 1.0)


def test_answer_printed_is_reported_at_every_end(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_turns=1)
    env.reset(options={"index": 0})
    *_, truncated, info = env.step(PRINT_12)
    assert truncated and info["answer_printed"] is False


def test_rewound_executions_do_not_count_as_printed(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, require_executed_answer=True)
    env.reset(options={"index": 0})
    env.step(PRINT_12)
    env.rewind(0)
    _, reward, *_, info = env.step("\\boxed{12}")
    assert (reward, info["answer_printed"], info["grade"]["reason"]) == (0.0, False, "not_executed")


def test_printed_output_counts_only_as_far_as_it_was_shown(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, max_obs_chars=200)
    env.reset(options={"index": 0})
    env.step("```python\nprint('x' * 300)\nprint(12)\nprint('y' * 300)\n```")
    *_, info = env.step("\\boxed{12}")
    assert info["answer_printed"] is False  # 12 was in the middle that the cut dropped


def test_direct_protocol_answers_are_printed(sandbox) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, protocol="direct", require_executed_answer=True)
    env.reset(options={"index": 0})
    program = "```python\nprint('Just print the best solution: 12')\n```"
    _, reward, terminated, _, info = env.step(program)
    assert (reward, terminated, info["answer_printed"]) == (1.0, True, True)


# ---------------------------------------------------------------- ground truths


@pytest.mark.parametrize("answer", [None, "null", ""], ids=["None", "null", "empty"])
def test_gym_make_refuses_a_problem_without_an_answer(answer) -> None:
    with pytest.raises(ValueError, match=r"problem 'p1'.*ground truth"):
        gym.make(
            "or_env/ORModeling-v0",
            problems=[{"id": "p1", "question": "Q?", "answer": answer}],
            sandbox="local",
        )


def test_no_optimum_ground_truth_accepts_either_status(env) -> None:
    for answer in ("\\boxed{infeasible}", "\\boxed{unbounded}", "\\boxed{No Best Solution}"):
        env.reset(options={"problem_id": "p3"})
        assert env.step(answer)[1] == 1.0


# ---------------------------------------------------------------- any text is an action

TOO_LONG = "z" * (or_env.env.MAX_TEXT + 1)
RAW_SURROGATE_CODE = "```python\nprint('\ud800')\n```\n"


@pytest.mark.parametrize("protocol", ["native", "direct"])
def test_action_space_agrees_with_step(sandbox, protocol: str) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, protocol=protocol)
    limit = env.action_space.max_length
    assert limit == or_env.env.MAX_TEXT
    assert env.action_space.contains("\\boxed{12}" + " " * (limit - 10))
    assert not env.action_space.contains(TOO_LONG)
    env.reset(options={"index": 0})
    observation, reward, terminated, truncated, info = env.step(TOO_LONG)
    assert f"{len(TOO_LONG):,} characters" in observation and f"{limit:,}" in observation
    assert (reward, info["format_error"], info["turn"], info["executions"]) == (
        0.0,
        "too_long",
        1,
        0,
    )
    assert terminated is (protocol == "direct") and not truncated
    assert env.transcript.messages[-2].content is TOO_LONG  # recorded as given


@pytest.mark.parametrize("protocol", ["native", "direct"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_lone_surrogate_in_code_is_a_format_observation(sandbox, protocol, mode) -> None:
    env = ORModelingEnv(PROBLEMS, sandbox=sandbox, protocol=protocol)

    async def play() -> tuple:
        await env.areset(options={"index": 0})
        return await env.astep(RAW_SURROGATE_CODE)

    if mode == "sync":
        env.reset(options={"index": 0})
        observation, reward, terminated, truncated, info = env.step(RAW_SURROGATE_CODE)
    else:
        observation, reward, terminated, truncated, info = asyncio.run(play())
    assert "not valid Unicode" in observation and "U+D800" in observation
    observation.encode("utf-8")
    assert (info["format_error"], info["turn"], info["executions"], reward) == (
        "unencodable_code",
        1,
        0,
        0.0,
    )
    policy = [m for m in env.transcript if m.source == "policy"]
    assert [m.content for m in policy] == [RAW_SURROGATE_CODE]
    if protocol == "native":
        assert not (terminated or truncated)
        observation, *_, info = env.step(RUN_12)  # the env and its sandbox keep working
        assert observation == "```output\n12\n```\n" and info["executions"] == 1
    else:
        assert terminated and info["termination_reason"] == "format_error"


def test_surrogate_printed_by_the_program_is_an_execution_error(env) -> None:
    env.reset(options={"index": 0})
    observation, *_, info = env.step("```python\nprint('\\ud800')\n```\n")
    assert "UnicodeEncodeError" in observation and info["executions"] == 1
    observation.encode("utf-8")


def test_surrogates_in_prose_and_answers_are_read(env) -> None:
    env.reset(options={"index": 0})
    observation, *_ = env.step(f"Let me see \udfff.\n{RUN_12}")
    assert observation == "```output\n12\n```\n"
    _, reward, terminated, *_ = env.step("\\boxed{12} \ud800")
    assert (reward, terminated) == (1.0, True)


def test_max_obs_chars_is_checked(sandbox) -> None:
    with pytest.raises(ValueError, match="max_obs_chars"):
        ORModelingEnv(PROBLEMS, sandbox=sandbox, max_obs_chars=0)
