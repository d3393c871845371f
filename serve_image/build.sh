#!/usr/bin/env bash
# Build the server image (serve_image/Dockerfile) from a staging context holding only what it
# copies: the repository's .dockerignore is the sandbox image's, and Docker without BuildKit
# reads no per-Dockerfile ignore file. Needs the sandbox image (`or-env sandbox build`) and,
# without --wheels, PyPI (the `serve` extra); serve_image/build_offline.sh needs no index.
#   serve_image/build.sh [--wheels DIR] [TAG] [docker build options...]
#       (default tag or-env-serve:0.1.0; --wheels: put DIR's wheels in the context as
#        wheels/, for --build-arg PIP_ARGS="--no-index --find-links /wheels")
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=""
if [ "${1:-}" = "--wheels" ]; then
    wheels="$2"
    shift 2
fi
tag="${1:-or-env-serve:0.1.0}"
shift || true
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp pyproject.toml README.md "$stage/"
cp -r or_env "$stage/or_env"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
if [ -n "$wheels" ]; then
    mkdir "$stage/wheels"
    # Hard links when the wheels are on the same file system, copies otherwise.
    cp -l "$wheels"/*.whl "$stage/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$stage/wheels/"
fi
docker build -f serve_image/Dockerfile -t "$tag" "$@" "$stage"
