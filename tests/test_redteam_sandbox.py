"""Red-team suite: what a policy's programs can do to each sandbox backend, and the contract.

Every test is written as an attacker policy would: programs it could emit, judged by what
the next program can observe and by what the host sees. One copy per attack, run against
every backend and mode (`backend` fixture):

    docker              DockerSandbox (skips with the reason when Docker or the image is
                        unusable; CI sets OR_ENV_REQUIRE_DOCKER=1, then that fails)
    local               LocalSandbox from this process: uid isolation when run as root
    local-unprivileged  LocalSandbox inside support/unprivileged_driver.py, run as uid
                        65534 with an API key in its environment (needs root to set up)

Each attack is marked `redteam(category)`; `--isolation-report=PATH.md` writes the table
of what each backend and mode isolates (see conftest.py). Tests without the marker are
the plain contract (output, exit codes, imports), checked on every backend too.

Programs get their parameters as JSON (`program()`), print JSON results, and name what
they leave with a per-test token, so the host can clean up after a backend that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import site
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.redteam import (
    DRIVER_SECRET_NAME,
    DRIVER_SECRET_VALUE,
    OTHER_UID,
    REPO_ROOT,
    SECRET_NAME,
    SECRET_VALUE,
    SHARED_WRITABLE,
    DriverSandbox,
    arch_syscalls,
    comm_marker,
    docker_unusable_reason,
    files_seen_by,
    ipc_keys,
    kill_named,
    kill_workers,
    make_box,
    make_unprivileged_host,
    mqueue_names,
    new_token,
    processes_named,
    remove_host_ipc,
    remove_host_leftovers,
    remove_trees,
    scratch_roots,
    secret_holder_pid,
    wait_until,
    worker_identity,
)

import or_env
from or_env.sandbox.base import ExecResult

IS_ROOT = os.geteuid() == 0
# Slack a backend keeps above `memory_mb` for the worker itself: docker's
# container_memory_mb - memory_mb in these tests, the local memory cgroup's margin.
MEMORY_MARGIN_MB = 512

BACKEND_PARAMS = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("local", id="local"),
    pytest.param("local-unprivileged", id="local-unprivileged"),
]
LOCAL_PARAMS = [p for p in BACKEND_PARAMS if p.id != "docker"]

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


def program(body: str, **params: object) -> str:
    """A program with `P` bound to `params` (passed as JSON, so any value is safe)."""
    header = f"import json as _json\nP = _json.loads({json.dumps(json.dumps(params))})\n"
    return header + textwrap.dedent(body)


def results(r: ExecResult) -> dict:
    """The JSON objects a program printed (one per line), merged."""
    merged: dict = {}
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                merged.update(json.loads(line))
    return merged


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def host_secrets():
    """Secrets and ground truths on the host, in place before any sandbox starts."""
    data_dir = tempfile.mkdtemp(prefix="or-env-redteam-data-")
    os.chmod(data_dir, 0o755)  # benchmark folders are usually world-readable
    answers = Path(data_dir) / "answers.jsonl"
    answers.write_text(json.dumps({"id": "x", "answer": f"ground-truth-{new_token()}"}) + "\n")
    answers.chmod(0o644)
    saved = {k: os.environ.get(k) for k in (SECRET_NAME, "OR_ENV_DATA_DIR")}
    real_data_dir = saved["OR_ENV_DATA_DIR"]
    os.environ[SECRET_NAME] = SECRET_VALUE
    if not real_data_dir:
        os.environ["OR_ENV_DATA_DIR"] = data_dir
    try:
        yield {"data_dir": data_dir, "answers": str(answers), "real_data_dir": real_data_dir}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def unprivileged_host(host_secrets):
    """A venv and home owned by uid 65534, for the local-unprivileged driver (lazily)."""
    made = []

    def get():
        if not made:
            env = {DRIVER_SECRET_NAME: DRIVER_SECRET_VALUE}
            for key in ("OR_ENV_DATA_DIR", "PYTHONPATH"):
                if os.environ.get(key):
                    env[key] = os.environ[key]
            try:
                made.append(make_unprivileged_host(env))
            except RuntimeError as exc:
                made.append(str(exc))
        if isinstance(made[0], str):
            pytest.skip(f"local-unprivileged mode unavailable: {made[0]}")
        return made[0]

    yield get
    if made and not isinstance(made[0], str):
        made[0].remove()


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def backend(request, host_secrets, unprivileged_host):
    """The backend name, once it is known to be usable here (else the test skips)."""
    name = request.param
    if name == "docker":
        why = docker_unusable_reason()
        if why:
            pytest.skip(f"Docker sandbox unusable: {why}")
    elif name == "local-unprivileged":
        if not IS_ROOT:
            pytest.skip("the 'local' backend already runs unprivileged here")
        unprivileged_host()
    return name


@pytest.fixture(scope="module")
def box(backend, unprivileged_host):
    """One warm sandbox per backend, shared by the tests that do not break it."""
    host = unprivileged_host() if backend == "local-unprivileged" else None
    sandbox = make_box(backend, host, workers=1, timeout=10)
    yield sandbox
    sandbox.close()


@pytest.fixture
def fresh(backend, unprivileged_host):
    """Factory of new sandboxes (closed after the test), for attacks that poison one."""
    made = []

    def make(**options):
        host = unprivileged_host() if backend == "local-unprivileged" else None
        sandbox = make_box(backend, host, **options)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.close()


@pytest.fixture
def token():
    """A name for what one test's programs leave; the host removes it all afterwards."""
    value = new_token()
    yield value
    kill_named(comm_marker(value))
    remove_host_leftovers(value)
    if IS_ROOT:
        remove_host_ipc(value)


def host_site_packages(sandbox) -> list[str]:
    if isinstance(sandbox, DriverSandbox):
        return [sandbox.host.site_packages]
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def host_home(sandbox) -> str:
    return sandbox.host.home if isinstance(sandbox, DriverSandbox) else os.path.expanduser("~")


# ============================================================================ contract


def test_print_and_clean_result(box):
    r = box.run("print('hello')")
    assert (r.stdout, r.stderr, r.exit_code, r.ok) == ("hello\n", "", 0, True)
    assert 0 < r.wall_s < 5


def test_stderr_and_nonzero_exit(box):
    r = box.run("import sys\nprint('out')\nprint('bad thing', file=sys.stderr)\nsys.exit(3)")
    assert (r.stdout, r.stderr) == ("out\n", "bad thing\n")
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
def test_exit_statuses(box, code, exit_code, stderr_part):
    r = box.run(code)
    assert r.exit_code == exit_code, r
    assert stderr_part in r.stderr


def test_syntax_error_looks_like_python(box):
    r = box.run("x = (1,\nprint(x)")
    assert r.exit_code == 1
    assert 'File "main.py", line 1' in r.stderr and "SyntaxError" in r.stderr
    assert "worker.py" not in r.stderr


def test_traceback_starts_in_the_program(box):
    r = box.run("def f():\n    return 1 / 0\n\nf()\n")
    assert r.stderr.startswith('Traceback (most recent call last):\n  File "main.py", line 4')
    assert "ZeroDivisionError" in r.stderr and "worker.py" not in r.stderr


def test_main_guard_runs(box):
    r = box.run(
        "def main():\n    print('in main', __name__)\n\nif __name__ == '__main__':\n    main()"
    )
    assert r.stdout == "in main __main__\n"


def test_threads_atexit_stdin_and_logging_behave_like_a_script(box):
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
    r = box.run(code)
    assert r.stdout == "stdin is empty\nthread done\natexit ran\n", r
    assert r.stderr == "INFO logged\n"


@pytest.mark.parametrize("solver", ["PULP_CBC_CMD", "HiGHS"])
def test_pulp_lp_solves(box, solver):
    r = box.run(LP.format(solver=solver))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip().endswith("Optimal 11.0")


def expected_imports(backend: str) -> list[str]:
    """Preloaded, stdlib and lazily imported modules a program must be able to import."""
    wanted = ["json", "fractions", "numpy", "pulp", "highspy", "numpy.lib.recfunctions"]
    wanted += ["scipy", "scipy.optimize", "scipy.sparse.linalg"]
    if backend == "docker":
        return wanted  # the image carries all of them
    # Locally: whatever this host's interpreter has (scipy is optional here).
    return [m for m in wanted if importlib.util.find_spec(m.split(".")[0]) is not None]


IMPORTS = """
import importlib, json
out = {}
for name in P["modules"]:
    try:
        importlib.import_module(name)
        out[name] = "ok"
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"imports": out}))
"""


def test_preloaded_and_lazy_imports_work(box, backend):
    modules = expected_imports(backend)
    r = box.run(program(IMPORTS, modules=modules), timeout=30)
    assert r.exit_code == 0, r
    assert results(r)["imports"] == dict.fromkeys(modules, "ok")


def test_rng_differs_between_executions(box):
    code = "import random\nimport numpy as np\nprint(np.random.rand(), random.random())"
    draws = [box.run(code).stdout.split() for _ in range(4)]
    assert len({numpy_draw for numpy_draw, _ in draws}) == 4  # each generator on its own
    assert len({python_draw for _, python_draw in draws}) == 4


def test_programs_start_with_the_signal_handlers_of_any_script(box):
    # The worker sets its own (none for SIGINT as PID 1, one for SIGTERM otherwise).
    code = (
        "import signal\n"
        "print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,"
        " signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
    )
    assert box.run(code).stdout == "True True\n"


def test_output_keeps_head_and_tail(box):
    r = box.run("import sys\nsys.stdout.write('A' * 20000 + 'MIDDLE' + 'B' * 20000)")
    assert r.truncated and r.exit_code == 0
    assert r.stdout.startswith("A" * 100) and r.stdout.endswith("B" * 100)
    assert "MIDDLE" not in r.stdout and "bytes truncated] ..." in r.stdout
    assert len(r.stdout) < box.max_output_chars + 100


def test_program_closing_its_fds_is_harmless(box):
    r = box.run("import os, time\nos.closerange(0, 1024)\ntime.sleep(0.2)\nos._exit(0)")
    assert (r.stdout, r.stderr, r.exit_code, r.sandbox_error) == ("", "", 0, None)
    assert box.run("print('after')").stdout == "after\n"


def test_concurrent_runs_from_threads(box):
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda i: box.run(f"print({i} * {i})"), range(8)))
    assert [r.stdout for r in done] == [f"{i * i}\n" for i in range(8)]


def test_arun_does_not_block_the_event_loop(box):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        slow = await box.arun("import time\ntime.sleep(0.5)\nprint('slept')")
        many = await asyncio.gather(*(box.arun(f"print({i})") for i in range(4)))
        task.cancel()
        return ticks, slow, many

    ticks, slow, many = asyncio.run(main())
    assert slow.stdout == "slept\n"
    assert [r.stdout for r in many] == [f"{i}\n" for i in range(4)]
    assert ticks >= 20  # the loop kept ticking while the program slept


# ============================================================================ time


@pytest.mark.redteam("time")
def test_infinite_loop_is_killed_at_its_deadline(box):
    t0 = time.monotonic()
    r = box.run("print('started')\nwhile True:\n    pass", timeout=1.0)
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.exit_code == -9 and r.stdout == "started\n", r
    assert 1.0 <= r.wall_s < 1.5 and elapsed < 2.5
    assert box.run("print('next')").stdout == "next\n"


@pytest.mark.redteam("time")
@pytest.mark.parametrize(
    "code",
    [
        "import time\ntime.sleep(1000)",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(1000)",
    ],
    ids=["sleep", "sigterm-ignored"],
)
def test_sleepers_are_killed_at_the_deadline(box, code):
    t0 = time.monotonic()
    r = box.run(code, timeout=1.0)
    assert r.timed_out and r.exit_code == -9 and time.monotonic() - t0 < 2.5, r
    assert box.run("print('next')").stdout == "next\n"


@pytest.mark.redteam("time")
def test_output_flood_is_cut_short(box):
    # 100 MiB in 1 KiB lines, far more than any observation can hold.
    code = "import sys\nfor _ in range(102400):\n    sys.stdout.write('x' * 1023 + '\\n')"
    t0 = time.monotonic()
    r = box.run(code, timeout=30)
    assert time.monotonic() - t0 < 5
    assert r.truncated and "output limit exceeded" in r.stderr, r.stderr[-300:]
    assert len(r.stdout) < box.max_output_chars + 100 and r.sandbox_error is None
    assert box.run("print('quiet')").stdout == "quiet\n"


MANY_ENTRIES = """
import os, time
n = 0
try:
    while n < P["max_entries"]:
        if P["kind"] == "files":
            os.close(os.open(f"f{n}", os.O_CREAT | os.O_WRONLY, 0o600))
        else:  # an empty directory costs more to remove than to make
            os.mkdir(f"d{n}")
        n += 1
        if n % 10000 == 0:
            print(n, flush=True)
except OSError as exc:  # out of inodes or space: keep what was made, wait for the kill
    print("stopped", exc.strerror, flush=True)
print(n, flush=True)
time.sleep(600)
"""


@pytest.mark.redteam("time")
@pytest.mark.parametrize("kind", ["files", "dirs"])
def test_many_entries_do_not_overrun_the_deadline(fresh, kind):
    """Cleaning up what a program made (250k empty files or directories at most, as many
    as it can make before its deadline) must not make the step overrun its timeout."""
    box = fresh(workers=1, timeout=10)
    limit = 3.0
    t0 = time.monotonic()
    r = box.run(program(MANY_ENTRIES, kind=kind, max_entries=250_000), timeout=limit)
    elapsed = time.monotonic() - t0
    made = max([int(n) for n in r.stdout.split() if n.isdigit()] or [0])
    assert r.timed_out, r
    assert elapsed < limit + 1.5, (
        f"the call took {elapsed:.1f} s for a {limit} s timeout ({made} {kind}; {r})"
    )
    t0 = time.monotonic()
    after = box.run("print('next')")
    assert after.ok and time.monotonic() - t0 < 2.0, after


# ============================================================================ processes


FORK_BOMB = """
import os
open("/proc/self/comm", "w").write(P["marker"])  # inherited by every fork
print("bombing", flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


@pytest.mark.redteam("processes")
def test_fork_bomb_is_bounded_and_cleaned(box, token):
    marker = comm_marker(token)
    before = worker_identity(box)
    t0 = time.monotonic()
    r = box.run(program(FORK_BOMB, marker=marker), timeout=2.0)
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.stdout.startswith("bombing"), r
    assert elapsed < 6, elapsed  # killed and reaped soon after the deadline
    assert wait_until(lambda: not processes_named(marker), 5), "fork bomb processes survived"
    for _ in range(3):  # the sandbox answers quickly and cleanly afterwards
        t1 = time.monotonic()
        after = box.run("print('ok')")
        assert after.ok and after.stdout == "ok\n" and time.monotonic() - t1 < 1.5, after
    assert worker_identity(box) == before  # contained: the worker itself survived


DAEMON = """
import os, time
open("/proc/self/comm", "w").write(P["marker"])
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        time.sleep(P["sleep"])  # holds the inherited stdout and stderr open on purpose
        os._exit(0)
    os._exit(0)
os.close(w)
print(os.read(r, 100).decode(), flush=True)
time.sleep(P["linger"])
"""


@pytest.mark.redteam("processes")
def test_double_fork_daemon_does_not_outlive_its_execution(box, token):
    marker = comm_marker(token)
    t0 = time.monotonic()
    r = box.run(program(DAEMON, marker=marker, sleep=300, linger=0), timeout=10)
    # The daemon holds stdout open, yet the call returns when the program itself ends.
    assert not r.timed_out and r.exit_code == 0 and time.monotonic() - t0 < 5, r
    assert int(r.stdout) > 1
    assert wait_until(lambda: not processes_named(marker), 3), "the daemon survived"


@pytest.mark.redteam("processes")
def test_killing_the_worker_from_outside_leaves_no_process(fresh, token):
    """The host kills the worker mid-run: nothing a program started may survive it."""
    box = fresh(workers=1, timeout=60)
    marker = comm_marker(token)
    code = program(DAEMON, marker=marker, sleep=300, linger=120)
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(box.run, code, timeout=60)
        started = wait_until(lambda: len(processes_named(marker)) >= 2, 15)
        assert started, f"the program did not start its daemon: {busy.done() and busy.result()}"
        kill_workers(box)
        r = busy.result(timeout=60)
    assert r.sandbox_error, r
    survivors = lambda: processes_named(marker)  # noqa: E731
    assert wait_until(lambda: not survivors(), 5), f"processes survived the worker: {survivors()}"
    after = box.run("print('healed')")
    assert after.ok and after.stdout == "healed\n", after


KILL_WORKER = """
import ctypes, json, os, signal, time
out = {"ppid": os.getppid()}
for name, pid in (("parent", os.getppid()), ("init", 1)):
    try:
        os.kill(pid, signal.SIGKILL)
        out["kill_" + name] = "sent"
    except OSError as exc:
        out["kill_" + name] = type(exc).__name__
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
ppid = os.getppid()
rc = libc.ptrace(ctypes.c_long(16), ctypes.c_long(ppid), None, None)  # PTRACE_ATTACH
if rc == 0:
    libc.ptrace(ctypes.c_long(17), ctypes.c_long(ppid), None, None)  # PTRACE_DETACH
out["ptrace"] = "ATTACHED" if rc == 0 else ctypes.get_errno()
try:
    open(f"/proc/{ppid}/mem", "rb").close()
    out["mem"] = "OPENED"
except OSError as exc:
    out["mem"] = type(exc).__name__
time.sleep(0.2)
out["still_here"] = True
print(json.dumps(out))
"""


@pytest.mark.redteam("processes")
def test_killing_or_tracing_the_worker_fails(box):
    before = worker_identity(box)
    r = box.run(KILL_WORKER)
    assert r.sandbox_error is None and r.exit_code == 0, r
    out = results(r)
    assert out["still_here"] and out["ptrace"] != "ATTACHED" and out["mem"] != "OPENED", out
    for _ in range(3):
        assert box.run("print(2)").stdout == "2\n"
    assert worker_identity(box) == before  # the worker survived


HOST_PROCESSES = """
import json, os
pids = [p for p in os.listdir("/proc") if p.isdigit()]
seen = []
for pid in pids:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if "or_env/sandbox/worker.py" in cmd:
        continue  # the sandbox's own worker, forker and waiting process: not the host's
    if any(m in cmd for m in P["markers"]):
        seen.append(cmd[:120])
print(json.dumps({"count": len(pids), "host_processes": seen}))
"""


# The next execution's process is made ahead and waits for its program; with a sandbox
# uid (docker, local as root) it is made while the previous program runs. That program
# looks for it (its sibling in a session of its own) and tries to stop, interrupt, kill,
# trace and read it, and to plant a file in its /tmp; the next program must not notice.
ATTACK_NEXT = """
import ctypes, json, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
me, parent = os.getpid(), os.getppid()

def waiting():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and int(fields[3]) == int(name):  # sibling, own session
            found.append(int(name))
    return found

limit = time.monotonic() + 3
while not waiting() and time.monotonic() < limit:
    time.sleep(0.01)
out = {}
for pid in waiting():
    r = {}
    for sig in (signal.SIGSTOP, signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            r[sig.name] = "SENT"
        except OSError as exc:
            r[sig.name] = type(exc).__name__
    rc = libc.ptrace(ctypes.c_long(16), ctypes.c_long(pid), None, None)  # PTRACE_ATTACH
    r["ptrace"] = "ATTACHED" if rc == 0 else ctypes.get_errno()
    for what in ("mem", "environ", "fd"):
        try:
            if what == "fd":
                os.listdir(f"/proc/{pid}/fd")
            else:
                open(f"/proc/{pid}/{what}", "rb").close()
            r[what] = "OPENED"
        except OSError as exc:
            r[what] = type(exc).__name__
    try:
        with open(f"/proc/{pid}/root/tmp/planted-" + P["token"], "w") as f:
            f.write("planted")
        r["plant"] = "WRITTEN"
    except OSError as exc:
        r["plant"] = type(exc).__name__
    out[str(pid)] = r
print(json.dumps({"attacked": out}))
"""

AFTER_ATTACK = """
import glob, json, os
print(json.dumps({
    "planted": glob.glob("/tmp/planted-*") + glob.glob("/tmp/*/planted-*"),
    "pid": os.getpid(),
}))
"""


@pytest.mark.redteam("processes")
def test_the_waiting_next_process_is_out_of_the_programs_reach(backend, fresh, token):
    box = fresh(workers=1, timeout=10)
    box.run("print(0)")
    r = box.run(program(ATTACK_NEXT, token=token))
    assert r.sandbox_error is None and r.exit_code == 0, r
    attacked = results(r)["attacked"]
    if backend in ("docker", "local") and IS_ROOT:
        assert attacked, f"no waiting process found to attack: {r}"  # it exists there
    for pid, outcome in attacked.items():
        reached = [k for k, v in outcome.items() if v in ("SENT", "ATTACHED", "OPENED", "WRITTEN")]
        assert not reached, f"the program reached the waiting process {pid}: {outcome}"
    after = box.run(program(AFTER_ATTACK))
    assert after.ok and after.sandbox_error is None and not after.timed_out, after
    out = results(after)
    assert out["planted"] == [], out
    if attacked:  # the very process attacked runs it, unharmed
        assert str(out["pid"]) in attacked, (out, attacked)
    for _ in range(3):
        assert box.run("print(2)").stdout == "2\n"


@pytest.mark.redteam("processes")
def test_host_processes_are_invisible(box):
    """The host's process table (command lines, and with them the pids to attack)."""
    me = Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
    markers = [me, "pytest", "unprivileged_driver", "dockerd", "containerd", "sshd"]
    r = box.run(program(HOST_PROCESSES, markers=markers))
    out = results(r)
    assert r.exit_code == 0, r
    assert out["host_processes"] == [], out
    assert out["count"] <= 8, out


HOST_SECRETS = """
import json, os, re
names = [n.encode() for n in P["names"]]
out = {"environ_hits": [], "mem_opened": [], "mem_hits": [], "errors": {}}
out["own_env_has_secret"] = any(n.decode() in os.environ for n in names)
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        continue
    for n in names:
        m = re.search(re.escape(n) + rb"=([^\\0]*)", data)
        if m:
            out["environ_hits"].append([pid, n.decode(), m.group(1)[:60].decode(errors="replace")])
chain, pid = [], os.getppid()
while pid > 1 and len(chain) < 8:
    chain.append(pid)
    try:
        stat = open(f"/proc/{pid}/stat").read()
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError):
        break
out["ancestors"] = chain
for pid in dict.fromkeys([P["holder"], *chain]):
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        with open(f"/proc/{pid}/mem", "rb") as mem:
            out["mem_opened"].append(pid)
            for line in maps:
                if line.endswith("[stack]"):
                    lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
                    mem.seek(lo)
                    data = mem.read(min(hi - lo, 16 << 20))
                    for n in names:
                        at = data.find(n + b"=")
                        if at >= 0:
                            value = data[at + len(n) + 1 : at + len(n) + 61].split(b"\\0")[0]
                            text = value.decode(errors="replace")
                            out["mem_hits"].append([pid, n.decode(), text])
    except (OSError, ValueError) as exc:
        out["errors"][str(pid)] = type(exc).__name__
print(json.dumps(out))
"""


@pytest.mark.redteam("processes")
def test_host_environment_and_memory_are_unreadable(box):
    """API keys in the host process's environment: /proc/<pid>/environ, /proc/<pid>/mem."""
    holder = secret_holder_pid(box)
    names = [SECRET_NAME, DRIVER_SECRET_NAME]
    r = box.run(program(HOST_SECRETS, names=names, holder=holder), timeout=20)
    assert r.exit_code == 0, r
    out = results(r)
    for value in (SECRET_VALUE, DRIVER_SECRET_VALUE):
        assert value not in r.stdout + r.stderr, out
    assert not out["own_env_has_secret"]
    assert out["environ_hits"] == [] and out["mem_hits"] == [], out
    assert out["mem_opened"] == [], f"opened the memory of host processes {out['mem_opened']}"


@pytest.mark.parametrize("backend", LOCAL_PARAMS, indirect=True)
def test_local_uses_namespaces_where_the_kernel_allows(box):
    """Where the kernel allows user namespaces, the local backend uses them (and says so)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "true"],
        capture_output=True,
        check=False,
        user=65534 if IS_ROOT else None,
    )
    if probe.returncode != 0:
        pytest.skip(f"this kernel refuses unprivileged user namespaces: {probe.stderr!r}")
    box.run("print(1)")
    assert box.isolation not in (None, "uid", "session"), box.isolation


def test_local_without_namespaces_says_so_loudly(caplog):
    """The fallback where the kernel refuses user namespaces: weaker, and a warning says so."""
    from or_env.sandbox.local import LocalSandbox

    caplog.set_level(logging.WARNING)
    with LocalSandbox(workers=1, timeout=10, namespaces=False, preload=()) as sandbox:
        sandbox.start()
        assert sandbox.run("print(1)").stdout == "1\n"
        isolation = sandbox.isolation
    assert isolation in ("uid", "session"), isolation
    warnings = [
        rec.getMessage().lower() for rec in caplog.records if rec.levelno >= logging.WARNING
    ]
    assert any("namespace" in w and "weaker" in w for w in warnings), warnings


# ============================================================================ memory


MEMORY_BLOW_UP = """
chunks = []
try:
    while True:
        chunks.append(b"x" * (64 << 20))
except MemoryError:
    print("MemoryError after MiB", 64 * len(chunks))
    raise
"""


@pytest.mark.redteam("memory")
def test_memory_blow_up_is_a_readable_memory_error(box):
    r = box.run(MEMORY_BLOW_UP, timeout=20)
    assert r.exit_code == 1 and r.sandbox_error is None, r
    assert "MemoryError" in r.stderr
    reached = int(r.stdout.split()[-1])
    assert 512 <= reached <= 1100, r.stdout  # the 1 GiB budget, not the machine
    r = box.run("x = bytearray(10 * 1024 ** 3)")
    assert r.exit_code == 1 and "MemoryError" in r.stderr, r
    assert box.run("print('fine')").stdout == "fine\n"


SOCKET_BUFFERS = """
import errno, resource, socket
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
except (OSError, ValueError):
    pass
pairs, pinned, chunk, why = [], 0, b"x" * 65536, "stopped at the test's bound"
try:
    while pinned < P["stop_bytes"] and len(pairs) < P["max_pairs"]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        pairs.append((a, b))
        for s in (a, b):
            while True:
                try:
                    pinned += s.send(chunk)
                except BlockingIOError:
                    break
        if len(pairs) % 50 == 0:
            print("pinned", pinned, flush=True)
    else:
        why = f"{len(pairs)} pairs"
except OSError as exc:
    why = errno.errorcode.get(exc.errno, str(exc))
except MemoryError:
    why = "MemoryError"
print("pinned", pinned, flush=True)
print("end", why, len(pairs), flush=True)
"""


# The token is built from numbers, never written out, so that the only copies in the
# searching program's memory are the ones it makes on purpose (one bytes object).
LEAVE_IN_OUTPUT = """
token = bytes(P["codes"]).decode()
print(token * 40)
print(token, file=__import__("sys").stderr)
"""

SEARCH_OWN_MEMORY = """
import json
needle = bytes(P["codes"])
found = 0
for line in open("/proc/self/maps"):
    parts = line.split()
    if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
        continue
    start, end = (int(x, 16) for x in parts[0].split("-"))
    try:
        with open("/proc/self/mem", "rb") as mem:
            mem.seek(start)
            found += mem.read(end - start).count(needle)
    except (OSError, ValueError, OverflowError):
        pass
print(json.dumps({"found": found}))
"""


@pytest.mark.redteam("memory")
def test_a_program_cannot_read_the_previous_programs_output_in_its_own_memory(fresh, token):
    """A forked program gets a copy of its parent's memory: that parent must never have
    held an earlier program's code or output (a sibling rollout's printed objective)."""
    box = fresh(workers=1, timeout=20)
    codes = list(f"LEAK{token}".encode())
    a = box.run(program(LEAVE_IN_OUTPUT, codes=codes))
    assert a.ok and a.stdout.count(f"LEAK{token}") == 40, a
    b = box.run(program(SEARCH_OWN_MEMORY, codes=codes), timeout=20)
    assert b.ok, b
    assert results(b)["found"] <= 1, results(b)  # 1: the needle it built itself


@pytest.mark.redteam("memory")
def test_socket_buffers_cannot_pin_memory_beyond_the_limit(request, backend, fresh):
    """Kernel memory (socket buffers) must count against the program's memory budget."""
    if backend == "local-unprivileged":
        # Only a memory cgroup counts kernel memory, and an unprivileged process gets one
        # only where the init system delegates a cgroup v2 subtree to the user (not the
        # case on cgroup v1 machines such as this one). Strict: a pass here is news.
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="no memory cgroup without root: RLIMIT_AS only")
        )
    memory_mb = 512
    box = fresh(workers=1, timeout=30, memory_mb=memory_mb)
    bound = (memory_mb + MEMORY_MARGIN_MB) << 20
    # The program stops by itself a little past the bound, to keep the test short.
    code = program(SOCKET_BUFFERS, stop_bytes=bound + (128 << 20), max_pairs=8000)
    r = box.run(code, timeout=30)
    pinned = max(
        [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("pinned")] or [0]
    )
    assert pinned < bound, (
        f"pinned {pinned >> 20} MiB of socket buffers under memory_mb={memory_mb} "
        f"({r.stdout.splitlines()[-1:]}, exit {r.exit_code})"
    )
    after = box.run("print('next')")
    assert after.ok, after


# ============================================================================ filesystem


BIG_WRITES = """
import errno, json, os
out = {}
targets = {"cwd": "big.bin", "home": os.path.expanduser("~/big-" + P["token"] + ".bin"),
           "root": "/big-" + P["token"] + ".bin"}
for place in P["shared"]:
    targets[place] = os.path.join(place, "big-" + P["token"] + ".bin")
for name, path in targets.items():
    written = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while written < (1 << 30):  # 1 GiB
                written += os.write(fd, b"\\0" * (1 << 20))
        finally:
            os.close(fd)
        out[name] = ["wrote", written >> 20]
    except OSError as exc:
        out[name] = [errno.errorcode.get(exc.errno, str(exc.errno)), written >> 20]
    if os.path.exists(path):
        os.unlink(path)
print(json.dumps(out))
"""


@pytest.mark.redteam("filesystem")
def test_big_file_writes_are_bounded(box, token):
    r = box.run(program(BIG_WRITES, token=token, shared=list(SHARED_WRITABLE)), timeout=30)
    assert r.exit_code == 0, r
    out = results(r)
    for name, (outcome, _) in out.items():
        assert outcome in {"EFBIG", "ENOSPC", "EROFS", "EACCES", "EDQUOT", "ENOENT"}, (name, out)
    assert out["root"][0] in {"EROFS", "EACCES"}, out


FILL = """
import errno, json, os
cwd = os.getcwd()
# What outlives the execution first (the scratch root: the parent of the working
# directory), the execution's own directory last.
places = [os.path.dirname(cwd), *P["shared"], os.path.expanduser("~"), cwd]
cap, chunk, out = P["cap_mb"] << 20, b"\\0" * (1 << 20), {}
for place in dict.fromkeys(places):
    written, err, i = 0, None, 0
    while written < cap and err is None:
        path = os.path.join(place, f"fill-{P['token']}-{i}")
        i += 1
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for _ in range(32):  # 32 MiB per file, under the file size limit
                    if written >= cap:
                        break
                    written += os.write(fd, chunk)
            finally:
                os.close(fd)
        except OSError as exc:
            err = errno.errorcode.get(exc.errno, str(exc.errno))
    out[place] = [written >> 20, err]
print(json.dumps({"filled": out}))
"""

AFTER_FILL = """
import errno, json, os
out = {}
try:
    import pulp
    m = pulp.LpProblem("t", pulp.LpMaximize)
    x = pulp.LpVariable("x", lowBound=0)
    y = pulp.LpVariable("y", lowBound=0)
    m += 3 * x + 2 * y
    m += x + y <= 4
    m += x + 3 * y <= 6
    m += x <= 3
    m.solve(pulp.PULP_CBC_CMD(msg=0))
    out["lp"] = [pulp.LpStatus[m.status], pulp.value(m.objective)]
except Exception as exc:
    out["lp"] = ["error", f"{type(exc).__name__}: {exc}"[:300]]
cwd = os.getcwd()
places = [cwd, os.path.dirname(cwd), os.path.expanduser("~"), *P["shared"]]
left = []
for place in dict.fromkeys(places):
    try:
        left += [os.path.join(place, n) for n in os.listdir(place) if P["token"] in n]
    except OSError:
        pass
out["leftovers"] = left
try:
    fd = os.open("room.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(16):
            os.write(fd, b"\\0" * (1 << 20))
    finally:
        os.close(fd)
    out["write_16_mib"] = "ok"
except OSError as exc:
    out["write_16_mib"] = errno.errorcode.get(exc.errno, str(exc.errno))
for path in left:  # so that a failing backend does not poison the next test
    try:
        os.unlink(path)
    except OSError:
        pass
print(json.dumps(out), flush=True)
try:  # what tmpfs holds counts against a container's memory
    x = b"\1" * (512 << 20)
    print(json.dumps({"alloc_512_mib": "ok"}))
except MemoryError:
    print(json.dumps({"alloc_512_mib": "MemoryError"}))
"""


@pytest.mark.redteam("filesystem")
def test_filling_every_writable_place_does_not_break_the_next_program(backend, fresh, token):
    box = fresh(workers=1, timeout=30)
    # Docker: fill until ENOSPC; on this machine's shared disks a bounded amount is enough
    # to see whether it is left for the next program.
    cap_mb = 1024 if backend == "docker" else 48
    a = box.run(program(FILL, token=token, cap_mb=cap_mb, shared=list(SHARED_WRITABLE)))
    assert a.sandbox_error is None, a
    b = box.run(program(AFTER_FILL, token=token, shared=list(SHARED_WRITABLE)))
    out = results(b)
    context = {"filled": results(a).get("filled"), "next": out or b}
    assert out.get("lp") == ["Optimal", 11.0], context
    assert out["leftovers"] == [], context
    assert out["write_16_mib"] == "ok", context
    assert out.get("alloc_512_mib") == "ok", context


LEAVE_FILES = """
import errno, json, os
cwd = os.getcwd()
places = [cwd, os.path.dirname(cwd), os.path.expanduser("~"), *P["shared"]]
out = {}
for place in dict.fromkeys(places):
    try:
        with open(os.path.join(place, f"left-{P['token']}.txt"), "w") as f:
            f.write("answer-" + P["token"])
        out[place] = "written"
    except OSError as exc:
        out[place] = errno.errorcode.get(exc.errno, str(exc.errno))
try:  # a directory made hard to remove
    d = os.path.join("/tmp", f"dir-{P['token']}")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "x"), "w") as f:
        f.write("answer-" + P["token"])
    os.chmod(d, 0o500)
    out["dir"] = "written"
except OSError as exc:
    out["dir"] = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps({"left": out}))
"""

FIND_FILES = """
import json, os
cwd = os.getcwd()
places = [cwd, os.path.dirname(cwd), os.path.expanduser("~"), *P["shared"]]
found = []
for place in dict.fromkeys(places):
    names = set()
    try:
        names = {n for n in os.listdir(place) if P["token"] in n}
    except OSError:
        pass
    names |= {n for n in (f"left-{P['token']}.txt", f"dir-{P['token']}")
              if os.path.lexists(os.path.join(place, n))}
    for name in sorted(names):
        path = os.path.join(place, name)
        try:
            if os.path.isdir(path):
                found.append([path, "dir: " + ",".join(os.listdir(path))])
            else:
                found.append([path, open(path).read(100)])
        except OSError as exc:
            found.append([path, type(exc).__name__])
print(json.dumps({"found": found, "cwd": sorted(os.listdir("."))}))
"""


@pytest.mark.redteam("filesystem")
def test_files_do_not_carry_over_to_the_next_execution(fresh, token):
    box = fresh(workers=1, timeout=10)
    a = box.run(program(LEAVE_FILES, token=token, shared=list(SHARED_WRITABLE)))
    assert a.exit_code == 0, a
    b = box.run(program(FIND_FILES, token=token, shared=list(SHARED_WRITABLE)))
    assert b.exit_code == 0, b
    out = results(b)
    assert out["cwd"] == ["main.py"], out
    assert out["found"] == [], {"left": results(a)["left"], "found": out["found"]}


PRIVATE_FILES = """
import json, os, sys, time
cwd = os.getcwd()
out = {}
for place in dict.fromkeys([cwd, os.path.expanduser("~"), *P["shared"]]):
    try:
        with open(os.path.join(place, f"priv-{P['token']}.txt"), "w") as f:
            f.write("answer-" + P["token"])
        out[place] = "written"
    except OSError as exc:
        out[place] = type(exc).__name__
print(json.dumps(out), flush=True)
time.sleep(P["hold"])
"""


@pytest.mark.redteam("filesystem")
def test_files_of_a_running_program_are_private_on_the_host(box, token):
    """Another user of the machine cannot read what a program writes while it runs."""
    if not IS_ROOT:
        pytest.skip("looking as another uid needs root")
    roots = [tempfile.gettempdir(), *SHARED_WRITABLE, *scratch_roots(box)]
    roots = [p for p in dict.fromkeys(roots) if p and os.path.isdir(p)]
    readable: list = []
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(
            box.run, program(PRIVATE_FILES, token=token, shared=list(SHARED_WRITABLE), hold=4)
        )
        time.sleep(0.5)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and not readable:
            seen = files_seen_by(OTHER_UID, token, roots)
            if seen is None:
                pytest.skip(f"no Python is runnable by uid {OTHER_UID}")
            readable = [s for s in seen if s[1].startswith("answer-")]
            time.sleep(0.3)
        r = busy.result(timeout=30)
    assert r.exit_code == 0, r
    assert readable == [], f"uid {OTHER_UID} read {readable} (program wrote {r.stdout.strip()})"


GROUND_TRUTHS = """
import importlib, json, os
out = {}
for name, path in P["paths"].items():
    try:
        if os.path.isdir(path):
            entries = sorted(os.listdir(path))
            out[name] = ["listed", len(entries), entries[:50]]
        else:
            with open(path, "rb") as f:
                data = f.read(4096)
            out[name] = ["read", len(data), data[:60].decode(errors="replace")]
    except OSError as exc:
        out[name] = ["error", type(exc).__name__]
try:
    import or_env
    problems = or_env.load_problems("sample")
    out["import or_env"] = ["read", len(problems), str(problems[0].answer)]
except Exception as exc:
    out["import or_env"] = ["error", type(exc).__name__]
imports = {}
for name in P["modules"]:
    try:
        importlib.import_module(name)
        imports[name] = "ok"
    except Exception as exc:
        imports[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"ground_truths": out, "imports": imports}))
"""


def python_paths() -> list[str]:
    """Where this host's Python installation lives (programs may see the way to it)."""
    found = [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    return found + [p for p in site.getsitepackages() if os.path.isdir(p)]


def _first_part_under(root: str, path: str) -> str | None:
    """The entry of directory `root` on the way to `path` (None when not under it)."""
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return None
    return None if rel.startswith("..") or rel == "." else rel.split(os.sep)[0]


@pytest.mark.redteam("filesystem")
def test_ground_truths_are_unreadable(box, backend, host_secrets):
    package = Path(or_env.__file__).resolve().parent
    paths = {
        "sample problems": str(package / "data" / "sample" / "problems.jsonl"),
        "package data": str(package / "data"),
        "data dir file": host_secrets["answers"],
        "data dir": host_secrets["data_dir"],
        "project README": str(REPO_ROOT / "README.md"),
        "project tests": str(REPO_ROOT / "tests"),
        "project tree": str(REPO_ROOT),
    }
    if host_secrets["real_data_dir"]:
        paths["real OR_ENV_DATA_DIR"] = host_secrets["real_data_dir"]
    modules = expected_imports(backend)
    r = box.run(program(GROUND_TRUTHS, paths=paths, modules=modules), timeout=30)
    assert r.exit_code == 0, r
    out = results(r)
    # A listing may show the way to the Python installation (a venv inside the project),
    # nothing else.
    exposed = {}
    for name, (kind, size, *detail) in out["ground_truths"].items():
        if kind == "listed":
            allowed = {_first_part_under(paths[name], p) for p in python_paths()}
            shown = set(detail[0]) - allowed
            if shown:
                exposed[name] = sorted(shown)
        elif kind == "read" and size > 0:
            exposed[name] = detail
    assert exposed == {}, exposed
    assert out["imports"] == dict.fromkeys(modules, "ok")  # hiding must not break imports


HOST_FILES = """
import ctypes, json, os, socket
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "OK"
    except OSError as exc:
        out[name] = type(exc).__name__
attempt("/etc/shadow", lambda: open("/etc/shadow", "rb").read(1))
for path in ("/root", "/var/lib/docker"):
    try:
        out["listing " + path] = sorted(os.listdir(path))[:50]
    except OSError as exc:
        out["listing " + path] = type(exc).__name__
attempt("/proc/1/environ", lambda: open("/proc/1/environ", "rb").read(1))
attempt("/proc/1/mem", lambda: open("/proc/1/mem", "rb").close())
for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
    def connect(path=path):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        try:
            s.connect(path)
        finally:
            s.close()
    attempt(path, connect)
libc = ctypes.CDLL(None, use_errno=True)
os.mkdir("m")
rc = libc.mount(b"none", os.path.abspath("m").encode(), b"tmpfs", ctypes.c_ulong(0), None)
out["mount"] = "OK" if rc == 0 else os.strerror(ctypes.get_errno())
if rc == 0:
    libc.umount2(os.path.abspath("m").encode(), 2)
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
out["CapEff"] = status["CapEff"].strip()
out["NoNewPrivs"] = status["NoNewPrivs"].strip()
out["env"] = sorted(os.environ)
print(json.dumps(out))
"""


@pytest.mark.redteam("filesystem")
def test_host_files_sockets_and_privileges_are_out_of_reach(box):
    r = box.run(HOST_FILES)
    assert r.exit_code == 0, r
    out = results(r)
    reached = {k: v for k, v in out.items() if v == "OK"}
    for path in ("/root", "/var/lib/docker"):  # the way to the Python installation is fine
        listing = out.pop("listing " + path)
        if isinstance(listing, list):
            shown = set(listing) - {_first_part_under(path, p) for p in python_paths()}
            if shown:
                reached["listing " + path] = sorted(shown)
    assert reached == {}, reached
    assert out["CapEff"] == "0000000000000000" and out["NoNewPrivs"] == "1", out
    assert SECRET_NAME not in out["env"] and DRIVER_SECRET_NAME not in out["env"]
    assert SECRET_VALUE not in r.stdout


PLANT = """
import errno, json, os, site
out = {}
targets = [*P["targets"], *site.getsitepackages()]
for target in dict.fromkeys(targets):
    path = os.path.join(target, P["name"])
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"# or-env red-team test: a .pth here runs in every host Python\\n")
        os.close(fd)
        out[target] = "WROTE"
    except OSError as exc:
        out[target] = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps(out))
"""


@pytest.mark.redteam("filesystem")
def test_program_cannot_plant_code_for_the_host(box, token):
    """A `.pth` in the host's site-packages, or files in its home or project, run later."""
    name = f"zz_or_env_redteam_{token}.pth"
    targets = [*host_site_packages(box), host_home(box), str(REPO_ROOT), str(REPO_ROOT / "tests")]
    try:
        r = box.run(program(PLANT, targets=targets, name=name))
        assert r.exit_code == 0, r
        out = results(r)
        planted = [t for t in targets if os.path.exists(os.path.join(t, name))]
        assert planted == [], f"the program wrote into the host's {planted}"
        assert "WROTE" not in out.values(), out
    finally:
        for target in targets:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(target, name))


NESTED = """
import os
depth = 0
try:
    for depth in range(1, P["depth"] + 1):
        os.mkdir("d")
        os.chdir("d")
except OSError as exc:
    print("stopped", type(exc).__name__)
print("depth", depth)
"""


@pytest.mark.redteam("filesystem")
def test_deeply_nested_directories_are_cleaned_up(fresh):
    """5,000 nested directories must not crash the worker or stay on the host."""
    box = fresh(workers=1, timeout=30)
    box.run("print(1)")
    roots = list(scratch_roots(box))
    try:
        r = box.run(program(NESTED, depth=5000), timeout=30)
        assert r.exit_code is not None or r.sandbox_error, r  # the call returned
        roots += scratch_roots(box)
        after = box.run("print('next')")
        roots += scratch_roots(box)
        assert after.ok and after.stdout == "next\n", after
        box.close()
        left = [p for p in dict.fromkeys(roots) if p and os.path.exists(p)]
        assert left == [], f"scratch trees left on the host after close(): {left}; run: {r}"
    finally:
        remove_trees(p for p in roots if p and os.path.basename(p).startswith("or-env-sandbox-"))


# ============================================================================ ipc


IPC_CREATE = """
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
try:
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
except OSError:
    rt = libc
c_int, c_size_t, c_void_p, c_long = ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_long
libc.shmget.argtypes = [c_int, c_size_t, c_int]
libc.shmat.argtypes = [c_int, c_void_p, c_int]
libc.shmat.restype = c_void_p
libc.shmdt.argtypes = [c_void_p]
libc.msgget.argtypes = [c_int, c_int]
libc.msgsnd.argtypes = [c_int, c_void_p, c_size_t, c_int]
libc.semget.argtypes = [c_int, c_int, c_int]
rt.mq_open.restype = c_int
rt.mq_send.argtypes = [c_int, ctypes.c_char_p, c_size_t, ctypes.c_uint]
IPC_CREAT, IPC_NOWAIT = 0o1000, 0o4000
keys = P["keys"]
def err():
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
out = {"shm_mib": 0, "msg_queues": 0, "msg_bytes": 0, "sem_sets": 0, "mqueues": 0, "errors": {}}
seg = P["segment_mb"] << 20
for i in range(P["segments"]):
    sid = libc.shmget(keys[i], seg, IPC_CREAT | 0o600)
    if sid < 0:
        out["errors"]["shmget"] = err()
        break
    addr = libc.shmat(sid, None, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        out["errors"]["shmat"] = err()
        break
    ctypes.memset(addr, 1, seg)  # touch it: the memory is really held
    libc.shmdt(addr)
    out["shm_mib"] += seg >> 20
class Msg(ctypes.Structure):
    _fields_ = [("mtype", c_long), ("mtext", ctypes.c_char * 4096)]
msg = Msg(1, b"answer-" + P["token"].encode())
for i in range(8):
    qid = libc.msgget(keys[i], IPC_CREAT | 0o600)
    if qid < 0:
        out["errors"]["msgget"] = err()
        break
    out["msg_queues"] += 1
    while libc.msgsnd(qid, ctypes.byref(msg), 4096, IPC_NOWAIT) == 0:
        out["msg_bytes"] += 4096
for i in range(4):
    if libc.semget(keys[i], 4, IPC_CREAT | 0o600) < 0:
        out["errors"]["semget"] = err()
        break
    out["sem_sets"] += 1
for name in P["mq_names"]:
    flags = os.O_CREAT | os.O_RDWR | os.O_NONBLOCK
    mqd = rt.mq_open(name.encode(), flags, ctypes.c_uint(0o600), None)
    if mqd < 0:
        out["errors"]["mq_open"] = err()
        break
    body = ("answer-" + P["token"]).encode()
    while rt.mq_send(mqd, body, len(body), 0) == 0:
        pass
    out["mqueues"] += 1
print(json.dumps({"created": out}))
"""

IPC_LOOK = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
try:
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
except OSError:
    rt = libc
rt.mq_open.restype = ctypes.c_int
out = {"rows": {}, "found": []}
for kind in ("shm", "msg", "sem"):
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            out["rows"][kind] = f.read().splitlines()[1:][:5]
    except OSError as exc:
        out["rows"][kind] = [type(exc).__name__]
for key in P["keys"]:
    if libc.shmget(key, 0, 0) >= 0:
        out["found"].append(["shm", key])
    if libc.msgget(key, 0) >= 0:
        out["found"].append(["msg", key])
    if libc.semget(key, 0, 0) >= 0:
        out["found"].append(["sem", key])
for name in P["mq_names"]:
    mqd = rt.mq_open(name.encode(), os.O_RDONLY)
    if mqd >= 0:
        out["found"].append(["mqueue", name])
        rt.mq_close(mqd)
try:
    out["dev_mqueue"] = os.listdir("/dev/mqueue")
except OSError:
    out["dev_mqueue"] = []
print(json.dumps(out))
"""

ALLOCATE = """
x = b"\\1" * (P["mb"] << 20)  # written, so really held
print(len(x) >> 20)
"""

IPC_REMOVE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
try:
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
except OSError:
    rt = libc
for key in P["keys"]:
    for ident in (libc.shmget(key, 0, 0),):
        if ident >= 0:
            libc.shmctl(ident, 0, None)
    ident = libc.msgget(key, 0)
    if ident >= 0:
        libc.msgctl(ident, 0, None)
    ident = libc.semget(key, 0, 0)
    if ident >= 0:
        libc.semctl(ident, 0, 0)
for name in P["mq_names"]:
    rt.mq_unlink(name.encode())
print("removed")
"""


@pytest.mark.redteam("ipc")
def test_ipc_objects_do_not_survive_the_execution(backend, fresh, token):
    """SysV shared memory, message queues, semaphores and POSIX queues: gone after a run.

    In Docker the shared memory a program leaves is charged to the container: 1.1 GiB of
    it leaves the next program unable to allocate half of its budget.
    """
    box = fresh(workers=1, timeout=30, memory_mb=1024)
    keys, names = ipc_keys(token), mqueue_names(token)
    segments = 9 if backend == "docker" else 2  # x 128 MiB; this machine is shared
    try:
        a = box.run(
            program(
                IPC_CREATE,
                keys=keys,
                mq_names=names,
                token=token,
                segments=segments,
                segment_mb=128,
            )
        )
        assert a.sandbox_error is None, a
        created = results(a).get("created")
        b = box.run(program(IPC_LOOK, keys=keys, mq_names=names))
        c = box.run(program(ALLOCATE, mb=512))
        seen = results(b)
        context = {"created": created, "next program saw": seen or b, "allocation": c}
        assert seen["found"] == [], context
        assert seen["rows"] == {"shm": [], "msg": [], "sem": []}, context
        assert seen["dev_mqueue"] == [], context
        assert c.ok and c.stdout == "512\n", context
    finally:
        box.run(program(IPC_REMOVE, keys=keys, mq_names=names))


KEY_ADD = """
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
for ring_name, ring in (("user", -4), ("session", -3)):
    desc = f"rt-{P['token']}-{ring_name}".encode()
    payload = ("answer-" + P["token"]).encode()
    key = libc.syscall(ctypes.c_long(P["nr"]["add_key"]), b"user", desc, payload,
                       ctypes.c_size_t(len(payload)), ctypes.c_long(ring))
    out[ring_name] = key if key >= 0 else errno.errorcode.get(ctypes.get_errno())
print(json.dumps({"added": out}))
"""

KEY_FIND = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
keyctl = ctypes.c_long(P["nr"]["keyctl"])
found = {}
for ring in (-4, -3, -5):  # user, session, user-session keyrings
    for which in ("user", "session"):
        desc = f"rt-{P['token']}-{which}"
        key = libc.syscall(keyctl, ctypes.c_long(10), ctypes.c_long(ring), b"user",
                           desc.encode(), ctypes.c_long(0))  # KEYCTL_SEARCH
        if key >= 0:
            buf = ctypes.create_string_buffer(256)
            n = libc.syscall(keyctl, ctypes.c_long(11), ctypes.c_long(key), buf,
                             ctypes.c_long(256))  # KEYCTL_READ
            found[desc] = buf.raw[: max(n, 0)].decode(errors="replace") or "found"
            if P["remove"]:
                libc.syscall(keyctl, ctypes.c_long(21), ctypes.c_long(key))  # INVALIDATE
try:
    listed = [line for line in open("/proc/keys").read().splitlines() if P["token"] in line]
except OSError:
    listed = []
for line in listed:  # their ids are on view: try to read them directly
    key = int(line.split()[0], 16)
    buf = ctypes.create_string_buffer(256)
    n = libc.syscall(keyctl, ctypes.c_long(11), ctypes.c_long(key), buf, ctypes.c_long(256))
    if n > 0:
        found[line.split()[-2].rstrip(":")] = buf.raw[:n].decode(errors="replace")
    if P["remove"]:
        libc.syscall(keyctl, ctypes.c_long(21), ctypes.c_long(key))  # INVALIDATE
print(json.dumps({"found": found, "listed": listed}))
"""


@pytest.mark.redteam("ipc")
def test_keyring_does_not_carry_over(fresh, token):
    nr = arch_syscalls()
    if nr is None:
        pytest.skip("no syscall numbers for this architecture")
    box = fresh(workers=1, timeout=10)
    a = box.run(program(KEY_ADD, token=token, nr=nr))
    assert a.sandbox_error is None, a
    b = box.run(program(KEY_FIND, token=token, nr=nr, remove=False))
    box.run(program(KEY_FIND, token=token, nr=nr, remove=True))  # clean up a failing backend
    out = results(b)
    context = {"added": results(a), **out}
    assert out["found"] == {}, context  # the payloads
    assert out["listed"] == [], context  # the descriptions (up to 4 KiB each) are data too


# ============================================================================ network


NETWORK = """
import errno, json, socket
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "CONNECTED"
    except OSError as exc:
        kind = type(exc).__name__
        out[name] = errno.errorcode.get(exc.errno, kind) if exc.errno else kind
def tcp(addr, send):
    s = socket.create_connection(addr, timeout=P["timeout"])
    if send:  # only ever to the host's loopback listener
        s.sendall(P["token"].encode())
    s.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(P["token"].encode(), ("127.0.0.1", P["udp_port"]))
    u.close()
    raise OSError(0, "sent")  # whether it arrived is for the host to say
def abstract():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(P["timeout"])
    s.connect("\\0" + P["abstract"])
    s.sendall(P["token"].encode())
    s.close()
attempt("host tcp 127.0.0.1", lambda: tcp(("127.0.0.1", P["tcp_port"]), True))
attempt("host udp 127.0.0.1", udp)
attempt("host abstract unix socket", abstract)
for host in ("10.255.255.1", "192.0.2.1"):  # unroutable addresses; connect only, no data
    attempt(f"outward tcp {host}:9", lambda host=host: tcp((host, 9), False))
try:
    with open("/proc/net/dev") as f:
        out["interfaces"] = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
except OSError as exc:
    out["interfaces"] = [type(exc).__name__]
print(json.dumps(out))
"""


@pytest.mark.redteam("network")
def test_no_network(box, token):
    """Not the host's loopback services (TCP, UDP, abstract sockets), not the outside."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    abstract_name = f"or-env-redteam-{token}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0" + abstract_name)
    unix.listen(8)
    unix.setblocking(False)
    try:
        code = program(
            NETWORK,
            token=token,
            timeout=1.0,
            tcp_port=tcp.getsockname()[1],
            udp_port=udp.getsockname()[1],
            abstract=abstract_name,
        )
        r = box.run(code, timeout=15)
        assert r.exit_code == 0, r
        out = results(r)
        host_got = []
        for name, sock in (("tcp", tcp), ("unix", unix)):
            with contextlib.suppress(BlockingIOError):
                sock.accept()
                host_got.append(name)
        with contextlib.suppress(BlockingIOError):
            udp.recvfrom(100)
            host_got.append("udp")
    finally:
        for sock in (tcp, udp, unix):
            sock.close()
    assert host_got == [], f"the host received {host_got} from the program: {out}"
    assert "CONNECTED" not in out.values(), out
    assert set(out["interfaces"]) <= {"lo"}, out
