"""The Docker sandbox with real containers: parity with the local backend, faults
(containers killed or frozen, the daemon restarted), and cleanup.

What every backend must do (the program contract, limits, and containment of attacks)
is tested once for all backends in test_redteam_sandbox.py.

Tests marked `docker` need a running daemon and the sandbox image; they skip with the
reason (and what to do) when either is missing.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from or_env import load_problems
from or_env.reference import read_reported_answer
from or_env.sandbox import docker_attach
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
SAMPLE = load_problems("sample")

_usable: tuple[bool, str] | None = None


def _require_docker() -> None:
    global _usable
    if _usable is None:
        _usable = docker_usable()
    if not _usable[0]:
        pytest.skip(f"Docker sandbox unusable: {_usable[1]}")


def _api():
    return docker_attach.api()


def _docker_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
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


@pytest.fixture(scope="module")
def sandbox():
    _require_docker()
    box = DockerSandbox(workers=2, timeout=10)
    box.start()
    yield box
    box.close()
    assert _pool_containers(box) == []


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
        ["--memory", "700m"],
        ["--memory-swap", "700m"],
        ["--cpus", "0.5"],
        ["--pids-limit", "64"],
        ["--cap-drop", "ALL"],
        ["--security-opt", "no-new-privileges"],
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
    args = _hardened_args()
    assert any(args[i : i + len(flags)] == flags for i in range(len(args))), args
    assert "--init" not in args and "--privileged" not in args
    # The worker's flags come after the image, the container's before it.
    image_at = args.index("img:1")
    assert args.index("--wipe") > image_at > args.index("--network")


def _hardened_args() -> list[str]:
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
    return spec.run_args("box-1")


def test_tmpfs_is_small_nosuid_and_nodev():
    args = _hardened_args()
    tmpfs = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]
    assert any(t.startswith("/tmp:rw,nosuid,nodev,size=32m") for t in tmpfs), tmpfs


def test_programs_run_as_the_unprivileged_user():
    """Either the container runs as uid 1000, or its root worker drops every program to
    uid 1000 (`--uid`) and holds only the capabilities that takes (and killing them).
    What a program can do either way is tested in test_redteam_sandbox.py."""
    args = _hardened_args()
    image_at = args.index("img:1")
    user = args[args.index("--user") + 1] if "--user" in args else None
    if user == "1000:1000":
        return
    tail = args[image_at + 1 :]
    assert "--uid" in tail and tail[tail.index("--uid") + 1] == "1000", args
    caps = {args[i + 1] for i, a in enumerate(args[:image_at]) if a == "--cap-add"}
    assert caps <= {"SETUID", "SETGID", "CHOWN", "KILL", "FOWNER", "DAC_OVERRIDE"}, caps


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


# ----------------------------------------------------------------------------- faults


@pytest.mark.docker
def test_container_killed_mid_execution_is_reported_and_replaced(single):
    (name,) = single.container_names()
    with ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        busy = pool.submit(single.run, "import time\ntime.sleep(30)", timeout=60)
        time.sleep(1.0)
        _api().kill(name)
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
    _api().kill(name)
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
        _api().pause(name)
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
    _api().create_container(
        sandbox.image,
        name=f"or-env-sandbox-stale-test-{os.getpid()}",
        labels={LABEL: "1", OWNER_LABEL: owner_id(dead.pid), POOL_LABEL: "stale-test"},
    )
    try:
        assert f"or-env-sandbox-stale-test-{os.getpid()}" in remove_stale_containers()
        assert _containers_of("stale-test") == []
        assert len(_pool_containers(sandbox)) == sandbox.workers
        assert sandbox.run("print('alive')").stdout == "alive\n"
    finally:
        with contextlib.suppress(Exception):
            _api().remove_container(f"or-env-sandbox-stale-test-{os.getpid()}", force=True)


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


# ----------------------------------------------------------------------------- the SDK


def test_sdk_config_carries_the_same_hardening():
    spec = ContainerSpec(
        image="img:1",
        container_memory_mb=700,
        cpus=0.5,
        tmpfs_mb=32,
        fsize_mb=16,
        nofile=256,
        labels=((LABEL, "1"),),
        extra_run_args=("--runtime", "runsc"),
    )
    create, host = docker_attach.flags_to_config(spec.container_flags())
    assert host["network_mode"] == "none" and create["network_disabled"] is True
    assert host["read_only"] is True
    assert host["mem_limit"] == host["memswap_limit"] == "700m"
    assert host["nano_cpus"] == 500_000_000 and host["pids_limit"] == 64
    assert host["cap_drop"] == ["ALL"]
    assert set(host["cap_add"]) == {"SETUID", "SETGID", "CHOWN", "KILL"}
    assert host["security_opt"] == ["no-new-privileges"]
    assert {"Name": "fsize", "Soft": 16 << 20, "Hard": 16 << 20} in host["ulimits"]
    assert {"Name": "nofile", "Soft": 256, "Hard": 256} in host["ulimits"]
    assert host["log_config"]["Type"] == "none"
    assert host["tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,size=32m,nr_inodes=")
    assert host["shm_size"] == "64m" and host["runtime"] == "runsc"
    assert create["user"] == "0:0" and create["stop_signal"] == "SIGKILL"
    assert create["labels"] == {LABEL: "1"}


def test_unsupported_run_flags_are_refused_not_dropped():
    with pytest.raises(ValueError, match="--privileged"):
        DockerSandbox(workers=1, extra_run_args=["--privileged"], handle_sigterm=False)


_COMPARED_HOST = (
    "NetworkMode", "ReadonlyRootfs", "Tmpfs", "ShmSize", "Memory", "MemorySwap", "NanoCpus",
    "PidsLimit", "CapDrop", "CapAdd", "SecurityOpt", "Ulimits", "LogConfig", "AutoRemove",
)  # fmt: skip
_COMPARED_CONFIG = ("User", "StopSignal", "Labels", "Cmd", "OpenStdin", "StdinOnce", "Tty")


@pytest.mark.docker
def test_pool_containers_are_hardened_as_specified(single):
    sandbox = single
    name = sandbox.container_names()[0]
    info = _api().inspect_container(name)
    host, config = info["HostConfig"], info["Config"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["Memory"] == host["MemorySwap"] == sandbox.spec.container_memory_mb << 20
    assert host["NanoCpus"] == 1_000_000_000 and host["PidsLimit"] == 64
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert {c.removeprefix("CAP_") for c in host["CapAdd"]} == {"SETUID", "SETGID", "CHOWN", "KILL"}
    assert host["LogConfig"]["Type"] == "none" and host["AutoRemove"] is True
    assert config["User"] == "0:0" and config["StopSignal"] == "SIGKILL"
    assert config["OpenStdin"] is True and config["StdinOnce"] is True
    assert config["Labels"][POOL_LABEL] == sandbox.pool_id


@pytest.mark.docker
@pytest.mark.skipif(
    __import__("shutil").which("docker") is None, reason="no docker CLI to compare with"
)
def test_sdk_and_cli_make_the_same_container(sandbox):
    """What the SDK creates is what `docker run` with ContainerSpec's flags creates."""
    spec = sandbox.spec
    names = [f"or-env-sandbox-parity-{os.getpid()}-{k}" for k in ("cli", "sdk")]
    cli = ["create", *spec.run_args(names[0])[2:]]  # `docker run ...` minus `docker run`
    try:
        created = _docker_cli(*cli)
        assert created.returncode == 0, created.stderr
        docker_attach.create_container(
            _api(), names[1], spec.image, spec.worker_args(), spec.container_flags()
        )
        a, b = (_api().inspect_container(n) for n in names)
        for key in _COMPARED_HOST:
            left, right = a["HostConfig"][key], b["HostConfig"][key]
            if key in ("CapAdd", "CapDrop"):  # the CLI writes CAP_-prefixed names, sorted
                left, right = ({c.removeprefix("CAP_") for c in v} for v in (left, right))
            assert left == right, key
        for key in _COMPARED_CONFIG:
            assert a["Config"][key] == b["Config"][key], key
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                _api().remove_container(name, force=True)


@pytest.mark.docker
def test_daemon_events_mark_a_dead_idle_container_at_once(single):
    (worker,) = single._pool.workers()
    t0 = time.monotonic()
    _api().kill(worker.name)
    # No request needed: the `die` event (or the attach stream's end) says so.
    assert _wait_until(lambda: not worker.alive, 3.0, 0.01)
    assert time.monotonic() - t0 < 3.0
    assert worker.container.returncode == 137
    assert single.run("print('next')").stdout == "next\n"


@pytest.mark.docker
def test_a_killed_container_fails_its_pending_request_at_once(single):
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(single.run, "import time\ntime.sleep(30)", timeout=60)
        time.sleep(1.0)
        t0 = time.monotonic()
        _api().kill(single.container_names()[0])
        r = busy.result(timeout=20)
    assert time.monotonic() - t0 < 3.0
    assert "exit status 137" in r.sandbox_error and "killed from outside" in r.sandbox_error


NO_CLI_SCRIPT = """
import shutil
from or_env.sandbox.docker import DockerSandbox, docker_usable
assert shutil.which("docker") is None, shutil.which("docker")
print(docker_usable()[0])
with DockerSandbox(workers=1) as box:
    print(box.run("print(6 * 7)").stdout, end="")
"""


@pytest.mark.docker
def test_the_sandbox_needs_no_docker_binary():
    _require_docker()
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # the venv's bin only
    proc = subprocess.run(
        [sys.executable, "-c", NO_CLI_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.stdout.split() == ["True", "42"], proc.stderr[-2000:]


# ----------------------------------------------------------------------------- Podman


PODMAN_IMAGE = os.environ.get("OR_ENV_PODMAN_IMAGE", "")


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory):
    """Podman's Docker-compatible service on a private socket, with the sandbox image.

    Optional: skips with the reason when podman is not installed (CI: `apt-get install
    -y podman`) or cannot run containers here.
    """
    podman = __import__("shutil").which("podman")
    if podman is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    _require_docker()  # the image is copied over from the Docker daemon
    image = PODMAN_IMAGE or f"docker.io/library/{DockerSandbox(workers=1).image}"
    have = subprocess.run([podman, "image", "exists", image], check=False, timeout=60)
    if have.returncode != 0:
        source = image.removeprefix("docker.io/library/")
        pulled = subprocess.run(
            [podman, "pull", f"docker-daemon:{source}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if pulled.returncode != 0:
            pytest.skip(f"podman could not copy {source} from Docker: {pulled.stderr[-300:]}")
    sock = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_until(sock.exists, 20):
            pytest.skip("podman system service did not open its socket")
        yield f"unix://{sock}", image
    finally:
        service.terminate()
        service.wait(20)


PODMAN_SCRIPT = """
import sys, time
from or_env.sandbox.containers import list_containers
from or_env.sandbox.docker import DockerSandbox, docker_usable
ok, why = docker_usable()
assert ok and "Podman" in why, why
# This machine lets no runtime raise RLIMIT_NPROC (podman raises it by default).
box = DockerSandbox(workers=1, extra_run_args=sys.argv[1:])
r = box.run("print(6 * 7)")
assert r.stdout == "42\\n", r
name = box.container_names()[0]
from or_env.sandbox import docker_attach
docker_attach.api().kill(name)
t0 = time.monotonic()
while box._pool.workers()[0].alive and time.monotonic() - t0 < 10:
    time.sleep(0.01)
assert box.run("print('healed')").stdout == "healed\\n"
box.close()
assert list_containers(f"label=or-env.sandbox.pool={box.pool_id}") == []
print("podman ok")
"""


@pytest.mark.docker
@pytest.mark.podman
@pytest.mark.slow
def test_podman_compatible_socket(podman_socket):
    host, image = podman_socket
    env = {**os.environ, "DOCKER_HOST": host, "OR_ENV_SANDBOX_IMAGE": image}
    extra = os.environ.get("OR_ENV_PODMAN_RUN_ARGS", "--ulimit nproc=1024:1024")
    proc = subprocess.run(
        [sys.executable, "-c", PODMAN_SCRIPT, *extra.split()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert "podman ok" in proc.stdout, proc.stderr[-3000:]
