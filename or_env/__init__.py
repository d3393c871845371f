"""or-env: a Gymnasium environment for LLM agents that solve optimisation-modeling problems.

Importing the package registers the Gymnasium ids (`or_env/ORModeling-v0`, one per
benchmark, and `or_env/Sample-v0`), as Gymnasium environment packages do.
"""

from or_env.env import ORModelingEnv
from or_env.grading import INFEASIBLE, TOLERANCE_PRESETS, UNBOUNDED, Grade, Tolerance, grade
from or_env.problems import Problem, list_benchmarks, load_problems
from or_env.registration import register_envs
from or_env.sandbox import ExecResult, Sandbox, make_sandbox

__version__ = "0.1.0"

__all__ = [
    "INFEASIBLE",
    "TOLERANCE_PRESETS",
    "UNBOUNDED",
    "ExecResult",
    "Grade",
    "ORModelingEnv",
    "Problem",
    "Sandbox",
    "Tolerance",
    "grade",
    "list_benchmarks",
    "load_problems",
    "make_sandbox",
    "register_envs",
]

register_envs()
