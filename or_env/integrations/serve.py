"""`or-env serve`: the settings of the OpenEnv server and the command that starts it.

This module imports no optional dependency, so `or-env --help` works without the `serve`
extra; the server itself lives in `or_env.integrations.openenv_server`.

    or-env serve --sandbox local --port 8000 --max-sessions 64
    or-env serve --config configs/serve.yaml server.max_sessions=32 env.max_turns=8

Two shapes of one set of settings:

- `ServeCommandConfig`, the run config of the command (`or_env.run_config`): sections
  `server`, `sandbox`, `problems`, `env`, filled by a `--config` YAML file, the flags and
  dot-list overrides, validated by OmegaConf (unknown keys and wrong types are one-line
  errors naming the key);
- `ServeConfig`, the flat dataclass the server takes (`create_app(ServeConfig(...))`);
  `ServeCommandConfig.serve_config()` makes one.

Precedence, lowest first: the defaults < `OR_ENV_SERVE_<FIELD>` variables (defaults of a
site or a container, e.g. OR_ENV_SERVE_HOST=0.0.0.0 in the server image) < the `--config`
file < the flags given < the overrides. `uvicorn or_env.integrations.openenv_server:app`
has no command line: it reads the variables and the file named by OR_ENV_SERVE_CONFIG.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from or_env.errors import MissingExtraError
from or_env.sandbox import BACKENDS

logger = logging.getLogger(__name__)

SANDBOX_CHOICES = BACKENDS
RENDERINGS = ("inline", "chat", "tools")
PROTOCOLS = ("native", "direct")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: The variable naming a run config file for `uvicorn ...openenv_server:app`.
CONFIG_VARIABLE = "OR_ENV_SERVE_CONFIG"
VARIABLE_PREFIX = "OR_ENV_SERVE_"


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
        """The config of `uvicorn or_env.integrations.openenv_server:app`: the file named by
        OR_ENV_SERVE_CONFIG over `OR_ENV_SERVE_<FIELD>` variables (e.g.
        OR_ENV_SERVE_MAX_SESSIONS=32) over the defaults. Raises RunConfigError."""
        environ = os.environ if environ is None else environ
        return load_serve_config(environ.get(CONFIG_VARIABLE) or None, environ=environ)


# ----------------------------------------------------------------------- the run config
# The sections of `or-env serve --config FILE.yaml`. Metadata: `choices`, `min` (least
# value), `gt` (must be more), checked by `or_env.run_config`.
_DEFAULTS = ServeConfig()


@dataclass
class ServerSection:
    """`server`: host and port to listen on, max_sessions (concurrent WebSocket sessions),
    session_timeout_s (close idle sessions; null: never), log_level (uvicorn's),
    ws_compression (permessage-deflate, for slow links)."""

    host: str = _DEFAULTS.host
    port: int = field(default=_DEFAULTS.port, metadata={"min": 0})
    max_sessions: int = field(default=_DEFAULTS.max_sessions, metadata={"min": 1})
    session_timeout_s: float | None = field(default=_DEFAULTS.session_timeout_s, metadata={"gt": 0})
    log_level: str = field(default=_DEFAULTS.log_level, metadata={"choices": LOG_LEVELS})
    ws_compression: bool = _DEFAULTS.ws_compression


@dataclass
class ServeSandboxSection:
    """`sandbox`: kind (the backend all sessions share), workers (pool size; null: per
    CPU), allow_unisolated (serve a local sandbox without Linux namespaces)."""

    kind: str = field(default=_DEFAULTS.sandbox, metadata={"choices": SANDBOX_CHOICES})
    workers: int | None = field(default=_DEFAULTS.sandbox_workers, metadata={"min": 1})
    allow_unisolated: bool = _DEFAULTS.allow_unisolated


@dataclass
class ServeProblemsSection:
    """`problems`: benchmark and version of resets that name none, data_dir (default:
    $OR_ENV_DATA_DIR; clients never choose it)."""

    benchmark: str = _DEFAULTS.benchmark
    version: str | None = _DEFAULTS.version
    data_dir: str | None = _DEFAULTS.data_dir


@dataclass
class ServeEnvSection:
    """`env`: the `ORModelingEnv` settings of every session (timeout: seconds per code
    execution; options: any other `ORModelingEnv` keyword argument)."""

    rendering: str = field(default=_DEFAULTS.rendering, metadata={"choices": RENDERINGS})
    tolerance: str = _DEFAULTS.tolerance
    max_turns: int = field(default=_DEFAULTS.max_turns, metadata={"min": 1})
    max_executions: int = field(default=_DEFAULTS.max_executions, metadata={"min": 0})
    max_obs_chars: int = field(default=_DEFAULTS.max_obs_chars, metadata={"min": 1})
    timeout: float = field(default=_DEFAULTS.timeout, metadata={"gt": 0})
    protocol: str = field(default=_DEFAULTS.protocol, metadata={"choices": PROTOCOLS})
    require_executed_answer: bool = _DEFAULTS.require_executed_answer
    options: dict[str, Any] = field(default_factory=dict)


# Each `ServeConfig` field (also the name of its OR_ENV_SERVE_<FIELD> variable) and its key.
KEYS: dict[str, str] = {
    "host": "server.host",
    "port": "server.port",
    "max_sessions": "server.max_sessions",
    "session_timeout_s": "server.session_timeout_s",
    "log_level": "server.log_level",
    "ws_compression": "server.ws_compression",
    "sandbox": "sandbox.kind",
    "sandbox_workers": "sandbox.workers",
    "allow_unisolated": "sandbox.allow_unisolated",
    "benchmark": "problems.benchmark",
    "version": "problems.version",
    "data_dir": "problems.data_dir",
    "rendering": "env.rendering",
    "tolerance": "env.tolerance",
    "max_turns": "env.max_turns",
    "max_executions": "env.max_executions",
    "max_obs_chars": "env.max_obs_chars",
    "timeout": "env.timeout",
    "protocol": "env.protocol",
    "require_executed_answer": "env.require_executed_answer",
    "env_options": "env.options",
}


@dataclass
class ServeCommandConfig:
    """The run config of `or-env serve` (`--config FILE.yaml`, flags, `KEY=VALUE`
    overrides; `or_env.run_config`): the sections server, sandbox, problems and env."""

    server: ServerSection = field(default_factory=ServerSection)
    sandbox: ServeSandboxSection = field(default_factory=ServeSandboxSection)
    problems: ServeProblemsSection = field(default_factory=ServeProblemsSection)
    env: ServeEnvSection = field(default_factory=ServeEnvSection)

    def serve_config(self) -> ServeConfig:
        """The flat `ServeConfig` the server takes."""
        values = {}
        for name, key in KEYS.items():
            section, _, leaf = key.partition(".")
            values[name] = getattr(getattr(self, section), leaf)
        values["env_options"] = dict(values["env_options"])
        return ServeConfig(**values)


def _variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Dotted key -> value of the OR_ENV_SERVE_<FIELD> variables that are set."""
    values: dict[str, str | None] = {}
    for name, key in KEYS.items():
        raw = environ.get(f"{VARIABLE_PREFIX}{name.upper()}")
        if raw is None or name == "env_options":
            continue
        # OmegaConf turns "8" into 8 and "true" into True for typed keys; "null" is not None.
        values[key] = None if raw.strip().lower() in ("", "null", "none") else raw
    return values


def _keys_in_file(path: str | os.PathLike[str] | None) -> set[str]:
    """The dotted keys a config file sets (empty when unreadable: loading reports that)."""
    if path is None:
        return set()
    from or_env.run_config import flatten

    try:
        import yaml

        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except Exception:  # a missing file or bad YAML: load_run_config says which, naming it
        return set()
    return set(flatten(data)) if isinstance(data, dict) else set()


def load_serve_command_config(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    flag_values: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> ServeCommandConfig:
    """The resolved `ServeCommandConfig`: defaults < OR_ENV_SERVE_<FIELD> variables <
    `config_file` < `flag_values` (dotted key -> value) < `overrides` (`key=value`).

    environ: where the variables are read (default: none; `os.environ` to read them).
    Raises RunConfigError (one line naming the key) for any mistake.
    """
    from or_env.run_config import RunConfigError, load_run_config

    variables = _variables(environ or {})
    # A variable is a default: the file, the flags and the overrides all beat it.
    in_file = _keys_in_file(config_file)
    layered: dict[str, Any] = {k: v for k, v in variables.items() if k not in in_file}
    layered.update(flag_values or {})
    names = {KEYS[n]: f"{VARIABLE_PREFIX}{n.upper()}" for n in KEYS}
    names.update(flag_names or {})
    try:
        resolved = load_run_config(
            ServeCommandConfig, config_file, list(overrides), layered, flag_names=names
        )
    except MissingExtraError as exc:
        raise MissingExtraError(
            "or-env serve reads its settings with omegaconf: pip install omegaconf "
            "(or 'or-env[agents]')"
        ) from exc
    try:
        resolved.serve_config()  # the checks the schema cannot state (the port's range)
    except ValueError as exc:  # "port must be ...": name the key as the schema does
        name, _, rest = str(exc).partition(" ")
        raise RunConfigError(f"{KEYS[name]}: {rest}" if name in KEYS else str(exc)) from exc
    return resolved  # type: ignore[no-any-return]


def load_serve_config(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    *,
    environ: Mapping[str, str] | None = None,
) -> ServeConfig:
    """`load_serve_command_config(...).serve_config()`: a `ServeConfig` from a YAML file,
    dot-list overrides and (with `environ`) OR_ENV_SERVE_<FIELD> variables."""
    return load_serve_command_config(config_file, overrides, environ=environ).serve_config()


def to_yaml(config: ServeCommandConfig) -> str:
    """The resolved config as YAML (what `--print-config` prints; a valid --config file)."""
    from omegaconf import OmegaConf  # loading the config needed it already

    from or_env.run_config import to_dict

    return str(OmegaConf.to_yaml(OmegaConf.create(to_dict(config))))


# ----------------------------------------------------------------------- the command
EPILOG = """\
run config:
  --config FILE.yaml holds sections of settings (configs/serve.yaml is an example);
  KEY=VALUE overrides set single keys (server.max_sessions=32 env.max_turns=8). Each flag
  sets one key; precedence, lowest first: defaults < OR_ENV_SERVE_<FIELD> variables
  (e.g. OR_ENV_SERVE_MAX_SESSIONS=32) < --config < flags < overrides. Keys:
    server.   host, port, max_sessions, session_timeout_s, log_level, ws_compression
    sandbox.  kind, workers, allow_unisolated
    problems. benchmark, version, data_dir
    env.      rendering, tolerance, max_turns, max_executions, max_obs_chars, timeout,
              protocol, require_executed_answer, options (other ORModelingEnv arguments)
  --print-config prints the resolved config as YAML and exits.
"""


class OverridesAction(argparse.Action):
    """The positional `KEY=VALUE ...` of `or-env serve`, interleaved with options.

    argparse gives a `nargs="*"` positional only its first run of words; as a REMAINDER it
    gets everything from the first override on, so the options among the words are parsed
    again here and later overrides come back to this action.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        count = 0
        while count < len(values) and "=" in values[count] and not values[count].startswith("-"):
            count += 1
        if values and count == 0:
            parser.error(f"expected KEY=VALUE overrides, got {values[0]!r}")
        namespace.overrides = [*getattr(namespace, "overrides", []), *values[:count]]
        if values[count:]:
            parser.parse_args(values[count:], namespace)


def _option(group: Any, key: str, *flags: str, help: str, **kwargs: Any) -> None:
    """A flag that sets `key` of `ServeCommandConfig`. It has no argparse default, so a
    flag left out never beats the file; its help shows the schema's default."""
    section, _, leaf = key.partition(".")
    section_cls = type(getattr(ServeCommandConfig(), section))
    f = {f.name: f for f in dataclasses.fields(section_cls)}[leaf]
    flag_like = kwargs.get("action") in ("store_true", "store_false")
    if "choices" in f.metadata and not flag_like:
        kwargs.setdefault("choices", list(f.metadata["choices"]))
    default = getattr(getattr(ServeCommandConfig(), section), leaf)
    if not flag_like and default is not None:
        help += f" (default: {default})"
    group.add_argument(*flags, dest=key, default=argparse.SUPPRESS, help=help, **kwargs)


def add_serve_command(sub: argparse._SubParsersAction, formatter_class: type) -> None:
    """Register `or-env serve` on the CLI's subcommands."""
    from or_env.cli import nonnegative_int, positive_float, positive_int

    p = sub.add_parser(
        "serve",
        formatter_class=formatter_class,
        help="serve the environment over OpenEnv's WebSocket protocol (extra: serve)",
        description="An OpenEnv server over ORModelingEnv: one env per WebSocket session, "
        "all sessions sharing one warm sandbox pool. Clients: "
        "or_env.integrations.openenv_client.ORClient, or any OpenEnv client. "
        "Needs: pip install 'or-env[serve]'.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="a run config: YAML sections (see 'run config' below and configs/serve.yaml)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as YAML and exit",
    )
    p.set_defaults(overrides=[], func=cmd_serve)
    server = p.add_argument_group("server")
    _option(server, "server.host", "--host", help="the address to listen on")
    _option(server, "server.port", "--port", type=nonnegative_int, help="the port")
    _option(
        server,
        "server.max_sessions",
        "--max-sessions",
        type=positive_int,
        help="concurrent sessions; one more is refused",
    )
    _option(
        server,
        "server.session_timeout_s",
        "--session-timeout",
        type=positive_float,
        help="close sessions idle this many seconds (default: never)",
    )
    _option(server, "server.log_level", "--log-level", help="uvicorn's log level")
    _option(
        server,
        "server.ws_compression",
        "--ws-compression",
        action="store_true",
        help="compress WebSocket messages (permessage-deflate; for slow links)",
    )
    sandbox = p.add_argument_group("sandbox")
    _option(sandbox, "sandbox.kind", "--sandbox", help="the backend")
    _option(sandbox, "sandbox.workers", "--sandbox-workers", type=positive_int, help="pool size")
    _option(
        sandbox,
        "sandbox.allow_unisolated",
        "--allow-unisolated",
        action="store_true",
        help="serve with a local sandbox that has no Linux namespaces",
    )
    problems = p.add_argument_group("problems")
    _option(problems, "problems.benchmark", "--benchmark", help="for resets that name none")
    _option(problems, "problems.version", "--version", help="its version (default: its default)")
    _option(
        problems,
        "problems.data_dir",
        "--data-dir",
        help="the benchmark data folder (default: $OR_ENV_DATA_DIR)",
    )
    env = p.add_argument_group("env")
    _option(env, "env.rendering", "--rendering", help="for resets that name none")
    _option(env, "env.max_turns", "--max-turns", type=positive_int, help="policy turns")
    _option(env, "env.max_executions", "--max-executions", type=nonnegative_int, help="executions")
    _option(env, "env.timeout", "--timeout", type=positive_float, help="seconds per execution")
    _option(env, "env.tolerance", "--tolerance", help="a grading preset")
    _option(env, "env.protocol", "--protocol", help="the action protocol")
    p.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        action=OverridesAction,
        metavar="KEY=VALUE",
        help="dot-list overrides of the run config (server.max_sessions=32 env.max_turns=8)",
    )


def resolve_serve_args(args: argparse.Namespace) -> ServeCommandConfig:
    """The resolved config of an `or-env serve` command line (and this process's
    OR_ENV_SERVE_<FIELD> variables). Raises RunConfigError."""
    flags = {k: v for k, v in vars(args).items() if "." in k}
    return load_serve_command_config(args.config, list(args.overrides), flags, environ=os.environ)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted (or print the resolved config)."""
    resolved = resolve_serve_args(args)
    text = to_yaml(resolved)
    if args.print_config:
        sys.stdout.write(text)
        return 0
    # The resolved settings head the server's log, so a log says what it served.
    sys.stderr.write("or-env serve: resolved config\n" + text)
    sys.stderr.flush()
    from or_env.cli import CommandError
    from or_env.integrations.openenv_server import serve
    from or_env.sandbox import UnisolatedSandboxError

    try:
        serve(resolved.serve_config())
    except UnisolatedSandboxError as exc:
        raise CommandError(
            f"{exc} (or-env serve: --allow-unisolated; in a container, the docker run options "
            "of README 'Serving the environment' give the local sandbox its namespaces)"
        ) from exc
    return 0
