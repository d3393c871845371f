"""Confinement mechanisms one by one: iterative cleanup, isolation checks, shared pools.

The attacks themselves, through both backends, are in test_redteam_sandbox.py.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import pytest

from or_env.sandbox import UnisolatedSandboxError, require_isolation, shared_sandbox
from or_env.sandbox.confine import CleanupTimeout, remove_tree, wipe_contents
from or_env.sandbox.local import LocalSandbox, hidden_paths
from or_env.sandbox.worker_client import WorkerProcess, default_worker_argv


def _deep_tree(root: str, depth: int) -> None:
    """A chain of `depth` nested directories (deeper than PATH_MAX allows by name)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
        os.fchmod(fd, 0)  # the deepest directory is unreadable, as a program can leave it
    finally:
        os.close(fd)


def test_remove_tree_handles_depth_unwritable_dirs_and_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive")
    tree = tmp_path / "tree"
    tree.mkdir()
    _deep_tree(str(tree), 5000)
    (tree / "link").symlink_to(outside)
    locked = tree / "locked"
    locked.mkdir()
    (locked / "f").write_text("x")
    locked.chmod(0)
    remove_tree(str(tree), time.monotonic() + 60)
    assert not tree.exists()
    assert (outside / "keep.txt").read_text() == "must survive"


def test_remove_tree_stops_at_its_deadline(tmp_path):
    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(3000):
        (tree / f"f{i}").touch()
    with pytest.raises(CleanupTimeout):
        remove_tree(str(tree), time.monotonic() - 1)
    remove_tree(str(tree))  # and without a deadline it finishes
    assert not tree.exists()


def test_wipe_contents_spares_the_kept_entry(tmp_path):
    for name in ("a", "b", "keep"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    (tmp_path / "file").write_text("x")
    wipe_contents(str(tmp_path), keep=str(tmp_path / "keep"))
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_hidden_paths_cover_ground_truths(monkeypatch, tmp_path):
    monkeypatch.setenv("OR_ENV_DATA_DIR", str(tmp_path))
    paths = hidden_paths()
    assert str(tmp_path) in paths
    assert any(p.endswith(os.path.join("or_env", "data")) for p in paths)
    assert os.path.expanduser("~") in paths


def test_unisolated_local_sandbox_is_refused_for_training(caplog):
    with LocalSandbox(workers=1, namespaces=False, preload=()) as box:
        with (
            caplog.at_level(logging.WARNING, logger="or_env.sandbox.local"),
            pytest.raises(UnisolatedSandboxError, match="allow_unisolated=True"),
        ):
            require_isolation(box)
        assert box.isolation in ("uid", "session")
        assert any("without Linux namespaces" in r.getMessage() for r in caplog.records)
        require_isolation(box, allow_unisolated=True)  # the user's explicit choice


def test_namespaced_local_sandbox_is_accepted_and_reports_its_isolation():
    with LocalSandbox(workers=1, preload=()) as box:
        require_isolation(box)
        assert box.isolation in ("namespaces", "namespaces+uid")
        details = box.isolation_details
        assert details is not None and details["network"] == "none"
        if os.geteuid() == 0:
            assert "memory cgroup" in str(details["memory_limit"])


def test_shared_sandbox_accepts_list_and_mapping_options():
    # What a YAML agent-loop config hands over: lists and mappings, which are unhashable.
    options = {"workers": 1, "preload": ["json"], "extra_env": {"OR_ENV_TEST": "1"}}
    first = shared_sandbox("local", **options)
    assert shared_sandbox("local", **dict(reversed(list(options.items())))) is first
    assert first.run("print(1)").stdout == "1\n"


def test_highs_banner_is_gone_and_mip_solves_after_the_warm_up():
    code = (
        "import pulp\n"
        "m = pulp.LpProblem('m', pulp.LpMaximize)\n"
        "x = pulp.LpVariable('x', 0, 10, cat='Integer')\n"
        "y = pulp.LpVariable('y', cat='Binary')\n"
        "m += 3 * x + 2 * y\n"
        "m += x + y <= 7.5\n"
        "m.solve(pulp.HiGHS(msg=False))\n"
        "print(pulp.value(m.objective))\n"
    )
    with LocalSandbox(workers=1) as box:
        for _ in range(2):  # the second run is forked from the same warm server
            r = box.run(code, timeout=20)
            assert r.ok, r
            assert r.stdout == "21.0\n"
            assert "Running HiGHS" not in r.stdout + r.stderr


def test_solves_run_on_one_thread_and_more_threads_are_an_explicit_choice():
    # HiGHS sizes its scheduler from the CPUs it may run on: without the server's
    # one-thread scheduler every program's first solve starts worker threads that spin.
    solve = (
        "import os, pulp\n"
        "m = pulp.LpProblem('m', pulp.LpMaximize)\n"
        "x = pulp.LpVariable('x', 0, 10, cat='Integer')\n"
        "m += x\n"
        "m += 2 * x <= 7\n"
        "m.solve(pulp.HiGHS(msg=False))\n"
        "print(pulp.value(m.objective), len(os.listdir('/proc/self/task')))\n"
    )
    more = (
        "import highspy\n"
        "{reset}"
        "h = highspy.Highs()\n"
        "h.setOptionValue('threads', 2)\n"
        "h.addVar(0.0, 1.0)\n"
        "h.changeColCost(0, 1.0)\n"
        "print(h.run())\n"
    )
    with LocalSandbox(workers=1) as box:
        r = box.run(solve, timeout=20)
        assert r.stdout == "3.0 1\n", r
        refused = box.run(more.format(reset=""), timeout=20)
        assert "HighsStatus.kError" in refused.stdout
        assert "scheduler has already been initialized to use 1 threads" in refused.stdout
        allowed = box.run(more.format(reset="highspy.Highs.resetGlobalScheduler(True)\n"))
        assert allowed.stdout.strip().endswith("HighsStatus.kOk"), allowed


def _collapse_supported() -> bool:
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 1) and Path("/sys/kernel/mm/transparent_hugepage").is_dir()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _anon_huge_mib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            found = [line for line in f if line.startswith("AnonHugePages:")]
    except ProcessLookupError:  # a program's process, reaped meanwhile
        return 0
    return int(found[0].split()[1]) >> 10


@pytest.mark.skipif(not _collapse_supported(), reason="MADV_COLLAPSE needs Linux >= 6.1 with THP")
def test_programs_are_forked_from_a_heap_on_huge_pages():
    with WorkerProcess(default_worker_argv(namespaces=True)) as worker:  # LocalSandbox's
        assert worker.ready_info["huge_pages_mib"] >= 4  # the heap the imports wrote
        r = worker.run("print(1)", timeout=20, max_output=1000, memory_mb=None)
        assert r.stdout == "1\n" and worker.settle()
        # The forker below the server, which programs are cloned from, was made after the
        # collapse: what its own writes have not split since is still on huge pages.
        (server,) = _children(worker.pid)
        assert max(_anon_huge_mib(pid) for pid in _children(server)) >= 2


def test_the_agent_loop_configs_sandbox_options_reach_a_shared_sandbox():
    # The verl agent loop hands `sandbox_options` from its YAML straight to shared_sandbox;
    # a list or a mapping there used to raise TypeError (an unhashable cache key).
    import yaml

    config = Path(__file__).resolve().parents[1] / "recipes/verl/config/agent_loop.yaml"
    (entry,) = [e for e in yaml.safe_load(config.read_text()) if e["name"] == "or_env"]
    options = dict(entry["sandbox_options"], workers=1)
    options.update(preload=["json", "pulp"], extra_env={"OR_ENV_TEST_FLAG": "yes"})
    box = shared_sandbox("local", **options)
    assert shared_sandbox("local", **options) is box
    assert box.preload == ("json", "pulp")
    assert box.run("print(1)").stdout == "1\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to take another uid for the test")
def test_remove_tree_as_the_owner_of_unwritable_nested_directories():
    # What cleanup meets without root's privileges: read-only and unreadable directories
    # that the program (the same uid) left, nested. (pytest's tmp_path is root-only.)
    root = Path(tempfile.mkdtemp(prefix="or-env-rmtree-"))
    root.chmod(0o755)
    os.chown(root, 65534, 65534)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            os.setgid(65534)
            os.setuid(65534)
            tree = root / "tree"
            (tree / "a" / "b" / "c").mkdir(parents=True)
            (tree / "a" / "b" / "c" / "f").write_text("x")
            os.chmod(tree / "a" / "b" / "c", 0)
            os.chmod(tree / "a" / "b", 0o500)
            os.chmod(tree / "a", 0o500)
            remove_tree(str(tree), time.monotonic() + 30)
            os._exit(0 if not tree.exists() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    remove_tree(str(root))
    assert os.waitstatus_to_exitcode(status) == 0
