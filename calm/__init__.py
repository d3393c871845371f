"""calm: the CALM intervener as an environment wrapper, and the curation pipeline.

CALM ("CALM Before the STORM", arXiv 2510.04204) makes SFT data from a reasoner's own
trajectories: an expert intervener reads a trajectory, finds the first flaw (`calm.taxonomy`:
seven types in two categories), and writes a short hint; the env is rewound to where the
flawed turn began, the hint is inserted, and the reasoner continues. This repeats until the
trajectory is judged flawless or the interventions are spent; trajectories that are correct
AND judged flawless are kept.

- `Intervener` (an LLM judge behind any OpenAI-compatible endpoint) and `BaseIntervener`;
- `CALMWrapper(env, intervener, max_interventions=5, trigger="end")`, a `gymnasium.Wrapper`;
- `run_curate` / `or-env calm curate`: CALM at scale -> verl SFT parquet, JSONL, report.

Dependencies point one way: `calm` imports `agents` and `or_env`, never the reverse.
"""

from calm.intervener import BaseIntervener, Intervener, Judgement, JudgeUnavailable
from calm.prompt import JudgeContext
from calm.taxonomy import DEFAULT_TAXONOMY, FlawType, Taxonomy, load_taxonomy
from calm.verdict import Verdict, VerdictError, VerdictRules, parse_verdict
from calm.wrapper import CALMWrapper

_LAZY = {
    "CurateConfig": "calm.curate",
    "run_curate": "calm.curate",
    "arun_curate": "calm.curate",
}

__all__ = [
    "DEFAULT_TAXONOMY",
    "BaseIntervener",
    "CALMWrapper",
    "CurateConfig",
    "FlawType",
    "Intervener",
    "JudgeContext",
    "JudgeUnavailable",
    "Judgement",
    "Taxonomy",
    "Verdict",
    "VerdictError",
    "VerdictRules",
    "arun_curate",
    "load_taxonomy",
    "parse_verdict",
    "run_curate",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'calm' has no attribute {name!r}")
