#!/usr/bin/env bash
# Build the sandbox image without a container registry (or_env/sandbox/offline_build.py).
#
# For machines that reach Debian's package mirror and PyPI but no image registry:
#   1. base image: debootstrap a minimal Debian (python3, python3-venv) from the mirror apt
#      already uses here, and import it into the daemon (cached: skipped when present);
#   2. wheels: `pip download` the pinned requirements on the host, for the base image's
#      Python version and glibc (cached: skipped while requirements.txt is unchanged);
#   3. build sandbox_image/Dockerfile on that base with `pip --no-index` and no network,
#      tagged or-env-sandbox:<version> and or-env-sandbox:latest.
#
# Every daemon operation goes through the Docker SDK for Python: no `docker` binary needed.
# Needs: root (debootstrap), a running Docker daemon, debootstrap, pip on the host, and a
# Python >= 3.11 with the SDK (`pip install -e '.[docker]'`): $PYTHON, else this checkout's
# .venv, else python3. Flags: --help (--version V, --image NAME, --base-tag TAG, --suite,
# --mirror URL, --cache-dir DIR, --rebuild-base, --refresh-wheels).
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
exec "${python_cmd[@]}" -m or_env.sandbox.offline_build "$@"
