"""The sandbox Docker image: its name, whether it and the daemon are there, and its build.

Used by the Docker backend (is the daemon usable, does the image exist) and by the
`or-env sandbox build` command. Talks to Docker through the `docker` command, so no
Docker SDK is needed.

Two build paths, both from a source checkout (the build context is the repository root):
  online   `docker build -f sandbox_image/Dockerfile .` on python:3.11-slim from a registry;
  offline  `sandbox_image/build_offline.sh`: a Debian base made with debootstrap and wheels
           downloaded from PyPI on the host, for machines that reach no image registry.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from or_env.errors import SandboxError

logger = logging.getLogger(__name__)

IMAGE_NAME = "or-env-sandbox"
ONLINE_BASE_IMAGE = "python:3.11-slim"
CONTEXT_ENV = "OR_ENV_SANDBOX_CONTEXT"
DOCKERFILE = Path("sandbox_image") / "Dockerfile"
OFFLINE_SCRIPT = Path("sandbox_image") / "build_offline.sh"
WORKER = Path("or_env") / "sandbox" / "worker.py"

_STATUS_TIMEOUT_S = 15.0
_LOG_TAIL_LINES = 40


class ImageBuildError(SandboxError):
    """The sandbox image could not be built; the message says why and what to try."""


def package_version() -> str:
    """The installed or-env version, which is also the image's version tag."""
    try:
        return metadata.version("or-env")
    except metadata.PackageNotFoundError:
        # A checkout used without `pip install -e .`.
        from or_env import __version__

        return __version__


def image_tag(version: str | None = None) -> str:
    """The image reference for a version, by default this package's: `or-env-sandbox:0.1.0`."""
    return f"{IMAGE_NAME}:{version or package_version()}"


def explain_docker_error(stderr: str) -> str:
    """Turn the docker CLI's complaint about the daemon into what the user should do."""
    text = stderr.strip()
    low = text.lower()
    if "permission denied" in low:
        return (
            "permission denied on the Docker socket: add your user to the docker group "
            "(sudo usermod -aG docker $USER, then log in again) or run as root"
        )
    if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low:
        return (
            "the Docker daemon is not running: start it (sudo systemctl start docker, "
            "or run dockerd as root) and check that DOCKER_HOST, if set, points at it"
        )
    last = text.splitlines()[-1] if text else "no error text"
    return f"the Docker daemon did not answer: {last}"


def daemon_status(timeout: float = _STATUS_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a Docker daemon answers, and a sentence saying so or what to do about it."""
    docker = shutil.which("docker")
    if docker is None:
        return False, (
            "the docker command is not installed: install Docker Engine "
            "(Debian/Ubuntu: apt-get install docker.io) and start it, or use sandbox='local'"
        )
    try:
        proc = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return (
            False,
            f"the Docker daemon did not answer within {timeout:g} s: is it overloaded or hung?",
        )
    if proc.returncode != 0:
        return False, explain_docker_error(proc.stderr)
    return True, f"Docker {proc.stdout.strip()} answers"


def image_exists(tag: str | None = None) -> bool:
    """Whether the daemon has the image `tag` (default: this package's version tag)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        proc = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Id}}", tag or image_tag()],
            capture_output=True,
            timeout=_STATUS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def build_context() -> Path:
    """The repository root to build from: $OR_ENV_SANDBOX_CONTEXT, else this checkout."""
    override = os.environ.get(CONTEXT_ENV)
    candidates = [Path(override)] if override else list(Path(__file__).resolve().parents)
    for root in candidates:
        if (root / DOCKERFILE).is_file() and (root / WORKER).is_file():
            return root
    where = f"{CONTEXT_ENV}={override}" if override else "the parents of this installed package"
    raise ImageBuildError(
        f"no sandbox build context in {where}: the image is built from a source checkout "
        f"(it needs {DOCKERFILE} and {WORKER}); clone the repository and run the build there, "
        f"or set {CONTEXT_ENV} to its root"
    )


def can_pull(image: str = ONLINE_BASE_IMAGE, timeout: float = 120.0) -> bool:
    """Whether `image` is present or can be pulled from a registry now."""
    if image_exists(image):
        return True
    logger.info("pulling %s to see whether a registry is reachable", image)
    try:
        proc = subprocess.run(
            ["docker", "pull", "--quiet", image],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        logger.info(
            "pulling %s took over %g s; treating the registry as unreachable", image, timeout
        )
        return False
    if proc.returncode != 0:
        logger.info("cannot pull %s: %s", image, proc.stderr.strip().splitlines()[-1:] or "")
    return proc.returncode == 0


def build_command(offline: bool, context: Path, tag: str) -> list[str]:
    """The command that builds `tag` from `context` on the chosen path."""
    name, _, version = tag.rpartition(":")
    if not name or "/" in version:
        raise ValueError(f"image tag {tag!r} must look like NAME:VERSION")
    if offline:
        return ["bash", str(context / OFFLINE_SCRIPT), "--image", name, "--version", version]
    return [
        "docker",
        "build",
        "--force-rm",
        "-f",
        str(context / DOCKERFILE),
        "--build-arg",
        f"OR_ENV_VERSION={version}",
        "-t",
        tag,
        "-t",
        f"{name}:latest",
        str(context),
    ]


def build_image(
    offline: bool | None = None,
    *,
    tag: str | None = None,
    context: Path | None = None,
) -> str:
    """Build the sandbox image and return its tag; the build log goes to this logger.

    `offline=None` picks the offline path when the online base image cannot be pulled.
    Raises ImageBuildError when the daemon is unusable or the build fails.
    """
    ok, why = daemon_status()
    if not ok:
        raise ImageBuildError(f"cannot build the sandbox image: {why}")
    tag = tag or image_tag()
    context = context or build_context()
    if offline is None:
        offline = not can_pull(ONLINE_BASE_IMAGE)
        if offline:
            logger.info("%s cannot be pulled: using the offline build", ONLINE_BASE_IMAGE)
    cmd = build_command(offline, context, tag)
    logger.info("building %s (%s): %s", tag, "offline" if offline else "online", " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    with subprocess.Popen(
        cmd,
        cwd=context,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            logger.info("%s", line)
        code = proc.wait()
    if code != 0:
        hint = (
            "the offline build needs root, debootstrap, pip and PyPI; see sandbox_image/README.md"
            if offline
            else "if no image registry is reachable here, build with offline=True "
            "(or-env sandbox build --offline)"
        )
        raise ImageBuildError(
            f"building {tag} failed (exit {code}); {hint}. Last lines of the build log:\n"
            + "\n".join(tail)
        )
    logger.info("built %s", tag)
    return tag
