"""Run configs of the long-running commands: a YAML file, dot-list overrides and flags.

A command describes its settings as a *schema*: a dataclass of sections (dataclasses), each
field with a type, a default (`MISSING` for a required one) and optional checks in its
metadata (`choices`, `min`: the least value allowed, `gt`: the value must be more). The
command line becomes one resolved, validated instance of the schema:

    config = load_run_config(EvalCommandConfig, "configs/eval.yaml",
                             ["policy.temperature=0.6"], {"run.out": "runs/q3"})

Precedence, lowest first: the schema's defaults < the `--config` file < the flags given
explicitly on the command line < the dot-list overrides (`section.key=value`, applied last).
A flag left out never overrides the file (the commands give their flags no argparse default).

Every mistake is one `RunConfigError` line naming the key: an unknown key (with the valid
keys of its section), a value of the wrong type (with the value and the expected type), a
required key left unset, a value outside its choices or range.

`save_resolved(out_dir, config)` writes the resolved config as `config.yaml` in a run
folder; `check_resume(out_dir, config, ignore=...)` refuses to resume a folder whose
`config.yaml` differs in any key that is not ignored, naming each key with its old and new
value. `or-env eval`, `or-env calm curate` (and `or-env serve`) share these.

OmegaConf (the `agents` extra) is imported only when a config is loaded or saved, so
importing this module costs nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from or_env.errors import MissingExtraError, OREnvError

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_YAML",
    "MISSING",
    "RunConfigError",
    "check_resume",
    "config_differences",
    "flatten",
    "load_run_config",
    "save_resolved",
    "schema_default",
    "schema_field",
    "to_dict",
]

CONFIG_YAML = "config.yaml"
# OmegaConf's marker of a required value, also what a YAML file writes for one.
MISSING = "???"


class RunConfigError(OREnvError, ValueError):
    """A run config is unusable: an unknown key, a wrong type, a required key unset, a value
    outside its choices, or a run folder made with another config (one line, naming keys).

    missing: the required keys left unset (empty for the other mistakes).
    """

    missing: tuple[str, ...] = ()


def _omegaconf() -> Any:
    try:
        import omegaconf
    except ImportError as exc:  # pragma: no cover - the agents extra brings it
        raise MissingExtraError("run configs need omegaconf: pip install 'or-env[agents]'") from exc
    return omegaconf


# ----------------------------------------------------------------------- the schema
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _walk(schema: type, key: str) -> tuple[type, dataclasses.Field[Any], Any]:
    """(the section class, the field, its type) of a dotted key of a schema."""
    cls: Any = schema
    parts = key.split(".")
    for depth, part in enumerate(parts):
        by_name = {f.name: f for f in dataclasses.fields(cls)}
        if part not in by_name:
            where = ".".join(parts[:depth]) or "the config"
            raise RunConfigError(f"unknown key {key!r}: {where} has {', '.join(sorted(by_name))}")
        hint = _hints(cls)[part]
        if depth == len(parts) - 1:
            return cls, by_name[part], hint
        if not dataclasses.is_dataclass(hint):
            raise RunConfigError(f"unknown key {key!r}: {'.'.join(parts[: depth + 1])} is a value")
        cls = hint
    raise RunConfigError("empty key")


def schema_field(schema: type, key: str) -> dataclasses.Field[Any]:
    """The dataclass field of a dotted key (`env.max_turns`); its metadata holds the checks."""
    return _walk(schema, key)[1]


def schema_default(schema: type, key: str) -> Any:
    """The default of a dotted key (`MISSING`, "???", for a required one)."""
    f = schema_field(schema, key)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _leaf_keys(schema: type, prefix: str = "") -> Iterable[str]:
    hints = _hints(schema)
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_keys(hints[f.name], key + ".")
        else:
            yield key


# ----------------------------------------------------------------------- loading
def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _explain(
    schema: type, exc: Exception, source: str, key: str = "", value: Any = None
) -> RunConfigError:
    """One line for an OmegaConf error, naming the key (and what it should have been);
    `key` / `value`: what was being set, for the errors that do not say."""
    errors = _omegaconf().errors
    key = getattr(exc, "full_key", None) or key
    where = f" ({source})" if source else ""
    if isinstance(exc, errors.MissingMandatoryValue):
        return RunConfigError(f"missing required setting {key!r}{where}")
    if isinstance(exc, errors.ConfigKeyError | errors.ConfigAttributeError) and key:
        try:
            _walk(schema, key)
        except RunConfigError as unknown:
            return RunConfigError(f"{unknown}{where}")
    if isinstance(exc, errors.ValidationError) and key:
        try:
            hint = _walk(schema, key)[2]
        except RunConfigError as unknown:
            return RunConfigError(f"{unknown}{where}")
        value = getattr(exc, "value", None) if getattr(exc, "value", None) is not None else value
        if dataclasses.is_dataclass(hint):
            keys = ", ".join(f.name for f in dataclasses.fields(hint))
            return RunConfigError(f"{key}: expected a section (keys: {keys}), got {value!r}{where}")
        return RunConfigError(f"{key}: expected {_type_name(hint)}, got {value!r}{where}")
    return RunConfigError(f"{key + ': ' if key else ''}{_one_line(exc)}{where}")


def _check_values(schema: type, values: Mapping[str, Any]) -> None:
    """The metadata checks: choices, min (at least), gt (more than)."""
    for key in _leaf_keys(schema):
        meta = schema_field(schema, key).metadata
        value = values.get(key)
        if value is None:
            continue
        choices = meta.get("choices")
        if choices is not None and value not in tuple(choices):
            raise RunConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        if "min" in meta and value < meta["min"]:
            raise RunConfigError(f"{key}: must be at least {meta['min']}, got {value!r}")
        if "gt" in meta and not value > meta["gt"]:
            raise RunConfigError(f"{key}: must be more than {meta['gt']}, got {value!r}")


def _read_file(path: Path) -> Any:
    oc = _omegaconf()
    if not path.is_file():
        raise RunConfigError(f"--config {path}: no such file")
    try:
        loaded = oc.OmegaConf.load(path)
    except Exception as exc:  # YAML syntax errors come in several classes
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or _one_line(exc)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RunConfigError(f"--config {path}: not valid YAML ({what}{at})") from exc
    if not isinstance(loaded, oc.DictConfig):
        raise RunConfigError(f"--config {path}: expected a mapping of sections at the top")
    return loaded


def load_run_config(
    schema: type,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    flag_values: Mapping[str, Any] | None = None,
    *,
    flag_names: Mapping[str, str] | None = None,
) -> Any:
    """The resolved, validated config: an instance of `schema` (see the module doc).

    config_file: a YAML file of sections (`policy: {temperature: 0.6}`), or None.
    overrides: dot-list items, `section.key=value` (YAML values: `[a,b]`, `null`).
    flag_values: dotted key -> value of the flags given explicitly (already typed).
    flag_names: dotted key -> its flag, to name the flag when a required key is unset.
    Raises RunConfigError (one line) for any mistake.
    """
    oc = _omegaconf()
    OmegaConf = oc.OmegaConf
    errors = oc.errors
    config = OmegaConf.structured(schema)
    layers: list[tuple[str, Any]] = []
    if config_file is not None:
        layers.append((f"--config {config_file}", _read_file(Path(config_file))))
    for source, layer in layers:
        sections = {f.name for f in dataclasses.fields(schema)}
        plain = OmegaConf.to_container(layer, resolve=False)
        for name, value in plain.items():
            hint = _hints(schema)[name] if name in sections else None
            # OmegaConf's own error for a value where a section belongs names no key.
            if dataclasses.is_dataclass(hint) and not isinstance(value, dict):
                keys = ", ".join(f.name for f in dataclasses.fields(hint))
                raise RunConfigError(
                    f"{name}: expected a section (keys: {keys}), got {value!r} ({source})"
                )
        try:
            config = OmegaConf.merge(config, layer)
        except errors.OmegaConfBaseException as exc:
            raise _explain(schema, exc, source) from exc
    for key, value in (flag_values or {}).items():
        try:
            OmegaConf.update(config, key, value, merge=True)
        except errors.OmegaConfBaseException as exc:
            flag = (flag_names or {}).get(key, key)
            raise _explain(schema, exc, flag, key, value) from exc
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise RunConfigError(f"override {item!r}: expected section.key=value")
        try:
            config = OmegaConf.merge(config, OmegaConf.from_dotlist([item]))
        except errors.OmegaConfBaseException as exc:
            raise _explain(schema, exc, f"override {item!r}", key.strip(), text) from exc
        except Exception as exc:  # the dot-list grammar's own parse errors
            raise RunConfigError(f"override {item!r}: {_one_line(exc)}") from exc
    try:
        OmegaConf.resolve(config)
        missing = [key for key in _leaf_keys(schema) if _missing(config, key)]
        if missing:
            raise _missing_error(missing, flag_names or {})
        resolved = OmegaConf.to_object(config)
    except errors.OmegaConfBaseException as exc:
        raise _explain(schema, exc, "") from exc
    _check_values(schema, flatten(to_dict(resolved)))
    return resolved


def _missing_error(missing: Sequence[str], flag_names: Mapping[str, str]) -> RunConfigError:
    if len(missing) == 1:
        (key,) = missing
        flag = flag_names.get(key)
        how = f"give {flag}, " if flag else "give "
        error = RunConfigError(
            f"missing required setting {key!r}: {how}{key}=... or set it in the --config file"
        )
    else:
        named = ", ".join(
            f"{key!r} ({flag_names[key]})" if key in flag_names else repr(key) for key in missing
        )
        error = RunConfigError(
            f"missing required settings {named}: give them as flags, KEY=VALUE overrides or "
            "in the --config file"
        )
    error.missing = tuple(missing)
    return error


def _missing(config: Any, key: str) -> bool:
    OmegaConf = _omegaconf().OmegaConf
    section, _, leaf = key.rpartition(".")
    node = OmegaConf.select(config, section) if section else config
    return bool(OmegaConf.is_missing(node, leaf))


# ----------------------------------------------------------------------- saving, resuming
def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of a resolved config (a schema instance, or a mapping)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif not isinstance(config, Mapping):  # an OmegaConf DictConfig
        config = _omegaconf().OmegaConf.to_container(config, resolve=True)
    # Through JSON: paths and other objects become text, as config.yaml holds them.
    return json.loads(json.dumps(dict(config), default=str))  # type: ignore[no-any-return]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"env.max_turns": 12, ...} from nested sections; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _ignored(key: str, ignore: Iterable[str]) -> bool:
    return any(key == i or key.startswith(i + ".") for i in ignore)


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = ()
) -> list[str]:
    """`key: old -> new` for each key (dotted) that differs; keys under `ignore` may differ."""
    ignore = tuple(ignore)
    before, after = flatten(old), flatten(new)
    absent = object()
    lines = []
    for key in sorted(set(before) | set(after)):
        if _ignored(key, ignore):
            continue
        a, b = before.get(key, absent), after.get(key, absent)
        if a is absent or b is absent or _canonical(a) != _canonical(b):
            shown_a = "(absent)" if a is absent else repr(a)
            shown_b = "(absent)" if b is absent else repr(b)
            lines.append(f"{key}: {shown_a} -> {shown_b}")
    return lines


def refusal(out_dir: Path, differences: Sequence[str], what: str = "run") -> RunConfigError:
    """The error that refuses to resume `out_dir`, naming every differing key."""
    return RunConfigError(
        f"{out_dir} holds a {what} made with other settings ({'; '.join(differences)}); "
        "use another --out, or delete that folder to start over"
    )


def read_resolved(out_dir: Path) -> dict[str, Any] | None:
    """The `config.yaml` of a run folder as a plain dict; None when there is none."""
    path = Path(out_dir) / CONFIG_YAML
    if not path.is_file():
        return None
    oc = _omegaconf()
    loaded = oc.OmegaConf.to_container(oc.OmegaConf.load(path), resolve=True)
    if not isinstance(loaded, dict):
        raise RunConfigError(f"{path}: expected a mapping of sections")
    return loaded


def check_resume(
    out_dir: str | Path, resolved: Any, ignore: Iterable[str] = (), *, what: str = "run"
) -> None:
    """Refuse a run folder whose `config.yaml` differs from `resolved` (keys in `ignore`,
    or under a section named there, may differ). A folder without one passes: the caller
    decides what a folder made before run configs may hold."""
    old = read_resolved(Path(out_dir))
    if old is None:
        return
    differences = config_differences(old, to_dict(resolved), ignore)
    if differences:
        raise refusal(Path(out_dir), differences, what)


def save_resolved(out_dir: str | Path, resolved: Any) -> Path:
    """Write the resolved config as `config.yaml` in the run folder; its path."""
    oc = _omegaconf()
    path = Path(out_dir) / CONFIG_YAML
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(oc.OmegaConf.to_yaml(oc.OmegaConf.create(to_dict(resolved))))
    return path
