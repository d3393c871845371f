"""The `info` dicts of `ORModelingEnv`: every key, when it is there, and what it holds.

They are plain dicts at run time; the `TypedDict`s below give them a checked shape.

`reset` returns a `ResetInfo`:

- `problem_id`, `benchmark`: the problem of the episode.
- `rendering` ("inline", "chat" or "tools"), `protocol` ("native" or "direct"), `stop_sequences`
  (where a policy stops generating), `require_executed_answer`: the env's settings.
- `turn`, `executions`: policy turns and sandbox executions so far (0 after `reset`).
- `ground_truth`: only with `debug=True`.

`step` returns a `StepInfo`: the keys above (`turn` and `executions` counted after the
step), then what the step did:

- `action_kind`: how the action was read: "code", "answer" or "malformed" (native protocol),
  "direct" (direct protocol).
- `code`: the program the action asked to run (native: when it ended in a complete python
  block, or a program refused as `unencodable_code`; direct: always, None without a block or
  for an action over the length limit).
- `direct_rule`: the direct protocol's rule (`or_env.direct.DIRECT_RULES`).
- `tool_call`: the tools rendering's call acted on ("run_python", "submit_answer", or the
  unknown name called); `ignored_tool_calls`: how many further calls of the message were not
  acted on (each got a "not run" tool message, except after submit_answer).
- `execution` (`ExecutionInfo`) and `observation_truncated`: when a program ran. `execution`
  is the sandbox's result as it came; the observation shows it rendered
  (`or_env.protocol.execution_text`). `observation_truncated`: the output was cut to
  `max_obs_chars` or by the sandbox's own cap.
- `format_error`: on a format observation, why the action could not be used (a key of
  `or_env.protocol.FORMAT_MESSAGES`: "empty", "no_code_or_answer", "unclosed_code_block",
  "too_long", "unencodable_code"; the tools rendering's keys of
  `or_env.tool_calls.TOOL_FORMAT_MESSAGES`: "no_tool_call", "unknown_tool",
  "bad_tool_arguments", "malformed_message", "too_long", "unencodable_code").

When the step ends the episode (`terminated` or `truncated`) it also has the `EndInfo` keys:

- `termination_reason`: native "answered", "max_turns", "max_executions"; direct "answered",
  "no_code", "no_answer", "execution_error", "timeout", "sandbox_error", "format_error".
- `correct`: the answer earned the reward (False when no answer was graded).
- `answer_printed`: some execution of the episode printed the answer to stdout, within the
  tolerance, as the policy saw it (rendered and cut to `max_obs_chars`); executions dropped by
  `rewind` do not count (`or_env.grading.answer_was_printed`). False when no answer was graded.
- `transcript`: every message of the episode (`or_env.transcript.Message.to_dict`).
- `answer`, `grade` (`GradeInfo`), and with `debug=True` `rel_error`: when an answer was
  graded (native: "answered";
  direct: at every end). `answer` is the answer as read (the content of the final box, or the
  text the direct protocol read from the output), None when there was none.

Wrappers add their own keys (the CALM wrapper: `calm`, `intervention`, `rewound_to`, and
`action_kind` "intervention"); a wrapper that reopens an ended episode drops `END_KEYS`.
"""

# No `from __future__ import annotations`: Python 3.11 reads `NotRequired` only from evaluated
# annotations (under string annotations every key would count as required).
from typing import Any, NotRequired, TypedDict

from or_env.sandbox.base import SandboxFailure


class ExecutionInfo(TypedDict):
    """One execution, as the sandbox returned it (`or_env.sandbox.ExecResult.to_dict`)."""

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    wall_s: float
    truncated: bool
    sandbox_error: str | None
    failure: SandboxFailure | None


class GradeInfo(TypedDict):
    """The verdict on the final answer (`or_env.grading.Grade.to_dict`).

    `reason` is "not_executed" when `require_executed_answer` turned a correct answer down.
    `rel_error` and `abs_error`, like `ground_truth`, are only there with `debug=True`.
    `ground_truth` is only there with `debug=True`.
    """

    correct: bool
    predicted: float | str | None
    ground_truth: NotRequired[float | str]
    rel_error: NotRequired[float | None]
    abs_error: NotRequired[float | None]
    reason: str
    raw_answer: str | None
    tolerance: str
    reward: float


class ResetInfo(TypedDict):
    """The info of `reset`; every step's info starts with the same keys."""

    problem_id: str
    benchmark: str
    rendering: str
    protocol: str
    stop_sequences: list[str]
    turn: int
    executions: int
    require_executed_answer: bool
    ground_truth: NotRequired[float | str]


class EndInfo(TypedDict, total=False):
    """The keys a step's info holds only when the step ended the episode."""

    termination_reason: str
    correct: bool
    answer_printed: bool
    transcript: list[dict[str, Any]]
    answer: str | None
    rel_error: NotRequired[float | None]
    grade: GradeInfo


class StepInfo(ResetInfo, EndInfo, total=False):
    """The info of `step` (see the module docstring for when each key is there)."""

    action_kind: str
    code: str | None
    direct_rule: str
    tool_call: str
    ignored_tool_calls: int
    execution: ExecutionInfo
    observation_truncated: bool
    format_error: str


#: The keys that only hold for an ended episode; drop them when reopening it (`env.rewind`).
END_KEYS: frozenset[str] = frozenset(EndInfo.__annotations__)
