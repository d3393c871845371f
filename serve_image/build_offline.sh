#!/usr/bin/env bash
# Build the server image without reaching a package index from a container
# (or_env/sandbox/offline_build.py, `build_serve_offline`).
#
# For machines whose containers reach no index (or only through a proxy they do not
# trust) while the host's pip reaches PyPI, as sandbox_image/build_offline.sh does for the
# sandbox image:
#   1. ask the sandbox image for its Python version, glibc, architecture and installed
#      packages (the server image is built on it);
#   2. `pip download`, on the host, the wheels of or-env's dependencies, its `serve` extra,
#      omegaconf and the build backend, for that Python and glibc, holding the sandbox
#      image's packages at their versions (cached until any of that changes);
#   3. build serve_image/Dockerfile with those wheels in a staging context, pip --no-index
#      and no network.
#
# Every daemon operation goes through the Docker SDK for Python: no `docker` binary needed.
# Needs: the sandbox image (sandbox_image/build_offline.sh), a running Docker daemon, pip
# on the host, and a Python >= 3.11 with the SDK: $PYTHON, else this checkout's .venv,
# else python3. Flags: --help (--tag TAG, --sandbox-image IMG, --cache-dir DIR,
# --refresh-wheels).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${PYTHON:-}" ]; then
    read -r -a python_cmd <<<"$PYTHON"
elif [ -x "$root/.venv/bin/python" ]; then
    # Under sudo, PATH's python3 is often the system one, without the SDK.
    python_cmd=("$root/.venv/bin/python")
else
    python_cmd=(python3)
fi
# This checkout's or_env, whatever the interpreter has installed.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${python_cmd[@]}" -m or_env.sandbox.offline_build serve "$@"
