"""An OpenEnv server over `ORModelingEnv`: episodes over WebSocket sessions, one env each.

OpenEnv (`openenv` on PyPI) is the environment protocol TRL, Unsloth and torchforge consume.
`create_app(config)` builds its FastAPI app: `WS /ws` (one env per connection, episodes of
any length; at most `config.max_sessions` at once, the next connection is refused with
code CAPACITY_REACHED), plus OpenEnv's one-shot `POST /reset`, `POST /step`, `GET /state`,
`GET /schema`, `GET /health`, and `GET /or_env/stats` (sessions open, opened, closed).

Every session's env shares one sandbox, so all episodes use one warm pool of workers, and
one cache of loaded benchmarks. A reset takes OpenEnv's `seed` and `episode_id` plus
`benchmark`, `version`, `problem_id` or `index`, and `rendering`; see `OREnvironment.reset`.

    or-env serve --sandbox local --port 8000          # or: serve(ServeConfig(...))
    OR_ENV_SERVE_SANDBOX=local uvicorn or_env.integrations.openenv_server:app

The environment only calls the env: grading, parsing and prompts are the env's.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from or_env.env import ORModelingEnv
from or_env.integrations import require
from or_env.integrations.openenv_models import (
    RESET_OPTIONS,
    ORAction,
    ORObservation,
    ORState,
)
from or_env.integrations.serve import ServeConfig
from or_env.problems import Problem, get_benchmark, load_problems
from or_env.sandbox import Sandbox, make_sandbox, require_isolation

_interfaces = require("openenv.core.env_server.interfaces", "serve")
_http_server = require("openenv.core.env_server.http_server", "serve")
_types = require("openenv.core.env_server.types", "serve")

logger = logging.getLogger(__name__)

ENV_NAME = "or_env"
# Info keys that can hold a ground truth (only with debug=True, which the server never sets;
# dropped anyway so that a config mistake cannot leak one).
_SECRET_KEYS = frozenset({"ground_truth"})


@dataclass
class SessionStats:
    """Counts of envs the server made and closed (one per WebSocket session or HTTP call)."""

    opened: int = 0
    closed: int = 0
    max_sessions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, opened: int = 0, closed: int = 0) -> None:
        with self._lock:
            self.opened += opened
            self.closed += closed

    def to_dict(self) -> dict[str, int]:
        with self._lock:
            return {
                "open": self.opened - self.closed,
                "opened": self.opened,
                "closed": self.closed,
                "max_sessions": self.max_sessions,
            }


class ProblemCache:
    """Benchmarks loaded once per server and shared, read-only, by every session."""

    def __init__(self, data_dir: str | None = None) -> None:
        self.data_dir = data_dir
        self._loaded: dict[tuple[str, str | None], list[Problem]] = {}
        self._lock = threading.Lock()

    def get(self, benchmark: str, version: str | None) -> list[Problem]:
        key = (benchmark, version)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load_problems(benchmark, version=version, path=self.data_dir)
            return self._loaded[key]


def _check_registered(benchmark: str, kwargs: dict[str, Any]) -> None:
    """Clients pick among the registered benchmarks and their versions only: a name is never
    a path or a Hugging Face dataset (`hf:...`), which would make the server read or download
    whatever a client names (the server's own benchmark, set by its operator, may be one)."""
    if not isinstance(benchmark, str) or benchmark.startswith("hf:") or "/" in benchmark:
        raise ValueError(
            f"benchmark {str(benchmark)[:80]!r} is not a registered benchmark name; "
            "clients choose among or_env.list_benchmarks()"
        )
    spec = get_benchmark(benchmark)  # UnknownBenchmarkError (a ValueError) names the choices
    version = kwargs.get("version")
    if version is not None and version not in spec.version_names:
        raise ValueError(
            f"benchmark {benchmark!r} has no version {str(version)[:80]!r}; "
            f"versions: {', '.join(spec.version_names)}"
        )


class OREnvironment(_interfaces.Environment):  # type: ignore[misc, name-defined]
    """One OpenEnv session: an `ORModelingEnv` played through `reset` and `step`.

    The env is built on the first reset and rebuilt only when a reset asks for another
    benchmark, version or rendering; its sandbox is the server's shared one.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self,
        *,
        config: ServeConfig,
        sandbox: Sandbox,
        problems: ProblemCache,
        stats: SessionStats | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._sandbox = sandbox
        self._problems = problems
        self._stats = stats
        self._env: ORModelingEnv | None = None
        self._key: tuple[str, str | None, str] | None = None
        self._episode_id: str | None = None
        self._closed = False
        if stats is not None:
            stats.count(opened=1)

    # --------------------------------------------------------------- OpenEnv API
    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> ORObservation:
        """Start an episode.

        kwargs: `benchmark` and `version` (default: the server's), `problem_id` or `index`
        (default: drawn with the env's RNG, seeded by `seed`), `rendering` ("inline",
        "chat" or "tools"; default: the server's).
        """
        unknown = sorted(set(kwargs) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {unknown}; use seed, episode_id, "
                + ", ".join(RESET_OPTIONS)
            )
        if kwargs.get("benchmark") or kwargs.get("version"):
            _check_registered(kwargs.get("benchmark") or self.config.benchmark, kwargs)
        env = self._env_for(
            kwargs.get("benchmark") or self.config.benchmark,
            kwargs.get("version") if kwargs.get("benchmark") else self.config.version,
            kwargs.get("rendering") or self.config.rendering,
        )
        options: dict[str, Any] = {}
        if kwargs.get("problem_id") is not None:
            options["problem_id"] = str(kwargs["problem_id"])
        if kwargs.get("index") is not None:
            options["index"] = int(kwargs["index"])
        if len(options) > 1:
            raise ValueError("pass problem_id or index, not both")
        try:
            observation, info = env.reset(seed=seed, options=options)
        except KeyError as exc:  # KeyError's str() quotes its message
            raise ValueError(exc.args[0] if exc.args else str(exc)) from None
        self._episode_id = episode_id or uuid.uuid4().hex
        return ORObservation(
            observation=observation,
            info=_safe_info(info),
            system_prompt=env.system_prompt or None,
            tools=env.tools if env.rendering == "tools" else None,
        )

    async def reset_async(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> ORObservation:
        """`reset` on the event loop (it does no blocking work once a benchmark is loaded)."""
        return self.reset(seed=seed, episode_id=episode_id, **kwargs)

    def step(
        self, action: ORAction, timeout_s: float | None = None, **kwargs: Any
    ) -> ORObservation:
        """Play one turn (blocking; OpenEnv runs it in a thread for its HTTP routes)."""
        start = time.perf_counter()
        return self._observation(*self._require_env().step(action.payload), start=start)

    async def step_async(
        self, action: ORAction, timeout_s: float | None = None, **kwargs: Any
    ) -> ORObservation:
        """Play one turn; the sandbox run is awaited, so sessions never block each other."""
        start = time.perf_counter()
        return self._observation(*await self._require_env().astep(action.payload), start=start)

    @property
    def state(self) -> ORState:
        env = self._env
        if env is None or env.problem is None:
            return ORState(episode_id=self._episode_id)
        return ORState(
            episode_id=self._episode_id,
            step_count=env.turn,
            turn=env.turn,
            executions=env.executions,
            problem_id=env.problem.id,
            benchmark=env.problem.benchmark,
            version=self._key[1] if self._key else None,
            rendering=env.rendering,
            done=env.done,
        )

    def get_metadata(self) -> Any:
        return _types.EnvironmentMetadata(
            name=ENV_NAME,
            description="LLM agents solve optimisation word problems by writing solver code "
            "that runs in a sandbox and answering in \\boxed{}.",
            version=_package_version(),
        )

    def close(self) -> None:
        """Close the env (the shared sandbox stays open for the other sessions)."""
        if self._closed:
            return
        self._closed = True
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._stats is not None:
            self._stats.count(closed=1)

    # ------------------------------------------------------------------ internals
    def _env_for(self, benchmark: str, version: str | None, rendering: str) -> ORModelingEnv:
        key = (benchmark, version, rendering)
        if self._env is None or key != self._key:
            if self._env is not None:
                self._env.close()
            kwargs = {**self.config.env_kwargs(), "rendering": rendering}
            kwargs["debug"] = False  # never: it puts the ground truth in the info
            self._env = ORModelingEnv(
                self._problems.get(benchmark, version), sandbox=self._sandbox, **kwargs
            )
            self._key = key
        return self._env

    def _require_env(self) -> ORModelingEnv:
        if self._env is None:
            raise RuntimeError("step before reset: send a reset first")
        return self._env

    @staticmethod
    def _observation(
        observation: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: Any,
        *,
        start: float,
    ) -> ORObservation:
        return ORObservation(
            observation=observation,
            reward=reward,
            done=terminated or truncated,
            terminated=terminated,
            truncated=truncated,
            info=_safe_info(info),
            # The env's own time for the step: a client's latency minus this is what the
            # server and the network added (benchmarks/bench_serve.py).
            metadata={"env_step_s": time.perf_counter() - start},
        )


def _safe_info(info: Any) -> dict[str, Any]:
    """The info as plain JSON data, without keys that could hold a ground truth."""

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in _SECRET_KEYS}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    # A JSON round trip turns tuples, enums and odd scalars into what any client can read.
    return scrub(json.loads(json.dumps(dict(info), default=str)))


@functools.cache
def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("or-env")
    except PackageNotFoundError:
        return "0"


def create_app(
    config: ServeConfig | None = None,
    *,
    sandbox: Sandbox | None = None,
    problems: ProblemCache | None = None,
) -> Any:
    """The FastAPI app serving `config` (default `ServeConfig()`).

    With no `sandbox`, one is made from `config.sandbox` (checked for isolation unless
    `config.allow_unisolated`) and closed when the app shuts down; a given one belongs to
    the caller.
    """
    config = config or ServeConfig()
    problems = problems or ProblemCache(config.data_dir)
    problems.get(config.benchmark, config.version)  # fail now, not on the first reset
    owned = sandbox is None
    if sandbox is None:
        options = {} if config.sandbox_workers is None else {"workers": config.sandbox_workers}
        sandbox = make_sandbox(config.sandbox, **options)
        try:
            require_isolation(sandbox, allow_unisolated=config.allow_unisolated)
        except Exception:
            sandbox.close()
            raise
    stats = SessionStats(max_sessions=config.max_sessions)
    factory = functools.partial(
        OREnvironment, config=config, sandbox=sandbox, problems=problems, stats=stats
    )
    concurrency = _types.ConcurrencyConfig(
        max_concurrent_envs=config.max_sessions, session_timeout=config.session_timeout_s
    )
    app = _http_server.create_fastapi_app(
        factory,
        ORAction,
        ORObservation,
        concurrency_config=concurrency,
        env_name=ENV_NAME,
        state_cls=ORState,
    )

    @app.get("/or_env/stats", tags=["Health"])
    def or_env_stats() -> dict[str, int]:
        """Sessions open now, envs opened and closed since the start, and the bound."""
        return stats.to_dict()

    if owned:
        app.router.on_shutdown.append(sandbox.close)
    app.state.or_env_stats = stats
    app.state.or_env_sandbox = sandbox
    return app


def __getattr__(name: str) -> Any:
    """`app`, made on first access from `OR_ENV_SERVE_*` variables (`ServeConfig.from_env`), so
    that `uvicorn or_env.integrations.openenv_server:app` works without an import-time server."""
    if name == "app":
        app = create_app(ServeConfig.from_env())
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serve(config: ServeConfig) -> None:
    """Run the server with uvicorn until interrupted (what `or-env serve` does)."""
    uvicorn = require("uvicorn", "serve")
    app = create_app(config)
    logger.info(
        "serving or_env on http://%s:%d (WebSocket /ws, %d sessions, sandbox %s)",
        config.host,
        config.port,
        config.max_sessions,
        config.sandbox,
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        ws_per_message_deflate=config.ws_compression,
    )
