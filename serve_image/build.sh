#!/usr/bin/env bash
# Build the server image (serve_image/Dockerfile) from a staging context holding only what it
# copies: the repository's .dockerignore is the sandbox image's, and Docker without BuildKit
# reads no per-Dockerfile ignore file. Needs the sandbox image (`or-env sandbox build`) and
# PyPI (the `serve` extra).
#   serve_image/build.sh [TAG] [docker build options...]      (default tag or-env-serve:0.1.0)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-or-env-serve:0.1.0}"
shift || true
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp pyproject.toml README.md "$stage/"
cp -r or_env "$stage/or_env"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
docker build -f serve_image/Dockerfile -t "$tag" "$@" "$stage"
