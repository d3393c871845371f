"""Exporting kept (golden) trajectories: verl multi-turn SFT parquet and JSONL with provenance.

verl 0.9.1's `MultiTurnSFTDataset` (`verl.utils.dataset.multiturn_sft_dataset`) reads a
`messages` column (`data.messages_key`), each row a list of `{"role", "content"}` dicts, and
tokenizes every message on its own with the chat template. Its loss mask goes by role only:
assistant messages are trained (minus the generation prompt), every other role is context.
It has no per-message or per-span loss flag. So where a hint or an execution output should
stay out of the loss, it must be a message of its own with a non-assistant role. Two layouts:

- "split" (default): the policy's text is assistant messages; every execution output,
  format message and hint is a user message of its own, so hints are context and out of the
  loss. This is exactly the env's chat rendering; for an inline-rendered run it splits the
  continued assistant turn at each output and hint.
- "rendered": the chat exactly as the reasoner saw it (`Transcript.as_chat()`). With the
  inline rendering, outputs and hints sit inside assistant messages and verl trains on them
  too (the format cannot mask them); with the chat rendering it equals "split".

A run in the env's tools rendering keeps its calls: each policy message carries its
`tool_calls`, and each tool result is a message of role "tool" (with `tool_call_id` and
`name`), which verl keeps out of the loss like any non-assistant role; the parquet's message
struct then has those fields too. No `tools` column is written (verl would pass it to the
chat template as is, and a parquet struct cannot hold the two JSON schemas without merging
them): the tools rendering's system prompt, which every trajectory starts with, describes
both tools.
For Qwen3-family chat templates, which drop earlier `<think>` blocks, train with
`data.ignore_input_ids_mismatch=True` (verl checks the per-message tokenization against the
whole conversation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from or_env.transcript import Message, Transcript

LAYOUTS = ("split", "rendered")
# Columns besides `messages`: scalars verl ignores, kept for filtering and tracing.
_PROVENANCE_COLUMNS = ("data_source", "problem_id", "sample", "interventions")


def sft_messages(messages: Sequence[Mapping[str, Any]], layout: str = "split") -> list[dict]:
    """Role/content messages for SFT from a transcript's message dicts (see the module doc)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "rendered":
        transcript = Transcript()
        for m in messages:
            transcript.add(Message.coerce(m))
        return transcript.as_chat()
    out: list[dict[str, Any]] = []
    for m in map(Message.coerce, messages):
        if m.turn == 0 and m.source == "env":
            role = m.role  # the system prompt and the problem statement
        elif m.source == "policy":
            role = "assistant"
        elif m.role == "tool":
            role = "tool"  # a tool result: context, not trained, and tied to its call
        else:
            role = "user"  # execution output, format feedback, a hint: context, not trained
        mergeable = m.tool_calls is None and role == "assistant"
        if mergeable and out and out[-1]["role"] == "assistant" and "tool_calls" not in out[-1]:
            out[-1]["content"] += m.content
        else:
            message = m.chat_dict()
            message["role"] = role
            out.append(message)
    return out


def _has_tool_fields(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        "tool_calls" in message or "tool_call_id" in message
        for row in rows
        for message in row["messages"]
    )


def sft_row(record: Mapping[str, Any], layout: str = "split") -> dict[str, Any]:
    """One parquet row for an episode record."""
    calm = record.get("calm") or {}
    return {
        "messages": sft_messages(record["messages"], layout),
        "data_source": f"or_env/{record.get('benchmark')}",
        "problem_id": str(record["problem_id"]),
        "sample": int(record["sample"]),
        "interventions": len(calm.get("interventions") or []),
    }


def write_sft_parquet(
    records: Iterable[Mapping[str, Any]], path: str | Path, layout: str = "split"
) -> int:
    """Write the SFT parquet (verl's multi-turn format); returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [sft_row(record, layout) for record in records]
    fields = [("role", pa.string()), ("content", pa.string())]
    if _has_tool_fields(rows):
        function = pa.struct([("name", pa.string()), ("arguments", pa.string())])
        call = pa.struct([("id", pa.string()), ("type", pa.string()), ("function", function)])
        fields += [
            ("tool_calls", pa.list_(call)),
            ("tool_call_id", pa.string()),
            ("name", pa.string()),
        ]
    message = pa.struct(fields)
    schema = pa.schema(
        [
            ("messages", pa.list_(message)),
            ("data_source", pa.string()),
            ("problem_id", pa.string()),
            ("sample", pa.int64()),
            ("interventions", pa.int64()),
        ]
    )
    columns = {"messages": [r["messages"] for r in rows]}
    columns.update({name: [r[name] for r in rows] for name in _PROVENANCE_COLUMNS})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)
    return len(rows)


def provenance_row(
    record: Mapping[str, Any], layout: str, context: Mapping[str, Any]
) -> dict[str, Any]:
    """A JSONL row: the trajectory with sources, its SFT messages, and where it came from."""
    calm = record.get("calm") or {}
    return {
        "problem_id": record["problem_id"],
        "benchmark": record.get("benchmark"),
        "version": record.get("version"),
        "sample": record["sample"],
        "seed": record.get("seed"),
        "ground_truth": record.get("ground_truth"),
        "answer": record.get("answer"),
        "correct": record.get("correct"),
        "termination_reason": record.get("termination_reason"),
        "turns": record.get("turns"),
        "generated_turns": record.get("generated_turns"),
        "executions": record.get("executions"),
        "messages": record["messages"],
        "sft_layout": layout,
        "sft_messages": sft_messages(record["messages"], layout),
        "calm": calm,
        "reasoner": record.get("policy"),
        "tokens": record.get("tokens"),
        "started_at": (record.get("timings") or {}).get("started_at"),
        **dict(context),
    }


def write_provenance_jsonl(
    records: Iterable[Mapping[str, Any]],
    path: str | Path,
    layout: str = "split",
    context: Mapping[str, Any] | None = None,
) -> int:
    """Write one provenance row per record (replacing the file); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            row = provenance_row(record, layout, context or {})
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count
