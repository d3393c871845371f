#!/usr/bin/env bash
# Build the server image without reaching a package index from a container.
#
# For machines whose containers reach no index (or only through a proxy they do not
# trust) while the host's pip reaches PyPI, as sandbox_image/build_offline.sh does for the
# sandbox image:
#   1. ask the sandbox image for its Python version, glibc, architecture and installed
#      packages (the server image is built on it);
#   2. `pip download`, on the host, the wheels of or-env's dependencies, its `serve` extra,
#      omegaconf and the build backend, for that Python and glibc, holding the sandbox
#      image's packages at their versions (cached until any of that changes);
#   3. `docker build` serve_image/Dockerfile with those wheels in the context, pip
#      --no-index and no network (serve_image/build.sh makes the context).
#
# Needs: the sandbox image (sandbox_image/build_offline.sh), a running Docker daemon, and
# pip on the host.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: build_offline.sh [options]

  --tag TAG            image tag (default: or-env-serve:<version in pyproject.toml>)
  --sandbox-image IMG  the sandbox image to build on (default: or-env-sandbox:<version>)
  --cache-dir DIR      wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/or-env/serve)
  --refresh-wheels     download the wheels again even when the cache matches
  -h, --help           this text

env: PIP (host pip command, default "python3 -m pip"), PYTHON (host python >= 3.11,
default python3; reads pyproject.toml)
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

tag=""
sandbox_image=""
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/or-env/serve"
refresh_wheels=0
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag="$2"; shift 2 ;;
        --sandbox-image) sandbox_image="$2"; shift 2 ;;
        --cache-dir) cache_dir="$2"; shift 2 ;;
        --refresh-wheels) refresh_wheels=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build_offline: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

say() { echo "serve build_offline: $*" >&2; }
die() { say "error: $*"; exit 1; }

version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n 1)"
[ -n "$version" ] || die "no version found in $root/pyproject.toml"
tag="${tag:-or-env-serve:$version}"
sandbox_image="${sandbox_image:-or-env-sandbox:$version}"
read -r -a python_cmd <<<"${PYTHON:-python3}"
read -r -a pip_cmd <<<"${PIP:-python3 -m pip}"

docker info >/dev/null 2>&1 \
    || die "the Docker daemon does not answer (docker info failed): start it, or run .ci/docker_setup.sh as root"
docker image inspect "$sandbox_image" >/dev/null 2>&1 \
    || die "no sandbox image $sandbox_image: build it first (sandbox_image/build_offline.sh)"
total_start=$SECONDS

# --- 1. what the sandbox image holds ----------------------------------------------------
work="$(mktemp -d /tmp/or-env-serve-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
probe() { docker run --rm --network none --user 0:0 --entrypoint /opt/venv/bin/python "$sandbox_image" "$@"; }
read -r py_tag glibc arch < <(probe -c \
    "import os, platform, sys; print(f'{sys.version_info[0]}{sys.version_info[1]}', os.confstr('CS_GNU_LIBC_VERSION').split()[1], platform.machine())")
probe -m pip freeze --all >"$work/installed.txt"

# --- 2. wheels --------------------------------------------------------------------------
# What the Dockerfile installs: or-env's dependencies, the serve extra, omegaconf, and the
# build backend that pip's isolated build of /src needs.
"${python_cmd[@]}" - "$root/pyproject.toml" "$work" <<'PY' \
    || die "could not read pyproject.toml with ${python_cmd[*]} (Python >= 3.11 needed)"
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    data = tomllib.load(f)
project = data["project"]
wanted = [*project["dependencies"], *project["optional-dependencies"]["serve"], "omegaconf>=2.4"]
backend = data["build-system"]["requires"]
with open(f"{sys.argv[2]}/requirements.txt", "w") as f:
    f.write("\n".join(wanted) + "\n")
with open(f"{sys.argv[2]}/backend.txt", "w") as f:
    f.write("\n".join(backend) + "\n")
PY
glibc_minor="${glibc#2.}"
platforms=(--platform "manylinux2014_$arch")
for minor in $(seq 17 "$glibc_minor"); do
    platforms+=(--platform "manylinux_2_${minor}_$arch")
done
wheels="$cache_dir/wheels/cp$py_tag-manylinux_2_${glibc_minor}_$arch"
stamp_want="$( (cat "$work/requirements.txt"; echo; cat "$work/backend.txt" "$work/installed.txt") | sha256sum | cut -d" " -f1) cp$py_tag glibc$glibc $arch"
if [ "$refresh_wheels" -eq 0 ] && [ "$(cat "$wheels/.stamp" 2>/dev/null)" = "$stamp_want" ]; then
    say "wheels for cp$py_tag/glibc $glibc/$arch are cached in $wheels"
else
    step_start=$SECONDS
    "${pip_cmd[@]}" --version >/dev/null 2>&1 \
        || die "no pip on the host (tried: ${pip_cmd[*]}): install python3-pip or set PIP"
    rm -rf "$wheels"
    mkdir -p "$wheels"
    say "downloading wheels for cp$py_tag/glibc $glibc/$arch into $wheels"
    # --constraint: the versions the sandbox image holds, which the install keeps.
    "${pip_cmd[@]}" download --quiet --only-binary=:all: \
        --python-version "$py_tag" --implementation cp --abi "cp$py_tag" "${platforms[@]}" \
        --constraint "$work/installed.txt" -d "$wheels" -r "$work/requirements.txt" \
        || die "pip download failed: is PyPI reachable, and has every dependency a wheel for cp$py_tag $arch?"
    # pip builds /src in an isolated environment of its own: the build backend and all it
    # needs go in whole, even where the sandbox image has the same versions.
    "${pip_cmd[@]}" download --quiet --only-binary=:all: \
        --python-version "$py_tag" --implementation cp --abi "cp$py_tag" "${platforms[@]}" \
        --constraint "$work/installed.txt" -d "$wheels/backend" -r "$work/backend.txt" \
        || die "pip download of the build backend failed"
    echo "$stamp_want" >"$wheels/.stamp"
    say "wheels done in $((SECONDS - step_start)) s ($(du -sh "$wheels" | cut -f1))"
fi

# The sandbox image has many of them already: only the others go into the context.
mkdir "$work/wheels"
"${python_cmd[@]}" - "$work/installed.txt" "$wheels" "$work/wheels" <<'PY'
import os, re, shutil, sys
installed, source, target = sys.argv[1:]
def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()
have = set()
for line in open(installed):
    name, sep, version = line.strip().partition("==")
    if sep:
        have.add((norm(name), version))
def put(folder, wheel):
    try:  # hard links when the cache is on the same file system, copies otherwise
        os.link(os.path.join(folder, wheel), os.path.join(target, wheel))
    except FileExistsError:
        pass
    except OSError:
        shutil.copy(os.path.join(folder, wheel), os.path.join(target, wheel))
for wheel in os.listdir(source):
    name, version = wheel.split("-")[:2] if wheel.endswith(".whl") else ("", "")
    if name and (norm(name), version) not in have:
        put(source, wheel)
for wheel in os.listdir(os.path.join(source, "backend")):
    put(os.path.join(source, "backend"), wheel)
PY
say "$(ls "$work/wheels" | wc -l) wheels ($(du -sh "$work/wheels" | cut -f1)) go into the build context"

# --- 3. image ---------------------------------------------------------------------------
step_start=$SECONDS
say "building $tag on $sandbox_image (no network)"
"$here/build.sh" --wheels "$work/wheels" "$tag" --network none --force-rm \
    --build-arg "SANDBOX_IMAGE=$sandbox_image" \
    --build-arg "PIP_ARGS=--no-index --find-links /wheels" \
    --build-arg "OR_ENV_VERSION=$version"
size="$(docker image inspect --format '{{.Size}}' "$tag")"
base_size="$(docker image inspect --format '{{.Size}}' "$sandbox_image")"
say "image $tag built in $((SECONDS - step_start)) s; size $((size / 1000000)) MB" \
    "($(((size - base_size) / 1000000)) MB over the sandbox image); total $((SECONDS - total_start)) s"
