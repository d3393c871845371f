"""`TransformersPolicy`: a Hugging Face transformers model in this process (`generate`).

For small local models on CPU or one GPU, and for tests with a tiny model. One generation
runs at a time, on a worker thread (the event loop keeps serving the sandbox); use vLLM for
throughput. The prompt is the tokenizer's chat template (a new assistant turn, or the
continuation of the inline assistant turn), or the plain joined messages when the tokenizer
has no template. Generation stops at the env's stop sequences (`stop_strings`); the text is
cut before the stop string, as servers return it. torch and transformers are imported only
when the policy is created. Sampling is not seeded per episode: seeding torch would touch
its global random state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.batching import MicroBatcher
from agents.policy import EpisodeKey, Policy, PolicyTurn, chat_messages, refuse_tools
from agents.reasoning import split_think
from agents.templating import cut_at_stop, plain_prompt, render_prompt, require
from or_env.transcript import Message


@dataclass(frozen=True)
class _Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class TransformersPolicy(Policy):
    """Generates turns with `AutoModelForCausalLM.generate` (see the module doc).

    Args:
        model: a model name or local path (or a loaded model, then pass tokenizer too).
        tokenizer: a tokenizer or its name/path (default: the model's).
        device: "cpu", "cuda", ... (default: cuda when available, else cpu).
        max_tokens: new tokens per turn; temperature / top_p: sampling (None or 0: greedy).
        chat_template_kwargs: passed to the chat template.
        model_kwargs: more `from_pretrained` arguments (torch_dtype, ...).
    """

    name = "transformers"

    def __init__(
        self,
        model: str | Any,
        *,
        tokenizer: str | Any | None = None,
        device: str | None = None,
        max_tokens: int | None = 1024,
        temperature: float | None = None,
        top_p: float | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        **model_kwargs: Any,
    ) -> None:
        self._torch = require("torch", "TransformersPolicy", "torch")
        transformers = require("transformers", "TransformersPolicy", "transformers")
        self.model_name = model if isinstance(model, str) else type(model).__name__
        if device is None:
            device = "cuda" if self._torch.cuda.is_available() else "cpu"
        if isinstance(model, str):
            model = transformers.AutoModelForCausalLM.from_pretrained(model, **model_kwargs)
        self.model = model.to(device).eval()
        tokenizer = tokenizer if tokenizer is not None else self.model_name
        if isinstance(tokenizer, str):
            tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer)
        self.tokenizer = tokenizer
        self.device = device
        self.max_tokens = max_tokens or 1024
        self.temperature = temperature
        self.top_p = top_p
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._batcher: MicroBatcher[tuple[str, tuple[str, ...]], _Generation] = MicroBatcher(
            self._generate_one, max_batch=1, max_wait_s=0.0
        )

    def _prompt(self, chat: list[dict[str, str]]) -> str:
        """The chat template's prompt, or the plain joined messages without a template."""
        if getattr(self.tokenizer, "chat_template", None):
            return render_prompt(chat, self.tokenizer, self.chat_template_kwargs)
        return plain_prompt(chat)

    def _generate_one(self, batch: Sequence[tuple[str, tuple[str, ...]]]) -> list[_Generation]:
        ((prompt, stops),) = batch
        # A chat template already holds the special tokens; a plain prompt needs them added.
        add_special = not getattr(self.tokenizer, "chat_template", None)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=add_special)
        inputs = inputs.to(self.device)
        sampling = bool(self.temperature)
        settings: dict[str, Any] = {"max_new_tokens": self.max_tokens, "do_sample": sampling}
        if sampling:
            settings["temperature"] = self.temperature
            if self.top_p is not None:
                settings["top_p"] = self.top_p
        if stops:
            settings.update(stop_strings=list(stops), tokenizer=self.tokenizer)
        pad = self.tokenizer.pad_token_id
        settings["pad_token_id"] = pad if pad is not None else self.tokenizer.eos_token_id
        with self._torch.no_grad():
            output = self.model.generate(**inputs, **settings)
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output[0, prompt_length:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        text, stopped_at = cut_at_stop(text, stops)
        length_hit = stopped_at is None and len(new_tokens) >= self.max_tokens
        return [
            _Generation(text, prompt_length, len(new_tokens), "length" if length_hit else "stop")
        ]

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
        prompt = self._prompt(chat_messages(messages))
        start = time.perf_counter()
        generation = await self._batcher.submit((prompt, tuple(stop_sequences)))
        return PolicyTurn(
            text=generation.text,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            latency_s=time.perf_counter() - start,
            reasoning=split_think(generation.text)[0],
            finish_reason=generation.finish_reason,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "model": self.model_name,
            "device": self.device,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
