"""A host process that runs a LocalSandbox as an unprivileged user, driven by a test.

tests/test_redteam_sandbox.py starts this script (as root) under
`setpriv --reuid=65534 --regid=65534 --clear-groups --` with a secret in its own
environment, like a laptop or cluster user whose shell holds API keys and who runs the
local sandbox without Docker. The test then sends it the attack programs.

Protocol: one JSON object per line on stdin, one per line on stdout. Requests carry an
"id" that the answer repeats; each request is handled on its own thread, so that a test
can kill the workers while a program is running.

    {"id", "op": "start", "options": {...}}  LocalSandbox(**options), start() -> info
    {"id", "op": "run", "code", "timeout"}    -> ExecResult.to_dict()
    {"id", "op": "info"}                      -> info
    {"id", "op": "kill_workers"}              SIGKILL every worker -> {"killed": [pid, ...]}
    {"id", "op": "close"}                     close the sandbox -> {"closed": true}
    end of stdin                              close and exit

info: {"pid", "uid", "isolation", "worker_pids", "scratch_roots", "site_packages",
"warnings"} (warnings: what or_env logged at WARNING or above).
Errors are answered as {"id", "error": "..."}.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import site
import sys
import threading
import traceback

from or_env.sandbox.local import LocalSandbox

_out_lock = threading.Lock()
_box: LocalSandbox | None = None
_warnings: list[str] = []


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _warnings.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _send(obj: dict) -> None:
    line = json.dumps(obj) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _scratch_roots(box: LocalSandbox) -> list[str]:
    roots = []
    pool = getattr(box, "_pool", None)
    workers = pool.workers() if pool is not None and hasattr(pool, "workers") else []
    for worker in workers:
        info = getattr(worker, "ready_info", None) or {}
        if isinstance(info.get("scratch_root"), str):
            roots.append(info["scratch_root"])
    return roots


def _info() -> dict:
    box = _box
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "isolation": None if box is None else box.isolation,
        "worker_pids": [] if box is None else box.worker_pids(),
        "scratch_roots": [] if box is None else _scratch_roots(box),
        "site_packages": site.getsitepackages(),
        "warnings": list(_warnings),
    }


def _handle(req: dict) -> dict:
    global _box
    op = req.get("op")
    if op == "start":
        _box = LocalSandbox(**req.get("options", {}))
        _box.start()
        return _info()
    if op == "info":
        return _info()
    if _box is None:
        raise RuntimeError("no sandbox: send 'start' first")
    if op == "run":
        return _box.run(req["code"], timeout=req.get("timeout")).to_dict()
    if op == "kill_workers":
        killed = []
        for pid in _box.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        return {"killed": killed}
    if op == "close":
        _box.close()
        return {"closed": True}
    raise ValueError(f"unknown op {op!r}")


def _serve_one(req: dict) -> None:
    try:
        answer = _handle(req)
    except BaseException as exc:  # the test wants to see it, not a dead driver
        answer = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"}
    answer["id"] = req.get("id")
    _send(answer)


def main() -> int:
    handler = _Collect(level=logging.WARNING)
    logging.getLogger("or_env").addHandler(handler)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    threads = []
    for line in sys.stdin:
        if not line.strip():
            continue
        thread = threading.Thread(target=_serve_one, args=(json.loads(line),), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(60)
    if _box is not None:
        _box.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
