"""The local sandbox with real worker processes: behaviour, limits and containment."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

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

LP = """
import pulp
m = pulp.LpProblem("t", pulp.LpMaximize)
x = pulp.LpVariable("x", lowBound=0)
y = pulp.LpVariable("y", lowBound=0)
m += 3 * x + 2 * y
m += x + y <= 4
m += x + 3 * y <= 6
m += x <= 3
m.solve(pulp.{solver}(msg=0))
print(pulp.LpStatus[m.status], pulp.value(m.objective))
"""

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


def _pids_of_uid(uid: int) -> list[int]:
    """Live (non-zombie) processes of `uid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if str(uid) in fields.get("Uid", "").split() and not fields["State"].strip().startswith(
            "Z"
        ):
            found.append(int(name))
    return found


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def sandbox():
    os.environ[SECRET_NAME] = SECRET_VALUE
    try:
        box = LocalSandbox(
            workers=2, timeout=10, preload=("numpy", "numpy.random", "pulp", "highspy")
        )
        box.start()
        yield box
        box.close()
    finally:
        os.environ.pop(SECRET_NAME, None)


# ----------------------------------------------------------------------------- programs


def test_print_and_clean_result(sandbox):
    r = sandbox.run("print('hello')")
    assert (r.stdout, r.stderr, r.exit_code, r.ok) == ("hello\n", "", 0, True)
    assert 0 < r.wall_s < 5


def test_stderr_and_nonzero_exit(sandbox):
    r = sandbox.run("import sys\nprint('out')\nprint('bad thing', file=sys.stderr)\nsys.exit(3)")
    assert r.stdout == "out\n"
    assert r.stderr == "bad thing\n"
    assert r.exit_code == 3 and not r.ok and r.sandbox_error is None


@pytest.mark.parametrize(
    ("code", "exit_code", "stderr_part"),
    [
        ("import sys; sys.exit(3)", 3, ""),
        ("import sys; sys.exit()", 0, ""),
        ("raise SystemExit(0)", 0, ""),
        ("import sys; sys.exit('fatal: no model')", 1, "fatal: no model"),
        ("import os; os._exit(7)", 7, ""),
        ("exit(4)", 4, ""),
        ("raise ValueError('boom')", 1, "ValueError: boom"),
    ],
)
def test_exit_statuses(sandbox, code, exit_code, stderr_part):
    r = sandbox.run(code)
    assert r.exit_code == exit_code
    assert stderr_part in r.stderr


def test_syntax_error_looks_like_python(sandbox):
    r = sandbox.run("x = (1,\nprint(x)")
    assert r.exit_code == 1
    assert 'File "main.py", line 1' in r.stderr
    assert "SyntaxError" in r.stderr
    assert "worker.py" not in r.stderr


def test_traceback_starts_in_the_program(sandbox):
    r = sandbox.run("def f():\n    return 1 / 0\n\nf()\n")
    assert r.stderr.startswith('Traceback (most recent call last):\n  File "main.py", line 4')
    assert "ZeroDivisionError" in r.stderr
    assert "worker.py" not in r.stderr


def test_main_guard_runs(sandbox):
    r = sandbox.run(
        "def main():\n    print('in main', __name__)\n\nif __name__ == '__main__':\n    main()"
    )
    assert r.stdout == "in main __main__\n"


def test_threads_atexit_stdin_and_logging_behave_like_a_script(sandbox):
    code = textwrap.dedent(
        """
        import atexit, logging, threading, time
        atexit.register(lambda: print("atexit ran"))
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        logging.info("logged")
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread done"))).start()
        try:
            input()
        except EOFError:
            print("stdin is empty")
        """
    )
    r = sandbox.run(code)
    assert r.stdout == "stdin is empty\nthread done\natexit ran\n"
    assert r.stderr == "INFO logged\n"


@pytest.mark.parametrize("solver", ["PULP_CBC_CMD", "HiGHS"])
def test_pulp_lp_solves(sandbox, solver):
    r = sandbox.run(LP.format(solver=solver))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip().endswith("Optimal 11.0")


def test_stdlib_and_lazy_imports_work(sandbox):
    r = sandbox.run("import fractions, statistics, decimal\nprint(fractions.Fraction(1, 3))")
    assert (r.stdout, r.exit_code) == ("1/3\n", 0), r.stderr


def test_rng_differs_between_executions(sandbox):
    code = "import random\nimport numpy as np\nprint(np.random.rand(), random.random())"
    outputs = {sandbox.run(code).stdout for _ in range(4)}
    assert len(outputs) == 4


# ----------------------------------------------------------------------------- output


def test_output_keeps_head_and_tail(sandbox):
    r = sandbox.run("import sys\nsys.stdout.write('A' * 20000 + 'MIDDLE' + 'B' * 20000)")
    assert r.truncated and r.exit_code == 0
    assert r.stdout.startswith("A" * 100) and r.stdout.endswith("B" * 100)
    assert "MIDDLE" not in r.stdout
    assert "bytes truncated] ..." in r.stdout
    assert len(r.stdout) < sandbox.max_output_chars + 100


def test_output_flood_is_killed_early(sandbox):
    t0 = time.monotonic()
    r = sandbox.run("while True:\n    print('x')", timeout=30)
    assert time.monotonic() - t0 < 15
    assert not r.timed_out and r.truncated
    assert "output limit exceeded" in r.stderr
    assert r.sandbox_error is None


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


# ----------------------------------------------------------------------------- limits


def test_infinite_loop_times_out_and_keeps_earlier_output(sandbox):
    t0 = time.monotonic()
    r = sandbox.run("print('started')\nwhile True:\n    pass", timeout=1.0)
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.exit_code == -9
    assert r.stdout == "started\n"
    assert 1.0 <= r.wall_s < 2.0 and elapsed < 2.5


def test_sleep_ignoring_sigterm_is_killed(sandbox):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(100)"
    t0 = time.monotonic()
    r = sandbox.run(code, timeout=1.0)
    assert r.timed_out and time.monotonic() - t0 < 2.5


def test_memory_bomb_gets_memory_error(sandbox):
    r = sandbox.run("x = bytearray(10 * 1024 ** 3)")
    assert r.exit_code == 1
    assert "MemoryError" in r.stderr
    assert sandbox.run("print('still fine')").stdout == "still fine\n"


def test_big_file_hits_fsize_limit(sandbox):
    r = sandbox.run(
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(200):\n"
        "        f.write(b'x' * (1 << 20))"
    )
    assert r.exit_code == 1
    assert "File too large" in r.stderr


def test_fork_bomb_is_contained(sandbox):
    code = textwrap.dedent(
        """
        import os
        print(os.getuid(), flush=True)
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    )
    r = sandbox.run(code, timeout=2.0)
    assert r.timed_out
    uid = int(r.stdout.split()[0])
    for _ in range(4):  # both workers answer quickly and cleanly afterwards
        t0 = time.monotonic()
        after = sandbox.run("print('ok')")
        assert after.ok and after.stdout == "ok\n" and time.monotonic() - t0 < 1.0
    if IS_ROOT:
        assert _pids_of_uid(uid) == []


# ----------------------------------------------------------------------------- containment


def test_double_fork_daemon_is_killed(sandbox):
    t0 = time.monotonic()
    r = sandbox.run(DAEMON, timeout=10)
    # The daemon holds stdout open, yet the call returns when the program itself ends.
    assert time.monotonic() - t0 < 5 and not r.timed_out
    uid, pid = (int(v) for v in r.stdout.split())
    assert _gone(pid)
    if IS_ROOT:
        assert _pids_of_uid(uid) == []


def test_program_closing_its_fds_is_harmless(sandbox):
    r = sandbox.run("import os, time\nos.closerange(0, 1024)\ntime.sleep(0.2)\nos._exit(0)")
    assert (r.stdout, r.stderr, r.exit_code, r.sandbox_error) == ("", "", 0, None)
    assert sandbox.run("print('after')").stdout == "after\n"


def test_killing_the_worker_does_not_break_the_pool(sandbox):
    r = sandbox.run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
    # As root the program cannot signal its worker; otherwise the worker dies and says so.
    assert "PermissionError" in r.stderr or r.sandbox_error
    for _ in range(4):
        assert sandbox.run("print(2)").stdout == "2\n"


def test_dead_workers_are_replaced(sandbox):
    pids = sandbox.worker_pids()
    for pid in pids:
        os.kill(pid, 9)
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    results = [sandbox.run("print(5)") for _ in range(3)]
    assert all(r.ok and r.stdout == "5\n" for r in results)


def test_scratch_files_do_not_carry_over(sandbox):
    code = "import os\nprint(sorted(os.listdir('.')))\nopen('left.txt', 'w').write('x')"
    for _ in range(4):  # lands on both workers, each time in an empty directory
        assert sandbox.run(code).stdout == "['main.py']\n"


def test_environment_is_scrubbed(sandbox):
    code = textwrap.dedent(
        f"""
        import os
        print(sorted(os.environ))
        print({SECRET_NAME!r} in os.environ)
        try:
            print(open(f"/proc/{{os.getppid()}}/environ", "rb").read())
        except OSError as exc:
            print("unreadable", type(exc).__name__)
        """
    )
    r = sandbox.run(code)
    assert r.exit_code == 0, r.stderr
    assert SECRET_VALUE not in r.stdout + r.stderr
    assert "False" in r.stdout and "OPENBLAS_NUM_THREADS" in r.stdout


# ----------------------------------------------------------------------------- concurrency


def test_concurrent_runs_from_threads(sandbox):
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: sandbox.run(f"print({i} * {i})"), range(12)))
    assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(12)]


def test_concurrent_arun_does_not_block_the_loop(sandbox):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        slow = await sandbox.arun("import time\ntime.sleep(0.5)\nprint('slept')")
        many = await asyncio.gather(*(sandbox.arun(f"print({i})") for i in range(8)))
        task.cancel()
        return ticks, slow, many

    ticks, slow, many = asyncio.run(main())
    assert slow.stdout == "slept\n"
    assert [r.stdout for r in many] == [f"{i}\n" for i in range(8)]
    assert ticks >= 20  # the loop kept ticking while the program slept


def test_close_leaves_no_processes():
    box = LocalSandbox(workers=2, preload=())
    box.start()
    uids = {int(box.run("import os; print(os.getuid())").stdout) for _ in range(4)}
    flag_dir = tempfile.mkdtemp()
    os.chmod(flag_dir, 0o777)  # reachable by the sandbox uid
    flag = os.path.join(flag_dir, "running")
    # A sleeper plus a daemon of its own, which the worker's death alone would not end.
    busy_code = DAEMON + f"open({flag!r}, 'w').close()\ntime.sleep(60)\n"
    try:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(box.run, busy_code, timeout=120)
            deadline = time.monotonic() + 10
            while not os.path.exists(flag) and time.monotonic() < deadline:
                time.sleep(0.01)
            pids = box.worker_pids()
            assert len(pids) == 2 and os.path.exists(flag)
            box.close()  # one worker is idle, the other is running the sleeper
            r = busy.result(timeout=30)
    finally:
        shutil.rmtree(flag_dir)
    assert r.sandbox_error is not None
    assert all(_gone(pid) for pid in pids)
    if IS_ROOT:
        assert all(_pids_of_uid(uid) == [] for uid in uids)
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
        info = worker.restart()
        assert info["ready"] and worker.pid != first and worker.ping()


def test_worker_flags_round_trip():
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
        assert r.stdout == "2\n"  # only the server and this program: the daemon is gone


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
        worker.restart()
        assert not os.path.exists(scratch)  # the killed worker's scratch root was removed
        assert worker.run("print(3)", timeout=5, max_output=100, memory_mb=None).stdout == "3\n"
