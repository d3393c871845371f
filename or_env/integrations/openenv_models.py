"""The OpenEnv wire models of or-env: what a client sends (`ORAction`) and gets back.

Shared by the server (`openenv_server`) and the client (`openenv_client`). They are pydantic
models, as OpenEnv's are; importing this module needs the `serve` extra.
"""

from __future__ import annotations

from typing import Any

from or_env.integrations import require

# The extra's check comes first, so a missing package says which extra to install.
_types = require("openenv.core.env_server.types", "serve")
_pydantic = require("pydantic", "serve")
Field, model_validator = _pydantic.Field, _pydantic.model_validator
_PydanticCustomError = require("pydantic_core", "serve").PydanticCustomError

#: What a reset accepts besides OpenEnv's own `seed` and `episode_id`.
RESET_OPTIONS = ("benchmark", "version", "problem_id", "index", "rendering")


class ORAction(_types.Action):  # type: ignore[misc, name-defined]
    """One policy turn, passed to `ORModelingEnv.step` unchanged.

    Exactly one of `text` (the inline and chat renderings: the raw text the policy
    generated) or `message` (the tools rendering: an assistant message with `tool_calls`).
    """

    text: str | None = Field(default=None, description="the policy's turn, as generated")
    message: dict[str, Any] | None = Field(
        default=None, description="tools rendering: an assistant message with tool_calls"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ORAction:
        if (self.text is None) == (self.message is None):
            # Not a ValueError: OpenEnv sends validation errors back as JSON, and a ValueError
            # in the error's context cannot be serialised (the session would end).
            raise _PydanticCustomError(
                "one_action", "an action holds exactly one of 'text' or 'message'"
            )
        return self

    @property
    def payload(self) -> str | dict[str, Any]:
        """What `env.step` gets."""
        return self.text if self.text is not None else self.message  # type: ignore[return-value]


class ORObservation(_types.Observation):  # type: ignore[misc, name-defined]
    """What `reset` and `step` return: the env's observation and the info safe to show.

    `reward` and `done` (terminated or truncated) are OpenEnv's own fields. `info` is the
    env's info without anything that could leak a ground truth (the server never runs the
    env with `debug=True`); at the end of an episode it holds the grade and the transcript.
    `system_prompt` and `tools` come with `reset` only: what a chat policy needs to open
    the conversation (`tools`: the tools rendering's function schemas). After a step,
    `metadata["env_step_s"]` is the env's own time for it inside the server.
    """

    observation: str | list[dict[str, Any]] = Field(
        default="", description="text, or (tools rendering) the messages the env added"
    )
    info: dict[str, Any] = Field(default_factory=dict, description="the env's info, safe keys")
    terminated: bool = False
    truncated: bool = False
    system_prompt: str | None = None
    tools: list[dict[str, Any]] | None = None


class ORState(_types.State):  # type: ignore[misc, name-defined]
    """Where the session's episode stands (`step_count` counts policy turns, as `turn`)."""

    turn: int = 0
    executions: int = 0
    problem_id: str | None = None
    benchmark: str | None = None
    version: str | None = None
    rendering: str | None = None
    done: bool = False
