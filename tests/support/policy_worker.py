"""The test side of the policy worker (`worker_main.py`), which runs in the vLLM venv.

`PolicyWorker(venv, log_dir).start()` launches the worker in its own process group;
`call(op, **fields)` sends one request and returns its result, raising `WorkerError`
(with the worker's exception type, message and traceback) when the worker reports one;
`close()` asks it to exit and kills the group if it does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from support.ml_venv import subprocess_env

WORKER = Path(__file__).with_name("worker_main.py")


class WorkerError(RuntimeError):
    """The worker raised while serving a request; `error_type` names its exception class."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply['error_type']}: {reply['error']}\n{reply['traceback']}")
        self.error_type = reply["error_type"]
        self.error = reply["error"]


class PolicyWorker:
    """A worker process serving `make` / `act` / `run` requests (see worker_main)."""

    def __init__(self, venv: Path, log_dir: Path) -> None:
        self.venv = venv
        self.log_path = log_dir / "policy-worker.log"
        self.process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()

    def start(self) -> PolicyWorker:
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "python"), str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=subprocess_env(self.venv),
                start_new_session=True,
            )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._replies.put(line)
        self._replies.put(None)  # the worker closed its stdout: it exited

    def call(self, op: str, *, timeout: float = 300.0, **fields: Any) -> Any:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"the policy worker did not answer {op!r} in {timeout} s; log tail:\n"
                f"{self.log_tail()}"
            ) from None
        if line is None:
            raise RuntimeError(f"the policy worker exited; log tail:\n{self.log_tail()}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise WorkerError(reply)
        return reply["result"]

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.call("exit", timeout=30)
            self.process.wait(timeout=30)
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
