"""The `Sandbox` protocol and the structured result of one code execution."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class SandboxFailure(StrEnum):
    """Why the sandbox itself (not the program) failed an execution.

    A program's own errors are never failures: they are in stderr with a non-zero exit.
    """

    START = "start"  # no worker or container could be started
    LOST = "lost"  # the worker died, hung past the host's deadline or broke the protocol
    DIRTY = "dirty"  # the program left state that could not be removed: worker replaced
    REFUSED = "refused"  # the worker rejected the request (bad limits, bad code type)
    BUSY = "busy"  # no worker became free within the queue timeout
    CLOSED = "closed"  # the sandbox was closed while the execution was waiting or running


@dataclass(frozen=True)
class ExecResult:
    """What one execution of a program produced.

    Attributes:
        stdout: captured standard output (head and tail kept when over the cap).
        stderr: captured standard error (same cap).
        exit_code: the program's exit status; negative for "killed by signal -N";
            None when the sandbox could not run it at all.
        timed_out: the wall-clock deadline was hit and the program was killed.
        wall_s: seconds from start to the end of the program (or its kill).
        truncated: some output was cut to respect the output cap.
        sandbox_error: set when the sandbox itself failed (worker died, daemon gone);
            the text says what happened and what to do. The program's own errors are
            not sandbox errors: they are in stderr with a non-zero exit code.
        failure: the kind of that failure, for code that reacts to it (retry on BUSY,
            count LOST, ...); None exactly when `sandbox_error` is None.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool = False
    wall_s: float = 0.0
    truncated: bool = False
    sandbox_error: str | None = None
    failure: SandboxFailure | None = None

    def __post_init__(self) -> None:
        if self.sandbox_error is not None and self.failure is None:
            object.__setattr__(self, "failure", SandboxFailure.LOST)

    @property
    def ok(self) -> bool:
        """True when the program ran to completion with exit status 0."""
        return self.exit_code == 0 and not self.timed_out and self.sandbox_error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Sandbox(Protocol):
    """Runs untrusted Python programs and returns what they printed.

    Every call runs a complete, independent program (no state carries over between
    calls). Implementations are thread-safe: `run` may be called from several threads
    and `arun` from many coroutines at once; a backend bounds its own concurrency.
    """

    name: str

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult: ...

    async def arun(self, code: str, *, timeout: float | None = None) -> ExecResult: ...

    def close(self) -> None: ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...


class SandboxBase:
    """Shared plumbing: context manager, and an `arun` that runs `run` in a thread."""

    name = "base"

    def run(self, code: str, *, timeout: float | None = None) -> ExecResult:
        raise NotImplementedError

    async def arun(self, code: str, *, timeout: float | None = None) -> ExecResult:
        return await asyncio.to_thread(self.run, code, timeout=timeout)

    def close(self) -> None:
        pass

    def __deepcopy__(self, memo: dict[int, Any]) -> SandboxBase:
        # A sandbox is a handle on running workers; copies of an env spec (Gymnasium
        # deep-copies make() kwargs) must share it, not clone it.
        return self

    def __enter__(self) -> SandboxBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
