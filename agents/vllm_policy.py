"""`VLLMPolicy`: a vLLM engine in this process (`vllm.LLM`), batched across episodes.

For offline evaluation on a GPU without running a server. Turns requested concurrently by
the episodes are gathered into one `LLM.generate` call (`agents.batching.MicroBatcher`), so
hundreds of episodes keep the engine full. Prompts are built with the model's chat template
(`agents.templating.render_prompt`): a new assistant turn after a user message, a
continuation of the assistant turn in the inline rendering. The env's stop sequences end a
turn; the stop string is not part of the returned text. The text is returned as generated;
`<think>` reasoning in it is only read out for the records. vLLM is imported only here, when the
policy is created.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.batching import MicroBatcher
from agents.policy import (
    EpisodeKey,
    Policy,
    PolicyTurn,
    chat_messages,
    refuse_tools,
    turn_seed,
)
from agents.reasoning import split_think
from agents.templating import render_prompt, require
from or_env.transcript import Message


@dataclass(frozen=True)
class _Request:
    prompt: str
    stop: tuple[str, ...]
    seed: int | None


class VLLMPolicy(Policy):
    """Generates turns with an in-process `vllm.LLM` (see the module doc).

    Args:
        model: a model name or local path, as `vllm.LLM(model=...)` takes it.
        max_tokens, temperature, top_p: sampling settings (None: vLLM's defaults).
        chat_template_kwargs: passed to the chat template (e.g. {"enable_thinking": True}).
        max_batch: the most prompts in one `generate` call.
        llm: an already created `vllm.LLM` (then model only labels the records).
        engine_kwargs: more `vllm.LLM` arguments (tensor_parallel_size, max_model_len, ...).
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        max_tokens: int | None = 4096,
        temperature: float | None = None,
        top_p: float | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        max_batch: int = 256,
        llm: Any | None = None,
        **engine_kwargs: Any,
    ) -> None:
        self._vllm = require("vllm", "VLLMPolicy", "vllm")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        # Creating the engine is slow and must happen on the main thread, so not lazily.
        self.llm = llm if llm is not None else self._vllm.LLM(model=model, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._batcher: MicroBatcher[_Request, Any] = MicroBatcher(
            self._generate, max_batch=max_batch
        )

    def _sampling_params(self, request: _Request) -> Any:
        settings: dict[str, Any] = {"stop": list(request.stop)}
        for key, value in (
            ("max_tokens", self.max_tokens),
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("seed", request.seed),
        ):
            if value is not None:
                settings[key] = value
        return self._vllm.SamplingParams(**settings)

    def _generate(self, requests: Sequence[_Request]) -> list[Any]:
        params = [self._sampling_params(r) for r in requests]
        return self.llm.generate([r.prompt for r in requests], params, use_tqdm=False)

    async def act(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        *,
        rendering: str,
        stop_sequences: Sequence[str],
        episode: EpisodeKey | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> PolicyTurn:
        refuse_tools(self, tools)
        chat = chat_messages(messages)
        prompt = render_prompt(chat, self.tokenizer, self.chat_template_kwargs)
        seed = turn_seed(episode, messages)
        start = time.perf_counter()
        output = await self._batcher.submit(_Request(prompt, tuple(stop_sequences), seed))
        completion = output.outputs[0]
        return PolicyTurn(
            text=completion.text,
            prompt_tokens=len(output.prompt_token_ids or []),
            completion_tokens=len(completion.token_ids),
            latency_s=time.perf_counter() - start,
            reasoning=split_think(completion.text)[0],
            finish_reason=completion.finish_reason,
            extra={"stop_reason": completion.stop_reason},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
