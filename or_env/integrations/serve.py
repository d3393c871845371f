"""`or-env serve`: the settings of the OpenEnv server and the command that starts it.

This module imports no optional dependency, so `or-env --help` works without the `serve`
extra; the server itself lives in `or_env.integrations.openenv_server`.

    or-env serve --sandbox local --port 8000 --max-sessions 64

`ServeConfig` is a plain dataclass so that a YAML config (with dot-list overrides) can fill
it as well as the command line does.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

SANDBOX_CHOICES = ("auto", "local", "docker")
RENDERINGS = ("inline", "chat", "tools")


@dataclass
class ServeConfig:
    """What the OpenEnv server serves and how: address, session bound, sandbox, env settings.

    The env settings (`rendering` to `require_executed_answer`) are the `ORModelingEnv`
    arguments of every session; a client picks the benchmark, version, problem and rendering
    per episode in `reset`, the rest is the server's.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    #: Concurrent WebSocket sessions (one env each); the next one is refused.
    max_sessions: int = 64
    #: Close sessions idle this long (seconds); None: never.
    session_timeout_s: float | None = None
    #: The sandbox backend every session shares (one warm pool).
    sandbox: str = "auto"
    #: Sandbox pool size (default: the backend's own, the CPUs this process may use).
    sandbox_workers: int | None = None
    #: Serve a local sandbox without Linux namespaces (programs could read ground truths).
    allow_unisolated: bool = False
    #: The benchmark of a `reset` that names none.
    benchmark: str = "sample"
    version: str | None = None
    #: Where benchmark files are (default: $OR_ENV_DATA_DIR); never taken from clients.
    data_dir: str | None = None
    rendering: str = "inline"
    max_turns: int = 12
    max_executions: int = 10
    max_obs_chars: int = 4000
    timeout: float = 30.0
    tolerance: str = "default"
    protocol: str = "native"
    require_executed_answer: bool = False
    log_level: str = "warning"
    #: permessage-deflate on the WebSockets: off by default, since on a local network it
    #: costs more CPU per step than it saves in transfer time.
    ws_compression: bool = False
    #: Extra `ORModelingEnv` keyword arguments (YAML configs; not on the command line).
    env_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {self.max_sessions}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        if self.sandbox not in SANDBOX_CHOICES:
            raise ValueError(f"sandbox must be one of {SANDBOX_CHOICES}, got {self.sandbox!r}")
        if self.rendering not in RENDERINGS:
            raise ValueError(f"rendering must be one of {RENDERINGS}, got {self.rendering!r}")

    def env_kwargs(self) -> dict[str, Any]:
        """The `ORModelingEnv` keyword arguments every session's env gets (no sandbox)."""
        return {
            "rendering": self.rendering,
            "max_turns": self.max_turns,
            "max_executions": self.max_executions,
            "max_obs_chars": self.max_obs_chars,
            "timeout": self.timeout,
            "tolerance": self.tolerance,
            "protocol": self.protocol,
            "require_executed_answer": self.require_executed_answer,
            **self.env_options,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeConfig:
        """The config from `OR_ENV_SERVE_<FIELD>` variables (e.g. OR_ENV_SERVE_MAX_SESSIONS=32),
        for `uvicorn or_env.integrations.openenv_server:app` and containers."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"OR_ENV_SERVE_{f.name.upper()}")
            if raw is None or f.name == "env_options":
                continue
            kind = str(f.type)
            if "bool" in kind:
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif "int" in kind:
                values[f.name] = int(raw)
            elif "float" in kind:
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        return cls(**values)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeConfig:
        """The config from parsed `or-env serve` arguments (unknown names are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})


def add_serve_command(sub: argparse._SubParsersAction, formatter_class: type) -> None:
    """Register `or-env serve` on the CLI's subcommands."""
    from or_env.cli import nonnegative_int, positive_float, positive_int

    defaults = ServeConfig()
    p = sub.add_parser(
        "serve",
        formatter_class=formatter_class,
        help="serve the environment over OpenEnv's WebSocket protocol (extra: serve)",
        description="An OpenEnv server over ORModelingEnv: one env per WebSocket session, "
        "all sessions sharing one warm sandbox pool. Clients: "
        "or_env.integrations.openenv_client.ORClient, or any OpenEnv client. "
        "Needs: pip install 'or-env[serve]'.",
    )
    p.add_argument("--host", default=defaults.host, help="the address to listen on")
    p.add_argument("--port", type=nonnegative_int, default=defaults.port, help="the port")
    p.add_argument(
        "--max-sessions",
        type=positive_int,
        default=defaults.max_sessions,
        help="concurrent sessions; one more is refused",
    )
    p.add_argument(
        "--session-timeout",
        dest="session_timeout_s",
        type=positive_float,
        help="close sessions idle this many seconds (default: never)",
    )
    p.add_argument(
        "--sandbox", choices=SANDBOX_CHOICES, default=defaults.sandbox, help="the backend"
    )
    p.add_argument("--sandbox-workers", type=positive_int, help="sandbox pool size")
    p.add_argument(
        "--allow-unisolated",
        action="store_true",
        help="serve with a local sandbox that has no Linux namespaces",
    )
    p.add_argument(
        "--benchmark", default=defaults.benchmark, help="for resets that name no benchmark"
    )
    p.add_argument("--version", help="its version (default: the benchmark's default)")
    p.add_argument("--data-dir", help="the benchmark data folder (default: $OR_ENV_DATA_DIR)")
    p.add_argument(
        "--rendering",
        choices=RENDERINGS,
        default=defaults.rendering,
        help="for resets that name none",
    )
    p.add_argument("--max-turns", type=positive_int, default=defaults.max_turns)
    p.add_argument("--max-executions", type=positive_int, default=defaults.max_executions)
    p.add_argument(
        "--timeout", type=positive_float, default=defaults.timeout, help="seconds per execution"
    )
    p.add_argument("--tolerance", default=defaults.tolerance, help="a grading preset")
    p.add_argument(
        "--protocol", choices=("native", "direct"), default=defaults.protocol, help="protocol"
    )
    p.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default=defaults.log_level,
        help="uvicorn's log level",
    )
    p.add_argument(
        "--ws-compression",
        action="store_true",
        help="compress WebSocket messages (permessage-deflate; for slow links)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from or_env.integrations.openenv_server import serve

    serve(ServeConfig.from_args(args))
    return 0
