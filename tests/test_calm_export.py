"""The SFT export: layouts, the parquet file, and verl's own SFT dataset reading it back.

The trajectories come from real episodes (real env, local sandbox, rollout runner) with a
scripted reasoner and a scripted intervener (see tests/test_calm_wrapper.py). The `verl`
test tokenizes the export with `verl.utils.dataset.multiturn_sft_dataset.MultiTurnSFTDataset`
and a tiny byte-level BPE tokenizer with a ChatML template, trained here (no hub access).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_calm_wrapper import (
    CODE_OK,
    FLAWLESS,
    PROBLEM,
    ScriptedIntervener,
    ScriptedReasoner,
    verdict,
)

from agents.policy import Policy, PolicyTurn
from agents.runner import RolloutRunner, plan_episodes
from calm.export import sft_messages, write_sft_parquet
from calm.report import summarize
from calm.tokens import TextMeter
from calm.wrapper import CALMWrapper
from or_env.env import ORModelingEnv
from or_env.sandbox.local import LocalSandbox
from or_env.transcript import Message

HINT = "Wait, I should check the expression against the statement."

# A transcript as the env records it (inline rendering): hint at the start of turn 2.
MESSAGES = [
    {"role": "system", "content": "S", "source": "env", "turn": 0},
    {"role": "user", "content": "Q", "source": "env", "turn": 0},
    {"role": "assistant", "content": "code1\n", "source": "policy", "turn": 1},
    {"role": "assistant", "content": "```output\n1\n```\n", "source": "env", "turn": 1},
    {"role": "assistant", "content": "hint\n\n", "source": "intervener", "turn": 1},
    {"role": "assistant", "content": "\\boxed{1}", "source": "policy", "turn": 2},
]
LAYOUT_CASES = [
    (
        "split",
        MESSAGES,
        [
            ("system", "S"),
            ("user", "Q"),
            ("assistant", "code1\n"),
            ("user", "```output\n1\n```\n"),
            ("user", "hint\n\n"),
            ("assistant", "\\boxed{1}"),
        ],
    ),
    (
        "rendered",
        MESSAGES,
        [
            ("system", "S"),
            ("user", "Q"),
            ("assistant", "code1\n```output\n1\n```\nhint\n\n\\boxed{1}"),
        ],
    ),
    (
        "split",  # a chat-rendered transcript is already split
        [
            *MESSAGES[:2],
            {"role": "user", "content": "hint", "source": "intervener", "turn": 0},
            {"role": "assistant", "content": "\\boxed{1}", "source": "policy", "turn": 1},
        ],
        [("system", "S"), ("user", "Q"), ("user", "hint"), ("assistant", "\\boxed{1}")],
    ),
]


@pytest.mark.parametrize(("layout", "messages", "expected"), LAYOUT_CASES)
def test_sft_layouts(layout: str, messages: list[dict], expected: list[tuple[str, str]]) -> None:
    got = sft_messages(messages, layout)
    assert [(m["role"], m["content"]) for m in got] == expected


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout must be one of"):
        sft_messages(MESSAGES, "interleaved")


@pytest.fixture(scope="module")
def records() -> Iterator[list[dict[str, Any]]]:
    """Two golden episodes from real runs (inline rendering), each corrected by one hint."""
    judge = ScriptedIntervener(
        lambda c: FLAWLESS if c.outcome["correct"] else verdict(1, "code_model_mismatch", HINT)
    )
    with LocalSandbox(workers=1) as box:
        runner = RolloutRunner(
            ScriptedReasoner(),
            env_factory=lambda spec: CALMWrapper(ORModelingEnv([spec.problem], sandbox=box), judge),
            progress=False,
        )
        yield runner.run(plan_episodes([PROBLEM], samples=2))


def test_parquet_holds_verl_rows(records, tmp_path: Path) -> None:
    path = tmp_path / "sft.parquet"
    assert write_sft_parquet(records, path) == 2
    table = pq.read_table(path)
    assert table.column_names == [
        "messages",
        "data_source",
        "problem_id",
        "sample",
        "interventions",
    ]
    row = table.to_pylist()[0]
    assert row["data_source"] == "or_env/custom" and row["interventions"] == 1
    assert [m["role"] for m in row["messages"]] == [
        "system",
        "user",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert row["messages"][2]["content"] == HINT + "\n\n"
    assert row["messages"][3]["content"] == CODE_OK


def tiny_chatml_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on a few strings, with a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [PROBLEM.question, CODE_OK, HINT, "```output\n12\n```", "system user assistant"]
    tokenizer.train_from_iterator(corpus * 20, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    wrapped.chat_template = (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    return wrapped


@pytest.mark.verl
def test_verl_multiturn_sft_dataset_reads_the_export(records, tmp_path: Path) -> None:
    dataset_module = pytest.importorskip(
        "verl.utils.dataset.multiturn_sft_dataset",
        reason="verl is not importable: pip install --no-deps verl==0.9.1 and its dataset "
        "dependencies (torch, transformers, ray, tensordict<=0.10, omegaconf)",
    )
    tokenizer = tiny_chatml_tokenizer()
    path = tmp_path / "sft.parquet"
    write_sft_parquet(records, path, layout="split")
    config = {"max_length": 1024, "truncation": "error", "pad_mode": "no_padding"}
    dataset = dataset_module.MultiTurnSFTDataset(str(path), tokenizer, config)
    assert len(dataset) == 2
    item = dataset[0]  # verl also checked that per-message tokenization equals the whole
    ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    trained = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
    context = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    # The policy's turns carry the loss; the hint and the execution output are context only.
    assert CODE_OK in trained and "\\boxed{12}" in trained
    assert HINT not in trained and HINT in context
    assert "```output\n12" not in trained and "```output\n12" in context
    assert PROBLEM.question in context

    # The "rendered" layout reads too; there verl trains on the hint (it masks by role only).
    write_sft_parquet(records, path, layout="rendered")
    item = dataset_module.MultiTurnSFTDataset(str(path), tokenizer, config)[0]
    ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    assert HINT in tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])

    # The hint share in the reasoner's tokens rather than characters.
    meter = TextMeter(tokenizer, name="tiny-chatml")
    summary = summarize(records, meter)
    assert summary["unit"] == "tokens" and "tiny-chatml" in summary["unit_label"]
    hint_tokens = len(tokenizer.encode(HINT + "\n\n", add_special_tokens=False))
    assert summary["totals"]["hint_units_kept"] == 2 * hint_tokens  # one hint per episode


# ------------------------------------------------------------------ tools rendering
TOOLS_CODE_WRONG = "print(5 + 8)"
TOOLS_CODE_OK = "print(5 + 7)"


class ScriptedToolReasoner(Policy):
    """A scripted tool-calling reasoner: it slips before a hint, runs the right program after
    one, and submits what its program printed."""

    name = "scripted-tool-reasoner"

    async def act(self, messages, *, rendering, stop_sequences, episode=None, tools=None):
        assert tools, "the runner offers the env's tools in the tools rendering"
        messages = [Message.coerce(m) for m in messages]
        last = messages[-1]
        turn = len([m for m in messages if m.source == "policy"])
        if last.role == "tool":
            call = {"name": "submit_answer", "arguments": json.dumps({"answer": last.content})}
        else:
            hinted = any(m.source == "intervener" for m in messages)
            code = TOOLS_CODE_OK if hinted else TOOLS_CODE_WRONG
            call = {"name": "run_python", "arguments": json.dumps({"code": code})}
        calls = [{"id": f"t{turn}", "type": "function", "function": call}]
        return PolicyTurn(text="", tool_calls=calls)


def test_tools_records_keep_their_calls_and_results_out_of_the_loss(tmp_path: Path) -> None:
    judge = ScriptedIntervener(
        lambda c: FLAWLESS if c.outcome["correct"] else verdict(1, "code_model_mismatch", HINT)
    )
    with LocalSandbox(workers=1) as box:
        runner = RolloutRunner(
            ScriptedToolReasoner(),
            env_factory=lambda spec: CALMWrapper(
                ORModelingEnv([spec.problem], sandbox=box, rendering="tools"), judge
            ),
            progress=False,
        )
        (record,) = runner.run(plan_episodes([PROBLEM], samples=1))
    assert record["correct"] and record["calm"]["final"] == "flawless"
    split = sft_messages(record["messages"], "split")
    assert [m["role"] for m in split] == [
        "system", "user", "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    assert split[2]["content"] == HINT
    assert json.loads(split[3]["tool_calls"][0]["function"]["arguments"]) == {"code": TOOLS_CODE_OK}
    call_id = split[3]["tool_calls"][0]["id"]
    assert split[4] == {
        "role": "tool",
        "content": "12",
        "tool_call_id": call_id,
        "name": "run_python",
    }

    path = tmp_path / "sft.parquet"
    write_sft_parquet([record], path)
    (row,) = pq.read_table(path).to_pylist()
    assert row["messages"][3]["tool_calls"][0]["id"] == call_id
    assert (
        row["messages"][4]["tool_call_id"] == call_id and row["messages"][0]["tool_calls"] is None
    )

    dataset_module = pytest.importorskip("verl.utils.dataset.multiturn_sft_dataset")
    tokenizer = tiny_chatml_tokenizer()
    # A template that writes calls as Qwen's do (<tool_call>{json}</tool_call>).
    tokenizer.chat_template = (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
        "{% for call in message['tool_calls'] or [] %}"
        "{{ '<tool_call>' + call['function']['arguments'] + '</tool_call>' }}"
        "{% endfor %}{{ '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    config = {"max_length": 2048, "truncation": "error", "pad_mode": "no_padding"}
    item = dataset_module.MultiTurnSFTDataset(str(path), tokenizer, config)[0]
    ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    trained = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
    context = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    # The calls are trained; the tool result and the hint are context.
    assert json.dumps({"code": TOOLS_CODE_OK}) in trained
    assert json.dumps({"answer": "12"}) in trained
    assert HINT not in trained and HINT in context
    assert "<|im_start|>tool\n12" in context and "tool\n12" not in trained
