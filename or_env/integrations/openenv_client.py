"""`ORClient`: the Python client of `or-env serve` (an OpenEnv `EnvClient`, async and sync).

Each client is one WebSocket session, so one env on the server; episodes follow one another
on it. Async by default; `.sync()` gives the blocking twin:

    from or_env.integrations.openenv_client import ORClient

    with ORClient(base_url="http://127.0.0.1:8000").sync() as env:
        result = env.reset(benchmark="sample", problem_id="sample-001-production-mix")
        while not result.done:
            result = env.step(policy(result.observation.observation))
        print(result.reward, result.observation.info["termination_reason"])

    async with ORClient(base_url="http://127.0.0.1:8000") as env:
        result = await env.reset(index=3)
        result = await env.step("```python\\nprint(1)\\n```")

`step` takes an `ORAction`, a str (a text turn), a tools-rendering assistant message (a
mapping with a "role"), or the action's fields as a mapping (`{"text": ...}`). Any OpenEnv
client works too (`openenv.GenericEnvClient`, with actions as dicts `{"text": ...}` or
`{"message": {...}}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from or_env.integrations import require
from or_env.integrations.openenv_models import ORAction, ORObservation, ORState

_env_client = require("openenv.core.env_client", "serve")
_client_types = require("openenv.core.client_types", "serve")


class ORClient(_env_client.EnvClient):  # type: ignore[misc, name-defined]
    """A session of an or-env OpenEnv server: `reset(...)`, `step(action)`, `state()`."""

    def _step_payload(self, action: ORAction | str | Mapping[str, Any]) -> dict[str, Any]:
        return as_action(action).model_dump(exclude_none=True, exclude={"metadata"})

    def _parse_result(self, payload: dict[str, Any]) -> Any:
        fields = dict(payload.get("observation") or {})
        fields.pop("metadata", None)
        observation = ORObservation(
            **fields,
            reward=payload.get("reward"),
            done=bool(payload.get("done", False)),
            metadata=payload.get("metadata") or {},
        )
        return _client_types.StepResult(
            observation=observation,
            reward=payload.get("reward"),
            done=bool(payload.get("done", False)),
            metadata=payload.get("metadata"),
        )

    def _parse_state(self, payload: dict[str, Any]) -> ORState:
        return ORState(**payload)


def as_action(action: ORAction | str | Mapping[str, Any]) -> ORAction:
    """An `ORAction` from a text turn, a tools-rendering message, or an `ORAction`."""
    if isinstance(action, ORAction):
        return action
    if isinstance(action, str):
        return ORAction(text=action)
    if isinstance(action, Mapping):
        if "role" in action:  # a chat message; else the action's own fields, as sent on the wire
            return ORAction(message=dict(action))
        return ORAction.model_validate(dict(action))
    raise TypeError(f"an action is an ORAction, a str or a message dict, not {type(action)}")
