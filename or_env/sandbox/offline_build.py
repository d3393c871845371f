"""The sandbox image built without a container registry, through the Docker SDK.

For machines that reach Debian's package mirror and PyPI but no image registry:

1. base image: debootstrap a minimal Debian (python3, python3-venv) from the mirror apt
   already uses here, and import it through the API (cached: skipped when present);
2. wheels: `pip download` the pinned requirements on the host, for the base image's Python
   version and glibc (cached: skipped while requirements.txt is unchanged);
3. the API's build of sandbox_image/Dockerfile on that base with `pip --no-index` and no
   network, tagged `<image>:<version>` and `<image>:latest`.

Every daemon operation goes through the SDK (no `docker` binary); debootstrap, chroot, tar
and pip run on the host. Needs root (debootstrap), a running Docker daemon, debootstrap,
and pip on the host. `sandbox_image/build_offline.sh` runs `main` with the same flags.

`build_serve_offline` does the same for the server image (serve_image/Dockerfile, built on
the sandbox image); `serve_image/build_offline.sh` runs `main serve`.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from or_env.sandbox import docker_attach
from or_env.sandbox import image as image_module
from or_env.sandbox.image import ImageBuildError

logger = logging.getLogger(__name__)

DEFAULT_SUITE = "bookworm"
REQUIREMENTS = Path("sandbox_image") / "requirements.txt"
CONFINE = Path("or_env") / "sandbox" / "confine.py"
# libgomp1: no pinned wheel links it today, but OpenMP builds of solvers expect it.
BASE_PACKAGES = ["python3", "python3-venv", "libgomp1", "passwd"]
# What a headless solver image never reads (paths inside the root file system).
TRIM_GLOBS = [
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "var/log/*.log",
    "var/cache/debconf/*-old",
    "etc/resolv.conf",
]
BASE_CHANGES = [
    "ENV LANG=C.UTF-8",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["python3"]',
]
PROBE = (
    "import os, platform, sys; print(f'{sys.version_info[0]}{sys.version_info[1]}', "
    "os.confstr('CS_GNU_LIBC_VERSION').split()[1], platform.machine())"
)

_LOG_TAIL_LINES = 30
# The host's PATH may name folders the chroot lacks (a venv, /usr/local/...).
_CHROOT_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
_PROGRESS_EVERY_S = 10.0
_IMPORT_CHUNK = 1 << 20
# Importing a few hundred MB into a busy daemon: bound only the daemon's silence.
_IMPORT_TIMEOUT_S = 1800.0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "or-env" / "sandbox"


def build_offline(
    *,
    image: str = image_module.IMAGE_NAME,
    version: str | None = None,
    base_tag: str | None = None,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
    cache_dir: Path | None = None,
    rebuild_base: bool = False,
    refresh_wheels: bool = False,
    context: Path | None = None,
) -> str:
    """Build `<image>:<version>` (and `:latest`) offline; return the versioned tag.

    `version` defaults to the one in the checkout's pyproject.toml, `base_tag` to
    `or-env-base:<suite>`, `mirror` to $OR_ENV_DEBIAN_MIRROR or the host's apt source for
    the suite. Progress goes to this module's logger; raises ImageBuildError with the
    reason (and what to do) when a step fails.
    """
    ok, why = image_module.daemon_status()
    if not ok:
        raise ImageBuildError(f"cannot build the sandbox image: {why}")
    root = context or image_module.build_context()
    if not (root / image_module.WORKER).is_file():
        raise ImageBuildError(
            f"{image_module.WORKER} is missing under {root}: build from a full source checkout"
        )
    version = version or _checkout_version(root)
    base_tag = base_tag or f"or-env-base:{suite}"
    cache_dir = cache_dir or default_cache_dir()
    total_start = time.monotonic()

    if not rebuild_base and image_module.image_exists(base_tag):
        logger.info("base image %s exists (pass --rebuild-base to make it again)", base_tag)
    else:
        step_start = time.monotonic()
        make_base(base_tag, suite, mirror or os.environ.get("OR_ENV_DEBIAN_MIRROR") or None)
        logger.info("base image done in %.0f s", time.monotonic() - step_start)

    py_tag, glibc, arch = probe_base(base_tag)
    wheels = download_wheels(root / REQUIREMENTS, cache_dir, py_tag, glibc, arch, refresh_wheels)

    step_start = time.monotonic()
    tag = f"{image}:{version}"
    build_sandbox_image(root, wheels, base_tag, tag, [f"{image}:latest"], version)
    size = docker_attach.api().inspect_image(tag).get("Size", 0)
    logger.info(
        "image %s built in %.0f s; size %d MB; total %.0f s",
        tag,
        time.monotonic() - step_start,
        size // 1_000_000,
        time.monotonic() - total_start,
    )
    return tag


def _checkout_version(root: Path) -> str:
    try:
        with open(root / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        # An installed package built from a context without its pyproject.toml.
        return image_module.package_version()


# ----------------------------------------------------------------------------- base image


def apt_mirror_for(suite: str, etc_apt: Path = Path("/etc/apt")) -> str | None:
    """The archive URI apt uses for exactly `suite`, so the base comes from the same mirror.

    Reads one-line `.list` files first, then deb822 `.sources` files, as apt lists them.
    """
    lists = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in lists:
        for line in _read_lines(path):
            # deb [options] URI SUITE COMPONENTS...
            fields = line.split()
            if not fields or fields[0] != "deb":
                continue
            i = 1
            if fields[i].startswith("["):
                while i < len(fields) and not fields[i].endswith("]"):
                    i += 1
                i += 1
            if i + 1 < len(fields) and fields[i + 1] == suite:
                return fields[i]
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        stanza: dict[str, str] = {}
        for line in [*_read_lines(path), ""]:
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition(":")
                stanza[key.strip().lower()] = value.strip()
                continue
            if not line.strip():
                enabled = stanza.get("enabled", "yes").split()[:1] != ["no"]
                if (
                    "deb" in stanza.get("types", "").split()
                    and enabled
                    and suite in stanza.get("suites", "").split()
                    and stanza.get("uris")
                ):
                    return stanza["uris"].split()[0]
                stanza = {}
    return None


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def make_base(base_tag: str, suite: str, mirror: str | None) -> None:
    """debootstrap `suite` into a temporary root file system and import it as `base_tag`."""
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"debootstrap needs root: run as root, or make {base_tag} on a machine where you are"
        )
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed: apt-get install debootstrap")
    mirror = mirror or apt_mirror_for(suite)
    if not mirror:
        raise ImageBuildError(
            f"no apt source for suite {suite!r} in /etc/apt/sources.list(.d): pass --mirror URL"
        )
    security = apt_mirror_for(f"{suite}-security")
    rootfs = Path(tempfile.mkdtemp(prefix="or-env-rootfs."))
    try:
        packages = list(BASE_PACKAGES)
        # apt in the chroot needs CA certificates only to fetch updates over https.
        if "https://" in f"{mirror} {security or ''}":
            packages.append("ca-certificates")
        logger.info("debootstrap %s from %s into %s", suite, mirror, rootfs)
        _run_logged(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                suite,
                str(rootfs),
                mirror,
            ],
            "debootstrap",
        )

        # Security updates, when the host has a security source for this suite.
        sources = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
        if security:
            sources.append(f"deb {security} {suite}-security main")
        (rootfs / "etc/apt/sources.list").write_text("\n".join(sources) + "\n")
        shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        logger.info("applying %s updates in the base", suite)
        _run_logged(
            [
                "chroot",
                str(rootfs),
                "/usr/bin/env",
                _CHROOT_PATH,
                "DEBIAN_FRONTEND=noninteractive",
                "sh",
                "-c",
                "apt-get update -q && apt-get upgrade -y -q",
            ],
            "apt-get upgrade in the base",
        )
        _run_logged(
            ["chroot", str(rootfs), "/usr/bin/env", _CHROOT_PATH, "apt-get", "clean"],
            "apt-get clean in the base",
        )
        for pattern in TRIM_GLOBS:
            for path in glob.glob(str(rootfs / pattern)):
                _remove(Path(path))
        (rootfs / "etc/resolv.conf").write_text("")

        logger.info("importing the root file system as %s", base_tag)
        import_rootfs(rootfs, base_tag)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _run_logged(cmd: Sequence[str], what: str) -> None:
    """Run a long host command: its output goes to a log file, with its latest line logged
    every few seconds as progress; on failure raise with the log's last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    fd, log_name = tempfile.mkstemp(prefix="or-env-build.", suffix=".log")
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        os.close(fd)
        os.unlink(log_name)
        raise ImageBuildError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    last_report = time.monotonic()
    with os.fdopen(fd, "w") as log_file, proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log_file.write(line)
            line = line.rstrip()
            if line:
                tail.append(line)
            if line and time.monotonic() - last_report >= _PROGRESS_EVERY_S:
                logger.info("%s: %s", what, line)
                last_report = time.monotonic()
        code = proc.wait()
    if code != 0:
        raise ImageBuildError(
            f"{what} failed (exit {code}; full log: {log_name}). Last lines:\n" + "\n".join(tail)
        )
    os.unlink(log_name)


def import_rootfs(rootfs: Path, base_tag: str) -> None:
    """Import `rootfs` as the image `base_tag`, streaming the tar archive to the daemon.

    `tar --numeric-owner` on the host writes the archive (so ownership inside the image is
    the chroot's, whatever users the host has) and the daemon reads it as it comes: the few
    hundred MB are never held in memory or written to disk.
    """
    repository, _, tag = base_tag.rpartition(":")
    if not repository or "/" in tag:
        repository, tag = base_tag, "latest"
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert tar.stdout is not None
    client = docker_attach.new_api(_IMPORT_TIMEOUT_S)
    try:
        result = client.import_image_from_stream(
            _chunks_with_progress(tar.stdout, "imported"),
            repository=repository,
            tag=tag,
            changes=BASE_CHANGES,
        )
        failed = import_error(result)
    except Exception as exc:
        failed = docker_attach.error_text(exc)
    finally:
        client.close()
        tar.stdout.close()
        tar_code = tar.wait()
    if tar_code != 0 and not failed:
        failed = f"tar exited with {tar_code}"
    if failed:
        # A half-written archive must not stay behind as a cached base.
        if image_module.image_exists(base_tag):
            docker_attach.api().remove_image(base_tag, force=True)
        raise ImageBuildError(f"importing {rootfs} as {base_tag} failed: {failed}")


def _chunks_with_progress(stream: IO[bytes], verb: str) -> Iterator[bytes]:
    read = stream.read
    sent = 0
    last_report = time.monotonic()
    while chunk := read(_IMPORT_CHUNK):
        sent += len(chunk)
        if time.monotonic() - last_report >= _PROGRESS_EVERY_S:
            logger.info("%s %d MB", verb, sent // 1_000_000)
            last_report = time.monotonic()
        yield chunk
    logger.info("%s %d MB in all", verb, sent // 1_000_000)


def import_error(result: object) -> str | None:
    """The daemon's error in an import's answer (JSON messages, one per line), or None."""
    for line in str(result or "").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and "error" in message:
            detail = message.get("errorDetail") or {}
            return str(detail.get("message") or message["error"])
    return None


# ----------------------------------------------------------------------------- wheels


def probe_base(base_tag: str) -> tuple[str, str, str]:
    """The base image's Python tag (`311`), glibc version (`2.36`) and machine (`x86_64`).

    The wheels must match the image's interpreter and glibc, not the host's.
    """
    return _probe_platform(base_tag, "python3", [])


def _probe_platform(tag: str, python: str, flags: list[str]) -> tuple[str, str, str]:
    fields = _run_python_in(tag, python, ["-c", PROBE], flags).split()
    if len(fields) != 3:
        raise ImageBuildError(f"{tag} answered {fields!r} when asked for its Python and glibc")
    return fields[0], fields[1], fields[2]


def _run_python_in(tag: str, python: str, args: list[str], flags: list[str]) -> str:
    """Run `python args` in a throwaway container of `tag` with no network; its stdout."""
    try:
        code, out, err = docker_attach.run_container(
            tag, args, ["--network", "none", *flags], entrypoint=[python], timeout=120
        )
    except Exception as exc:
        raise ImageBuildError(
            f"cannot run {python} in {tag}: {docker_attach.error_text(exc)}"
        ) from exc
    if code != 0:
        raise ImageBuildError(
            f"{python} {' '.join(args)} in {tag} failed (exit {code}): "
            + err.decode(errors="replace")[-2000:]
        )
    return out.decode(errors="replace")


def pip_platforms(glibc: str, arch: str) -> list[str]:
    """`--platform` arguments for every manylinux tag that glibc `glibc` can run."""
    minor = int(glibc.split(".")[1])
    args = ["--platform", f"manylinux2014_{arch}"]
    for m in range(17, minor + 1):
        args += ["--platform", f"manylinux_2_{m}_{arch}"]
    return args


def pip_command() -> list[str]:
    """The host's pip: $PIP, else the pip of the interpreter running this build."""
    return shlex.split(os.environ.get("PIP", "")) or [sys.executable, "-m", "pip"]


def _host_pip() -> list[str]:
    pip = pip_command()
    if subprocess.run([*pip, "--version"], capture_output=True, check=False).returncode != 0:
        raise ImageBuildError(
            f"no pip on the host (tried: {shlex.join(pip)}): install python3-pip or set PIP"
        )
    return pip


def pip_download(
    pip: list[str],
    py_tag: str,
    glibc: str,
    arch: str,
    dest: Path,
    requirements: Path,
    extra: Sequence[str] = (),
) -> None:
    """`pip download` binary wheels of `requirements` for the image's Python and glibc."""
    cmd = [
        *pip,
        "download",
        "--quiet",
        "--only-binary=:all:",
        *extra,
        "--python-version",
        py_tag,
        "--implementation",
        "cp",
        "--abi",
        f"cp{py_tag}",
        *pip_platforms(glibc, arch),
        "-d",
        str(dest),
        "-r",
        str(requirements),
    ]
    if subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False).returncode != 0:
        raise ImageBuildError(
            f"pip download of {requirements.name} failed: is PyPI reachable, and has every "
            f"requirement a wheel for cp{py_tag} {arch}?"
        )


def _wheel_cache(
    cache_dir: Path, digest: str, py_tag: str, glibc: str, arch: str, refresh: bool
) -> tuple[Path, str, bool]:
    """Where the wheels for a platform go, the stamp naming what they were fetched for
    (`digest` of the inputs and the platform), and whether they are there already (never
    when `refresh`). The caller writes the stamp once it has fetched them."""
    wheels = cache_dir / "wheels" / f"cp{py_tag}-manylinux_2_{glibc.split('.')[1]}_{arch}"
    stamp = f"{digest} cp{py_tag} glibc{glibc} {arch}"
    try:
        cached = not refresh and (wheels / ".stamp").read_text().strip() == stamp
    except OSError:
        cached = False
    where = f"cp{py_tag}/glibc {glibc}/{arch}"
    if cached:
        logger.info("wheels for %s are cached in %s", where, wheels)
    else:
        logger.info("downloading wheels for %s into %s", where, wheels)
    return wheels, stamp, cached


def download_wheels(
    requirements: Path, cache_dir: Path, py_tag: str, glibc: str, arch: str, refresh: bool
) -> Path:
    """The folder of wheels for `requirements` on that platform, downloaded unless cached."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    wheels, stamp, cached = _wheel_cache(cache_dir, digest, py_tag, glibc, arch, refresh)
    if cached:
        return wheels
    step_start = time.monotonic()
    pip = _host_pip()
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    pip_download(pip, py_tag, glibc, arch, wheels, requirements, ["--no-deps"])
    (wheels / ".stamp").write_text(stamp + "\n")
    size = sum(p.stat().st_size for p in wheels.glob("*.whl"))
    logger.info("wheels done in %.0f s (%d MB)", time.monotonic() - step_start, size // 1_000_000)
    return wheels


# ----------------------------------------------------------------------------- image


def build_sandbox_image(
    root: Path, wheels: Path, base_tag: str, tag: str, extra_tags: list[str], version: str
) -> None:
    """The API's build of sandbox_image/Dockerfile on `base_tag`, with no network."""
    # A context with the repository's layout holding only what the Dockerfile copies, so
    # the wheels never enter the source tree.
    ctx = Path(tempfile.mkdtemp(prefix="or-env-context."))
    try:
        (ctx / "sandbox_image" / "wheels").mkdir(parents=True)
        (ctx / "or_env" / "sandbox").mkdir(parents=True)
        shutil.copy(root / image_module.DOCKERFILE, ctx / "sandbox_image")
        shutil.copy(root / REQUIREMENTS, ctx / "sandbox_image")
        shutil.copy(root / image_module.WORKER, ctx / "or_env" / "sandbox")
        shutil.copy(root / CONFINE, ctx / "or_env" / "sandbox")
        for wheel in wheels.glob("*.whl"):
            _link_or_copy(wheel, ctx / "sandbox_image" / "wheels" / wheel.name)
        logger.info("building %s on %s (no network)", tag, base_tag)
        _build_offline_image(
            ctx,
            image_module.DOCKERFILE,
            [tag, *extra_tags],
            {
                "BASE_IMAGE": base_tag,
                "PIP_ARGS": "--no-index --find-links /build",
                "OR_ENV_VERSION": version,
            },
        )
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def _build_offline_image(
    context: Path, dockerfile: Path | str, tags: list[str], buildargs: dict[str, str]
) -> None:
    """Build with no network through the SDK; ImageBuildError with the log's last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    failed = image_module.api_build(
        context, dockerfile, tags, buildargs=buildargs, network_mode="none", tail=tail, log=logger
    )
    if failed:
        raise ImageBuildError(
            f"building {tags[0]} failed: {failed}\nLast lines of the build log:\n" + "\n".join(tail)
        )


# ----------------------------------------------------------------------------- server image

SERVE_DOCKERFILE = Path("serve_image") / "Dockerfile"


def build_serve_offline(
    *,
    tag: str | None = None,
    sandbox_image: str | None = None,
    cache_dir: Path | None = None,
    refresh_wheels: bool = False,
    context: Path | None = None,
) -> str:
    """Build the server image (serve_image/Dockerfile) on the sandbox image, offline.

    Asks the sandbox image for its Python, glibc, architecture and installed packages;
    `pip download`s on the host the wheels of or-env's dependencies, its `serve` extra,
    omegaconf and the build backend, holding the sandbox image's packages at their versions
    (cached until any of that changes); builds with pip --no-index and no network.
    Returns the tag; raises ImageBuildError with the reason.
    """
    ok, why = image_module.daemon_status()
    if not ok:
        raise ImageBuildError(f"cannot build the server image: {why}")
    root = context or image_module.build_context()
    version = _checkout_version(root)
    tag = tag or f"or-env-serve:{version}"
    sandbox_image = sandbox_image or image_module.image_tag(version)
    cache_dir = cache_dir or default_cache_dir().with_name("serve")
    if not image_module.image_exists(sandbox_image):
        raise ImageBuildError(
            f"no sandbox image {sandbox_image}: build it first (sandbox_image/build_offline.sh)"
        )
    total_start = time.monotonic()

    # 1. What the sandbox image holds.
    venv_python = "/opt/venv/bin/python"
    root_user = ["--user", "0:0"]
    py_tag, glibc, arch = _probe_platform(sandbox_image, venv_python, root_user)
    installed = _run_python_in(
        sandbox_image, venv_python, ["-m", "pip", "freeze", "--all"], root_user
    )

    work = Path(tempfile.mkdtemp(prefix="or-env-serve-build."))
    try:
        # 2. Wheels: what the Dockerfile installs (or-env's dependencies, the serve extra,
        # omegaconf) and the build backend that pip's isolated build of /src needs.
        with open(root / "pyproject.toml", "rb") as f:
            data = tomllib.load(f)
        project = data["project"]
        wanted = [*project["dependencies"], *project["optional-dependencies"]["serve"]]
        wanted.append("omegaconf>=2.4")
        requirements = "\n".join(wanted) + "\n"
        backend = "\n".join(data["build-system"]["requires"]) + "\n"
        (work / "requirements.txt").write_text(requirements)
        (work / "backend.txt").write_text(backend)
        (work / "installed.txt").write_text(installed)
        digest = hashlib.sha256(f"{requirements}\n{backend}{installed}".encode()).hexdigest()
        wheels, stamp, cached = _wheel_cache(cache_dir, digest, py_tag, glibc, arch, refresh_wheels)
        if not cached:
            step_start = time.monotonic()
            pip = _host_pip()
            shutil.rmtree(wheels, ignore_errors=True)
            (wheels / "backend").mkdir(parents=True)
            # --constraint: the versions the sandbox image holds, which the install keeps.
            constraint = ["--constraint", str(work / "installed.txt")]
            pip_download(pip, py_tag, glibc, arch, wheels, work / "requirements.txt", constraint)
            # pip builds /src in an isolated environment of its own: the build backend and
            # all it needs go in whole, even where the sandbox image has the same versions.
            pip_download(
                pip, py_tag, glibc, arch, wheels / "backend", work / "backend.txt", constraint
            )
            (wheels / ".stamp").write_text(stamp + "\n")
            logger.info("wheels done in %.0f s", time.monotonic() - step_start)

        # The build context: what the Dockerfile copies, and of the wheels only those the
        # sandbox image does not hold already (plus the whole build backend).
        stage = work / "context"
        (stage / "serve_image").mkdir(parents=True)
        shutil.copy(root / SERVE_DOCKERFILE, stage / "serve_image")
        shutil.copy(root / "pyproject.toml", stage)
        shutil.copy(root / "README.md", stage)
        shutil.copytree(
            root / "or_env", stage / "or_env", ignore=shutil.ignore_patterns("__pycache__")
        )
        (stage / "wheels").mkdir()
        have = {_installed_key(line) for line in installed.splitlines()} - {None}
        chosen = [w for w in wheels.glob("*.whl") if _wheel_key(w.name) not in have]
        chosen += list((wheels / "backend").glob("*.whl"))
        for wheel in chosen:
            _link_or_copy(wheel, stage / "wheels" / wheel.name)
        size = sum(w.stat().st_size for w in chosen)
        logger.info("%d wheels (%d MB) go into the build context", len(chosen), size // 1_000_000)

        # 3. The image.
        step_start = time.monotonic()
        logger.info("building %s on %s (no network)", tag, sandbox_image)
        _build_offline_image(
            stage,
            SERVE_DOCKERFILE,
            [tag],
            {
                "SANDBOX_IMAGE": sandbox_image,
                "PIP_ARGS": "--no-index --find-links /wheels",
                "OR_ENV_VERSION": version,
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    api = docker_attach.api()
    size = api.inspect_image(tag).get("Size", 0)
    base_size = api.inspect_image(sandbox_image).get("Size", 0)
    logger.info(
        "image %s built in %.0f s; size %d MB (%d MB over the sandbox image); total %.0f s",
        tag,
        time.monotonic() - step_start,
        size // 1_000_000,
        (size - base_size) // 1_000_000,
        time.monotonic() - total_start,
    )
    return tag


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_key(line: str) -> tuple[str, str] | None:
    name, sep, version = line.strip().partition("==")
    return (_norm(name), version) if sep else None


def _wheel_key(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return _norm(name), version


def _link_or_copy(source: Path, target: Path) -> None:
    try:  # hard links when the cache is on the same file system, copies otherwise
        os.link(source, target)
    except FileExistsError:
        pass
    except OSError:
        shutil.copy(source, target)


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_offline.sh",
        description="Build the sandbox image without a container registry "
        "(debootstrap base, wheels from PyPI, build with no network).",
        epilog="env: OR_ENV_DEBIAN_MIRROR (same as --mirror), PIP (host pip command, "
        "default: this Python's pip)",
    )
    parser.add_argument("--version", help="image tag version (default: pyproject.toml's)")
    parser.add_argument("--image", default=image_module.IMAGE_NAME, help="image name")
    parser.add_argument(
        "--base-tag", help="tag of the imported Debian base (default: or-env-base:SUITE)"
    )
    parser.add_argument(
        "--suite", default=DEFAULT_SUITE, help="Debian suite for the base (python3 >= 3.11)"
    )
    parser.add_argument(
        "--mirror", help="Debian mirror (default: apt's source for the suite on this host)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/or-env/sandbox)",
    )
    parser.add_argument(
        "--rebuild-base",
        action="store_true",
        help="debootstrap the base again even when the image exists",
    )
    parser.add_argument(
        "--refresh-wheels",
        action="store_true",
        help="download the wheels again even when the cache matches",
    )
    return parser.parse_args(argv)


def parse_serve_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serve_image/build_offline.sh",
        description="Build the server image on the sandbox image without a package index "
        "in the container (wheels from the host's pip, build with no network).",
        epilog="env: PIP (host pip command, default: this Python's pip)",
    )
    parser.add_argument("--tag", help="image tag (default: or-env-serve:<version>)")
    parser.add_argument(
        "--sandbox-image", help="the sandbox image to build on (default: or-env-sandbox:<version>)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/or-env/serve)",
    )
    parser.add_argument(
        "--refresh-wheels",
        action="store_true",
        help="download the wheels again even when the cache matches",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """`[serve] FLAGS...`: build the sandbox image, or with `serve` the server image."""
    argv = list(sys.argv[1:] if argv is None else argv)
    serve = bool(argv) and argv[0] == "serve"
    args = parse_serve_args(argv[1:]) if serve else parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    prefix = "serve build_offline" if serve else "build_offline"
    handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        if serve:
            build_serve_offline(
                tag=args.tag,
                sandbox_image=args.sandbox_image,
                cache_dir=args.cache_dir,
                refresh_wheels=args.refresh_wheels,
            )
        else:
            build_offline(
                image=args.image,
                version=args.version,
                base_tag=args.base_tag,
                suite=args.suite,
                mirror=args.mirror,
                cache_dir=args.cache_dir,
                rebuild_base=args.rebuild_base,
                refresh_wheels=args.refresh_wheels,
            )
    except ImageBuildError as exc:
        logger.error("error: %s", exc)
        return 1
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
