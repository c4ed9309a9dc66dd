"""The `Mode` protocol (a run's decisions) and the built-in modes `Sequence` and `AgentLoop`.

A mode decides *which* steps a run executes; the coordinator decides *how* (lifecycles,
attempts, interrupts). Every callback is pure: it takes the run's context (a JSON value) and
returns a new one, so the journal can rehydrate a mode by folding the same events again. A
callback may raise `ModeError` (or any exception): the run then fails with a `mode_error`
envelope (or the `ModeError`'s own category) instead of the engine crashing (MODE-3). `on_result`
may refuse an effect's output with `OutputRefusedError`: the step then fails, under its policy
(CORE-28).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias, runtime_checkable

from .._errors import InterruptibleError
from .._lifecycle import RunStatus, StepClass
from .._record import NORMALIZE, record
from .._vocabulary import (
    FailureCategory,
    JsonValue,
    StepDefinition,
    StepFailure,
    StepPolicy,
    StepResult,
    failure_category,
)


class ModeError(InterruptibleError):
    """A mode refuses its input or cannot go on; the run fails with this message."""

    code = "mode_error"

    def __init__(
        self, message: str, *, category: FailureCategory = FailureCategory.mode_error
    ) -> None:
        super().__init__(message, reason=category.value)
        self.category = category


class OutputRefusedError(ModeError):
    """A mode refuses a step's output: the step fails with this envelope (CORE-28).

    Raised by `Mode.on_result` for an effect's output (a model answer calling a tool it was not
    offered, say): the output is not kept, and the step's policy decides what follows (a retry
    when `retryable` and the category is in `retry_on`, `on_failure`, or the run fails).
    """

    code = "output_refused"

    def __init__(
        self,
        message: str,
        *,
        category: FailureCategory = FailureCategory.invalid_input,
        retryable: bool = False,
        details: JsonValue = None,
    ) -> None:
        super().__init__(message, category=category)
        self.retryable = retryable
        self.details = details


@record
class NextStep:
    """Plan: run this step next (a new step, or the pending one again after an interrupt)."""

    step: StepDefinition


@record
class Complete:
    """Plan: the run is done; `finalize` gives its output."""


@record
class Fail:
    """Plan: the run cannot succeed."""

    message: str
    category: FailureCategory = field(
        default=FailureCategory.mode_error, metadata={NORMALIZE: failure_category}
    )
    details: JsonValue = None


Plan: TypeAlias = NextStep | Complete | Fail


@runtime_checkable
class Mode(Protocol):
    """The callbacks of a mode; all pure, all over a JSON-serializable context.

    Optional, read with defaults (spec/upgrades.md, UPG-1): `version` (a string naming this
    definition) and `describe()` (a JSON value of what the mode declares). A run journals the
    fingerprint of its mode's definition; a mode without either is fingerprinted by its name.
    """

    @property
    def name(self) -> str:
        """The name runs ask for this mode by."""
        ...

    def start(self, input: JsonValue) -> JsonValue:
        """The initial context of a run over `input`; raise `ModeError` to refuse the input."""
        ...

    def plan(self, context: JsonValue) -> Plan:
        """The next step, or that the run is complete, or that it fails."""
        ...

    def on_result(self, context: JsonValue, result: StepResult) -> JsonValue:
        """The context after a step's kept result."""
        ...

    def on_failure(self, context: JsonValue, failure: StepFailure) -> JsonValue:
        """The context after a step failed under `on_failure="continue"`."""
        ...

    def on_interrupt(self, context: JsonValue, reason: str) -> JsonValue:
        """The context after the run was interrupted."""
        ...

    def on_resume(self, context: JsonValue) -> JsonValue:
        """The context after the run was resumed."""
        ...

    def finalize(self, context: JsonValue, status: RunStatus) -> JsonValue:
        """The run's terminal output for `status`."""
        ...

    def declared_step(self, context: JsonValue, step_id: str) -> StepDefinition | None:
        """A step the mode will plan later, if it knows it already (None when it cannot tell).

        Lets an early human answer to a gate the run has not reached yet be kept (CORE-24).
        """
        ...


class _PassiveCallbacks:
    """Defaults for the callbacks most modes do not need."""

    def on_interrupt(self, context: JsonValue, reason: str) -> JsonValue:
        return context

    def on_resume(self, context: JsonValue) -> JsonValue:
        return context

    def declared_step(self, context: JsonValue, step_id: str) -> StepDefinition | None:
        return None

    def upcoming_steps(self, context: JsonValue) -> SequenceOf[StepDefinition]:
        """The steps the mode will plan later, as far as it knows them (RT-32); optional."""
        return ()


# Output pairs per chunk of a `Sequence` context: recording an output copies one chunk and the
# list of chunks, so about 2 * sqrt(n) pointers at n outputs would be ideal; 64 keeps both small
# up to tens of thousands of steps.
OUTPUT_CHUNK: Final = 64


@dataclass(frozen=True, slots=True)
class Sequence(_PassiveCallbacks):
    """A fixed list of steps, run in order; the run's output maps step ids to their outputs.

    The context is `{"input": ..., "next": k, "outputs": [[[step_id, output], ...], ...],
    "failed": [step_id, ...]}`: `next` is the position of the first step with neither an output
    nor a failure, which is exactly "the first step without a kept result" after a resume
    (MODE-2). Outputs are pairs in chunks of `OUTPUT_CHUNK`, oldest first: a context is an
    immutable JSON value, so recording an output copies what changes, and with chunks that is
    the last chunk and the list of chunks, not every output so far (a flat list made a long
    run's context updates quadratic, CORE-26). `outputs_of(context)` gives the flat pairs.
    """

    name: str
    steps: tuple[StepDefinition, ...]
    # The application's name for this definition (spec/upgrades.md): part of the fingerprint a
    # run journals, and what a `Migration` names as its `from_version` and `to_version`.
    version: str | None = None
    _positions: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [step.step_id for step in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"Sequence {self.name!r}: step ids must be unique, got {ids}")
        # Planning is then O(1) per step; a scan would make a long run quadratic.
        object.__setattr__(self, "_positions", {step_id: i for i, step_id in enumerate(ids)})

    def start(self, input: JsonValue) -> JsonValue:
        return {"input": input, "next": 0, "outputs": [], "failed": []}

    @staticmethod
    def outputs_of(context: JsonValue) -> list[list[JsonValue]]:
        """The `[step_id, output]` pairs a context has recorded, in order."""
        return [pair for chunk in context["outputs"] for pair in chunk]

    @staticmethod
    def with_outputs(context: JsonValue, pairs: list[list[JsonValue]]) -> JsonValue:
        """The context with exactly these output pairs (chunked as `on_result` would)."""
        chunks = [pairs[i : i + OUTPUT_CHUNK] for i in range(0, len(pairs), OUTPUT_CHUNK)]
        return {**context, "outputs": chunks}

    def plan(self, context: JsonValue) -> Plan:
        position = context["next"]
        return NextStep(self.steps[position]) if position < len(self.steps) else Complete()

    def _after(self, context: JsonValue, step_id: str) -> int:
        return max(int(context["next"]), self._positions[step_id] + 1)

    def on_result(self, context: JsonValue, result: StepResult) -> JsonValue:
        pair = [result.step_id, result.output]
        chunks = context["outputs"]
        if chunks and len(chunks[-1]) < OUTPUT_CHUNK:
            outputs = [*chunks[:-1], [*chunks[-1], pair]]
        else:
            outputs = [*chunks, [pair]]
        return {**context, "next": self._after(context, result.step_id), "outputs": outputs}

    def on_failure(self, context: JsonValue, failure: StepFailure) -> JsonValue:
        assert failure.step_id is not None  # a step's failure names its step
        return {
            **context,
            "next": self._after(context, failure.step_id),
            "failed": [*context["failed"], failure.step_id],
        }

    def finalize(self, context: JsonValue, status: RunStatus) -> JsonValue:
        return {"outputs": dict(self.outputs_of(context)), "failed": context["failed"]}

    def declared_step(self, context: JsonValue, step_id: str) -> StepDefinition | None:
        position = self._positions.get(step_id)
        return None if position is None else self.steps[position]

    def upcoming_steps(self, context: JsonValue) -> SequenceOf[StepDefinition]:
        # From the first step without an output or a failure: the planned ones among them are
        # left out by the snapshot, which knows what the run has planned.
        return self.steps[context["next"] :]


DEFAULT_MAX_TURNS: Final = 8
# What of a model's call id may enter a step id: no `.` (a step id must not read like another
# kind of step's), no `/` or `:` (the separators of effect ids and idempotency keys, CORE-4).
_UNSAFE_ID_CHARACTERS: Final = re.compile(r"[^A-Za-z0-9_-]")
# The longest call id kept in a step id: providers' ids are about 30 characters.
CALL_ID_LIMIT: Final = 64


def call_step_name(call_id: str) -> str:
    """The part of a tool step's id that a model's call id gives (MODE-6)."""
    return _UNSAFE_ID_CHARACTERS.sub("_", call_id)[:CALL_ID_LIMIT]


@dataclass(frozen=True, slots=True)
class AgentLoop(_PassiveCallbacks):
    """An agent loop: an `llm` step whose result may ask for `tool` steps, whose results feed
    the next `llm` step, until the model answers without tools or `max_turns` is reached.

    The run input is `{"prompt": str}` or `{"messages": [...]}` (chat messages). An `llm` step's
    input is `{"messages": [...], "tools": [...]}`; its output must be `{"content": str,
    "tool_calls": [{"id": str, "name": str, "arguments": {...}}]}`. A `tool` step's input is
    `{"name": str, "arguments": {...}, "call_id": str}`. Tool calls of a turn run one after
    another; a finished call's result is in the context, so a resume never calls it again.

    The model is not trusted: an answer that calls a tool not in `tools` (MODE-5), or whose
    calls are malformed or have colliding ids (MODE-6), is refused (`OutputRefusedError`), so
    the model's step fails before any of its calls runs. Which kind of step a result is comes
    from what the loop planned (its context), never from the step id, into which the model's
    call id enters only sanitized (`call_step_name`).
    """

    name: str = "agent"
    tools: tuple[str, ...] = ()
    max_turns: int = DEFAULT_MAX_TURNS
    llm_policy: StepPolicy = field(
        default_factory=lambda: StepPolicy(max_attempts=3, timeout=120.0)
    )
    tool_policy: StepPolicy = field(
        default_factory=lambda: StepPolicy(max_attempts=3, timeout=60.0)
    )
    version: str | None = None  # as `Sequence.version` (spec/upgrades.md)

    def start(self, input: JsonValue) -> JsonValue:
        if isinstance(input, Mapping) and isinstance(input.get("prompt"), str):
            messages: list[JsonValue] = [{"role": "user", "content": input["prompt"]}]
        elif isinstance(input, Mapping) and isinstance(input.get("messages"), list):
            messages = list(input["messages"])
        else:
            raise ModeError(
                "agent input must be {'prompt': str} or {'messages': [...]}",
                category=FailureCategory.invalid_input,
            )
        return {"messages": messages, "turn": 0, "pending": [], "answer": None}

    def plan(self, context: JsonValue) -> Plan:
        pending = context["pending"]
        turn = context["turn"]
        if pending:
            call = pending[0]
            return NextStep(
                StepDefinition(
                    step_id=f"turn-{turn}.tool-{call_step_name(call['id'])}",
                    step_class=StepClass.tool,
                    input={
                        "name": call["name"],
                        "arguments": call["arguments"],
                        "call_id": call["id"],
                    },
                    policy=self.tool_policy,
                    label=f"tool {call['name']}",
                )
            )
        if context["answer"] is not None:
            return Complete()
        if turn >= self.max_turns:
            return Fail(
                f"the model did not answer within {self.max_turns} turns",
                category=FailureCategory.mode_error,
                details={"max_turns": self.max_turns},
            )
        return NextStep(
            StepDefinition(
                step_id=f"turn-{turn + 1}.llm",
                step_class=StepClass.llm,
                input={"messages": context["messages"], "tools": list(self.tools)},
                policy=self.llm_policy,
                label=f"model turn {turn + 1}",
            )
        )

    def _planned(self, context: JsonValue, step_id: str | None) -> StepDefinition:
        """The step the loop planned last, which `step_id` must be (MODE-6)."""
        plan = self.plan(context)
        if not isinstance(plan, NextStep) or plan.step.step_id != step_id:
            expected = plan.step.step_id if isinstance(plan, NextStep) else "no step"
            raise ModeError(
                f"a result for step {step_id!r}, but the loop planned {expected}",
                category=FailureCategory.protocol_error,
            )
        return plan.step

    def on_result(self, context: JsonValue, result: StepResult) -> JsonValue:
        output = result.output
        if self._planned(context, result.step_id).step_class is StepClass.tool:
            call, *rest = context["pending"]
            message = {"role": "tool", "tool_call_id": call["id"], "content": output}
            return {**context, "messages": [*context["messages"], message], "pending": rest}
        if not isinstance(output, Mapping) or not isinstance(output.get("content", ""), str):
            raise OutputRefusedError(
                f"llm step {result.step_id} returned {output!r}, not a message "
                "{'content': str, 'tool_calls': [...]}"
            )
        calls = self._tool_calls(result.step_id, output.get("tool_calls"))
        message = {
            "role": "assistant",
            "content": output.get("content", ""),
            "tool_calls": calls,
        }
        return {
            **context,
            "turn": context["turn"] + 1,
            "messages": [*context["messages"], message],
            "pending": calls,
            "answer": None if calls else output.get("content", ""),
        }

    def _tool_calls(self, step_id: str, calls: JsonValue) -> list[JsonValue]:
        """The calls of a model answer, each to an offered tool under its own id; else refused."""
        if calls is None:
            return []
        if not isinstance(calls, list):
            raise OutputRefusedError(
                f"llm step {step_id}: tool_calls must be a list, not {calls!r}"
            )
        seen: dict[str, str] = {}
        for call in calls:
            if not (
                isinstance(call, Mapping)
                and {"id", "name", "arguments"} <= call.keys()
                and isinstance(call["arguments"], Mapping)
            ):
                raise OutputRefusedError(
                    f"llm step {step_id} returned a bad tool call {call!r}: a call is "
                    "{'id': str, 'name': str, 'arguments': {...}}"
                )
            name, call_id = call["name"], call["id"]
            if not self._offers(name):
                raise OutputRefusedError(
                    f"llm step {step_id}: the model called tool {name!r}, which this loop did "
                    f"not offer (offered: {list(self.tools)}); no call of this answer ran",
                    details={"tool": name, "offered": list(self.tools)},
                )
            if not isinstance(call_id, str) or not call_id:
                raise OutputRefusedError(
                    f"llm step {step_id}: tool call id {call_id!r} is not a non-empty string"
                )
            step_name = call_step_name(call_id)
            if step_name in seen:
                raise OutputRefusedError(
                    f"llm step {step_id}: tool call ids {seen[step_name]!r} and {call_id!r} "
                    "collide (each call of a turn needs its own id)"
                )
            seen[step_name] = call_id
        return list(calls)

    def _offers(self, name: JsonValue) -> bool:
        """Whether a model turn may call tool `name` (MODE-5)."""
        return name in self.tools

    def on_failure(self, context: JsonValue, failure: StepFailure) -> JsonValue:
        if self._planned(context, failure.step_id).step_class is not StepClass.tool:
            raise ModeError(
                f"model turn {failure.step_id} failed ({failure.message}); the loop cannot go "
                "on without it",
                category=failure.category,
            )
        # A tool that failed under on_failure="continue": the model sees the error and goes on.
        call, *rest = context["pending"]
        message = {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": {"error": failure.message},
        }
        return {**context, "messages": [*context["messages"], message], "pending": rest}

    def finalize(self, context: JsonValue, status: RunStatus) -> JsonValue:
        return {"answer": context["answer"], "turns": context["turn"]}


def mode_registry(modes: SequenceOf[Mode]) -> Mapping[str, Mode]:
    """A name -> mode mapping of the newest (last listed) version of each name; two modes of
    one name must name different versions (UPG-4)."""
    registry: dict[str, Mode] = {}
    versions: dict[str, list[str | None]] = {}
    for mode in modes:
        version = getattr(mode, "version", None)
        seen = versions.setdefault(mode.name, [])
        if version in seen and registry.get(mode.name) != mode:
            raise ValueError(
                f"two modes are named {mode.name!r} with version {version!r}; to keep both "
                "registered, give each definition its own `version` (spec/upgrades.md)"
            )
        seen.append(version)
        registry[mode.name] = mode
    return registry
