"""`ORToolEnvironment`: `ORModelingEnv`'s tools rendering as a TRL `environment_factory`.

TRL's `GRPOTrainer(environment_factory=...)` builds instances with no arguments, pools them,
calls `reset(**row)` before each rollout, exposes every public method as a tool (its schema
from the type hints and docstring), runs the tool calls the model makes in its chat
template's syntax and appends the results as tool messages (masked out of the loss), and
adds `get_reward` as a reward source. This adapter is thin on purpose: each tool call
becomes one assistant message with that call, handed to `env.step`; the tool result is the
env's tool message; the reward is the env's. Prompts, parsing of the arguments and grading
are the env's (`or_env.tool_calls`); the tool descriptions are the env's schemas
(`or_env.tool_calls.TOOL_SCHEMAS`).

Use `environment_factory(problems, sandbox=...)` for the callable to pass to TRL (it binds
the problems and the env settings). Differences from playing the env directly, all TRL's:
- TRL runs every call of a message, so each is one env turn (the env alone acts on the
  first call of a message and counts the message as one turn);
- a message without a tool call ends the rollout (the env never sees it: the episode ends
  unanswered, reward 0);
- a call with arguments that do not fit the signature fails in TRL (an `{"error": ...}`
  tool result, counted in `tools/failure_frequency`) and is not an env turn;
- the budget is TRL's `max_completion_length`, which counts the tool results too.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from or_env.env import ORModelingEnv
from or_env.problems import Problem
from or_env.sandbox import Sandbox, require_isolation, shared_sandbox
from or_env.tool_calls import RUN_PYTHON, SUBMIT_ANSWER, TOOL_SCHEMAS

logger = logging.getLogger(__name__)

#: The tool result after `submit_answer`: the env adds no message then, and nothing here may
#: tell the policy whether it was right.
SUBMITTED = "Answer submitted. The episode is over."
#: The tool result of a call after the episode ended (answered or out of budget).
EPISODE_OVER = "The episode is over; no more tool calls are run."


def _google_docstring(name: str) -> str:
    """The env's schema of tool `name` as the Google-style docstring TRL reads a schema from."""
    function = next(s["function"] for s in TOOL_SCHEMAS if s["function"]["name"] == name)
    args = "\n".join(
        f"    {arg}: {spec['description']}"
        for arg, spec in function["parameters"]["properties"].items()
    )
    return f"{function['description']}\n\nArgs:\n{args}\n"


class ORToolEnvironment:
    """One rollout's `ORModelingEnv` (tools rendering), with the tools TRL calls.

    Attributes:
        env: the env of the current episode (a new one per `reset`, sharing the sandbox).
        reward: the env's reward for the episode so far (1.0 once a correct answer is
            submitted, else 0.0).
        info: the info of the env's last step (or of the reset).
    """

    def __init__(
        self,
        problems: Sequence[Problem | Mapping[str, Any]] | None = None,
        *,
        sandbox: str | Sandbox = "auto",
        sandbox_options: Mapping[str, Any] | None = None,
        allow_unisolated: bool = False,
        **env_kwargs: Any,
    ) -> None:
        self._problems = list(problems) if problems is not None else None
        self._sandbox = sandbox
        self._sandbox_options = dict(sandbox_options or {})
        self._allow_unisolated = allow_unisolated
        self._env_kwargs = dict(env_kwargs)
        self.env: ORModelingEnv | None = None
        self.reward = 0.0
        self.info: Mapping[str, Any] = {}

    def reset(self, problem_id: str, prompt: Any = None, **row: Any) -> None:
        """Start the episode on the row's problem; returns None: the prompt is the row's.

        The row's `prompt` must be the one the env starts with (`recipes.trl.data` makes
        it so); a dataset built with other env settings would train on prompts the env does
        not grade, so that is an error.
        """
        # Instances are pooled: forget the last episode first, so a reset that fails below
        # cannot leave its reward to be read again.
        self.env, self.info, self.reward = None, {}, 0.0
        sandbox = self._sandbox
        if isinstance(sandbox, str):
            sandbox = shared_sandbox(sandbox, **self._sandbox_options)
        require_isolation(sandbox, allow_unisolated=self._allow_unisolated)
        self.env = ORModelingEnv(
            problems=self._problems, sandbox=sandbox, rendering="tools", **self._env_kwargs
        )
        _, self.info = self.env.reset(options={"problem_id": problem_id})
        self.reward = 0.0
        if prompt is not None:
            expected = self.env.transcript.as_chat()
            given = [{"role": m["role"], "content": m["content"]} for m in prompt]
            if given != expected:
                raise ValueError(
                    f"the row's prompt for {problem_id!r} is not the one the env starts with: "
                    "build the dataset with recipes.trl.data.build_dataset(mode='tools') and "
                    "the same env settings"
                )
        return None

    def run_python(self, code: str) -> str:
        return self._call(RUN_PYTHON, {"code": code})

    def submit_answer(self, answer: str) -> str:
        return self._call(SUBMIT_ANSWER, {"answer": answer})

    run_python.__doc__ = _google_docstring(RUN_PYTHON)
    submit_answer.__doc__ = _google_docstring(SUBMIT_ANSWER)

    def get_reward(self) -> float:
        """The env's reward for the episode (TRL adds it as a reward source, weight 1)."""
        return float(self.reward)

    def _call(self, name: str, arguments: Mapping[str, Any]) -> str:
        if self.env is None:
            raise RuntimeError("reset() must be called before the tools")
        if self.env.done:
            return EPISODE_OVER
        turn = self.env.turn + 1
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": f"call_{turn}",
                    "type": "function",
                    # TRL hands over decoded arguments; as a JSON string they reach the env as
                    # any OpenAI-style client sends them (a number stays a number).
                    "function": {"name": name, "arguments": json.dumps(dict(arguments))},
                }
            ],
        }
        observation, reward, _, _, info = self.env.step(message)
        self.reward = float(reward)
        self.info = info
        if not observation:  # an answer ended the episode: the env adds no message
            return SUBMITTED
        return "\n\n".join(str(m["content"]) for m in observation)


def environment_factory(
    problems: Sequence[Problem | Mapping[str, Any]],
    *,
    sandbox: str | Sandbox = "auto",
    sandbox_options: Mapping[str, Any] | None = None,
    allow_unisolated: bool = False,
    **env_kwargs: Any,
) -> Callable[[], ORToolEnvironment]:
    """The `environment_factory` for `GRPOTrainer`: `ORToolEnvironment` bound to `problems`,
    the sandbox (`"auto"`, `"local"`, `"docker"`, `"ray"` or an instance; named ones are one
    shared pool per process) and `ORModelingEnv` settings (max_turns, tolerance, ...).

    A local sandbox without namespaces is refused at the first reset unless
    `allow_unisolated` (a policy could read ground truths: see `require_isolation`).
    """
    if env_kwargs.get("rendering", "tools") != "tools":
        raise ValueError("the tools environment plays rendering='tools'; drop rendering")
    env_kwargs.pop("rendering", None)
    return functools.partial(
        ORToolEnvironment,
        list(problems),
        sandbox=sandbox,
        sandbox_options=sandbox_options,
        allow_unisolated=allow_unisolated,
        **env_kwargs,
    )
