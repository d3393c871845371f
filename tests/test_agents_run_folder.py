"""The run folder both `or-env eval` and `calm curate` write: settings, records, defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.eval import EvalConfig
from agents.records import write_records
from agents.run_folder import (
    EVAL_TIMEOUT_S,
    TRAINING_TIMEOUT_S,
    RunConfig,
    check_resume,
    default_of,
    folder_records,
    interrupted_message,
)
from calm.curate import CurateConfig


def test_check_resume_refuses_other_settings_and_records_ours(tmp_path: Path) -> None:
    check_resume(tmp_path, {"timeout": 30.0, "policy": {"model": "a"}})
    assert json.loads((tmp_path / "run_config.json").read_text())["timeout"] == 30.0
    (tmp_path / "episodes.jsonl").write_text("")
    check_resume(tmp_path, {"policy": {"model": "a"}, "timeout": 30.0})  # same, any order
    with pytest.raises(ValueError, match=r"holds a CALM run made with other settings \(policy"):
        check_resume(tmp_path, {"timeout": 30.0, "policy": {"model": "b"}}, "CALM run")
    with pytest.raises(ValueError, match=r"\(policy\.model: 'a' -> 'b'; timeout: 30\.0 -> 60\.0\)"):
        check_resume(tmp_path, {"timeout": 60.0, "policy": {"model": "b"}})


def test_check_resume_compares_and_saves_the_resolved_run_config(tmp_path: Path) -> None:
    wanted = {"timeout": 30.0}
    resolved = {"env": {"max_turns": 12}, "run": {"out": "a", "concurrency": 4}}
    check_resume(tmp_path, wanted, resolved=resolved)
    assert "max_turns: 12" in (tmp_path / "config.yaml").read_text()
    (tmp_path / "episodes.jsonl").write_text("")
    moved = {"env": {"max_turns": 12}, "run": {"out": "b", "concurrency": 8}}
    check_resume(tmp_path, wanted, resolved=moved)  # run.out and run.concurrency may differ
    with pytest.raises(ValueError, match=r"other settings \(env\.max_turns: 12 -> 8\)"):
        check_resume(tmp_path, wanted, resolved={**moved, "env": {"max_turns": 8}})
    # A folder made before config.yaml existed: its run_config.json decides, then ours is saved.
    (tmp_path / "config.yaml").unlink()
    with pytest.raises(ValueError, match=r"\(timeout: 30\.0 -> 60\.0\)"):
        check_resume(tmp_path, {"timeout": 60.0}, resolved=moved)
    assert not (tmp_path / "config.yaml").exists()
    check_resume(tmp_path, wanted, resolved=moved)
    assert "concurrency: 8" in (tmp_path / "config.yaml").read_text()


def rec(problem_id: str, sample: int = 0, status: str = "ok") -> dict:
    return {"problem_id": problem_id, "sample": sample, "status": status}


def test_folder_records_are_the_plan_then_the_rest_of_the_folder(tmp_path: Path) -> None:
    write_records(
        tmp_path / "episodes.jsonl",
        [rec("a"), rec("b"), rec("c", status="error"), rec("c"), rec("d")],
    )
    planned = [rec("c"), rec("a")]
    ids = [r["problem_id"] for r in folder_records(tmp_path, planned)]
    assert ids == ["c", "a", "b", "d"]
    # The folder's last record of an episode wins (the retried "c").
    assert all(r["status"] == "ok" for r in folder_records(tmp_path))
    assert interrupted_message(tmp_path) == (
        f"interrupted: 4 episodes saved in {tmp_path}, rerun the same command to resume"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("limit", -1, "limit must be 0"),
        ("samples", 0, "samples must be at least 1"),
        ("concurrency", 0, "concurrency must be at least 1"),
        ("timeout", 0.0, "timeout must be positive"),
    ],
)
def test_run_config_refuses_impossible_values(tmp_path: Path, field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        RunConfig(out_dir=tmp_path, **{field: value})


def test_evaluation_and_training_timeouts() -> None:
    assert default_of(EvalConfig, "timeout") == EVAL_TIMEOUT_S == 300.0
    assert default_of(CurateConfig, "timeout") == TRAINING_TIMEOUT_S == 30.0
    shared = ("limit", "samples", "base_seed", "rendering", "tolerance", "max_turns")
    for name in (*shared, "max_executions", "sandbox", "sandbox_workers", "progress"):
        assert default_of(EvalConfig, name) == default_of(CurateConfig, name), name
