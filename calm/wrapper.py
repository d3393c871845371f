"""`CALMWrapper`: the CALM intervener applied to an `ORModelingEnv` episode.

When the trigger fires, the wrapper asks the intervener about the trajectory so far:

- trigger "end" (default): when the episode would end (an answer, or a budget ran out);
- trigger "execution": also after every step that ran code.

On a flaw at policy turn t (turns as the env numbers them, 1 = the first `step`), the
wrapper rewinds the env to turn t - 1 (`env.rewind`), so turn t and everything after it
are dropped, and inserts the hint exactly where turn t began (`env.inject(text,
source="intervener")`): in the inline rendering it continues the assistant turn, in the
chat and tools renderings it is a user message. The step then returns the hint text as the
observation (in the tools rendering, that user message as a one-message list), reward 0,
`terminated=False, truncated=False`, and `info["intervention"]`
(flawed turn, flaw type, hint, the outcome that was discarded, the dropped messages);
`info["rewound_to"]` is t - 1. The policy continues from the env's transcript, which now
ends in the hint (the agents runner builds every request from `env.transcript`).

At most `max_interventions` hints are given. When the episode ends it is always judged
once more, so every finished episode has a final status in `info["calm"]["final"]`:
"flawless" (kept by curation when also correct), "flawed" (a flaw remained when the
budget was spent), "no_verdict" (the judge gave no valid verdict) or "not_judged" (the
episode stopped before the trigger, e.g. the context length ran out). `info["calm"]` also
lists every intervention and judgement; `record_fields()` hands the same to the rollout
runner's episode record.

Works with every rendering and every policy backend; `step` uses the intervener's
synchronous `judge`, `astep` awaits `ajudge` (the env's execution and the judge's request
never block the event loop).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from calm.intervener import BaseIntervener, Judgement
from calm.prompt import JudgeContext
from or_env.env import Action, Observation, ORModelingEnv
from or_env.info import END_KEYS

TRIGGERS = ("end", "execution")
DEFAULT_HINT_TEMPLATES = {"inline": "{hint}\n\n", "chat": "{hint}", "tools": "{hint}"}

StepResult = tuple[Observation, float, bool, bool, dict[str, Any]]


class CALMWrapper(gym.Wrapper):
    """Runs CALM on an `ORModelingEnv`: judge, rewind to the first flaw, insert a hint.

    Args:
        env: an `ORModelingEnv`, possibly wrapped (`env.unwrapped` must be one).
        intervener: a `calm.BaseIntervener` (e.g. `calm.Intervener` for an LLM judge).
        max_interventions: hints per episode at most (the paper uses 5).
        trigger: "end" or "execution" (see the module doc).
        hint_template: how a hint is written into the transcript ("{hint}" is replaced);
            default: "{hint}\\n\\n" inline, "{hint}" in the chat and tools renderings.
    """

    def __init__(
        self,
        env: gym.Env,
        intervener: BaseIntervener,
        max_interventions: int = 5,
        trigger: str = "end",
        hint_template: str | None = None,
    ) -> None:
        super().__init__(env)
        if not isinstance(env.unwrapped, ORModelingEnv):
            raise TypeError(
                f"CALMWrapper needs an ORModelingEnv (got {type(env.unwrapped).__name__}): it "
                "rewinds the env's transcript"
            )
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, got {trigger!r}")
        if max_interventions < 0:
            raise ValueError(f"max_interventions must not be negative, got {max_interventions}")
        if hint_template is not None and "{hint}" not in hint_template:
            raise ValueError("hint_template must contain '{hint}'")
        self.intervener = intervener
        self.max_interventions = max_interventions
        self.trigger = trigger
        self.hint_template = hint_template
        self.interventions: list[dict[str, Any]] = []
        self.judgements: list[dict[str, Any]] = []
        self.final = "not_judged"
        self._steps = 0

    @property
    def core(self) -> ORModelingEnv:
        """The `ORModelingEnv` under all wrappers."""
        return self.env.unwrapped  # type: ignore[return-value]

    # ----------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._after_reset(info)

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """`reset` for asyncio code."""
        areset = getattr(self.env, "areset", None)
        if areset is None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, info = await areset(seed=seed, options=options)
        return obs, self._after_reset(info)

    def step(self, action: Action) -> StepResult:
        result = self.env.step(action)
        self._steps += 1
        kind = self._trigger_kind(result)
        if kind is None:
            return self._passthrough(result)
        return self._apply(result, kind, self.intervener.judge(self._context(result)))

    async def astep(self, action: Action) -> StepResult:
        """`step` for asyncio code: the execution and the judge's request are awaited."""
        astep = getattr(self.env, "astep", None)
        if astep is None:
            result = self.env.step(action)
        else:
            result = await astep(action)
        self._steps += 1
        kind = self._trigger_kind(result)
        if kind is None:
            return self._passthrough(result)
        judgement = await self.intervener.ajudge(self._context(result))
        return self._apply(result, kind, judgement)

    def summary(self) -> dict[str, Any]:
        """What CALM did in this episode so far (also `info["calm"]`)."""
        return {
            "final": self.final,
            "interventions": list(self.interventions),
            "judgements": list(self.judgements),
            "max_interventions": self.max_interventions,
            "trigger": self.trigger,
        }

    def record_fields(self) -> dict[str, Any]:
        """Fields for the rollout runner's episode record."""
        return {"calm": self.summary()}

    # ----------------------------------------------------------------- internals
    def _after_reset(self, info: dict[str, Any]) -> dict[str, Any]:
        self.interventions, self.judgements = [], []
        self.final, self._steps = "not_judged", 0
        info["calm"] = self.summary()
        return info

    def _trigger_kind(self, result: StepResult) -> str | None:
        _, _, terminated, truncated, info = result
        if terminated or truncated:
            return "end"  # always judged, so every finished episode has a final status
        budget_left = len(self.interventions) < self.max_interventions
        if self.trigger == "execution" and budget_left and info.get("execution") is not None:
            return "execution"
        return None

    def _context(self, result: StepResult) -> JudgeContext:
        _, _, terminated, truncated, info = result
        core = self.core
        assert core.problem is not None
        outcome = None
        if terminated or truncated:
            outcome = {key: info.get(key) for key in ("termination_reason", "correct", "answer")}
        return JudgeContext(
            question=core.problem.question,
            ground_truth=core.problem.answer,
            messages=core.transcript.messages,
            n_turns=core.turn,
            outcome=outcome,
            problem_id=core.problem.id,
            benchmark=core.problem.benchmark,
        )

    def _passthrough(self, result: StepResult) -> StepResult:
        obs, reward, terminated, truncated, info = result
        info["calm"] = self.summary()
        return obs, reward, terminated, truncated, info

    def _apply(self, result: StepResult, kind: str, judgement: Judgement) -> StepResult:
        obs, reward, terminated, truncated, info = result
        ended = terminated or truncated
        self.judgements.append(
            {"step": self._steps, "trigger": kind, "turns": self.core.turn, **judgement.to_dict()}
        )
        verdict = judgement.verdict
        if judgement.status == "flaw" and len(self.interventions) < self.max_interventions:
            assert verdict is not None and verdict.turn is not None
            return self._intervene(info, kind, verdict.turn, judgement, ended)
        if ended:
            self.final = {"flawless": "flawless", "flaw": "flawed"}.get(
                judgement.status, "no_verdict"
            )
        return self._passthrough((obs, reward, terminated, truncated, info))

    def _intervene(
        self, info: dict[str, Any], kind: str, turn: int, judgement: Judgement, ended: bool
    ) -> StepResult:
        verdict = judgement.verdict
        assert verdict is not None and verdict.hint is not None
        core = self.core
        dropped = [m.to_dict() for m in core.transcript.messages if m.turn >= turn]
        core.rewind(turn - 1)
        text = self._hint_text(verdict.hint)
        observation: Observation = core.inject(text, source="intervener")
        if core.rendering == "tools":
            observation = [{"role": "user", "content": text}]
        record = {
            "index": len(self.interventions) + 1,
            "step": self._steps,
            "trigger": kind,
            "flawed_turn": turn,
            "rewound_to": turn - 1,
            "flaw_type": verdict.flaw_type,
            "category": verdict.category,
            "hint": verdict.hint,
            "text": text,
            "rationale": verdict.rationale,
            "outcome_before": (
                {key: info.get(key) for key in ("termination_reason", "correct", "answer")}
                if ended
                else None
            ),
            "dropped": dropped,
        }
        self.interventions.append(record)
        # The episode is reopened: what held only for its end (the grade, answer_printed) goes.
        new_info = {key: value for key, value in info.items() if key not in END_KEYS}
        new_info.update(
            turn=core.turn,
            executions=core.executions,
            action_kind="intervention",
            rewound_to=turn - 1,
            intervention=record,
        )
        new_info["calm"] = self.summary()
        return observation, 0.0, False, False, new_info

    def _hint_text(self, hint: str) -> str:
        core = self.core
        template = self.hint_template or DEFAULT_HINT_TEMPLATES[core.rendering]
        text = template.format(hint=hint)
        if core.rendering == "inline":
            chat = core.transcript.as_chat()
            last = chat[-1] if chat else None
            if last and last["role"] == "assistant" and not last["content"].endswith("\n"):
                text = "\n" + text  # the hint starts on a line of its own
        return text
