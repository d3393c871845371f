"""The policy worker: runs in the vLLM venv and serves policy calls to the tests.

The project's venv has neither torch nor transformers, so the policies that need them
(`TransformersPolicy`, `OpenAIPolicy` with a chat-template tokenizer) run here, in a
process started by `support.policy_worker.PolicyWorker`, with this checkout on PYTHONPATH.
One JSON request per stdin line, one JSON reply per stdout line:

- {"op": "make", "name": n, "kind": "transformers" | "openai", "kwargs": {...}}
    -> the policy's `describe()`
- {"op": "act", "name": n, "messages": [...], "rendering": r, "stop_sequences": [...]}
    -> the `PolicyTurn` as a dict
- {"op": "run", "name": n, "problem_ids": [...], "samples": k, "concurrency": c,
   "env_kwargs": {...}} -> the `RolloutRunner` records (sample problems, local sandbox)
- {"op": "exit"}

A reply is {"ok": true, "result": ...} or {"ok": false, "error_type", "error", "traceback"}.
Anything the libraries print goes to stderr, which keeps stdout for replies.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any


class Worker:
    """Holds the policies made so far, one event loop and one local sandbox."""

    def __init__(self) -> None:
        self.policies: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self.sandbox: Any = None

    def handle(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        if op == "make":
            return self.make(request["name"], request["kind"], request.get("kwargs") or {})
        policy = self.policies[request["name"]]
        if op == "act":
            turn = self.loop.run_until_complete(
                policy.act(
                    request["messages"],
                    rendering=request["rendering"],
                    stop_sequences=request["stop_sequences"],
                )
            )
            return turn.to_dict()
        if op == "run":
            return self.loop.run_until_complete(self.run(policy, request))
        raise ValueError(f"unknown op {op!r}")

    def make(self, name: str, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if kind == "transformers":
            from agents.transformers_policy import TransformersPolicy

            policy = TransformersPolicy(**kwargs)
        elif kind == "openai":
            from agents.openai_policy import OpenAIPolicy

            policy = OpenAIPolicy(**kwargs)
        else:
            raise ValueError(f"unknown policy kind {kind!r}")
        self.policies[name] = policy
        return policy.describe()

    async def run(self, policy: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
        from agents.runner import RolloutRunner, plan_episodes
        from or_env import load_problems
        from or_env.sandbox.local import LocalSandbox

        if self.sandbox is None:
            self.sandbox = LocalSandbox(workers=2)
        by_id = {problem.id: problem for problem in load_problems("sample")}
        problems = [by_id[problem_id] for problem_id in request["problem_ids"]]
        runner = RolloutRunner(
            policy,
            env_kwargs={**request.get("env_kwargs", {}), "sandbox": self.sandbox},
            concurrency=request.get("concurrency", 1),
            progress=False,
        )
        return await runner.arun(plan_episodes(problems, samples=request.get("samples", 1)))

    def close(self) -> None:
        for policy in self.policies.values():
            self.loop.run_until_complete(policy.aclose())
        if self.sandbox is not None:
            self.sandbox.close()
        self.loop.close()


def main() -> None:
    replies = sys.stdout
    sys.stdout = sys.stderr
    worker = Worker()
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "exit":
                break
            try:
                reply = {"ok": True, "result": worker.handle(request)}
            except Exception as exc:
                reply = {
                    "ok": False,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "traceback": traceback.format_exc(),
                }
            replies.write(json.dumps(reply, default=str) + "\n")
            replies.flush()
    finally:
        worker.close()
        replies.write(json.dumps({"ok": True, "result": "bye"}) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
