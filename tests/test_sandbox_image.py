"""The sandbox image helpers, and the built image itself under the hardened run flags.

Tests marked `docker` need a running daemon and the image (`or-env-sandbox:<version>`,
or the tag in $OR_ENV_SANDBOX_IMAGE); they skip with the reason when either is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from or_env.sandbox import docker_attach, image, offline_build

REPO_ROOT = Path(__file__).resolve().parents[1]

# The hardened flags sandbox containers run with; each one closes off a known attack.
HARDENED = [
    "--network", "none",
    "--read-only",
    "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
    "--pids-limit", "128",
    "--memory", "1g",
    "--memory-swap", "1g",
    "--cpus", "1",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--user", "1000:1000",
    "--log-driver", "none",
    "--ulimit", "fsize=67108864:67108864",
]  # fmt: skip

# ---------------------------------------------------------------------------------------
# Helpers without a daemon


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            "permission denied while trying to connect to the Docker daemon socket at "
            "unix:///var/run/docker.sock: Get ...: dial unix /var/run/docker.sock: "
            "connect: permission denied",
            "docker group",
        ),
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running?",
            "not running",
        ),
        (
            "error during connect: this error may indicate that the docker daemon is not running",
            "did not answer",
        ),
        ("", "no error text"),
        # The SDK's words for the same troubles.
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "PermissionError(13, 'Permission denied'))",
            "docker group",
        ),
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "FileNotFoundError(2, 'No such file or directory'))",
            "not running",
        ),
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "ConnectionRefusedError(111, 'Connection refused'))",
            "not running",
        ),
    ],
)
def test_explain_docker_error(stderr: str, expected: str) -> None:
    assert expected in image.explain_docker_error(stderr)


def test_image_tag_uses_package_version() -> None:
    assert image.image_tag("1.2.3") == "or-env-sandbox:1.2.3"
    assert image.image_tag() == f"or-env-sandbox:{image.package_version()}"


@pytest.mark.parametrize(
    ("offline", "tag", "expected"),
    [
        (
            False,
            "or-env-sandbox:0.1.0",
            ["docker", "build", "--force-rm", "-f", "{ctx}/sandbox_image/Dockerfile", "--build-arg",
             "OR_ENV_VERSION=0.1.0", "-t", "or-env-sandbox:0.1.0", "-t",
             "or-env-sandbox:latest", "{ctx}"],
        ),
        (
            True,
            "registry.example:5000/team/or-env-sandbox:dev",
            ["bash", "{ctx}/sandbox_image/build_offline.sh", "--image",
             "registry.example:5000/team/or-env-sandbox", "--version", "dev"],
        ),
    ],
)  # fmt: skip
def test_build_command(offline: bool, tag: str, expected: list[str], tmp_path: Path) -> None:
    cmd = image.build_command(offline, tmp_path, tag)
    assert cmd == [part.replace("{ctx}", str(tmp_path)) for part in expected]


@pytest.mark.parametrize("tag", ["or-env-sandbox", "registry.example:5000/or-env-sandbox"])
def test_build_command_rejects_tag_without_version(tag: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NAME:VERSION"):
        image.build_command(False, tmp_path, tag)


def test_build_context_is_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(image.CONTEXT_ENV, raising=False)
    assert image.build_context() == REPO_ROOT


def test_build_context_override_without_files_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(image.CONTEXT_ENV, str(tmp_path))
    with pytest.raises(image.ImageBuildError, match="sandbox_image/Dockerfile"):
        image.build_context()


def test_daemon_status_without_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # `import docker` raises ImportError
    monkeypatch.setattr(docker_attach, "_clients", {})
    ok, why = image.daemon_status()
    assert not ok
    assert "or-env[docker]" in why and "not installed" in why
    assert not image.image_exists("or-env-sandbox:any")


def test_daemon_status_when_daemon_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    ok, why = image.daemon_status()
    assert not ok
    assert "not running" in why and "DOCKER_HOST" in why
    with pytest.raises(image.ImageBuildError, match="not running"):
        image.build_image(offline=False)


def test_daemon_status_permission_denied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can open any socket")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "d.sock"))
    sock.listen()
    os.chmod(tmp_path / "d.sock", 0)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/d.sock")
    ok, why = image.daemon_status()
    sock.close()
    assert not ok and "docker group" in why


def test_daemon_status_of_a_hung_daemon_is_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A socket that accepts and never answers: the check gives up at its timeout.
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "hung.sock"))
    sock.listen(8)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/hung.sock")
    try:
        t0 = time.monotonic()
        ok, why = image.daemon_status(timeout=1)
        assert time.monotonic() - t0 < 5
    finally:
        sock.close()
    assert not ok and "did not answer within 1 s" in why


@pytest.mark.docker
def test_daemon_status_needs_no_docker_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ok, _ = image.daemon_status()
    if not ok:
        pytest.skip("no Docker daemon")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `docker` binary to be found
    ok, why = image.daemon_status()
    assert ok, why
    assert why.startswith("Docker ")


def test_offline_script_parses() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    proc = subprocess.run([bash, "-n", str(REPO_ROOT / image.OFFLINE_SCRIPT)], check=False)
    assert proc.returncode == 0


def test_offline_script_runs_without_docker_cli(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    # The wrapper starts the Python build; --help needs no daemon and no `docker` binary.
    env = {**os.environ, "PATH": str(tmp_path) + os.pathsep + "/usr/bin:/bin"}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        [bash, str(REPO_ROOT / image.OFFLINE_SCRIPT), "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--rebuild-base" in proc.stdout and "--refresh-wheels" in proc.stdout


class _FakeBuildClient:
    """Stands in for `docker.APIClient`: `build` answers with the given decoded events."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events
        self.build_kwargs: dict = {}
        self.tags: list[tuple[str, str, str]] = []

    def build(self, **kwargs: object) -> list[dict]:
        self.build_kwargs = kwargs
        return self.events

    def tag(self, image_id: str, name: str, tag: str) -> None:
        self.tags.append((image_id, name, tag))

    def close(self) -> None:
        pass


def test_api_build_logs_progress_and_tags(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = _FakeBuildClient(
        [
            {"stream": "Step 1/2 : FROM base\n"},
            {"stream": " ---> abc\nStep 2/2 : RUN true\n"},
            {"aux": {"ID": "sha256:feed"}},
            {"stream": "Successfully built feed\n"},
        ]
    )
    monkeypatch.setattr(docker_attach, "new_api", lambda timeout: fake)
    with caplog.at_level("INFO", logger=image.logger.name):
        failed = image.api_build(
            Path("/ctx"), "sandbox_image/Dockerfile", ["x:1", "x:latest"], network_mode="none"
        )
    assert failed is None
    assert fake.build_kwargs["network_mode"] == "none" and fake.build_kwargs["forcerm"]
    assert fake.tags == [("sha256:feed", "x", "latest")]
    assert [r.getMessage() for r in caplog.records] == [
        "Step 1/2 : FROM base",
        " ---> abc",
        "Step 2/2 : RUN true",
        "Successfully built feed",
    ]


def test_offline_build_error_from_the_daemon_is_raised_with_its_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _FakeBuildClient(
        [
            {"stream": "Step 5/15 : RUN pip install\n"},
            {"stream": "ERROR: No matching distribution found for numpy==9\n"},
            {
                "error": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
                "errorDetail": {
                    "code": 1,
                    "message": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
                },
            },
        ]
    )
    monkeypatch.setattr(docker_attach, "new_api", lambda timeout: fake)
    with pytest.raises(image.ImageBuildError) as info:
        offline_build.build_sandbox_image(
            REPO_ROOT, tmp_path, "or-env-base:test", "x:1", ["x:latest"], "1"
        )
    message = str(info.value)
    assert "building x:1 failed: The command '/bin/sh -c pip install' returned" in message
    assert "No matching distribution found for numpy==9" in message  # the log's tail
    assert fake.tags == []  # a failed build is not tagged
    assert fake.build_kwargs["buildargs"]["BASE_IMAGE"] == "or-env-base:test"
    assert fake.build_kwargs["buildargs"]["PIP_ARGS"] == "--no-index --find-links /build"


def test_import_error_reads_the_daemon_answer() -> None:
    ok = '{"status":"sha256:1234"}\r\n'
    assert offline_build.import_error(ok) is None
    bad = '{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\r\n'
    assert offline_build.import_error(ok + bad) == "unexpected EOF"


def test_apt_mirror_for_reads_list_and_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm-security\n"
        "Enabled: no\n\n"
        "Types: deb deb-src\nURIs: http://sec.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert offline_build.apt_mirror_for("bookworm", tmp_path) == "http://list.example/debian"
    assert (
        offline_build.apt_mirror_for("bookworm-security", tmp_path)
        == "http://sec.example/debian-security"
    )
    assert offline_build.apt_mirror_for("trixie", tmp_path) is None


def test_pip_platforms_cover_every_glibc_up_to_the_base() -> None:
    args = offline_build.pip_platforms("2.19", "aarch64")
    assert args == [
        "--platform", "manylinux2014_aarch64",
        "--platform", "manylinux_2_17_aarch64",
        "--platform", "manylinux_2_18_aarch64",
        "--platform", "manylinux_2_19_aarch64",
    ]  # fmt: skip


def test_build_image_offline_runs_the_python_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(image, "daemon_status", lambda: (True, "Docker answers"))
    monkeypatch.setattr(offline_build, "build_offline", lambda **kw: calls.append(kw))
    tag = image.build_image(offline=True, tag="team/sandbox:dev", context=tmp_path)
    assert tag == "team/sandbox:dev"
    assert calls == [{"image": "team/sandbox", "version": "dev", "context": tmp_path}]


# ---------------------------------------------------------------------------------------
# The built image


@pytest.fixture(scope="module")
def sandbox_image() -> str:
    ok, why = image.daemon_status()
    if not ok:
        pytest.skip(f"no Docker daemon: {why}")
    tag = os.environ.get("OR_ENV_SANDBOX_IMAGE") or image.image_tag()
    if not image.image_exists(tag):
        pytest.skip(
            f"image {tag} is not built: run `or-env sandbox build` or "
            "sandbox_image/build_offline.sh"
        )
    return tag


def _inspect(tag: str) -> dict:
    return docker_attach.api().inspect_image(tag)["Config"]


@pytest.mark.docker
def test_image_config(sandbox_image: str) -> None:
    config = _inspect(sandbox_image)
    # The worker starts as root (the runner keeps only SETUID, SETGID, CHOWN and KILL) and
    # hands programs to uid 1000.
    assert config["User"] == "0:0"
    assert config["Entrypoint"][:2] == ["/opt/venv/bin/python", "/opt/or_env/worker.py"]
    assert "--reap-all" in config["Entrypoint"]
    uid_flag = config["Entrypoint"].index("--uid")
    assert config["Entrypoint"][uid_flag + 1] == "1000"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


# Each snippet builds max 3x + 2y s.t. x + y <= 4, x + 3y <= 6, 0 <= x <= 3, y >= 0
# (optimum 11 at x=3, y=1) and leaves the objective value in `obj`.
SOLVER_SNIPPETS = {
    "pulp_cbc": """
        import pulp
        m = pulp.LpProblem("t", pulp.LpMaximize)
        x, y = pulp.LpVariable("x", 0, 3), pulp.LpVariable("y", 0)
        m += 3 * x + 2 * y
        m += x + y <= 4
        m += x + 3 * y <= 6
        assert pulp.LpStatus[m.solve(pulp.PULP_CBC_CMD(msg=False))] == "Optimal"
        obj = pulp.value(m.objective)
    """,
    "highspy": """
        import highspy
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        x, y = h.addVariable(lb=0, ub=3), h.addVariable(lb=0)
        h.addConstr(x + y <= 4)
        h.addConstr(x + 3 * y <= 6)
        h.maximize(3 * x + 2 * y)
        assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        obj = h.getInfo().objective_function_value
    """,
    "scipy_highs": """
        from scipy.optimize import linprog
        r = linprog([-3, -2], A_ub=[[1, 1], [1, 3]], b_ub=[4, 6], bounds=[(0, 3), (0, None)],
                    method="highs")
        assert r.status == 0
        obj = -r.fun
    """,
    "ortools_glop": """
        from ortools.linear_solver import pywraplp
        s = pywraplp.Solver.CreateSolver("GLOP")
        x, y = s.NumVar(0, 3, "x"), s.NumVar(0, s.infinity(), "y")
        s.Add(x + y <= 4)
        s.Add(x + 3 * y <= 6)
        s.Maximize(3 * x + 2 * y)
        assert s.Solve() == pywraplp.Solver.OPTIMAL
        obj = s.Objective().Value()
    """,
    "ortools_cpsat": """
        from ortools.sat.python import cp_model
        m = cp_model.CpModel()
        x, y = m.NewIntVar(0, 3, "x"), m.NewIntVar(0, 10, "y")
        m.Add(x + y <= 4)
        m.Add(x + 3 * y <= 6)
        m.Maximize(3 * x + 2 * y)
        s = cp_model.CpSolver()
        s.parameters.num_workers = 1
        assert s.Solve(m) == cp_model.OPTIMAL
        obj = s.ObjectiveValue()
    """,
    "pyscipopt": """
        import pyscipopt
        m = pyscipopt.Model()
        m.hideOutput()
        x, y = m.addVar(lb=0, ub=3), m.addVar(lb=0)
        m.addCons(x + y <= 4)
        m.addCons(x + 3 * y <= 6)
        m.setObjective(3 * x + 2 * y, "maximize")
        m.optimize()
        assert m.getStatus() == "optimal"
        obj = m.getObjVal()
    """,
    "cvxpy": """
        import cvxpy as cp
        x = cp.Variable(2)
        p = cp.Problem(cp.Maximize(3 * x[0] + 2 * x[1]),
                       [x >= 0, x[0] <= 3, x[0] + x[1] <= 4, x[0] + 3 * x[1] <= 6])
        obj = p.solve()  # the default choice, as agent code would leave it
        assert p.status == "optimal"
    """,
    "pyomo_highs": """
        import pyomo.environ as pe
        m = pe.ConcreteModel()
        m.x, m.y = pe.Var(bounds=(0, 3)), pe.Var(bounds=(0, None))
        m.c1 = pe.Constraint(expr=m.x + m.y <= 4)
        m.c2 = pe.Constraint(expr=m.x + 3 * m.y <= 6)
        m.o = pe.Objective(expr=3 * m.x + 2 * m.y, sense=pe.maximize)
        r = pe.SolverFactory("appsi_highs").solve(m)
        assert str(r.solver.termination_condition) == "optimal"
        obj = pe.value(m.o)
    """,
    "coptpy": """
        import coptpy
        m = coptpy.Envr().createModel("t")
        m.setParam("Logging", 0)
        x, y = m.addVar(lb=0, ub=3), m.addVar(lb=0)
        m.addConstr(x + y <= 4)
        m.addConstr(x + 3 * y <= 6)
        m.setObjective(3 * x + 2 * y, coptpy.COPT.MAXIMIZE)
        m.solve()
        assert m.status == coptpy.COPT.OPTIMAL
        obj = m.objval
    """,
    "gurobipy": """
        import gurobipy as gp
        m = gp.Model()
        m.Params.OutputFlag = 0
        x, y = m.addVar(ub=3), m.addVar()
        m.addConstr(x + y <= 4)
        m.addConstr(x + 3 * y <= 6)
        m.setObjective(3 * x + 2 * y, gp.GRB.MAXIMIZE)
        m.optimize()
        assert m.Status == gp.GRB.OPTIMAL
        obj = m.ObjVal
    """,
}

# Runs every snippet in one container (one start instead of ten) and prints one tagged
# JSON line per solver, so solver banners on stdout do not get in the way.
RUNNER = """
import json, os, sys, traceback
snippets = json.loads(sys.stdin.readline())
def report(**kw):
    sys.stdout.flush()
    os.write(1, ("\\nRESULT " + json.dumps(kw) + "\\n").encode())
import errno
try:
    open("/opt/probe", "w")
    root_write = "ok"
except OSError as e:
    root_write = errno.errorcode.get(e.errno, str(e.errno))
report(name="_env", uid=os.getuid(), root_write=root_write)
for name, code in snippets.items():
    scope = {}
    try:
        exec(code, scope)
        report(name=name, obj=float(scope["obj"]))
    except BaseException:
        report(name=name, error=traceback.format_exc(limit=3))
"""


@pytest.fixture(scope="module")
def solver_results(sandbox_image: str) -> dict[str, dict]:
    snippets = {name: textwrap.dedent(code) for name, code in SOLVER_SNIPPETS.items()}
    code, out, err = docker_attach.run_container(
        sandbox_image,
        ["-c", RUNNER],
        HARDENED,
        entrypoint=["python"],
        input=(json.dumps(snippets) + "\n").encode(),
        timeout=180,
    )
    results = {}
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            row = json.loads(line[len("RESULT ") :])
            results[row["name"]] = row
    assert "_env" in results, f"runner failed (exit {code}): {err[-2000:].decode()}"
    return results


@pytest.mark.docker
def test_runs_unprivileged_on_a_read_only_root(solver_results: dict[str, dict]) -> None:
    assert solver_results["_env"] == {"name": "_env", "uid": 1000, "root_write": "EROFS"}


@pytest.mark.docker
@pytest.mark.parametrize("solver", list(SOLVER_SNIPPETS))
def test_solver_imports_and_solves_tiny_lp(solver_results: dict[str, dict], solver: str) -> None:
    row = solver_results.get(solver)
    assert row is not None, f"no result for {solver}"
    assert "error" not in row, row.get("error")
    assert row["obj"] == pytest.approx(11.0, rel=1e-6)


def _read_exact(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        assert chunk, "the worker closed its output"
        buf += chunk
    return buf


def _frame(box: docker_attach.AttachedContainer) -> dict:
    header = _read_exact(box.stdout.fileno(), 4)
    return json.loads(_read_exact(box.stdout.fileno(), struct.unpack(">I", header)[0]))


def _send(box: docker_attach.AttachedContainer, data: bytes) -> None:
    fd, view = box.stdin.fileno(), memoryview(data)
    while view:
        select.select([], [fd], [], 10)
        with contextlib.suppress(BlockingIOError):
            view = view[os.write(fd, view) :]


@pytest.mark.docker
def test_entrypoint_worker_serves_a_run(sandbox_image: str) -> None:
    """The image's own ENTRYPOINT starts the fork server as PID 1 with the solvers loaded."""
    box = docker_attach.AttachedContainer(
        f"or-env-image-test-{os.getpid()}", sandbox_image, [], HARDENED, auto_remove=False
    )
    try:
        ready = _frame(box)
        assert ready["ready"] is True
        assert ready["pid"] == 1
        assert ready["missing"] == []
        assert set(ready["preloaded"]) >= {"numpy", "scipy", "pulp", "highspy"}
        code = textwrap.dedent(SOLVER_SNIPPETS["pulp_cbc"]) + "print(obj)\n"
        request = json.dumps({"op": "run", "code": code, "timeout": 30, "max_output": 65536})
        _send(box, struct.pack(">I", len(request)) + request.encode())
        result = _frame(box)
        assert result["exit_code"] == 0, result
        assert float(result["stdout"].split()[0]) == pytest.approx(11.0)
        box.stdin.close()  # end of input: the worker exits by itself
        assert box.wait(timeout=30) == 0
    finally:
        box.kill()
        box.stdin.close()
        docker_attach.api().remove_container(box.id, force=True)
