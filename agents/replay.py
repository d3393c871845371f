"""`ReplayPolicy`: plays recorded responses, for regression tests and re-grading published outputs.

Recorded turns are keyed by (problem id, sample index); the n-th policy turn of an episode
is the n-th recorded turn of its key (n counts the policy messages already in the
transcript, so a rewound episode replays from the right place). Sources:

- a JSONL file (`from_jsonl`) whose lines are any of
  - `{"problem_id": ..., "sample": 0, "turns": ["turn 1", "turn 2", ...]}`,
  - `{"problem_id": ..., "sample": 0, "turn": 0, "text": "..."}` (one line per turn),
  - an episode record written by `RolloutRunner` (its policy messages are replayed), so
    a run can be re-graded under another tolerance or protocol without the model;
  `sample` defaults to 0;
- a field of each problem's `meta` (`from_problem_meta`), e.g. the ORLM result files'
  `en_math_model_coptpy_code`, ORLM-LLaMA-3-8B's recorded response to each problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.policy import EpisodeKey, Policy, PolicyError, PolicyTurn, policy_turn_count
from agents.reasoning import split_think
from or_env.problems import Problem
from or_env.transcript import Message

Key = tuple[str, int]
#: A recorded turn: its text, or (tools rendering) the assistant message with its tool calls.
Turn = str | Mapping[str, Any]


class ReplayPolicy(Policy):
    """Answers each turn with the recorded text for its episode (see the module doc)."""

    name = "replay"

    def __init__(
        self, turns: Mapping[Key, Sequence[Turn]], *, source: str = "", label: str | None = None
    ) -> None:
        self.turns = {key: list(texts) for key, texts in turns.items()}
        self.source = source
        self.label = label

    @classmethod
    def from_jsonl(cls, path: str | Path, *, label: str | None = None) -> ReplayPolicy:
        """Recorded turns from a JSONL file (formats in the module doc)."""
        path = Path(path)
        turns: dict[Key, dict[int, Turn]] = {}
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    key = (str(row["problem_id"]), int(row.get("sample", 0)))
                    texts = _texts_of(row)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise ValueError(
                        f"{path}:{number}: not a replay line ({exc}); expected "
                        '{"problem_id", "sample", "turns": [...]}, {"problem_id", "sample", '
                        '"turn", "text"} or an episode record'
                    ) from exc
                slot = turns.setdefault(key, {})
                if "text" in row and "turns" not in row and "messages" not in row:
                    slot[int(row.get("turn", len(slot)))] = texts[0]
                else:
                    slot.clear()  # a later full record of the same episode wins
                    slot.update(enumerate(texts))
        ordered = {key: [slot[i] for i in sorted(slot)] for key, slot in turns.items()}
        return cls(ordered, source=str(path), label=label)

    @classmethod
    def from_problem_meta(
        cls, problems: Iterable[Problem], field: str, *, label: str | None = None
    ) -> ReplayPolicy:
        """One recorded turn per problem (sample 0): `problem.meta[field]`."""
        turns: dict[Key, list[str]] = {}
        missing = []
        for problem in problems:
            text = problem.meta.get(field)
            if isinstance(text, str):
                turns[(problem.id, 0)] = [text]
            else:
                missing.append(problem.id)
        if missing and not turns:
            raise ValueError(
                f"no problem has a {field!r} field in its meta (first: {missing[0]!r}); "
                "load a version that carries recorded responses, e.g. version='orlm-hf'"
            )
        return cls(turns, source=f"meta:{field}", label=label)

    async def act(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        *,
        rendering: str,
        stop_sequences: Sequence[str],
        episode: EpisodeKey | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> PolicyTurn:
        if episode is None:
            raise PolicyError("ReplayPolicy needs the episode key (problem id and sample)")
        key = (episode.problem_id, episode.sample)
        recorded = self.turns.get(key)
        if recorded is None:
            where = self.source or "the replay"
            raise PolicyError(
                f"no recorded turns for problem {key[0]!r} sample {key[1]} in {where}"
            )
        index = policy_turn_count(messages)
        if index >= len(recorded):
            raise PolicyError(
                f"the recording of problem {key[0]!r} sample {key[1]} has {len(recorded)} "
                f"turn(s); the episode asked for turn {index + 1}"
            )
        turn = recorded[index]
        if isinstance(turn, Mapping):  # a recorded tool-calling message
            text = str(turn.get("content") or "")
            calls = [dict(call) for call in turn.get("tool_calls") or ()]
            return PolicyTurn(
                text=text,
                reasoning=split_think(text)[0],
                finish_reason="replay",
                tool_calls=calls,
            )
        return PolicyTurn(text=turn, reasoning=split_think(turn)[0], finish_reason="replay")

    def describe(self) -> dict[str, Any]:
        described = {"policy": self.name, "source": self.source, "episodes": len(self.turns)}
        if self.label:
            described["model"] = self.label
        return described


def _recorded(message: Mapping[str, Any]) -> Turn:
    """A policy message of an episode record as a turn to replay."""
    if message.get("tool_calls") is not None:
        return {"content": message.get("content") or "", "tool_calls": message["tool_calls"]}
    return str(message["content"])


def _texts_of(row: Mapping[str, Any]) -> list[Turn]:
    if "messages" in row:  # an episode record (its "turns" is a count)
        return [_recorded(m) for m in row["messages"] if m.get("source") == "policy"]
    if "turns" in row:
        texts = row["turns"]
        if not (isinstance(texts, list) and all(isinstance(t, str | dict) for t in texts)):
            raise TypeError('"turns" must be a list of strings (or of tool-calling messages)')
        return list(texts)
    if isinstance(row.get("text"), str):
        return [row["text"]]
    raise KeyError('"turns", "text" or "messages"')
