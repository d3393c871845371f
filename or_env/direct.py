"""The `direct` protocol: one response holds the model and its program; its output is the answer.

This is the paradigm of ORLM, LLMOPT and SIRL, which the CALM paper contrasts with native
multi-turn reasoning: the policy writes a mathematical model and one solver program in a
single response, the program is run once, and the answer is read from what it printed. The
episode then ends with the grade. `ORModelingEnv(protocol="direct")` plays it.

The rule, taken from ORLM's evaluation (`eval/execute.py` in Cardinal-Operations/ORLM; SIRL's
`utils.py` does the same):

1. The program is the FIRST ```python block of the response: the text from the first
   "```python" to the next "```", fence tag removed (ORLM's exact string search, so a
   response with several blocks runs only the first; later blocks are usually usage notes).
   No such block, or an empty one: no program, the episode ends unanswered ("no_code").
2. An epilogue is appended that prints the objective of the solved model as a line
   `Just print the best solution: <value>`, or `No Best Solution` when it has none:
   - rule "orlm": ORLM's own epilogue, verbatim; it reads the coptpy model named `model`
     (`model.status == COPT.OPTIMAL` -> `model.objval`, anything else -> No Best Solution);
   - rule "default": a solver-agnostic one that looks, after the program has run, for a
     solved model among the program's global variables (the one named `model`, else the only
     one): coptpy and gurobipy `Model`, pulp `LpProblem`, highspy `Highs`, cvxpy `Problem`.
     Optimal -> the marker line with the objective; infeasible -> `No Best Solution`;
     unbounded -> the marker line with `unbounded`; any other status, several candidate
     models or none -> nothing (a program may always print the marker line itself; the
     default prompt asks it to).
3. The answer is read from the program's standard output, as ORLM reads it: the text after
   the first "Just print the best solution:" up to the end of that line (stripped); else, if
   the output contains "No Best Solution", infeasible; else no answer. Like ORLM, an answer
   counts only when the program ended normally (exit status 0, no timeout): a crash after the
   marker line gives no answer.
4. The answer text is graded with `or_env.grading.grade_value` under the env's tolerance
   (use `tolerance="orlm"` to reproduce ORLM's numbers).

A response over the length limit is not read, and a program holding a lone surrogate cannot be
handed to the sandbox: both end the episode as format errors ("format_error", see
`or_env.protocol`). `DirectProtocol` is this rule as the env's `EpisodeProtocol`.
"""

from __future__ import annotations

from dataclasses import dataclass

from or_env.grading import Tolerance, grade_value
from or_env.protocol import (
    MAX_ACTION_CHARS,
    Ending,
    EpisodeProtocol,
    Plan,
    parse_action,
    unencodable_message,
    unencodable_position,
)
from or_env.sandbox.base import ExecResult

ANSWER_MARKER = "Just print the best solution:"
NO_SOLUTION_MARKER = "No Best Solution"
PROGRAM_FENCE = "```python"

# ORLM eval/execute.py ADD_SCRIPT, verbatim (it assumes a coptpy model named `model`).
ORLM_EPILOGUE = (
    "\nif model.status == COPT.OPTIMAL:\n"
    '    print(f"Just print the best solution: {model.objval}")\n'
    "else:\n"
    '    print("No Best Solution")'
)

# Runs after the program, at module level; every name it adds starts with `_or_env_`.
# Failures inside it are swallowed: a broken epilogue must never turn a program that
# printed its own marker line into a crash.
GENERIC_EPILOGUE = """

def _or_env_report_objective(namespace):
    def reading(obj):
        cls = type(obj)
        root = (getattr(cls, "__module__", "") or "").split(".")[0]
        name = cls.__name__
        if root in ("coptpy", "coptcore") and name == "Model":
            from coptpy import COPT
            status = obj.status
            if status == COPT.OPTIMAL:
                return ("value", obj.objval)
            if status in (COPT.INFEASIBLE, COPT.INF_OR_UNB):
                return ("infeasible", None)
            if status == COPT.UNBOUNDED:
                return ("unbounded", None)
            return ("other", status)
        if root == "gurobipy" and name == "Model":
            from gurobipy import GRB
            status = obj.Status
            if status == GRB.OPTIMAL:
                return ("value", obj.ObjVal)
            if status in (GRB.INFEASIBLE, GRB.INF_OR_UNBD):
                return ("infeasible", None)
            if status == GRB.UNBOUNDED:
                return ("unbounded", None)
            return ("other", status)
        if root == "pulp" and name == "LpProblem":
            import pulp
            if obj.status == 1:
                value = pulp.value(obj.objective) if obj.objective is not None else 0.0
                return ("value", 0.0 if value is None else value)
            if obj.status == -1:
                return ("infeasible", None)
            if obj.status == -2:
                return ("unbounded", None)
            return ("other", obj.status)
        if root == "highspy" and name == "Highs":
            import highspy
            status = obj.getModelStatus()
            codes = highspy.HighsModelStatus
            if status == codes.kOptimal:
                return ("value", obj.getInfo().objective_function_value)
            if status in (codes.kInfeasible, codes.kUnboundedOrInfeasible):
                return ("infeasible", None)
            if status == codes.kUnbounded:
                return ("unbounded", None)
            return ("other", status)
        if root == "cvxpy" and name == "Problem":
            status = obj.status
            if status in ("optimal", "optimal_inaccurate"):
                return ("value", obj.value)
            if status in ("infeasible", "infeasible_inaccurate"):
                return ("infeasible", None)
            if status in ("unbounded", "unbounded_inaccurate"):
                return ("unbounded", None)
            return ("other", status)
        return None

    found = []
    for key, obj in list(namespace.items()):
        if key.startswith("_"):
            continue
        try:
            result = reading(obj)
        except Exception:
            continue
        if result is not None:
            found.append((key, result))
    chosen = [item for item in found if item[0] == "model"] or found
    if len(chosen) != 1:
        return
    kind, value = chosen[0][1]
    if kind == "value":
        print(f"Just print the best solution: {value}")
    elif kind == "infeasible":
        print("No Best Solution")
    elif kind == "unbounded":
        print("Just print the best solution: unbounded")


try:
    _or_env_report_objective(globals())
except Exception:
    pass
"""

DEFAULT_DIRECT_SYSTEM_PROMPT = (
    "You are an expert in operations research. Build a mathematical model of the problem and "
    "a complete Python program that solves it (pulp, highspy, scipy, numpy are available). "
    "Write the model, then the whole program in ONE ```python block; it is run once and is "
    "not shown back to you. Keep the solved model in a global variable named `model`, and "
    "have the program print the optimal objective value as a line "
    "`Just print the best solution: <value>` (or `No Best Solution` if the problem is "
    "infeasible)."
)

# ORLM's prompt (scripts/inference.py TEMPLATE_q2mc_en), for its models and replays.
ORLM_USER_TEMPLATE = (
    "Below is an operations research question. Build a mathematical model and corresponding "
    "python code using `coptpy` that appropriately addresses the question.\n\n"
    "# Question:\n{question}\n\n# Response:"
)


@dataclass(frozen=True)
class DirectRule:
    """How the direct protocol runs a response's program and reads its answer.

    name: a label for reports.
    epilogue: Python source appended to the program; it prints the answer line.
    description: one line for documentation and `or-env eval --help`.
    """

    name: str
    epilogue: str
    description: str


DIRECT_RULES: dict[str, DirectRule] = {
    "default": DirectRule(
        "default",
        GENERIC_EPILOGUE,
        "first python block + an epilogue that prints the objective of the solved model "
        "(coptpy, gurobipy, pulp, highspy, cvxpy)",
    ),
    "orlm": DirectRule(
        "orlm",
        ORLM_EPILOGUE,
        "first python block + ORLM's epilogue (coptpy model named `model`), as ORLM evaluates",
    ),
}


def get_direct_rule(rule: str | DirectRule) -> DirectRule:
    """A DirectRule from its name (see DIRECT_RULES) or itself."""
    if isinstance(rule, DirectRule):
        return rule
    try:
        return DIRECT_RULES[rule]
    except KeyError:
        raise ValueError(
            f"unknown direct rule {rule!r}; choose from {sorted(DIRECT_RULES)}"
        ) from None


def extract_program(response: str) -> str | None:
    """The first ```python block of a response, by ORLM's string search; None if absent/empty."""
    start = response.find(PROGRAM_FENCE)
    if start == -1:
        return None
    end = response.find("```", start + len(PROGRAM_FENCE))
    # ORLM slices to -1 when the block is unclosed, dropping the last character.
    script = response[start:end].replace(PROGRAM_FENCE, "")
    return script if script.strip() else None


@dataclass(frozen=True)
class DirectReading:
    """What the direct protocol read from one execution.

    answer: the answer text ("1160.0", "No Best Solution", "unbounded"), or None.
    reason: "answered", or why there is no answer: "timeout", "execution_error" (non-zero
        exit status), "sandbox_error", "no_answer" (ran, printed no answer line).
    """

    answer: str | None
    reason: str


def read_answer(result: ExecResult) -> DirectReading:
    """Read the answer from a program's execution, by ORLM's rule (see the module docstring)."""
    if result.sandbox_error:
        return DirectReading(None, "sandbox_error")
    if result.timed_out:
        return DirectReading(None, "timeout")
    if result.exit_code != 0:
        return DirectReading(None, "execution_error")
    output = result.stdout
    at = output.find(ANSWER_MARKER)
    if at != -1:
        answer = output[at + len(ANSWER_MARKER) :].strip().split("\n", 1)[0].strip()
        return DirectReading(answer, "answered")
    if NO_SOLUTION_MARKER in output:
        return DirectReading(NO_SOLUTION_MARKER, "answered")
    return DirectReading(None, "no_answer")


@dataclass(frozen=True)
class DirectProtocol(EpisodeProtocol):
    """The direct protocol (see the module docstring): one response, one run, one grade.

    Every step ends the episode: with the grade of the answer read from the execution, or
    unanswered ("no_code", "format_error", or why the execution gave no answer).
    """

    rule: DirectRule = DIRECT_RULES["default"]
    name = "direct"
    system_prompt = DEFAULT_DIRECT_SYSTEM_PROMPT

    def plan(self, action: str) -> Plan:
        """The first python block with the rule's epilogue, or why nothing runs."""
        if len(action) > MAX_ACTION_CHARS:
            too_long = parse_action(action)
            return Plan(
                "direct",
                format_error=too_long.problem,
                detail=too_long.detail,
                info=self._info(None),
            )
        program = extract_program(action)
        info = self._info(program)
        if program is None:
            return Plan("direct", info=info)
        bad = unencodable_position(program)
        if bad is not None:
            detail = unencodable_message(*bad)
            return Plan("direct", format_error="unencodable_code", detail=detail, info=info)
        return Plan("direct", program=program + self.rule.epilogue, info=info)

    def ending(
        self,
        action: str,
        plan: Plan,
        result: ExecResult | None,
        ground_truth: float | str,
        tolerance: str | Tolerance,
    ) -> Ending:
        """Grade the answer read from the execution; the episode always ends here."""
        if plan.format_error is not None:
            reading = DirectReading(None, "format_error")
        elif result is None:
            reading = DirectReading(None, "no_code")
        else:
            reading = read_answer(result)
        verdict = grade_value(reading.answer, ground_truth, preset=tolerance)
        return Ending(reading.reason, reading.answer, verdict, reading.answer)

    def _info(self, program: str | None) -> dict[str, str | None]:
        return {"direct_rule": self.rule.name, "code": program}
