"""or-env: a Gymnasium environment for LLM agents that solve optimisation-modeling problems.

Importing the package registers the Gymnasium ids (`or_env/ORModeling-v0`, one per
benchmark, and `or_env/Sample-v0`), as Gymnasium environment packages do.
"""

from or_env.env import ORModelingEnv
from or_env.errors import OREnvError
from or_env.grading import (
    INFEASIBLE,
    NO_OPTIMUM,
    TOLERANCE_PRESETS,
    UNBOUNDED,
    Grade,
    Tolerance,
    grade,
)
from or_env.problems import (
    Problem,
    get_benchmark,
    list_benchmarks,
    load_problems,
    load_problems_with_report,
)
from or_env.registration import register_envs
from or_env.sandbox import ExecResult, Sandbox, make_sandbox

__version__ = "0.1.0"

__all__ = [
    "INFEASIBLE",
    "NO_OPTIMUM",
    "TOLERANCE_PRESETS",
    "UNBOUNDED",
    "ExecResult",
    "Grade",
    "OREnvError",
    "ORModelingEnv",
    "Problem",
    "Sandbox",
    "Tolerance",
    "get_benchmark",
    "grade",
    "list_benchmarks",
    "load_problems",
    "load_problems_with_report",
    "make_sandbox",
    "register_envs",
]

register_envs()
