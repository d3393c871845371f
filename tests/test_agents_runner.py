"""The rollout runner and the replay policy, on the bundled sample problems and the real
local sandbox: concurrency, records, resuming, and failures that must not stop a run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agents.policy import EpisodeKey, Policy, PolicyError, PolicyTurn, ServerUnreachable
from agents.records import read_records
from agents.replay import ReplayPolicy
from agents.runner import RolloutRunner, RunAborted, episode_seed, plan_episodes
from or_env import load_problems
from or_env.sandbox.local import LocalSandbox

SAMPLE = load_problems("sample")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(workers=2) as box:
        yield box


def reference_turns(problem, *, wrong: bool = False) -> list[str]:
    """A two-turn recording: the reference program, then the stated answer."""
    code = problem.meta["reference_code"]
    answer = "12345.678" if wrong else problem.answer
    return [
        f"Let me model it.\n```python\n{code}\n```\n",
        f"The program's result gives the answer: \\boxed{{{answer}}}.",
    ]


def recorded_policy(problems, samples: int = 1) -> ReplayPolicy:
    turns = {(p.id, s): reference_turns(p, wrong=s > 0) for p in problems for s in range(samples)}
    return ReplayPolicy(turns, source="test recording")


class ConcurrencyProbe(Policy):
    """Wraps a policy and records how many `act` calls were in flight at once."""

    name = "probe"

    def __init__(self, inner: Policy) -> None:
        self.inner, self.active, self.peak = inner, 0, 0

    async def act(self, messages, *, rendering, stop_sequences, episode=None) -> PolicyTurn:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.01)
            return await self.inner.act(
                messages, rendering=rendering, stop_sequences=stop_sequences, episode=episode
            )
        finally:
            self.active -= 1


class BrokenPolicy(Policy):
    """A policy with a bug: it raises a plain exception for one problem."""

    name = "broken"

    def __init__(self, inner: Policy, broken_id: str) -> None:
        self.inner, self.broken_id = inner, broken_id

    async def act(
        self,
        messages: Sequence[Any],
        *,
        rendering: str,
        stop_sequences: Sequence[str],
        episode: EpisodeKey | None = None,
    ) -> PolicyTurn:
        if episode is not None and episode.problem_id == self.broken_id:
            raise ZeroDivisionError("a bug in the policy")
        return await self.inner.act(
            messages, rendering=rendering, stop_sequences=stop_sequences, episode=episode
        )


def runner(policy: Policy, sandbox: LocalSandbox, **kwargs: Any) -> RolloutRunner:
    return RolloutRunner(policy, env_kwargs={"sandbox": sandbox}, progress=False, **kwargs)


# ----------------------------------------------------------------------- planning
def test_plan_gives_every_pair_a_stable_distinct_seed() -> None:
    plan = plan_episodes(SAMPLE[:3], samples=2, base_seed=7)
    assert [(s.problem.id, s.sample) for s in plan][:2] == [(SAMPLE[0].id, 0), (SAMPLE[0].id, 1)]
    assert len({s.seed for s in plan}) == 6
    assert plan[1].seed == episode_seed(7, SAMPLE[0].id, 1)
    assert plan_episodes(SAMPLE[:3], samples=2, base_seed=8)[0].seed != plan[0].seed
    with pytest.raises(ValueError, match="samples must be at least 1"):
        plan_episodes(SAMPLE, samples=0)


# ----------------------------------------------------------------------- running
def test_every_sample_problem_is_solved_by_its_recording(sandbox, tmp_path: Path) -> None:
    probe = ConcurrencyProbe(recorded_policy(SAMPLE))
    out = tmp_path / "episodes.jsonl"
    records = runner(probe, sandbox, concurrency=8).run(plan_episodes(SAMPLE), out)
    assert [r["problem_id"] for r in records] == [p.id for p in SAMPLE]
    assert all(r["correct"] for r in records), [r for r in records if not r["correct"]]
    assert 1 < probe.peak <= 8
    first = records[0]
    assert first["status"] == "ok" and first["termination_reason"] == "answered"
    assert (first["turns"], first["executions"]) == (2, 1)
    assert [m["source"] for m in first["messages"]] == ["env", "env", "policy", "env", "policy"]
    assert first["steps"][0]["action_kind"] == "code"
    assert first["steps"][0]["execution"]["exit_code"] == 0
    assert "stdout" not in first["steps"][0]["execution"]  # the output lives in messages
    assert first["seed"] == episode_seed(0, first["problem_id"], 0)
    assert first["policy"] == {"policy": "probe"} and first["protocol"] == "native"
    assert first["timings"]["wall_s"] >= first["timings"]["env_s"] > 0
    assert len(out.read_text().splitlines()) == len(SAMPLE)


def test_a_run_resumes_where_it_stopped(sandbox, tmp_path: Path) -> None:
    out = tmp_path / "episodes.jsonl"
    problems = SAMPLE[:6]
    runner(recorded_policy(problems), sandbox).run(plan_episodes(problems[:2]), out)
    assert len(out.read_text().splitlines()) == 2
    probe = ConcurrencyProbe(recorded_policy(problems))
    calls: list[str] = []
    original = probe.act

    async def counting_act(messages, **kwargs):
        calls.append(kwargs["episode"].problem_id)
        return await original(messages, **kwargs)

    probe.act = counting_act  # type: ignore[method-assign]
    records = runner(probe, sandbox).run(plan_episodes(problems), out)
    assert len(records) == 6 and all(r["correct"] for r in records)
    assert set(calls) == {p.id for p in problems[2:]}  # the first two were not replayed
    assert len(out.read_text().splitlines()) == 6
    again = runner(probe, sandbox).run(plan_episodes(problems), out)
    assert again == records and len(out.read_text().splitlines()) == 6


def test_failing_episodes_are_recorded_and_retried_on_resume(sandbox, tmp_path: Path) -> None:
    problems = SAMPLE[:4]
    good = recorded_policy(problems)
    missing = ReplayPolicy({k: v for k, v in good.turns.items() if k[0] != problems[1].id})
    broken = BrokenPolicy(missing, broken_id=problems[2].id)
    out = tmp_path / "episodes.jsonl"
    records = runner(broken, sandbox).run(plan_episodes(problems), out)
    status = {r["problem_id"]: (r["status"], r["error"]) for r in records}
    assert status[problems[0].id] == ("ok", None)
    assert status[problems[1].id][0] == "error" and "no recorded turns" in status[problems[1].id][1]
    assert status[problems[2].id] == ("error", "ZeroDivisionError: a bug in the policy")
    assert status[problems[3].id] == ("ok", None)
    assert all(not r["correct"] for r in records if r["status"] == "error")
    # Rerunning with a working policy redoes only the failed episodes; the last record wins.
    records = runner(good, sandbox).run(plan_episodes(problems), out)
    assert all(r["status"] == "ok" and r["correct"] for r in records)
    assert len(out.read_text().splitlines()) == 6
    assert all(r["status"] == "ok" for r in read_records(out).values())


def test_replay_that_runs_out_of_turns_is_a_policy_error(sandbox) -> None:
    problem = SAMPLE[0]
    only_code = ReplayPolicy({(problem.id, 0): reference_turns(problem)[:1]})
    (record,) = runner(only_code, sandbox).run(plan_episodes([problem]))
    assert record["status"] == "error" and "has 1 turn(s)" in record["error"]
    assert record["turns"] == 1  # the first turn was played and is in the record


def test_chat_rendering_and_direct_protocol_through_the_runner(sandbox) -> None:
    problem = SAMPLE[4]
    code = problem.meta["reference_code"]
    direct = ReplayPolicy({(problem.id, 0): [f"Model...\n```python\n{code}\n```\n"]})
    (record,) = RolloutRunner(
        direct, env_kwargs={"sandbox": sandbox, "protocol": "direct"}, progress=False
    ).run(plan_episodes([problem]))
    assert record["correct"] and record["protocol"] == "direct" and record["turns"] == 1
    (record,) = RolloutRunner(
        recorded_policy([problem]),
        env_kwargs={"sandbox": sandbox, "rendering": "chat"},
        progress=False,
    ).run(plan_episodes([problem]))
    assert record["correct"] and record["rendering"] == "chat"
    assert [m["role"] for m in record["messages"]][-2:] == ["user", "assistant"]


def test_runner_rejects_bad_settings() -> None:
    policy = ReplayPolicy({})
    with pytest.raises(ValueError, match="concurrency"):
        RolloutRunner(policy, concurrency=0)
    with pytest.raises(ValueError, match="must not set 'problems'"):
        RolloutRunner(policy, env_kwargs={"problems": []})
    spec = plan_episodes(SAMPLE[:1])[0]
    with pytest.raises(ValueError, match="repeats"):
        RolloutRunner(policy, progress=False).run([spec, spec])


# ----------------------------------------------------------------------- replay files
def write_jsonl(path: Path, rows: list[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_replay_reads_every_documented_line_format(sandbox, tmp_path: Path) -> None:
    a, b, c = SAMPLE[:3]
    ta, tb, tc = (reference_turns(p) for p in (a, b, c))
    rows = [
        {"problem_id": a.id, "turns": ta},
        {"problem_id": b.id, "sample": 0, "turn": 1, "text": tb[1]},
        {"problem_id": b.id, "sample": 0, "turn": 0, "text": tb[0]},
    ]
    path = write_jsonl(tmp_path / "turns.jsonl", rows)
    first_run = tmp_path / "run.jsonl"
    replay = ReplayPolicy.from_jsonl(path)
    assert replay.turns[(b.id, 0)] == tb  # ordered by "turn", not by line
    records = runner(replay, sandbox).run(plan_episodes([a, b]), first_run)
    assert all(r["correct"] for r in records)
    # A run's own episode records replay too (re-grading without the model).
    write_jsonl(path, [{"problem_id": c.id, "sample": 0, "turns": tc}])
    again = ReplayPolicy.from_jsonl(first_run)
    assert again.turns[(a.id, 0)] == ta and again.turns[(b.id, 0)] == tb


@pytest.mark.parametrize(
    "line",
    ['{"turns": ["x"]}', '{"problem_id": "p", "turns": "not a list"}', "{not json"],
)
def test_replay_rejects_unreadable_lines_with_the_line_number(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem_id": "ok", "turns": ["a"]}\n' + line + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a replay line"):
        ReplayPolicy.from_jsonl(path)


def test_replay_from_problem_meta_needs_the_field() -> None:
    with pytest.raises(ValueError, match="no problem has a 'nope' field"):
        ReplayPolicy.from_problem_meta(SAMPLE, "nope")
    replay = ReplayPolicy.from_problem_meta(SAMPLE, "reference_code", label="refs")
    assert replay.turns[(SAMPLE[0].id, 0)] == [SAMPLE[0].meta["reference_code"]]
    assert replay.describe()["model"] == "refs"


def test_replay_without_an_episode_key_fails_clearly() -> None:
    with pytest.raises(PolicyError, match="needs the episode key"):
        asyncio.run(ReplayPolicy({}).act([], rendering="inline", stop_sequences=[]))


def test_truncated_last_line_of_a_crashed_run_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    good = {"problem_id": "p", "sample": 0, "status": "ok"}
    path.write_text(json.dumps(good) + "\n" + '{"problem_id": "q", "sam')
    assert read_records(path) == {("p", 0): good}


# ----------------------------------------------------------------------- server gone
class DownForSome(Policy):
    """Replays for some problems; for the others the server cannot be reached (raised as is,
    or as the cause of a wrapper's error, as CALM's judge raises it), or a request hangs
    (an episode in flight)."""

    name = "down-for-some"

    def __init__(self, inner: Policy, down: set[str], hang: set[str], wrapped: bool) -> None:
        self.inner, self.down, self.hang, self.wrapped = inner, down, hang, wrapped

    async def act(self, messages, *, rendering, stop_sequences, episode=None) -> PolicyTurn:
        assert episode is not None
        if episode.problem_id in self.hang:
            await asyncio.Event().wait()  # never answers
        if episode.problem_id in self.down:
            cause = ServerUnreachable("cannot reach http://127.0.0.1:9/v1 (ConnectError)")
            if not self.wrapped:
                raise cause
            raise PolicyError("the intervener's endpoint failed") from cause
        return await self.inner.act(
            messages, rendering=rendering, stop_sequences=stop_sequences, episode=episode
        )


@pytest.mark.parametrize("wrapped", [False, True])
def test_run_stops_after_three_episodes_in_a_row_cannot_reach_the_server(
    sandbox, tmp_path: Path, wrapped: bool
) -> None:
    problems = SAMPLE[:8]
    good = recorded_policy(problems)
    policy = DownForSome(good, {p.id for p in problems[2:]}, set(), wrapped)
    out = tmp_path / "episodes.jsonl"
    with pytest.raises(RunAborted, match="3 episodes in a row could not reach") as caught:
        runner(policy, sandbox, concurrency=1).run(plan_episodes(problems), out)
    assert caught.value.finished == 2
    stored = read_records(out)
    assert [r["status"] for r in stored.values()] == ["ok", "ok", "error", "error", "error"]
    assert all(r.get("unreachable") for r in list(stored.values())[2:])
    # Back up: the rerun retries the three errors and plays the three never started.
    records = runner(good, sandbox, concurrency=1).run(plan_episodes(problems), out)
    assert all(r["status"] == "ok" and r["correct"] for r in records)


def test_abort_cancels_the_episodes_in_flight_without_recording_them(
    sandbox, tmp_path: Path
) -> None:
    problems = SAMPLE[:6]
    down, hang = {p.id for p in problems[:3]}, {p.id for p in problems[3:]}
    policy = DownForSome(recorded_policy(problems), down, hang, wrapped=False)
    out = tmp_path / "episodes.jsonl"

    async def go() -> None:
        await asyncio.wait_for(
            runner(policy, sandbox, concurrency=6).arun(plan_episodes(problems), out), 30
        )

    with pytest.raises(RunAborted):
        asyncio.run(go())
    assert {k[0] for k in read_records(out)} == down  # the hanging three left no record


@pytest.mark.parametrize(
    ("pattern", "stop_after", "aborts"),
    [
        ("DxDxDxDx", 3, False),  # never three in a row
        ("xDDDxxxx", 3, True),
        ("DDDDxxxx", 0, False),  # 0: never stop
        ("DDxxxxxx", 2, True),
    ],
)
def test_only_consecutive_unreachable_episodes_stop_a_run(
    sandbox, pattern: str, stop_after: int, aborts: bool
) -> None:
    problems = SAMPLE[: len(pattern)]
    down = {p.id for p, c in zip(problems, pattern, strict=True) if c == "D"}
    policy = DownForSome(recorded_policy(problems), down, set(), wrapped=False)
    run = runner(policy, sandbox, concurrency=1, stop_after_unreachable=stop_after)
    if aborts:
        with pytest.raises(RunAborted):
            run.run(plan_episodes(problems))
    else:
        records = run.run(plan_episodes(problems))
        assert sum(r["status"] == "error" for r in records) == len(down)


def test_guessed_answers_are_recorded_and_counted(sandbox) -> None:
    from agents.metrics import score_benchmarks

    problem = SAMPLE[0]
    computed = ReplayPolicy({(problem.id, 0): reference_turns(problem)})
    guessed = ReplayPolicy({(problem.id, 0): [f"It must be \\boxed{{{problem.answer}}}."]})
    specs = plan_episodes([problem], samples=1)
    (worked,) = runner(computed, sandbox).run(specs)
    (guess,) = runner(guessed, sandbox).run(specs)
    assert worked["correct"] and worked["answer_printed"] is True
    assert guess["correct"] and guess["answer_printed"] is False
    (score,) = score_benchmarks([worked, guess])
    assert score.guessed == 1
