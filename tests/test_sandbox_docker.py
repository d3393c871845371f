"""The Docker sandbox with real containers: parity with the local backend, containment of
attacks, faults (containers killed or frozen, the daemon restarted), and cleanup.

Tests marked `docker` need a running daemon and the sandbox image; they skip with the
reason (and what to do) when either is missing.
"""

from __future__ import annotations

import ast
import asyncio
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from or_env import load_problems
from or_env.reference import read_reported_answer
from or_env.sandbox.containers import (
    LABEL,
    OWNER_LABEL,
    POOL_LABEL,
    docker_cli_env,
    list_containers,
    owner_id,
    owner_is_dead,
    remove_stale_containers,
)
from or_env.sandbox.docker import (
    ContainerSpec,
    DockerSandbox,
    docker_usable,
    explain_start_failure,
)
from or_env.sandbox.local import LocalSandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET_NAME = "OR_ENV_TEST_SECRET_TOKEN"
SECRET_VALUE = "s3cr3t-value-that-must-not-leak"
SAMPLE = load_problems("sample")

# What a program sees of its container's processes: only PID 1 (the worker) and itself.
PROCESSES = "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"

_usable: tuple[bool, str] | None = None


def _require_docker() -> None:
    global _usable
    if _usable is None:
        _usable = docker_usable()
    if not _usable[0]:
        pytest.skip(f"Docker sandbox unusable: {_usable[1]}")


def _docker(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=docker_cli_env()
    )


def _pool_containers(box: DockerSandbox) -> list[str]:
    return sorted(name for _, name, _ in list_containers(f"label={POOL_LABEL}={box.pool_id}"))


def _wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _only_worker_and_me(box: DockerSandbox) -> None:
    """Every container of the pool holds its worker and the checking program, nothing else."""
    for _ in range(box.workers + 1):
        r = box.run(PROCESSES)
        assert r.ok, r
        pids = ast.literal_eval(r.stdout)
        assert len(pids) == 2 and pids[0] == 1, pids


@pytest.fixture(scope="module")
def sandbox():
    _require_docker()
    os.environ[SECRET_NAME] = SECRET_VALUE  # present on the host while containers start
    try:
        box = DockerSandbox(workers=2, timeout=10)
        box.start()
        yield box
        box.close()
        assert _pool_containers(box) == []
    finally:
        os.environ.pop(SECRET_NAME, None)


@pytest.fixture
def single():
    """A fresh one-container pool for tests that break containers on purpose."""
    _require_docker()
    box = DockerSandbox(workers=1, timeout=10, reply_margin=2.0)
    box.start()
    yield box
    box.close()
    assert _pool_containers(box) == []


# ----------------------------------------------------------------------------- no daemon needed


@pytest.mark.parametrize(
    "flags",
    [
        ["--network", "none"],
        ["--read-only"],
        ["--tmpfs", "/tmp:rw,nosuid,nodev,size=32m"],
        ["--memory", "700m"],
        ["--memory-swap", "700m"],
        ["--cpus", "0.5"],
        ["--pids-limit", "64"],
        ["--cap-drop", "ALL"],
        ["--security-opt", "no-new-privileges"],
        ["--user", "1000:1000"],
        ["--ulimit", "fsize=16777216:16777216"],
        ["--ulimit", "nofile=256:256"],
        ["--log-driver", "none"],
        ["--pull", "never"],
        ["--label", "or-env.sandbox=1"],
        ["--wipe", "/tmp"],
        ["--wipe", "/dev/shm"],
    ],
)
def test_run_args_carry_the_hardening(flags):
    spec = ContainerSpec(
        image="img:1",
        container_memory_mb=700,
        cpus=0.5,
        pids_limit=64,
        tmpfs_mb=32,
        fsize_mb=16,
        nofile=256,
        labels=(("or-env.sandbox", "1"),),
    )
    args = spec.run_args("box-1")
    assert any(args[i : i + len(flags)] == flags for i in range(len(args))), args
    assert "--init" not in args and "--privileged" not in args
    # The worker's flags come after the image, the container's before it.
    image_at = args.index("img:1")
    assert args.index("--wipe") > image_at > args.index("--network")


def test_preload_and_program_env_reach_the_worker_flags():
    spec = ContainerSpec(image="img:1", preload=("numpy",), program_env=(("A", "1"),))
    tail = spec.run_args("x")[spec.run_args("x").index("img:1") + 1 :]
    assert tail[tail.index("--preload") + 1] == "numpy"
    assert tail[tail.index("--env") + 1] == "A=1"


def test_owner_of_live_and_dead_processes():
    assert not owner_is_dead(owner_id())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = owner_id(proc.pid)
    proc.wait()
    assert owner_is_dead(dead)
    # A reused pid has another start time; another host's process is never judged.
    host, pid, _ = owner_id().split("/")
    assert owner_is_dead(f"{host}/{pid}/1")
    assert not owner_is_dead(f"some-other-host/{proc.pid}/1")
    assert not owner_is_dead("garbage")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            "exited unexpectedly (exit status 125); its last log lines: docker: Error "
            "response from daemon: No such image: or-env-sandbox:9.9.",
            "or-env sandbox build",
        ),
        (
            "exited unexpectedly (exit status 125); its last log lines: docker: Cannot "
            "connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
            "daemon running?",
            "start it",
        ),
    ],
)
def test_start_failures_say_what_to_do(error, expected):
    assert expected in explain_start_failure(error, "or-env-sandbox:9.9")


# ----------------------------------------------------------------------------- usability


@pytest.mark.docker
def test_missing_image_is_reported_with_the_fix():
    _require_docker()
    usable, why = docker_usable("or-env-sandbox:does-not-exist")
    assert not usable and "or-env sandbox build" in why
    with DockerSandbox(workers=1, image="or-env-sandbox:does-not-exist") as box:
        r = box.run("print(1)")
    assert r.sandbox_error and "or-env sandbox build" in r.sandbox_error
    assert r.exit_code is None


# ----------------------------------------------------------------------------- parity


@pytest.fixture(scope="module")
def local():
    with LocalSandbox(workers=2, timeout=30) as box:
        yield box


@pytest.mark.docker
def test_sample_reference_programs_match_the_local_backend(sandbox, local):
    def both(problem):
        code = problem.meta["reference_code"]
        return problem, sandbox.run(code, timeout=30), local.run(code, timeout=30)

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(both, SAMPLE))
    assert len(runs) >= 20
    for problem, in_docker, on_host in runs:
        assert in_docker.ok, (problem.id, in_docker)
        assert on_host.ok, (problem.id, on_host)
        got, want = read_reported_answer(in_docker.stdout), read_reported_answer(on_host.stdout)
        assert got is not None, (problem.id, in_docker.stdout)
        try:
            assert math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9), problem.id
        except ValueError:  # STATUS: infeasible / unbounded
            assert got == want, problem.id


@pytest.mark.docker
def test_print_exit_codes_and_tracebacks(sandbox):
    assert sandbox.run("print('hello')").stdout == "hello\n"
    r = sandbox.run("import sys\nprint('out')\nsys.exit(3)")
    assert (r.stdout, r.exit_code, r.sandbox_error) == ("out\n", 3, None)
    r = sandbox.run("def f():\n    return 1 / 0\n\nf()\n")
    assert r.exit_code == 1 and 'File "main.py", line 4' in r.stderr
    assert "ZeroDivisionError" in r.stderr and "worker.py" not in r.stderr


# ----------------------------------------------------------------------------- attacks


@pytest.mark.docker
def test_infinite_loop_is_killed_at_its_deadline(sandbox):
    t0 = time.monotonic()
    r = sandbox.run("print('started')\nwhile True:\n    pass", timeout=1.0)
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.exit_code == -9 and r.stdout == "started\n"
    assert 1.0 <= r.wall_s < 1.5 and elapsed < 2.5
    _only_worker_and_me(sandbox)


@pytest.mark.docker
@pytest.mark.parametrize(
    "code",
    [
        "import time\ntime.sleep(1000)",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(1000)",
    ],
    ids=["sleep", "sigterm-ignored"],
)
def test_sleepers_are_killed_at_the_deadline(sandbox, code):
    t0 = time.monotonic()
    r = sandbox.run(code, timeout=1.0)
    assert r.timed_out and r.exit_code == -9 and time.monotonic() - t0 < 2.5
    assert sandbox.run("print('next')").stdout == "next\n"


@pytest.mark.docker
def test_fork_bomb_is_bounded_and_cleaned(sandbox):
    code = textwrap.dedent(
        """
        import os
        print("bombing", flush=True)
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    )
    started = sandbox.containers_started
    t0 = time.monotonic()
    r = sandbox.run(code, timeout=2.0)
    elapsed = time.monotonic() - t0
    assert r.timed_out and r.stdout.startswith("bombing")
    assert elapsed < 4.5  # killed and reaped soon after the deadline (see the benchmark)
    _only_worker_and_me(sandbox)
    assert sandbox.containers_started == started  # contained: the container survived


@pytest.mark.docker
def test_memory_blow_up_is_a_readable_memory_error(sandbox):
    code = textwrap.dedent(
        """
        chunks = []
        try:
            while True:
                chunks.append(b"x" * (64 << 20))
        except MemoryError:
            print("MemoryError after MiB", 64 * len(chunks))
            raise
        """
    )
    r = sandbox.run(code)
    assert r.exit_code == 1 and r.sandbox_error is None
    assert "MemoryError" in r.stderr
    reached = int(r.stdout.split()[-1])
    assert 512 <= reached <= 1100, r.stdout  # the 1 GiB budget, not the container limit
    r = sandbox.run("x = bytearray(10 * 1024 ** 3)")
    assert r.exit_code == 1 and "MemoryError" in r.stderr
    assert sandbox.run("print('fine')").stdout == "fine\n"


@pytest.mark.docker
def test_disk_writes_are_bounded_and_wiped(sandbox):
    code = textwrap.dedent(
        """
        import errno, os
        for target in ["/tmp/big.bin", os.path.expanduser("~/big.bin"), "/big.bin",
                       "/dev/shm/big.bin"]:
            written = 0
            try:
                with open(target, "wb") as f:
                    for _ in range(1024):  # 1 GiB
                        f.write(b"\\0" * (1 << 20))
                        written += 1
                print(target, "wrote 1 GiB")
            except OSError as exc:
                print(target, errno.errorcode[exc.errno], written)
        """
    )
    r = sandbox.run(code, timeout=20)
    assert r.exit_code == 0, r.stderr
    lines = dict(line.rsplit(" ", 2)[0:2] for line in r.stdout.splitlines())
    assert set(lines) == {"/tmp/big.bin", "/big.bin", "/dev/shm/big.bin"} | {
        k for k in lines if k.endswith("/work/big.bin")
    }
    for target, err in lines.items():
        assert err in {"EFBIG", "ENOSPC", "EROFS", "EACCES"}, (target, err)
    assert lines["/big.bin"] in {"EROFS", "EACCES"}
    check = "import os, shutil\nprint(shutil.disk_usage('/tmp').free >> 20, os.listdir('/dev/shm'))"
    for _ in range(sandbox.workers + 1):
        free_mb, shm = sandbox.run(check).stdout.split(" ", 1)
        assert int(free_mb) >= 56 and shm.strip() == "[]"


@pytest.mark.docker
def test_output_flood_is_cut_short(sandbox):
    # 100 MiB in 1 KiB lines.
    code = "import sys\nfor _ in range(102400):\n    sys.stdout.write('x' * 1023 + '\\n')"
    t0 = time.monotonic()
    r = sandbox.run(code, timeout=30)
    assert time.monotonic() - t0 < 5
    assert r.truncated and "output limit exceeded" in r.stderr
    assert len(r.stdout) < sandbox.max_output_chars + 100
    assert r.sandbox_error is None
    assert sandbox.run("print('quiet')").stdout == "quiet\n"


@pytest.mark.docker
def test_no_network(sandbox):
    code = textwrap.dedent(
        """
        import errno, socket
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect(("1.1.1.1", 53))
            print("connect: CONNECTED")
        except OSError as exc:
            print("connect:", errno.errorcode.get(exc.errno, exc))
        try:
            socket.getaddrinfo("pypi.org", 443)
            print("dns: RESOLVED")
        except OSError as exc:
            print("dns:", type(exc).__name__)
        print("interfaces:", sorted(l.split(":")[0].strip()
                                    for l in open("/proc/net/dev").readlines()[2:]))
        """
    )
    r = sandbox.run(code)
    assert r.exit_code == 0, r.stderr
    assert "connect: ENETUNREACH" in r.stdout
    assert "dns: gaierror" in r.stdout
    assert "interfaces: ['lo']" in r.stdout


@pytest.mark.docker
def test_host_files_secrets_and_privileges_are_out_of_reach(sandbox):
    code = textwrap.dedent(
        f"""
        import os
        for path in ["/etc/shadow", "/var/run/docker.sock", "/run/docker.sock",
                     "/proc/1/environ", "/proc/1/mem", "/root", "/var/lib/docker"]:
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    open(path, "rb").read(1)
                print(path, "READ")
            except OSError as exc:
                print(path, type(exc).__name__)
        status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
        print("CapEff", status["CapEff"].strip(), "NoNewPrivs", status["NoNewPrivs"].strip())
        print("uid", os.getuid(), "secret", {SECRET_NAME!r} in os.environ)
        """
    )
    r = sandbox.run(code)
    assert r.exit_code == 0, r.stderr
    seen = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert seen["/etc/shadow"] == "PermissionError"
    assert seen["/var/run/docker.sock"] == "FileNotFoundError"
    assert seen["/run/docker.sock"] == "FileNotFoundError"
    assert seen["/proc/1/environ"] == "PermissionError"
    assert seen["/proc/1/mem"] == "PermissionError"
    assert seen["/root"] == "PermissionError"
    assert seen["/var/lib/docker"] == "FileNotFoundError"
    assert seen["CapEff"] == "0000000000000000 NoNewPrivs 1"
    assert seen["uid"] == "1000 secret False"
    assert SECRET_VALUE not in r.stdout + r.stderr


@pytest.mark.docker
def test_double_fork_daemon_does_not_outlive_its_execution(sandbox):
    code = textwrap.dedent(
        """
        import os, time
        r, w = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(w, str(os.getpid()).encode())
                os.close(w)
                time.sleep(600)  # holds the inherited stdout open on purpose
                os._exit(0)
            os._exit(0)
        os.close(w)
        print(os.read(r, 100).decode())
        """
    )
    t0 = time.monotonic()
    r = sandbox.run(code, timeout=10)
    assert not r.timed_out and time.monotonic() - t0 < 5
    assert int(r.stdout) > 1
    _only_worker_and_me(sandbox)


@pytest.mark.docker
def test_killing_or_tracing_the_worker_fails(sandbox):
    started = sandbox.containers_started
    code = textwrap.dedent(
        """
        import ctypes, errno, os, signal
        os.kill(1, signal.SIGKILL)
        os.kill(os.getppid(), signal.SIGKILL)
        libc = ctypes.CDLL(None, use_errno=True)
        attach = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH to the worker
        print("ptrace", attach, errno.errorcode.get(ctypes.get_errno()))
        try:
            open("/proc/1/mem", "rb")
            print("mem OPENED")
        except OSError as exc:
            print("mem", type(exc).__name__)
        print("still here, parent", os.getppid())
        """
    )
    r = sandbox.run(code)
    assert r.exit_code == 0 and r.sandbox_error is None, r
    assert "ptrace -1 EPERM" in r.stdout
    assert "mem PermissionError" in r.stdout
    assert "still here, parent 1" in r.stdout
    for _ in range(3):
        assert sandbox.run("print(2)").stdout == "2\n"
    assert sandbox.containers_started == started  # the workers survived


@pytest.mark.docker
def test_files_do_not_carry_over_to_the_next_execution(sandbox):
    plant = textwrap.dedent(
        """
        import os
        for path in ["left.txt", os.path.expanduser("~/home.txt"), "/tmp/tmp.txt",
                     "/dev/shm/shm.txt"]:
            with open(path, "w") as f:
                f.write("secret answer 42")
        os.makedirs("/tmp/dir/sub", exist_ok=True)
        os.chmod("/tmp/dir", 0o500)  # made hard to remove on purpose
        print(os.getcwd())
        """
    )
    r = sandbox.run(plant)
    assert r.exit_code == 0, r.stderr
    look = textwrap.dedent(
        """
        import os
        scratch_roots = [n for n in os.listdir("/tmp") if n.startswith("or-env-sandbox-")]
        print(sorted(os.listdir(".")), sorted(os.listdir("/tmp")) == scratch_roots,
              os.listdir("/dev/shm"))
        """
    )
    for _ in range(sandbox.workers + 1):
        assert sandbox.run(look).stdout == "['main.py'] True []\n"


# ----------------------------------------------------------------------------- concurrency


@pytest.mark.docker
def test_pool_size_caps_concurrency(sandbox):
    code = "import time\ntime.sleep(0.6)\nprint('done')"
    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: sandbox.run(code), range(4)))
    elapsed = time.monotonic() - t0
    assert [r.stdout for r in results] == ["done\n"] * 4
    assert elapsed >= 1.2  # two at a time on two containers
    assert len(_pool_containers(sandbox)) == sandbox.workers


@pytest.mark.docker
def test_arun_does_not_block_the_event_loop(sandbox):
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
    assert ticks >= 20


# ----------------------------------------------------------------------------- faults


@pytest.mark.docker
def test_container_killed_mid_execution_is_reported_and_replaced(single):
    (name,) = single.container_names()
    with ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        busy = pool.submit(single.run, "import time\ntime.sleep(30)", timeout=60)
        time.sleep(1.0)
        assert _docker("kill", name).returncode == 0
        r = busy.result(timeout=20)
    assert time.monotonic() - t0 < 10
    assert r.sandbox_error and name in r.sandbox_error and r.exit_code is None
    after = single.run("print('healed')")
    assert after.ok and after.stdout == "healed\n"
    assert single.containers_started == 2 and name not in single.container_names()
    assert _wait_until(lambda: name not in _pool_containers(single), 10)


@pytest.mark.docker
def test_container_killed_while_idle_is_replaced_before_use(single):
    (name,) = single.container_names()
    assert _docker("kill", name).returncode == 0
    assert _wait_until(lambda: name not in _pool_containers(single), 10)
    r = single.run("print('fresh')")
    assert r.ok and r.stdout == "fresh\n", r
    assert single.containers_started == 2


@pytest.mark.docker
def test_frozen_container_cannot_hang_a_call(single):
    (name,) = single.container_names()
    with ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        busy = pool.submit(single.run, "import time\ntime.sleep(0.5)\nprint(1)", timeout=1.0)
        time.sleep(0.2)
        assert _docker("pause", name).returncode == 0
        r = busy.result(timeout=30)
    elapsed = time.monotonic() - t0
    # The host gives up at timeout + reply_margin (1 + 2 s), whatever the container does.
    assert 2.5 < elapsed < 6, elapsed
    assert r.sandbox_error and "in time" in r.sandbox_error
    assert single.run("print('thawed')").stdout == "thawed\n"
    assert _wait_until(lambda: name not in _pool_containers(single), 15)


@pytest.mark.docker
def test_close_during_a_run_removes_everything():
    _require_docker()
    box = DockerSandbox(workers=2, timeout=30)
    box.start()
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(box.run, "import time\ntime.sleep(30)")
        time.sleep(0.5)
        t0 = time.monotonic()
        box.close()
        r = busy.result(timeout=20)
    assert time.monotonic() - t0 < 10
    assert r.sandbox_error
    assert _pool_containers(box) == []
    with pytest.raises(RuntimeError, match="closed"):
        box.run("print(1)")


HOST_SCRIPT = """
import sys, time
from or_env.sandbox.docker import DockerSandbox
box = DockerSandbox(workers=2)
box.start()
print(box.pool_id, flush=True)
if sys.argv[1] == "busy":
    box.run("import time; time.sleep(600)", timeout=900)
time.sleep(600)
"""


def _host_process(mode: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    pool_id = proc.stdout.readline().strip()
    assert pool_id, "the host process did not start its sandbox"
    return proc, pool_id


def _containers_of(pool_id: str) -> list[str]:
    return [name for _, name, _ in list_containers(f"label={POOL_LABEL}={pool_id}")]


@pytest.mark.docker
def test_sigterm_of_the_host_process_removes_its_containers():
    _require_docker()
    proc, pool_id = _host_process("idle")
    try:
        assert len(_containers_of(pool_id)) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM  # it still dies of SIGTERM
        assert _containers_of(pool_id) == []
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.docker
def test_crashed_host_leaves_only_stale_containers_that_are_then_removed(sandbox):
    proc, pool_id = _host_process("busy")
    try:
        time.sleep(0.5)  # one container is running a long program
        proc.kill()
        proc.wait()
        # Idle containers see their stdin close and exit on their own; the busy one is
        # left running its program: stale, owned by a dead process.
        assert _wait_until(lambda: len(_containers_of(pool_id)) <= 1, 15)
        removed = remove_stale_containers()
        assert set(_containers_of(pool_id)) == set()
        assert any(pool_id in name for name in removed)
        # Containers of live owners (this test's own pool) are left alone.
        assert len(_pool_containers(sandbox)) == sandbox.workers
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.docker
def test_stale_label_filter_spares_live_owners(sandbox):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    created = _docker(
        "create",
        "--label", f"{LABEL}=1",
        "--label", f"{OWNER_LABEL}={owner_id(dead.pid)}",
        "--label", f"{POOL_LABEL}=stale-test",
        "--name", f"or-env-sandbox-stale-test-{os.getpid()}",
        sandbox.image,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    try:
        assert f"or-env-sandbox-stale-test-{os.getpid()}" in remove_stale_containers()
        assert _containers_of("stale-test") == []
        assert len(_pool_containers(sandbox)) == sandbox.workers
        assert sandbox.run("print('alive')").stdout == "alive\n"
    finally:
        _docker("rm", "-f", f"or-env-sandbox-stale-test-{os.getpid()}")


# ----------------------------------------------------------------------------- the daemon


def _restart_daemon_supported() -> str | None:
    if os.geteuid() != 0:
        return "restarting dockerd needs root"
    if not (REPO_ROOT / ".ci" / "docker_setup.sh").is_file():
        return "no .ci/docker_setup.sh to start the daemon again"
    if not Path("/var/run/docker.pid").is_file():
        return "dockerd is not managed by a pid file here (systemd?)"
    return None


def _start_daemon() -> None:
    subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "docker_setup.sh")],
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.docker
@pytest.mark.slow
def test_daemon_restart_mid_execution_then_heal(single):
    why = _restart_daemon_supported()
    if why:
        pytest.skip(why)
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    stopped = threading.Event()
    try:
        with ThreadPoolExecutor(1) as pool:
            t0 = time.monotonic()
            busy = pool.submit(single.run, "import time\ntime.sleep(30)", timeout=60)
            time.sleep(0.5)
            os.kill(pid, signal.SIGTERM)
            assert _wait_until(lambda: not Path(f"/proc/{pid}").exists(), 25, 0.1)
            stopped.set()
            r = busy.result(timeout=30)
        assert time.monotonic() - t0 < 30
        assert r.sandbox_error and r.exit_code is None
        down = single.run("print(1)")
        assert down.sandbox_error and "daemon" in down.sandbox_error.lower()
        assert "start it" in down.sandbox_error
    finally:
        _start_daemon()
    assert docker_usable()[0], "the daemon did not come back"
    healed = single.run("print('back')")
    assert healed.ok and healed.stdout == "back\n", healed
    assert stopped.is_set()
