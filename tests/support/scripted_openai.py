"""A scripted OpenAI-compatible chat endpoint that plays the sample problems' reference programs.

`ScriptedOpenAI().start()` serves `POST .../chat/completions` (JSON or SSE when `stream`
is set) and `GET .../models` on a free port of 127.0.0.1, in a thread, with the standard
library only. The reply to a conversation: the problem's reference program in a ```python
block when no output came back yet; after an ```output block holding `OBJECTIVE: v` or
`STATUS: s`, the answer `\\boxed{v}`. The problem is found by its question in the messages.
`requests` records every request body.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from or_env import load_problems
from or_env.reference import read_reported_answer, reference_code

SAMPLE = load_problems("sample")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def scripted_reply(messages: list[dict[str, Any]]) -> str:
    """What the scripted policy says next in this conversation."""
    texts = [_text(m.get("content")) for m in messages]
    problem = next((p for p in SAMPLE if any(p.question[:80] in t for t in texts)), None)
    if problem is None:
        return "I cannot tell which problem this is."
    answer = read_reported_answer(texts[-1]) if messages[-1].get("role") != "system" else None
    if answer is not None:
        return f"The solver reports it, so the answer is \\boxed{{{answer}}}."
    return f"I will model it and solve it.\n```python\n{reference_code(problem)}\n```\n"


class ScriptedOpenAI:
    """The endpoint's server, in a daemon thread; `url` ends with /v1."""

    def __init__(self, model: str = "scripted") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json({"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                outer.requests.append(body)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self.send_error(404)
                    return
                reply = scripted_reply(body.get("messages") or [])
                if body.get("stream"):
                    self._stream(reply)
                else:
                    self._json(outer._completion(reply))

            def _json(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                base = {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": outer.model,
                }
                chunks = [
                    {"index": 0, "delta": {"role": "assistant", "content": reply}},
                    {"index": 0, "delta": {}, "finish_reason": "stop"},
                ]
                for choice in chunks:
                    event = {**base, "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                usage = {**base, "choices": [], "usage": outer._usage(reply)}
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _usage(self, reply: str) -> dict[str, int]:
        return {
            "prompt_tokens": 100,
            "completion_tokens": len(reply) // 4 + 1,
            "total_tokens": 100 + len(reply) // 4 + 1,
        }

    def _completion(self, reply: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(reply),
        }

    def start(self) -> ScriptedOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
