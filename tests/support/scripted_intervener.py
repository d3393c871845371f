"""A scripted CALM judge: an OpenAI-compatible chat endpoint on 127.0.0.1 for tests.

It is not a model: it replays scripted replies, so tests can make the intervener flag a
given turn, find nothing, or answer junk. Standard library only, so it runs in either venv.

`ScriptedIntervener(plans)` serves one plan per URL prefix: `base_url(name)` is
`http://127.0.0.1:PORT/<name>/v1`. A plan maps a key to a list of replies; a request goes
to the first key (other than "*") found in its messages (e.g. a problem's question), else
to "*". The n-th request for a key gets the n-th reply; the last one repeats. A reply is:

- {"verdict": {...}}: the verdict as JSON content (what a judge should answer);
- {"content": "..."}: any content (junk a judge might write);
- {"raw": "..."}: an HTTP 200 whose body is this text (not JSON at all);
- {"status": 503}: an HTTP error with that status;
- any of these with "delay": seconds to wait before answering (a judge that stalls).

`requests` records every request (plan, key, body) in arrival order.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def flaw(turn: int, hint: str, flaw_type: str = "constraint_error") -> dict[str, Any]:
    """A scripted reply flagging `turn` with `hint`."""
    verdict = {"flawless": False, "turn": turn, "flaw_type": flaw_type, "hint": hint}
    return {"verdict": {**verdict, "rationale": "scripted"}}


FLAWLESS: dict[str, Any] = {"verdict": {"flawless": True, "rationale": "scripted"}}


class ScriptedIntervener:
    """Serves scripted judge replies until `close` (see the module doc)."""

    def __init__(self, plans: Mapping[str, Mapping[str, list[Mapping[str, Any]]]]) -> None:
        self.plans = {name: {k: list(v) for k, v in plan.items()} for name, plan in plans.items()}
        self.requests: list[dict[str, Any]] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a stalled reply must not hold up close()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def base_url(self, plan: str) -> str:
        return f"http://127.0.0.1:{self.port}/{plan}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def reply_for(self, plan_name: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The scripted reply for one request (and record it)."""
        plan = self.plans[plan_name]
        text = json.dumps(body.get("messages"), ensure_ascii=False)
        key = next((k for k in plan if k != "*" and k in text), "*")
        with self._lock:
            index = self._counts[(plan_name, key)]
            self._counts[(plan_name, key)] += 1
            self.requests.append({"plan": plan_name, "key": key, "index": index, "body": body})
        replies = plan[key]
        return replies[min(index, len(replies) - 1)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 4 or parts[1:] != ["v1", "chat", "completions"]:
                    self._send(404, json.dumps({"error": f"no route {self.path}"}))
                    return
                if parts[0] not in outer.plans:
                    self._send(404, json.dumps({"error": f"no plan {parts[0]!r}"}))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = outer.reply_for(parts[0], body)
                time.sleep(float(reply.get("delay", 0)))
                if "status" in reply:
                    self._send(int(reply["status"]), json.dumps({"error": "scripted"}))
                elif "raw" in reply:
                    self._send(200, str(reply["raw"]))
                else:
                    content = reply.get("content")
                    if "verdict" in reply:
                        content = json.dumps(reply["verdict"])
                    self._send(200, json.dumps(completion(body.get("model"), str(content))))

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests` instead."""

        return Handler


def completion(model: Any, content: str) -> dict[str, Any]:
    """An OpenAI chat-completion body holding `content`."""
    return {
        "id": "scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
