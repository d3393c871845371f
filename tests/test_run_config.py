"""Run configs (`or_env.run_config`): file + flags + overrides -> one resolved config, the
errors that name the key, config.yaml in the run folder, and the resume comparison."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agents.eval import EVAL_RESUME_MAY_DIFFER, EvalCommandConfig
from calm.curate import CURATE_RESUME_MAY_DIFFER, CurateCommandConfig
from or_env.cli import main
from or_env.errors import OREnvError
from or_env.integrations.serve import ServeCommandConfig, ServeConfig, load_serve_command_config
from or_env.run_config import (
    CONFIG_YAML,
    MISSING,
    RunConfigError,
    check_resume,
    config_differences,
    flatten,
    load_run_config,
    save_resolved,
    schema_default,
    to_dict,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Which schema validates a file of configs/, by the start of its name.
SCHEMAS = {
    "eval-": EvalCommandConfig,
    "calm-curate": CurateCommandConfig,
    "serve": ServeCommandConfig,
}


@dataclass
class Inner:
    """A section of the test schema."""

    count: int = field(default=2, metadata={"min": 1})
    ratio: float = field(default=0.5, metadata={"gt": 0})
    mode: str = field(default="a", metadata={"choices": ("a", "b")})
    names: list[str] = field(default_factory=list)
    seed: int | None = 0


@dataclass
class Outer:
    """The test schema: one required key, one section."""

    name: str = MISSING
    inner: Inner = field(default_factory=Inner)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------- precedence
def test_defaults_then_file_then_flags_then_overrides(tmp_path: Path) -> None:
    file = write(tmp_path / "c.yaml", "name: from-file\ninner: {count: 3, ratio: 0.25}\n")
    resolved = load_run_config(Outer, file)
    assert (resolved.name, resolved.inner.count, resolved.inner.ratio) == ("from-file", 3, 0.25)
    assert resolved.inner.mode == "a"  # the default, untouched by the file
    # A flag given explicitly wins over the file; an override wins over both.
    resolved = load_run_config(Outer, file, ["inner.ratio=0.75"], {"inner.count": 4})
    assert (resolved.inner.count, resolved.inner.ratio) == (4, 0.75)
    resolved = load_run_config(Outer, file, ["inner.count=5"], {"inner.count": 4})
    assert resolved.inner.count == 5
    # Lists and null from the dot-list grammar; a flag value of None sets null.
    resolved = load_run_config(Outer, file, ["inner.names=[x,y]", "inner.seed=null"])
    assert resolved.inner.names == ["x", "y"] and resolved.inner.seed is None
    assert load_run_config(Outer, file, (), {"inner.seed": None}).inner.seed is None


def test_interpolations_are_resolved(tmp_path: Path) -> None:
    file = write(tmp_path / "c.yaml", "name: run-${inner.count}\ninner: {count: 7}\n")
    resolved = load_run_config(Outer, file)
    assert resolved.name == "run-7"
    save_resolved(tmp_path / "run", resolved)
    assert "name: run-7" in (tmp_path / "run" / CONFIG_YAML).read_text()


# ----------------------------------------------------------------------- bad configs
BAD = [
    # (file text or None, overrides, flags, words the one line must hold)
    ("name: x\nbogus: 1\n", [], {}, ["unknown key 'bogus'", "inner, name", "--config"]),
    ("name: x\ninner: {cuont: 1}\n", [], {}, ["unknown key 'inner.cuont'", "count, mode"]),
    (None, ["name=x", "inner.cuont=1"], {}, ["unknown key 'inner.cuont'", "override"]),
    (None, ["name=x"], {"inner.cuont": 1}, ["unknown key 'inner.cuont'"]),
    ("name: x\ninner: {count: many}\n", [], {}, ["inner.count", "expected int", "'many'"]),
    (None, ["name=x", "inner.ratio=fast"], {}, ["inner.ratio", "expected float", "'fast'"]),
    (None, ["name=x", "inner.names=x"], {}, ["inner.names", "expected list[str]"]),
    (None, ["name=x", "inner=3"], {}, ["inner: expected a section (keys: count,"]),
    ("name: x\ninner: 3\n", [], {}, ["inner: expected a section (keys: count,"]),
    (None, [], {}, ["missing required setting 'name'"]),
    ("name: ???\n", [], {}, ["missing required setting 'name'"]),
    (None, ["name=x", "inner.mode=c"], {}, ["inner.mode: 'c' is not one of a, b"]),
    (None, ["name=x", "inner.count=0"], {}, ["inner.count: must be at least 1, got 0"]),
    (None, ["name=x", "inner.ratio=0"], {}, ["inner.ratio: must be more than 0"]),
    (None, ["name"], {}, ["override 'name': expected section.key=value"]),
    ("name: [x\n", [], {}, ["not valid YAML", "at line 2"]),
    ("- name\n", [], {}, ["expected a mapping of sections"]),
]


@pytest.mark.parametrize(("text", "overrides", "flags", "words"), BAD)
def test_a_bad_config_is_one_line_naming_the_key(
    tmp_path: Path, text: str | None, overrides: list[str], flags: dict, words: list[str]
) -> None:
    file = None if text is None else write(tmp_path / "c.yaml", text)
    with pytest.raises(RunConfigError) as caught:
        load_run_config(Outer, file, overrides, flags)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    assert isinstance(caught.value, OREnvError) and isinstance(caught.value, ValueError)


def test_a_missing_file_and_a_missing_flag_are_named(tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match=r"--config .*nope.yaml: no such file"):
        load_run_config(Outer, tmp_path / "nope.yaml")
    with pytest.raises(
        RunConfigError, match=r"'name': give --name, name=\.\.\. or set it"
    ) as caught:
        load_run_config(Outer, flag_names={"name": "--name"})
    assert caught.value.missing == ("name",)


# ----------------------------------------------------------------------- the shipped configs
def schema_of(path: Path) -> type:
    for prefix, schema in SCHEMAS.items():
        if path.name.startswith(prefix):
            return schema
    raise AssertionError(f"{path.name}: which command's config is it? add it to SCHEMAS")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path: Path) -> None:
    resolved = load_run_config(schema_of(path), path)
    assert to_dict(resolved)  # every required key is set by the file


def test_the_paper_configs_hold_the_papers_setting() -> None:
    evaluation = load_run_config(EvalCommandConfig, CONFIGS / "eval-qwen3-4b-thinking.yaml")
    assert evaluation.policy.model == "Qwen/Qwen3-4B-Thinking-2507"
    assert evaluation.problems.benchmarks == [
        "nl4opt",
        "mamo-easylp",
        "mamo-complexlp",
        "industryor",
        "optmath",
    ]
    assert (evaluation.policy.temperature, evaluation.policy.top_p) == (0.6, 0.95)
    assert evaluation.env.timeout == 300.0
    curation = load_run_config(CurateCommandConfig, CONFIGS / "calm-curate.yaml")
    assert curation.reasoner.model == "Qwen/Qwen3-4B-Thinking-2507"
    assert curation.intervener.model and curation.intervener.base_url != curation.reasoner.base_url
    assert curation.env.timeout == 30.0


# ----------------------------------------------------------------------- saving, resuming
@pytest.mark.parametrize(
    ("schema", "file", "ignore", "changed", "allowed"),
    [
        (
            EvalCommandConfig,
            "eval-qwen3-4b-thinking.yaml",
            EVAL_RESUME_MAY_DIFFER,
            "policy.temperature=0.7",
            "run.concurrency=8",
        ),
        (
            CurateCommandConfig,
            "calm-curate.yaml",
            CURATE_RESUME_MAY_DIFFER,
            "calm.max_interventions=2",
            "intervener.base_url=http://judge:9000/v1",
        ),
    ],
)
def test_round_trip_and_resume(
    tmp_path: Path, schema: type, file: str, ignore: tuple, changed: str, allowed: str
) -> None:
    """file + overrides -> resolved -> config.yaml; the same config resumes, a different
    one is refused naming the key, a key allowed to differ passes."""
    overrides = ["env.max_turns=8", f"run.out={tmp_path / 'run'}"]
    resolved = load_run_config(schema, CONFIGS / file, overrides)
    assert resolved.env.max_turns == 8
    out = tmp_path / "run"
    save_resolved(out, resolved)
    again = load_run_config(schema, out / CONFIG_YAML)  # the saved file is itself a config
    assert to_dict(again) == to_dict(resolved)
    check_resume(out, load_run_config(schema, CONFIGS / file, overrides), ignore)
    check_resume(out, load_run_config(schema, CONFIGS / file, [*overrides, allowed]), ignore)
    other = load_run_config(schema, CONFIGS / file, [*overrides, changed])
    key, _, value = changed.partition("=")
    with pytest.raises(RunConfigError) as caught:
        check_resume(out, other, ignore, what="run")
    message = str(caught.value)
    assert f"other settings ({key}: " in message and f"-> {value}" in message
    assert "\n" not in message


def test_differences_name_every_key_with_old_and_new_values() -> None:
    old = {"env": {"max_turns": 12, "timeout": 30.0}, "run": {"out": "a"}, "gone": 1}
    new = {"env": {"max_turns": 8, "timeout": 30.0}, "run": {"out": "b"}, "added": [1, 2]}
    assert config_differences(old, new, ignore=("run",)) == [
        "added: (absent) -> [1, 2]",
        "env.max_turns: 12 -> 8",
        "gone: 1 -> (absent)",
    ]
    assert flatten({"a": {"b": {"c": 1}}, "d": []}) == {"a.b.c": 1, "d": []}


def test_a_folder_without_config_yaml_is_left_to_the_caller(tmp_path: Path) -> None:
    check_resume(tmp_path, {"anything": 1})  # nothing to compare with


def test_schema_defaults() -> None:
    assert schema_default(Outer, "name") == MISSING
    assert schema_default(Outer, "inner.names") == []
    assert schema_default(EvalCommandConfig, "env.timeout") == 300.0
    assert schema_default(CurateCommandConfig, "env.timeout") == 30.0
    with pytest.raises(RunConfigError, match=r"unknown key 'inner\.nope': inner has count"):
        schema_default(Outer, "inner.nope")


# ----------------------------------------------------------------------- or-env serve
def test_serve_config_from_file_flags_variables_and_overrides(tmp_path: Path) -> None:
    """defaults < OR_ENV_SERVE_<FIELD> variables < --config < flags < overrides, resolved
    into the flat ServeConfig the server takes."""
    file = write(
        tmp_path / "serve.yaml",
        "server: {max_sessions: 16, port: 9000}\nsandbox: {kind: local}\n"
        "env: {max_turns: 6, options: {direct_rule: default}}\n",
    )
    environ = {"OR_ENV_SERVE_HOST": "0.0.0.0", "OR_ENV_SERVE_PORT": "7000", "PATH": "/bin"}
    resolved = load_serve_command_config(
        file, ["env.max_turns=8"], {"server.max_sessions": 4, "env.max_turns": 3}, environ=environ
    )
    config = resolved.serve_config()
    assert isinstance(config, ServeConfig)
    assert config.host == "0.0.0.0"  # a variable beats the default...
    assert config.port == 9000  # ...but not the file
    assert config.max_sessions == 4  # a flag beats the file
    assert config.max_turns == 8  # an override beats the flag
    assert config.sandbox == "local" and config.timeout == 30.0  # file, default
    assert config.env_kwargs()["direct_rule"] == "default"
    # ServeConfig.from_env is the uvicorn app's: the file OR_ENV_SERVE_CONFIG names, over
    # the variables.
    app_config = ServeConfig.from_env({**environ, "OR_ENV_SERVE_CONFIG": str(file)})
    assert (app_config.host, app_config.port, app_config.max_turns) == ("0.0.0.0", 9000, 6)


def test_serve_command_line_prints_the_resolved_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OR_ENV_SERVE_MAX_SESSIONS", raising=False)
    file = write(tmp_path / "serve.yaml", "server: {max_sessions: 16}\nenv: {max_turns: 6}\n")
    argv = ["serve", "--config", str(file), "--max-sessions", "2", "env.max_turns=8"]
    # Options and overrides in any order.
    argv += ["--print-config", "--sandbox", "local", "env.timeout=5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    again = load_serve_command_config(write(tmp_path / "printed.yaml", printed))
    assert again.server.max_sessions == 2 and again.env.max_turns == 8
    assert again.sandbox.kind == "local" and again.env.timeout == 5.0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["env.max_trns=8"], ["unknown key 'env.max_trns'", "max_turns", "override"]),
        (["--config", "FILE"], ["unknown key 'server.bogus'", "host, log_level", "--config"]),
        (["server.max_sessions=many"], ["server.max_sessions: expected int, got 'many'"]),
        (["server.port=70000"], ["server.port: must be between 0 and 65535, got 70000"]),
        (["sandbox.kind=cloud"], ["sandbox.kind: 'cloud' is not one of auto, local"]),
        (["env.max_turns=0"], ["env.max_turns: must be at least 1, got 0"]),
        (["server=3"], ["server: expected a section (keys: host,"]),
    ],
)
def test_a_bad_serve_config_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: list[str]
) -> None:
    file = write(tmp_path / "bad.yaml", "server: {bogus: 1}\n")
    args = [str(file) if a == "FILE" else a for a in args]
    assert main(["serve", "--print-config", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip()
    assert "\n" not in line and line.startswith("error: "), line
    for word in words:
        assert word in line, line


def test_a_bad_serve_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match=r"server.max_sessions: .*\(OR_ENV_SERVE_MAX_"):
        load_serve_command_config(environ={"OR_ENV_SERVE_MAX_SESSIONS": "lots"})
