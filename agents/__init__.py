"""agents: policies, the rollout runner and the evaluation harness for `or_env`.

A `Policy` turns an episode's transcript into the next action text. Backends: an
OpenAI-compatible server (`OpenAIPolicy`: vLLM or SGLang `serve`, hosted APIs), recorded
responses (`ReplayPolicy`), and in-process engines (`VLLMPolicy`, `TransformersPolicy`; their
packages are imported only when used). `RolloutRunner` plays many episodes concurrently and
writes one JSONL record each; `run_eval` / `or-env eval` turn those records into the
per-benchmark table the papers report.

Dependencies point one way: `agents` imports `or_env`, never the reverse.

Note on the name: the top-level import name `agents` is also the import name of the OpenAI
Agents SDK (`pip install openai-agents`). Installing both into one environment makes one of
them shadow the other; keep them in separate environments.
"""

from agents.policy import (
    ContextLengthError,
    EpisodeKey,
    Policy,
    PolicyError,
    PolicyTurn,
    ServerUnreachable,
    chat_messages,
)
from agents.replay import ReplayPolicy
from agents.runner import EpisodeSpec, RolloutRunner, RunAborted, plan_episodes

# Backends and the harness whose optional dependencies (httpx, vllm, torch, matplotlib)
# load only when they are first used: `from agents import OpenAIPolicy` still works.
_LAZY = {
    "OpenAIPolicy": "agents.openai_policy",
    "VLLMPolicy": "agents.vllm_policy",
    "TransformersPolicy": "agents.transformers_policy",
    "EvalConfig": "agents.eval",
    "run_eval": "agents.eval",
}

__all__ = [
    "ContextLengthError",
    "EpisodeKey",
    "EpisodeSpec",
    "EvalConfig",
    "OpenAIPolicy",
    "Policy",
    "PolicyError",
    "PolicyTurn",
    "ReplayPolicy",
    "RolloutRunner",
    "RunAborted",
    "ServerUnreachable",
    "TransformersPolicy",
    "VLLMPolicy",
    "chat_messages",
    "plan_episodes",
    "run_eval",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
