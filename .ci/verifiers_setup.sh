#!/usr/bin/env bash
# A separate venv for verifiers 0.4: it pins mcp==2.0.0, while the serve extra's fastmcp
# needs mcp<2. The tests run it with this checkout on PYTHONPATH
# (tests/test_integrations_verifiers.py); OR_ENV_VERIFIERS_VENV points elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${OR_ENV_VERIFIERS_VENV:-.venv-verifiers}"
check='import verifiers.v1, gymnasium, pulp, highspy'
if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/uv" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "verifiers_setup: $venv already works" >&2
    exit 0
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# or-env's own runtime dependencies, read from pyproject.toml (the checkout is on PYTHONPATH).
"$venv/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > "$venv/or-env-requirements.txt"
# uv: verifiers' null harness prepares its PEP 723 chat program with it.
"$venv/bin/python" -m pip install --quiet 'verifiers==0.4.0' uv -r "$venv/or-env-requirements.txt"
"$venv/bin/python" -c "$check"
