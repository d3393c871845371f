"""The local sandbox's own machinery: the worker client, worker modes, pool lifecycle.

What every backend must do (the program contract, limits, and containment of attacks)
is tested once for all backends in test_redteam_sandbox.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.redteam import comm_marker, kill_named, new_token, processes_named, wait_until

from or_env.sandbox.local import LocalSandbox, clean_after_worker
from or_env.sandbox.worker import Capture
from or_env.sandbox.worker_client import (
    WorkerError,
    WorkerProcess,
    default_worker_argv,
    worker_environment,
    worker_flags,
)

SECRET_NAME = "OR_ENV_TEST_SECRET_TOKEN"
SECRET_VALUE = "s3cr3t-value-that-must-not-leak"
IS_ROOT = os.geteuid() == 0

DAEMON = """
import os, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        time.sleep(600)  # keeps the inherited stdout/stderr open on purpose
        os._exit(0)
    os._exit(0)
os.close(w)
print(os.getuid(), os.read(r, 100).decode())
"""


def _gone(pid: int, wait: float = 5.0) -> bool:
    """Whether `pid` is gone (or a zombie) within `wait` s: the worker answers first and
    kills what a program left right after."""
    limit = time.monotonic() + wait
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1][0] == "Z":
                    return True
        except OSError:
            return True
        if time.monotonic() > limit:
            return False
        time.sleep(0.01)


@pytest.fixture(scope="module")
def sandbox():
    with LocalSandbox(workers=2, timeout=10, preload=("numpy", "pulp")) as box:
        box.start()
        yield box


# ----------------------------------------------------------------------------- output capture


@pytest.mark.parametrize(
    ("cap", "data", "text", "cut"),
    [
        (10, b"short", "short", False),
        (10, b"0123456789", "0123456789", False),
        (4, b"abcdefgh", "ab\n... [4 bytes truncated] ...\ngh", True),
        # a multi-byte character split at either edge is dropped, not garbled
        (6, "aé€€€€bc".encode(), "aé\n... [12 bytes truncated] ...\nbc", True),
        (0, b"abc", "\n... [3 bytes truncated] ...\n", True),
    ],
)
def test_capture_head_tail(cap, data, text, cut):
    capture = Capture(cap)
    for i in range(0, len(data), 3):  # arrives in pieces, as from a pipe
        capture.add(data[i : i + 3])
    assert capture.text() == (text, cut)


# ----------------------------------------------------------------------------- pool lifecycle


def test_dead_workers_are_replaced(sandbox):
    pids = sandbox.worker_pids()
    for pid in pids:
        os.kill(pid, 9)
    deadline = time.monotonic() + 5
    while not all(_gone(pid, 0) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    results = [sandbox.run("print(5)") for _ in range(3)]
    assert all(r.ok and r.stdout == "5\n" for r in results)


def test_close_leaves_no_processes():
    box = LocalSandbox(workers=2, preload=())
    box.start()
    marker = comm_marker(new_token())
    # A sleeper plus a daemon of its own, which the worker's death alone would not end;
    # both carry `marker` as their process name, so the host can find them whatever
    # namespaces and uids the sandbox uses.
    busy_code = f"open('/proc/self/comm', 'w').write({marker!r})\n" + DAEMON + "time.sleep(60)\n"
    try:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(box.run, busy_code, timeout=120)
            assert wait_until(lambda: len(processes_named(marker)) >= 2, 15)
            pids = box.worker_pids()
            assert len(pids) == 2
            box.close()  # one worker is idle, the other is running the sleeper
            r = busy.result(timeout=30)
        survived = not wait_until(lambda: not processes_named(marker), 5)
    finally:
        kill_named(marker)
    assert r.sandbox_error is not None
    assert all(_gone(pid) for pid in pids)
    assert not survived, "a process of the program outlived close()"
    with pytest.raises(RuntimeError, match="closed"):
        box.run("print(1)")


# ----------------------------------------------------------------------------- worker client


def _fake_worker(body: str) -> list[str]:
    prelude = textwrap.dedent(
        """
        import json, struct, sys, time
        out = sys.stdout.buffer
        def send(o):
            b = json.dumps(o).encode()
            out.write(struct.pack(">I", len(b)) + b)
            out.flush()
        """
    )
    return [sys.executable, "-c", prelude + textwrap.dedent(body)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("time.sleep(30)", "did not manage"),
        ("out.write(b'garbage!'); out.flush(); time.sleep(30)", "garbled"),
        ("sys.exit(5)", "exit status 5"),
        ("send({'hello': 1}); time.sleep(30)", "instead of its ready frame"),
    ],
)
def test_worker_start_failures_are_bounded(body, message):
    worker = WorkerProcess(_fake_worker(body), start_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(WorkerError, match=message):
        worker.start()
    assert time.monotonic() - t0 < 5
    assert worker.pid is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("send({'ready': True})\nsys.stdin.buffer.read(4)\nsys.exit(0)", "exited unexpectedly"),
        ("send({'ready': True})\ntime.sleep(30)", "did not manage"),
        (
            "send({'ready': True})\nsys.stdin.buffer.read(4)\nout.write(b'\\xff' * 8); out.flush()",
            "garbled",
        ),
    ],
)
def test_worker_failures_become_sandbox_errors(body, message):
    worker = WorkerProcess(_fake_worker(body), reply_margin=1.0)
    worker.start()
    t0 = time.monotonic()
    r = worker.run("print(1)", timeout=0.5, max_output=100, memory_mb=None)
    assert time.monotonic() - t0 < 5
    assert r.sandbox_error is not None and message in r.sandbox_error
    assert r.exit_code is None and not worker.alive
    # A broken worker refuses further work until restarted.
    assert worker.run("print(1)", timeout=0.5, max_output=100, memory_mb=None).sandbox_error
    worker.stop()


def test_worker_restart_and_ping():
    with WorkerProcess(default_worker_argv(preload=())) as worker:
        assert worker.ping()
        first = worker.pid
        worker.stop()
        info = worker.start()
        assert info["ready"] and worker.pid != first and worker.ping()


def test_worker_flags_round_trip(monkeypatch):
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    flags = worker_flags(
        preload=("numpy", "pulp"), reap_all=True, nproc=64, wipe=("/tmp",), env={"A": "1"}
    )
    assert flags == [
        "--preload",
        "numpy,pulp",
        "--reap-all",
        "--nproc",
        "64",
        "--wipe",
        "/tmp",
        "--env",
        "A=1",
    ]
    assert SECRET_NAME not in worker_environment()


@pytest.mark.skipif(not IS_ROOT or shutil.which("unshare") is None, reason="needs root and unshare")
@pytest.mark.parametrize("drop", [True, False], ids=["uid", "same-uid"])
def test_pid1_reap_all_mode(drop):
    """The container layout: the worker is PID 1 of its own PID namespace (--reap-all)."""
    flags = default_worker_argv(preload=(), reap_all=True, no_drop_privileges=not drop)
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *flags]
    with WorkerProcess(argv, on_stop=clean_after_worker) as worker:
        assert worker.ready_info is not None
        assert worker.ready_info["pid"] == 1 and worker.ready_info["reap_all"]
        attack = textwrap.dedent(
            """
            import os, signal
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL, signal.SIGSTOP):
                try:
                    os.kill(1, sig)
                except OSError as exc:
                    print(type(exc).__name__)
            print("sent")
            """
        )
        r = worker.run(attack, timeout=5, max_output=1000, memory_mb=None)
        assert r.stdout.endswith("sent\n") and r.sandbox_error is None
        r = worker.run(DAEMON, timeout=5, max_output=1000, memory_mb=None)
        assert r.exit_code == 0 and not r.timed_out
        code = "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))"
        r = worker.run(code, timeout=5, max_output=1000, memory_mb=None)
        # Only the server, its forker, this program and (with a uid to drop to) the next
        # execution's process, made while this one runs: the daemon is gone.
        assert r.stdout == "3\n" or (drop and r.stdout == "4\n"), r.stdout


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_non_root_worker_cleans_up_by_session():
    """The fallback used when the worker is not root: no uid drop, descendants are tracked."""
    argv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        *default_worker_argv(preload=()),
    ]
    probe = subprocess.run(
        [*argv[:4], sys.executable, "-c", "pass"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("the interpreter is not usable by an unprivileged user here")
    with WorkerProcess(argv, on_stop=clean_after_worker) as worker:
        assert worker.ready_info is not None and worker.ready_info["isolation"] == "session"
        r = worker.run(DAEMON, timeout=10, max_output=1000, memory_mb=512)
        assert r.exit_code == 0, r.stderr
        assert _gone(int(r.stdout.split()[1]))
        r = worker.run(
            "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
            timeout=5,
            max_output=1000,
            memory_mb=512,
        )
        assert r.sandbox_error is not None and "signal 9" in r.sandbox_error
        scratch = worker.ready_info["scratch_root"]
        worker.stop()
        worker.start()
        assert not os.path.exists(scratch)  # the killed worker's scratch root was removed
        assert worker.run("print(3)", timeout=5, max_output=100, memory_mb=None).stdout == "3\n"


@pytest.mark.parametrize("slow_first", [True, False], ids=["busy-oldest", "busy-newest"])
def test_the_pool_hands_out_a_worker_that_has_cleaned_up_before_one_still_busy(slow_first):
    from or_env.sandbox.pool import WorkerPool

    def start(index: int) -> WorkerProcess:
        worker = WorkerProcess(default_worker_argv(preload=(), namespaces=True))
        worker.start()
        return worker

    pool = WorkerPool(2, start)
    # Touching 1 GiB makes the program's exit (the unmapping) take tens of ms, and the
    # worker answers before that exit, then cleans up.
    big = "x = bytearray(1 << 30)\nx[::4096] = b'1' * (len(x) // 4096)\nprint('done')\n"
    try:
        for _ in range(3):  # a descheduled test can find the cleanup over: try again
            slow, ready = pool.checkout(), pool.checkout()
            assert slow.run(big, timeout=60, max_output=100, memory_mb=None).stdout == "done\n"
            # Neither the oldest nor the newest idle worker is the right pick by position.
            for worker in (slow, ready) if slow_first else (ready, slow):
                pool.checkin(worker, healthy=True)
            if slow.settling:
                assert pool.checkout() is ready
                assert slow.settle() and not slow.settling
                return
        pytest.fail("the worker's cleanup after touching 1 GiB was over before it was checked")
    finally:
        pool.close()
