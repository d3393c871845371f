"""`InlineRollout`: a TRL `rollout_func` that plays `ORModelingEnv`'s native inline protocol.

The STORM setting for TRL users: the model writes reasoning and a ```python block, stops at
the env's stop sequence (```output), the env runs the block, and its output block continues
the *same* assistant turn; the model goes on until it answers in `\\boxed{}` or a budget
ends the episode. `GRPOTrainer(rollout_func=InlineRollout(problems, ...))` calls it with the
batch's prompts (each repeated `num_generations` times); per prompt it

1. finds the problem by the prompt (the dataset's prompts are the env's own:
   `recipes.trl.data.build_dataset(mode="inline")`), resets an env on it and applies the
   chat template with a generation prompt (`prompt_ids`);
2. generates a turn with the env's stop sequences, for every unfinished episode of the
   batch at once, with the trainer's sampling settings: transformers `generate` on the
   training model (`use_vllm=False`, any device), or TRL's vLLM (`use_vllm=True`: colocate
   or server mode);
3. hands the decoded turn to `env.step` (the batch's envs step in parallel threads; the
   sandbox is one shared pool), appends the model's tokens with `env_mask` 1 and the
   observation, tokenised with `split_special_tokens=True` so that a program printing
   `<|im_end|>` cannot inject a control token, with `env_mask` 0;
4. stops when the env ends the episode or `max_completion_length` (which counts the
   observations too) is used, and cuts the completion to that length.

It returns `prompt_ids`, `completion_ids`, `logprobs` (vLLM's for model tokens, 0.0 for
observation tokens; None with transformers, which samples on-policy), `env_mask`, and per
row `env_reward` (the env's reward: 1.0 for a correct answer, 0.0 otherwise and when the
budget ran out first), `executions`, `turns`, `termination_reason`, which TRL passes to the
reward functions: `env_reward` below is the one to use. `last_episodes` keeps the played
episodes of the last call (envs, tokens, masks) for inspection and tests.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from or_env.env import ORModelingEnv
from or_env.problems import Problem
from or_env.sandbox import Sandbox, require_isolation, shared_sandbox
from recipes.trl.data import env_prompt

logger = logging.getLogger(__name__)

#: Why an episode stopped when the env did not end it.
BUDGET_SPENT = "max_completion_length"


@dataclass
class InlineEpisode:
    """One rollout: its env and the completion side of its tokens.

    `ids`, `env_mask` and `logprobs` run in parallel; `spans` lists (start, end, source) of
    every stretch of `ids`, source "model" or "env", in order.
    """

    env: ORModelingEnv
    prompt_ids: list[int]
    budget: int
    ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    done: bool = False
    reward: float = 0.0
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """The env ended the episode or the budget is used."""
        return self.done or len(self.ids) >= self.budget

    @property
    def termination_reason(self) -> str:
        """The env's reason, or BUDGET_SPENT when the budget ended the episode first."""
        return str(self.info.get("termination_reason")) if self.done else BUDGET_SPENT

    def add(self, ids: Sequence[int], source: str, logprobs: Sequence[float] | None = None) -> None:
        """Append the model's tokens (mask 1) or the env's (mask 0, log-prob 0.0)."""
        start = len(self.ids)
        self.ids += ids
        self.env_mask += [1 if source == "model" else 0] * len(ids)
        if source == "model" and logprobs is not None:
            self.logprobs += list(logprobs)
        else:
            self.logprobs += [0.0] * len(ids)
        if ids:
            self.spans.append((start, len(self.ids), source))


def prompt_key(prompt: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """What identifies a prompt: its roles and contents."""
    return tuple((str(m["role"]), str(m["content"])) for m in prompt)


class InlineRollout:
    """The `rollout_func` of the inline mode (see the module doc).

    Args:
        problems: the problems the dataset was built from.
        sandbox: "auto", "local", "docker", "ray" (one shared pool per process) or a
            `Sandbox` instance; sandbox_options: the named backend's options.
        allow_unisolated: train with a local sandbox without namespaces anyway (refused by
            default: a policy could read ground truths).
        max_workers: envs stepped in parallel (default: the batch's size, at most 32).
        env_kwargs: `ORModelingEnv` settings (max_turns, max_executions, tolerance, ...);
            the same as the dataset was built with.
    """

    def __init__(
        self,
        problems: Sequence[Problem],
        *,
        sandbox: str | Sandbox = "auto",
        sandbox_options: Mapping[str, Any] | None = None,
        allow_unisolated: bool = False,
        max_workers: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        if env_kwargs.get("rendering", "inline") != "inline":
            raise ValueError("InlineRollout plays rendering='inline'; drop rendering")
        env_kwargs.pop("rendering", None)
        self.problems = list(problems)
        self.env_kwargs = env_kwargs
        self.sandbox = sandbox
        self.sandbox_options = dict(sandbox_options or {})
        self.allow_unisolated = allow_unisolated
        self.max_workers = max_workers
        self._by_prompt: dict[tuple[tuple[str, str], ...], Problem] = {}
        for problem in self.problems:
            key = prompt_key(env_prompt(problem, "inline", env_kwargs))
            if key in self._by_prompt:
                logger.warning(
                    "problems %r and %r have the same prompt; rollouts of it play %r",
                    self._by_prompt[key].id,
                    problem.id,
                    self._by_prompt[key].id,
                )
                continue
            self._by_prompt[key] = problem
        self.last_episodes: list[InlineEpisode] = []

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        """Play one episode per prompt; the dict TRL's `rollout_func` contract asks for."""
        tokenizer = _tokenizer(trainer)
        budget = int(trainer.max_completion_length)
        episodes = [self._start(prompt, tokenizer, trainer, budget) for prompt in prompts]
        stop = list(episodes[0].env.stop_sequences) if episodes else []
        generate = _backend(trainer)
        while True:
            active = [e for e in episodes if not e.finished]
            if not _any_active(trainer, len(active)):
                break
            contexts = [e.prompt_ids + e.ids for e in active]
            budgets = [e.budget - len(e.ids) for e in active]
            # (In server mode a process with nothing left still takes part in the request.)
            turns = generate(trainer, contexts, budgets, stop)
            texts = []
            for episode, (ids, logprobs) in zip(active, turns, strict=True):
                episode.add(ids, "model", logprobs)
                texts.append(tokenizer.decode(ids, skip_special_tokens=True))
            results = self._step(active, texts)
            for episode, (observation, reward, terminated, truncated, info) in zip(
                active, results, strict=True
            ):
                episode.info = info
                episode.done = bool(terminated or truncated)
                episode.reward = float(reward) if episode.done else 0.0
                if observation and not episode.done:
                    # Program output is the policy's own doing: a printed "<|im_end|>" must
                    # stay characters, never become the chat template's control token.
                    ids = tokenizer.encode(
                        observation, add_special_tokens=False, split_special_tokens=True
                    )
                    episode.add(ids, "env")
        self.last_episodes = episodes
        with_logprobs = all(len(e.logprobs) == len(e.ids) for e in episodes) and _uses_vllm(trainer)
        return {
            "prompt_ids": [e.prompt_ids for e in episodes],
            "completion_ids": [e.ids[: e.budget] for e in episodes],
            "logprobs": [e.logprobs[: e.budget] for e in episodes] if with_logprobs else None,
            "env_mask": [e.env_mask[: e.budget] for e in episodes],
            "env_reward": [e.reward for e in episodes],
            "executions": [e.env.executions for e in episodes],
            "turns": [e.env.turn for e in episodes],
            "termination_reason": [e.termination_reason for e in episodes],
        }

    # ------------------------------------------------------------------ internals
    def _start(
        self, prompt: Sequence[Mapping[str, Any]], tokenizer: Any, trainer: Any, budget: int
    ) -> InlineEpisode:
        problem = self._by_prompt.get(prompt_key(prompt))
        if problem is None:
            raise ValueError(
                "a prompt matches none of the rollout's problems: build the dataset with "
                "recipes.trl.data.build_dataset(mode='inline') from the same problems and env "
                "settings"
            )
        env = ORModelingEnv(
            problems=[problem], sandbox=self._sandbox(), rendering="inline", **self.env_kwargs
        )
        env.reset(options={"index": 0})
        prompt_ids = tokenizer.apply_chat_template(
            env.transcript.as_chat(),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=False,
            **(getattr(trainer, "chat_template_kwargs", None) or {}),
        )
        return InlineEpisode(env=env, prompt_ids=list(prompt_ids), budget=budget)

    def _sandbox(self) -> Sandbox:
        sandbox = self.sandbox
        if isinstance(sandbox, str):
            sandbox = shared_sandbox(sandbox, **self.sandbox_options)
        require_isolation(sandbox, allow_unisolated=self.allow_unisolated)
        return sandbox

    def _step(self, episodes: list[InlineEpisode], texts: list[str]) -> list[tuple]:
        if not episodes:
            return []
        workers = min(len(episodes), self.max_workers or 32)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="or-env-step") as pool:
            return list(
                pool.map(lambda pair: pair[0].env.step(pair[1]), zip(episodes, texts, strict=True))
            )


def env_reward(completions: list[Any], env_reward: list[float], **_: Any) -> list[float]:
    """The reward function of the inline mode: the env's reward, as the rollout returned it."""
    return [float(r) for r in env_reward]


# --------------------------------------------------------------------- generation backends
Turn = tuple[list[int], list[float] | None]


def _tokenizer(trainer: Any) -> Any:
    processing_class = trainer.processing_class
    return getattr(processing_class, "tokenizer", processing_class)


def _uses_vllm(trainer: Any) -> bool:
    return bool(getattr(trainer, "use_vllm", False))


def _server_mode(trainer: Any) -> bool:
    return _uses_vllm(trainer) and getattr(trainer, "vllm_mode", None) == "server"


def _any_active(trainer: Any, active: int) -> bool:
    """Whether any process still has an episode to play: in vLLM server mode every process
    takes part in each turn's generation (one request from the main process), so all of them
    loop until the last episode anywhere is done."""
    if not _server_mode(trainer):
        return active > 0
    from accelerate.utils import gather_object

    return sum(gather_object([active])) > 0


def _backend(trainer: Any):
    if not _uses_vllm(trainer):
        return _generate_transformers
    if _server_mode(trainer):
        return _generate_vllm_server
    return _generate_vllm_colocate


def _sampling(trainer: Any) -> dict[str, Any]:
    """The trainer's sampling settings, as TRL passes them to vLLM."""
    return {
        "temperature": trainer.temperature,
        "top_p": trainer.top_p,
        "top_k": trainer.top_k,
        "min_p": 0.0 if trainer.min_p is None else trainer.min_p,
        "repetition_penalty": trainer.repetition_penalty,
    }


def _generate_transformers(
    trainer: Any, contexts: list[list[int]], budgets: list[int], stop: list[str]
) -> list[Turn]:
    """One turn per context with `generate` on the training model (stop strings, left pad)."""
    import torch
    from trl.models.utils import unwrap_model_for_generation

    tokenizer = _tokenizer(trainer)
    pad_id = tokenizer.pad_token_id
    width = max(len(c) for c in contexts)
    input_ids = torch.tensor([[pad_id] * (width - len(c)) + c for c in contexts])
    attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
    config = copy.deepcopy(trainer.generation_config)
    config.max_new_tokens = max(budgets)
    config.stop_strings = stop or None
    device = trainer.accelerator.device
    with (
        unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
        ) as model,
        torch.no_grad(),
    ):
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            generation_config=config,
            tokenizer=tokenizer,
        )
    eos = set(getattr(trainer, "eos_token_ids", None) or [tokenizer.eos_token_id])
    turns: list[Turn] = []
    for row, budget in zip(output[:, width:].tolist(), budgets, strict=True):
        end = next((i + 1 for i, t in enumerate(row) if t in eos), None)
        if end is None:
            # A row that stopped at a stop string is padded after it.
            end = next((i for i, t in enumerate(row) if t == pad_id), len(row))
        turns.append((row[: min(end, budget)], None))
    return turns


def _vllm_turn(output: Any, budget: int) -> Turn:
    completion = output.outputs[0] if hasattr(output, "outputs") else output
    ids = list(completion.token_ids)[:budget]
    logprobs = None
    if getattr(completion, "logprobs", None):
        # The ids may be cut to the budget: their log-probs are the first ones.
        steps = zip(completion.logprobs, ids, strict=False)
        logprobs = [float(step[token].logprob) for step, token in steps]
    return ids, logprobs


def _generate_vllm_colocate(
    trainer: Any, contexts: list[list[int]], budgets: list[int], stop: list[str]
) -> list[Turn]:
    """One turn per context on the process's colocated vLLM engine."""
    from vllm import SamplingParams

    generation = trainer.vllm_generation
    if getattr(generation, "tensor_parallel_size", 1) > 1:
        raise NotImplementedError(
            "InlineRollout with vLLM colocate supports vllm_tensor_parallel_size=1; use "
            "vllm_mode='server' for tensor parallelism"
        )
    extra = dict(trainer.args.generation_kwargs or {})
    params = [
        SamplingParams(
            n=1,
            max_tokens=budget,
            stop=stop,
            include_stop_str_in_output=True,
            logprobs=0,
            **_sampling(trainer),
            **extra,
        )
        for budget in budgets
    ]
    outputs = generation.llm.generate(
        [{"prompt_token_ids": c} for c in contexts], sampling_params=params, use_tqdm=False
    )
    return [_vllm_turn(o, b) for o, b in zip(outputs, budgets, strict=True)]


def _generate_vllm_server(
    trainer: Any, contexts: list[list[int]], budgets: list[int], stop: list[str]
) -> list[Turn]:
    """One turn per context through TRL's vLLM server: the main process sends every process's
    contexts in one request and hands each process its share back."""
    from accelerate.utils import broadcast_object_list, gather_object

    accelerator = trainer.accelerator
    counts = gather_object([len(contexts)])
    all_contexts = gather_object(contexts)
    all_budgets = gather_object(budgets)
    payload: list[Any] = [None]
    if accelerator.is_main_process and all_contexts:
        kwargs = {**(trainer.args.generation_kwargs or {})}
        kwargs.update(stop=stop, include_stop_str_in_output=True)
        output = trainer.vllm_generation.vllm_client.generate(
            prompts=all_contexts,
            n=1,
            max_tokens=max(all_budgets),
            logprobs=0,
            generation_kwargs=kwargs,
            **_sampling(trainer),
        )
        logprobs = output.get("logprobs")
        payload = [
            [
                (
                    ids[:budget],
                    [float(lp[0]) for lp in logprobs[i][:budget]] if logprobs else None,
                )
                for i, (ids, budget) in enumerate(
                    zip(output["completion_ids"], all_budgets, strict=True)
                )
            ]
        ]
    broadcast_object_list(payload, from_process=0)
    start = sum(counts[: accelerator.process_index])
    return (payload[0] or [])[start : start + len(contexts)]
