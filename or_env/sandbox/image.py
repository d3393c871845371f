"""The sandbox Docker image: its name, whether it and the daemon are there, and its build.

Used by the Docker backend (is the daemon usable, does the image exist) and by the
`or-env sandbox build` command. Talks to the daemon through the Docker SDK for Python
(`pip install 'or-env[docker]'`), which finds it as the CLI does (DOCKER_HOST and the TLS
variables), so no `docker` binary is needed.

Two build paths, both from a source checkout (the build context is the repository root):
  online   the API's build of sandbox_image/Dockerfile (what `docker build -f
           sandbox_image/Dockerfile .` does) on python:3.11-slim from a registry;
  offline  `offline_build.build_offline` (also `sandbox_image/build_offline.sh`): a Debian
           base made with debootstrap and wheels downloaded from PyPI on the host, for
           machines that reach no image registry.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from or_env.errors import SandboxError
from or_env.sandbox import docker_attach

logger = logging.getLogger(__name__)

IMAGE_NAME = "or-env-sandbox"
ONLINE_BASE_IMAGE = "python:3.11-slim"
CONTEXT_ENV = "OR_ENV_SANDBOX_CONTEXT"
DOCKERFILE = Path("sandbox_image") / "Dockerfile"
OFFLINE_SCRIPT = Path("sandbox_image") / "build_offline.sh"
WORKER = Path("or_env") / "sandbox" / "worker.py"

_STATUS_TIMEOUT_S = 15.0
_BUILD_TIMEOUT_S = 1800.0
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
    """Turn a complaint about the daemon (CLI or SDK error text) into what to do."""
    text = stderr.strip()
    low = text.lower()
    if "permission denied" in low:
        return (
            "permission denied on the Docker socket: add your user to the docker group "
            "(sudo usermod -aG docker $USER, then log in again) or run as root"
        )
    if (
        "cannot connect to the docker daemon" in low
        or "is the docker daemon running" in low
        # The SDK's words for a socket that is missing or that nobody listens on.
        or "no such file or directory" in low
        or "connection refused" in low
        or "connection aborted" in low
    ):
        return (
            "the Docker daemon is not running: start it (sudo systemctl start docker, "
            "or run dockerd as root) and check that DOCKER_HOST, if set, points at it"
        )
    last = text.splitlines()[-1] if text else "no error text"
    return f"the Docker daemon did not answer: {last}"


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def daemon_status(timeout: float = _STATUS_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a Docker daemon answers, and a sentence saying so or what to do about it."""
    try:
        client = docker_attach.new_api(timeout)
        info = client.version()
        version = f"Docker {info.get('Version', '?')}"
        if docker_attach.is_podman(client):
            version = f"Podman {info.get('Version', '?')} (Docker-compatible API)"
    except docker_attach.SDKMissingError as exc:
        return False, f"{exc}; or use sandbox='local'"
    except Exception as exc:
        if _is_timeout(exc):
            return (
                False,
                f"the Docker daemon did not answer within {timeout:g} s: is it overloaded or hung?",
            )
        return False, explain_docker_error(docker_attach.error_text(exc))
    else:
        client.close()
    return True, f"{version} answers"


def image_exists(tag: str | None = None) -> bool:
    """Whether the daemon has the image `tag` (default: this package's version tag)."""
    try:
        docker_attach.api(_STATUS_TIMEOUT_S).inspect_image(tag or image_tag())
    except Exception:
        return False
    return True


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
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = image, "latest"
    try:
        for event in docker_attach.api(timeout).pull(repo, tag=tag, stream=True, decode=True):
            if "error" in event:
                logger.info("cannot pull %s: %s", image, event["error"])
                return False
    except Exception as exc:
        if _is_timeout(exc):
            logger.info(
                "pulling %s took over %g s; treating the registry as unreachable", image, timeout
            )
        else:
            logger.info("cannot pull %s: %s", image, docker_attach.error_text(exc))
        return False
    return image_exists(image)


def build_command(offline: bool, context: Path, tag: str) -> list[str]:
    """The command that builds `tag` from `context` on the chosen path.

    Both paths run through the API (`_api_build`, `offline_build.build_offline`); this
    command is only their equivalent, for the log and for people to run by hand.
    """
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
    if offline:
        # Its own steps log their progress and raise ImageBuildError with the reason.
        from or_env.sandbox import offline_build

        name, _, version = tag.rpartition(":")
        offline_build.build_offline(image=name, version=version, context=context)
        return tag
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    failed = _api_build(context, tag, tail)
    if failed:
        raise ImageBuildError(
            f"building {tag} failed ({failed}); if no image registry is reachable here, build "
            "with offline=True (or-env sandbox build --offline). Last lines of the build log:\n"
            + "\n".join(tail)
        )
    logger.info("built %s", tag)
    return tag


def _log_line(line: str, tail: collections.deque[str], log: logging.Logger | None = None) -> None:
    line = line.rstrip()
    if line:
        tail.append(line)
        (log or logger).info("%s", line)


def _api_build(context: Path, tag: str, tail: collections.deque[str]) -> str | None:
    """Build the Dockerfile through the API, logging its progress; None, or why it failed."""
    name, _, version = tag.rpartition(":")
    tags = [tag, f"{name}:latest"]
    return api_build(context, DOCKERFILE, tags, buildargs={"OR_ENV_VERSION": version}, tail=tail)


def api_build(
    context: Path,
    dockerfile: Path | str,
    tags: list[str],
    *,
    buildargs: dict[str, str] | None = None,
    network_mode: str | None = None,
    tail: collections.deque[str] | None = None,
    log: logging.Logger | None = None,
) -> str | None:
    """`docker build --force-rm` through the API: None, or the daemon's reason it failed.

    `dockerfile` is relative to `context`; the image gets every tag of `tags` (the first is
    the one it is built as). Each line of the build's output goes to `log` (default: this
    module's logger) and to `tail`, for an error message.
    """
    tail = tail if tail is not None else collections.deque(maxlen=_LOG_TAIL_LINES)
    # Building takes minutes: no read timeout on the stream, only on the daemon's silence
    # between two lines, which a long pip install can make long too.
    client = docker_attach.new_api(_BUILD_TIMEOUT_S)
    try:
        stream = client.build(
            path=str(context),
            dockerfile=str(dockerfile),
            buildargs=buildargs or {},
            tag=tags[0],
            network_mode=network_mode,
            forcerm=True,
            rm=True,
            decode=True,
        )
        image_id, failed = follow_build(stream, tail, log)
        if failed:
            return failed
        for extra in tags[1:]:
            name, _, version = extra.rpartition(":")
            client.tag(image_id or tags[0], name, version)
    except Exception as exc:
        return docker_attach.error_text(exc)
    finally:
        client.close()
    return None


def follow_build(
    events: Iterable[dict[str, Any]],
    tail: collections.deque[str],
    log: logging.Logger | None = None,
) -> tuple[str | None, str | None]:
    """Log a build's decoded event stream: (the built image's id, the daemon's error or None).

    The daemon reports a failed step as an `error` event in a stream that still ends
    normally, so the error must be read from the events, not from an exception.
    """
    image_id = None
    for event in events:
        if "stream" in event:
            for line in str(event["stream"]).splitlines():
                _log_line(line, tail, log)
        elif "status" in event:  # pulling the base image
            _log_line(" ".join(str(event.get(k, "")) for k in ("id", "status")), tail, log)
        elif "aux" in event:
            image_id = (event["aux"] or {}).get("ID", image_id)
        if "error" in event:
            detail = event.get("errorDetail") or {}
            _log_line(str(event["error"]), tail, log)
            return image_id, str(detail.get("message") or event["error"])
    return image_id, None
