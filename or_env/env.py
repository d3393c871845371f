"""`ORModelingEnv`: an optimisation word problem solved by reasoning, running code and answering."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym

from or_env import direct, protocol
from or_env.answer_parsing import PrintedValues, parse_answer, printed_values
from or_env.grading import TOLERANCE_PRESETS, Grade, Tolerance, answer_was_printed
from or_env.info import GradeInfo, ResetInfo, StepInfo
from or_env.problems import Problem, load_problems
from or_env.prompts import DEFAULT_USER_TEMPLATE, render_prompt
from or_env.protocol import Ending, EpisodeProtocol, NativeProtocol, Plan
from or_env.sandbox import Sandbox, shared_sandbox
from or_env.sandbox.base import ExecResult
from or_env.spaces import AssistantTurn, ChatMessages, FreeText
from or_env.tool_calls import (
    BUDGET_SPENT_MESSAGE,
    NOT_RUN_MESSAGE,
    AssistantMessage,
    ToolCall,
    ToolCallProtocol,
    tool_format_feedback,
    tool_schemas,
)
from or_env.transcript import Message, Transcript

#: The action and observation spaces' max_length: the longest action step() reads.
MAX_TEXT = protocol.MAX_ACTION_CHARS
PROTOCOLS = ("native", "direct")
# Room for the fences and the truncation marker around an observation of max_obs_chars.
_OBSERVATION_OVERHEAD = 1000

#: An observation: text, or (tools rendering) the chat messages the env added.
Observation = str | list[dict[str, Any]]
#: An action: the policy's text, or (tools rendering) an assistant message with tool calls.
Action = str | Mapping[str, Any]
#: What `step` returns. Its info is a StepInfo where Gymnasium says dict[str, Any] (a TypedDict
#: is not a subtype of that, hence the `type: ignore[override]` on `reset` and `step`).
StepResult = tuple[Observation, float, bool, bool, StepInfo]


class ORModelingEnv(gym.Env[Observation, Action]):
    """An LLM agent solves an optimisation-modeling word problem with a code interpreter.

    Each episode is one problem. The agent writes reasoning and Python solver code;
    code ending a turn runs in a sandbox and its output comes back; the agent repairs
    and reflects, and ends with a numeric answer in `\\boxed{}` graded against the
    ground truth (`or_env.grade`).

    ## Spaces
    - Action: `FreeText(MAX_TEXT)`: the raw text the policy generated in one turn, never
      rewritten. `step` takes any str: one longer than MAX_TEXT (which
      `action_space.contains` rejects) is not read and gets a format observation that
      states the limit and its length; it counts as a turn.
    - Observation: `FreeText`: the text to add to the transcript: the prompt after
      `reset`; after `step`, the execution output (a fenced ```output block, rendered by
      `protocol.render_output` so that program output can never close it), format
      feedback, or "" when the episode ended. The same as chat messages is in
      `env.transcript.as_chat()`.

    In the `tools` rendering the spaces differ: an action is an assistant message with
    OpenAI-style tool calls (`AssistantTurn`: a dict, or text, which is a message without
    calls), and an observation is the list of chat messages the env added (`ChatMessages`):
    after `reset` the user prompt, after `step` one tool message per call ({"role": "tool",
    "tool_call_id", "name", "content"}), a user message with format feedback for a message
    without calls, or [] when an answer ended the episode.

    ## Renderings
    - `inline` (default, the native mode of reasoning models): the output block is
      appended inside the same assistant turn and the policy continues it.
    - `chat`: the output block is a new user message.
    - `tools`: the policy calls `run_python(code)` and `submit_answer(answer)` (schemas in
      `env.tools`; see `or_env.tool_calls`); program output comes back as the tool's result,
      rendered as in an output block, and the answer is graded as a box's content.
    Policies stop a turn at `env.stop_sequences` (also in `metadata`; none in `tools`, where a
    message ends at its tool calls).

    ## Protocols
    A protocol (`or_env.protocol.EpisodeProtocol`, in `env.episode_protocol`) reads each
    action into a plan; `step` and `astep` share one path: plan, execute, finish.
    - `native` (default, `NativeProtocol`): the multi-turn loop above.
    - `direct` (`or_env.direct.DirectProtocol`; ORLM, LLMOPT, SIRL): one response holds the
      model and its program; the first ```python block runs once with an epilogue that
      prints the objective, the answer is read from its output, and the episode ends with
      the grade. The rule is `direct_rule` ("default" or "orlm"; see `or_env.direct`).
      Termination reasons: `answered`, `no_code`, `no_answer`, `execution_error`, `timeout`,
      `sandbox_error`, `format_error` (a response over the length limit, or a program
      holding a lone surrogate: not run; `info["format_error"]` says which).

    ## Rewards
    1.0 for a correct final answer, else 0.0 (every non-final step is 0.0).

    ## Episode end
    - terminated: a final answer was given (`termination_reason="answered"`).
    - truncated: `max_turns` turns were used, or code was asked for after
      `max_executions` executions (`"max_turns"`, `"max_executions"`).
    A malformed turn gets a format observation and counts as a turn: no block or answer, an
    unclosed block, a turn over MAX_TEXT characters (`format_error="too_long"`), a program
    holding a lone surrogate (`"unencodable_code"`: it cannot be encoded, so it is not run
    and is not an execution; a surrogate elsewhere in a turn is harmless). The transcript
    records every action as given. A failed or timed out execution is an observation, not
    the end of the episode.

    ## Info
    A `ResetInfo` from `reset`, a `StepInfo` from `step`; every key is documented in
    `or_env.info`. In short: `problem_id`, `turn`, `executions`, `action_kind`, `code`,
    `execution` (the sandbox's result as it came; the observation shows it rendered),
    `format_error`, and at the end `termination_reason`, `correct`, `answer`, `grade`,
    `answer_printed` (an execution printed the answer, as the policy saw it) and `transcript`.
    The ground truth, and the errors of the answer (which would give it away), are only
    included with `debug=True`.

    ## Arguments
    - problems: a list of `Problem` or dicts with `id`, `question`, `answer`.
    - benchmark / version / data_path: load a benchmark instead (`or_env.load_problems`).
      With neither, the bundled sample set is used.
    - sandbox: "auto" (Docker when available, else local), "local", "docker", or a
      `Sandbox` instance (which the env then does not close). Named sandboxes are
      shared process-wide so that many envs use one warm pool.
    - rendering: "inline", "chat" or "tools" (native protocol only).
    - max_turns, max_executions: the budgets; max_obs_chars: the cap on one
      observation (head and tail kept); timeout: seconds per execution.
    - tolerance: a preset name from `or_env.grading.TOLERANCE_PRESETS` or a `Tolerance`.
    - require_executed_answer: a correct final answer counts only if `answer_printed`
      (else reward 0, `grade["reason"] == "not_executed"`); default False.
    - protocol: "native" or "direct"; direct_rule: the direct protocol's rule (a name from
      `or_env.direct.DIRECT_RULES` or a `DirectRule`).
    - system_prompt: None for the protocol's default, "" for none; user_template:
      "{question}"-style.
    - debug: include the ground truth in `info`.
    """

    metadata = {  # noqa: RUF012 - Gymnasium reads it as a class attribute
        "render_modes": ["ansi"],
        # "ansi" returns the transcript as text; no frames are shown, but Gymnasium's checker
        # asks every env that renders for a rate.
        "render_fps": 1,
        "renderings": protocol.RENDERINGS,
        "stop_sequences": list(protocol.STOP_SEQUENCES),
    }

    def __init__(
        self,
        problems: Sequence[Problem | dict[str, Any]] | None = None,
        *,
        benchmark: str | None = None,
        version: str | None = None,
        data_path: str | None = None,
        sandbox: str | Sandbox = "auto",
        rendering: str = "inline",
        max_turns: int = 12,
        max_executions: int = 10,
        max_obs_chars: int = 4000,
        timeout: float = 30.0,
        tolerance: str | Tolerance = "default",
        protocol: str = "native",
        direct_rule: str | direct.DirectRule = "default",
        system_prompt: str | None = None,
        user_template: str = DEFAULT_USER_TEMPLATE,
        debug: bool = False,
        render_mode: str | None = None,
        require_executed_answer: bool = False,
    ) -> None:
        # (`protocol` names the argument here, so the module's RENDERINGS come via metadata.)
        renderings = self.metadata["renderings"]
        if rendering not in renderings:
            raise ValueError(f"rendering must be one of {renderings}, got {rendering!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if rendering == "tools" and protocol != "native":
            raise ValueError(
                "the tools rendering plays the native protocol (tool calls, several turns); "
                f"protocol={protocol!r} reads one text response: use rendering='inline' or 'chat'"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        if isinstance(tolerance, str) and tolerance not in TOLERANCE_PRESETS:
            raise ValueError(
                f"unknown tolerance preset {tolerance!r}; choose from {sorted(TOLERANCE_PRESETS)}"
            )
        for name, value in (("max_turns", max_turns), ("max_executions", max_executions)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not 1 <= max_obs_chars <= MAX_TEXT - _OBSERVATION_OVERHEAD:
            raise ValueError(
                f"max_obs_chars must be between 1 and {MAX_TEXT - _OBSERVATION_OVERHEAD}, "
                f"got {max_obs_chars}"
            )
        self.problems = _resolve_problems(problems, benchmark, version, data_path)
        self.rendering = rendering
        self.max_turns = max_turns
        self.max_executions = max_executions
        self.max_obs_chars = max_obs_chars
        self.timeout = timeout
        self.tolerance = tolerance
        self.protocol = protocol
        self.direct_rule = direct.get_direct_rule(direct_rule)
        self.episode_protocol: EpisodeProtocol
        if protocol == "direct":
            self.episode_protocol = direct.DirectProtocol(self.direct_rule)
        elif rendering == "tools":
            self.episode_protocol = ToolCallProtocol()
        else:
            self.episode_protocol = NativeProtocol()
        if system_prompt is None:
            system_prompt = self.episode_protocol.system_prompt
        self.system_prompt = system_prompt
        self.user_template = user_template
        self.debug = debug
        self.render_mode = render_mode
        self.require_executed_answer = bool(require_executed_answer)
        self.observation_space: gym.Space[Any]
        self.action_space: gym.Space[Any]
        if rendering == "tools":
            self.observation_space = ChatMessages(MAX_TEXT)
            self.action_space = AssistantTurn(MAX_TEXT)
        else:
            self.observation_space = FreeText(MAX_TEXT)
            self.action_space = FreeText(MAX_TEXT)

        self._sandbox_spec = sandbox
        self._sandbox: Sandbox | None = sandbox if not isinstance(sandbox, str) else None
        self.transcript = Transcript()
        self.problem: Problem | None = None
        self.turn = 0
        self.executions = 0
        self.done = False
        self._execution_turns: list[int] = []
        # What each execution of the episode printed, by turn (for `answer_printed`).
        self._printed: list[tuple[int, PrintedValues]] = []

    # ----------------------------------------------------------------- public API
    @property
    def stop_sequences(self) -> list[str]:
        """Where a policy must stop generating so that its code gets run (none with tools)."""
        return [] if self.rendering == "tools" else list(protocol.STOP_SEQUENCES)

    @property
    def tools(self) -> list[dict[str, Any]]:
        """OpenAI function schemas of `run_python` and `submit_answer` (the tools rendering's
        actions; send them as a chat request's `tools`). A fresh copy on every access."""
        return tool_schemas()

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox that runs the programs (a named one is created on first use)."""
        if self._sandbox is None:
            assert isinstance(self._sandbox_spec, str)
            self._sandbox = shared_sandbox(self._sandbox_spec)
        return self._sandbox

    def reset(  # type: ignore[override]  # info is a ResetInfo (see StepResult)
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, ResetInfo]:
        """Start an episode on a problem picked by `options` or drawn with the env's RNG.

        options: {"problem": Problem}, {"index": i} or {"problem_id": "..."}.
        """
        super().reset(seed=seed)
        self.problem = self._pick_problem(options or {})
        self.transcript = Transcript()
        self.turn = 0
        self.executions = 0
        self.done = False
        self._execution_turns = []
        self._printed = []
        if self.system_prompt:
            self.transcript.append("system", self.system_prompt, "env", 0)
        prompt = render_prompt(self.problem.question, self.user_template)
        self.transcript.append("user", prompt, "env", 0)
        if self.rendering == "tools":
            return [{"role": "user", "content": prompt}], self._base_info()
        return prompt, self._base_info()

    def step(self, action: Action) -> StepResult:  # type: ignore[override]  # see StepResult
        """Read one turn of policy text; run its code or grade its answer (see the class doc)."""
        plan, program = self._plan(action)
        result = None if program is None else self.sandbox.run(program, timeout=self.timeout)
        return self._finish(action, plan, result)

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, ResetInfo]:
        """`reset` for asyncio code (it does no blocking work)."""
        return self.reset(seed=seed, options=options)

    async def astep(self, action: Action) -> StepResult:
        """`step` for asyncio code: the execution is awaited, never blocking the event loop."""
        plan, program = self._plan(action)
        result = None if program is None else await self.sandbox.arun(program, timeout=self.timeout)
        return self._finish(action, plan, result)

    def rewind(self, turn: int) -> None:
        """Drop every turn after `turn` (0 = back to the prompt) and reopen the episode."""
        if self.problem is None:
            raise RuntimeError("rewind() called before reset()")
        if not 0 <= turn <= self.turn:
            raise ValueError(f"turn must be between 0 and {self.turn}, got {turn}")
        self.transcript.rewind(turn)
        self._execution_turns = [t for t in self._execution_turns if t <= turn]
        self._printed = [(t, printed) for t, printed in self._printed if t <= turn]
        self.executions = len(self._execution_turns)
        self.turn = turn
        self.done = False

    def inject(self, text: str, *, source: str = "intervener") -> str:
        """Add text that is not the policy's (e.g. a corrective hint) where the policy continues.

        In the inline rendering it joins the current assistant turn; in the chat and tools
        renderings it is a user message. Returns the observation text to show the policy.
        """
        if self.problem is None:
            raise RuntimeError("inject() called before reset()")
        role = "assistant" if self.rendering == "inline" else "user"  # chat and tools
        self.transcript.append(role, text, source, self.turn)
        return text

    def render(self) -> str | None:
        """The transcript as text when `render_mode="ansi"`, else None."""
        if self.render_mode == "ansi":
            return self.transcript.text()
        return None

    def close(self) -> None:
        # Named sandboxes are shared process-wide and closed at exit; instances belong
        # to the caller.
        self._sandbox = None if isinstance(self._sandbox_spec, str) else self._sandbox
        super().close()

    # ------------------------------------------------------------------ internals
    def _pick_problem(self, options: dict[str, Any]) -> Problem:
        if "problem" in options:
            problem = options["problem"]
            return problem if isinstance(problem, Problem) else Problem.from_dict(problem)
        if "index" in options:
            index = int(options["index"])
            if not 0 <= index < len(self.problems):
                raise IndexError(f"index {index} out of range for {len(self.problems)} problems")
            return self.problems[index]
        if "problem_id" in options:
            wanted = str(options["problem_id"])
            for problem in self.problems:
                if problem.id == wanted:
                    return problem
            raise KeyError(f"no problem with id {wanted!r} in this env's {len(self.problems)}")
        if options:
            raise ValueError(
                f"unknown reset options {sorted(options)}; use 'problem', 'index' or 'problem_id'"
            )
        return self.problems[int(self.np_random.integers(len(self.problems)))]

    def _plan(self, action: Action) -> tuple[Plan, str | None]:
        """Check the call, count the turn, read the action: its plan and the program to run.

        The program is None when the plan runs nothing or the execution budget is spent.
        """
        if self.problem is None:
            raise RuntimeError("step() called before reset()")
        if self.done:
            raise RuntimeError("step() called after the episode ended; call reset()")
        if isinstance(self.episode_protocol, ToolCallProtocol):
            if not isinstance(action, str | Mapping):
                raise TypeError(
                    "action must be the policy's text (str) or an assistant message (a mapping "
                    f"with 'content' and 'tool_calls'), got {type(action).__name__}"
                )
            self.turn += 1
            plan = self.episode_protocol.plan(action, self.turn)
        else:
            if not isinstance(action, str):
                raise TypeError(
                    f"action must be the policy's text (str), got {type(action).__name__}"
                    + (
                        " (assistant messages are read in rendering='tools')"
                        if isinstance(action, Mapping)
                        else ""
                    )
                )
            self.turn += 1
            plan = self.episode_protocol.plan(action)
        runs = plan.program is not None and self.executions < self.max_executions
        return plan, plan.program if runs else None

    def _finish(self, action: Action, plan: Plan, result: ExecResult | None) -> StepResult:
        """Record the step, grade an ending, apply the budgets, and build the step's info."""
        assert self.problem is not None
        if isinstance(plan.message, AssistantMessage):
            return self._finish_tools(action, plan, result)
        assert isinstance(action, str)
        self.transcript.append("assistant", action, "policy", self.turn)
        info: StepInfo = {**self._base_info(), "action_kind": plan.kind}
        info.update(plan.info)  # type: ignore[typeddict-item]
        observation = ""
        if plan.format_error is not None:
            feedback = protocol.format_feedback(plan.format_error, detail=plan.detail)
            observation = self._add_env_text(action, feedback + "\n", as_feedback=True)
            info["format_error"] = plan.format_error
        elif result is not None:
            observation, clipped = self._record_execution(action, result)
            info["execution"] = result.to_dict()  # type: ignore[typeddict-item]
            info["observation_truncated"] = clipped

        return self._conclude(action, plan, result, observation, info)

    def _finish_tools(self, action: Action, plan: Plan, result: ExecResult | None) -> StepResult:
        """`_finish` for the tools rendering: the observation is the tool messages added."""
        message: AssistantMessage = plan.message
        calls = [call.to_openai() for call in message.calls]
        self.transcript.append(
            "assistant", message.content, "policy", self.turn, tool_calls=calls or None
        )
        info: StepInfo = {**self._base_info(), "action_kind": plan.kind}
        info.update(plan.info)  # type: ignore[typeddict-item]
        first, rest = (message.calls[0], message.calls[1:]) if message.calls else (None, ())
        replies: list[Message] = []
        if plan.format_error is not None:
            feedback = tool_format_feedback(plan.format_error, detail=plan.detail)
            info["format_error"] = plan.format_error
            if first is None:
                replies.append(self.transcript.append("user", feedback, "env", self.turn))
            else:
                replies.append(self._tool_reply(first, feedback))
        elif result is not None:
            assert first is not None
            self._remember_output(result)
            text, clipped = protocol.execution_text(result, self.max_obs_chars)
            replies.append(self._tool_reply(first, text))
            info["execution"] = result.to_dict()  # type: ignore[typeddict-item]
            info["observation_truncated"] = clipped
        elif plan.program is not None:
            assert first is not None
            replies.append(self._tool_reply(first, BUDGET_SPENT_MESSAGE))
        if rest:
            info["ignored_tool_calls"] = len(rest)
            if plan.kind != "answer":  # after an answer the episode is over: nothing to answer
                replies.extend(self._tool_reply(call, NOT_RUN_MESSAGE) for call in rest)
        observation = [m.chat_dict() for m in replies]
        return self._conclude(action, plan, result, observation, info)

    def _tool_reply(self, call: ToolCall, content: str) -> Message:
        return self.transcript.append(
            "tool", content, "env", self.turn, tool_call_id=call.id, name=call.name or None
        )

    def _conclude(
        self,
        action: Action,
        plan: Plan,
        result: ExecResult | None,
        observation: Observation,
        info: StepInfo,
    ) -> StepResult:
        """Grade an ending, apply the budgets, and finish the step's info."""
        assert self.problem is not None
        reward, terminated, truncated = 0.0, False, False
        reason: str | None = None
        ending = self.episode_protocol.ending(
            action,  # type: ignore[arg-type]  # a mapping only reaches ToolCallProtocol
            plan,
            result,
            self.problem.answer,
            self.tolerance,
        )
        if ending is not None:
            verdict = self._graded(ending, info)
            reward, terminated, reason = verdict.reward, True, ending.reason
            info["answer"] = ending.answer
            info["correct"] = verdict.correct
            if self.debug:  # with the answer, an error gives the ground truth away
                info["rel_error"] = verdict.rel_error
            info["grade"] = self._grade_info(verdict)
        elif plan.program is not None and result is None:
            truncated, reason = True, "max_executions"
        if not (terminated or truncated) and self.turn >= self.max_turns:
            truncated, reason = True, "max_turns"

        if terminated or truncated:
            self.done = True
            assert reason is not None
            info["termination_reason"] = reason
            info.setdefault("correct", False)
            info.setdefault("answer_printed", False)
            info["transcript"] = self.transcript.to_dicts()
        info["turn"], info["executions"] = self.turn, self.executions
        return observation, reward, terminated, truncated, info

    def _record_execution(self, action: str, result: ExecResult) -> tuple[str, bool]:
        """Count an execution, remember what it printed, and add its output block."""
        self._remember_output(result)
        text, clipped = protocol.execution_text(result, self.max_obs_chars)
        return self._add_env_text(action, protocol.output_block(text)), clipped

    def _remember_output(self, result: ExecResult) -> None:
        """Count an execution and remember what it printed (for `answer_printed`)."""
        self.executions += 1
        self._execution_turns.append(self.turn)
        stdout = protocol.visible_stdout(result, self.max_obs_chars)
        self._printed.append((self.turn, printed_values(stdout)))

    def _graded(self, ending: Ending, info: StepInfo) -> Grade:
        """Apply `require_executed_answer` to the ending's verdict; record `answer_printed`."""
        verdict = ending.grade
        answer = None if ending.graded_text is None else parse_answer(ending.graded_text)
        printed = answer is not None and answer_was_printed(
            answer, (p for _, p in self._printed), preset=self.tolerance
        )
        info["answer_printed"] = printed
        if self.require_executed_answer and verdict.correct and not printed:
            return replace(verdict, correct=False, reason="not_executed")
        return verdict

    def _add_env_text(self, action: Action, text: str, *, as_feedback: bool = False) -> str:
        """Record env text after an action; inline output continues the assistant turn."""
        if self.rendering == "chat":
            self.transcript.append("user", text, "env", self.turn)
            return text
        if as_feedback:
            text = f"\n{text}"
        elif action.rstrip().endswith(protocol.OUTPUT_FENCE):
            # The policy's server echoed the stop sequence: do not open the block twice.
            text = text[len(protocol.OUTPUT_FENCE) :]
        elif not action.endswith("\n"):
            text = f"\n{text}"
        self.transcript.append("assistant", text, "env", self.turn)
        return text

    def _base_info(self) -> ResetInfo:
        assert self.problem is not None
        info: ResetInfo = {
            "problem_id": self.problem.id,
            "benchmark": self.problem.benchmark,
            "rendering": self.rendering,
            "protocol": self.protocol,
            "stop_sequences": self.stop_sequences,
            "turn": self.turn,
            "executions": self.executions,
            "require_executed_answer": self.require_executed_answer,
        }
        if self.debug:
            info["ground_truth"] = self.problem.answer
        return info

    def _grade_info(self, verdict: Grade) -> GradeInfo:
        details: GradeInfo = verdict.to_dict()  # type: ignore[assignment]
        if not self.debug:
            # The answer and its error would give the ground truth (submit 0: abs_error).
            for key in ("ground_truth", "rel_error", "abs_error"):
                details.pop(key, None)  # type: ignore[misc]
        return details


def _resolve_problems(
    problems: Sequence[Problem | dict[str, Any]] | None,
    benchmark: str | None,
    version: str | None,
    data_path: str | None,
) -> list[Problem]:
    if problems is not None and benchmark is not None:
        raise ValueError("pass either problems=... or benchmark=..., not both")
    if problems is None:
        loaded = load_problems(benchmark or "sample", version=version, path=data_path)
    else:
        loaded = [p if isinstance(p, Problem) else Problem.from_dict(p) for p in problems]
    if not loaded:
        raise ValueError("the environment needs at least one problem; the list is empty")
    return list(loaded)
