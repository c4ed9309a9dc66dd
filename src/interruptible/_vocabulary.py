"""The vocabulary: events, directives, step definitions and result envelopes, as frozen values.

Events are facts that arrive from the outside (`run_requested`, `effect_completed`, ...); the
journal records them and `reduce` folds them. Directives are what the core asks a runtime to do
(`start_effect`, `cancel_effects`, `emit_*`). Every event and directive carries its
`conversation_id`, `run_id` and a `cause_id` linking it to what caused it; effect events and
effect directives also carry `step_id`, `effect_id` and `attempt`. Each class names itself in
`kind` (`start_effect`), a class attribute: not a field, so it costs no instance anything and is
not encoded twice (the codec writes it as `type`).

Ids and times are never made here or in `reduce`: they arrive inside events, which keeps the core
deterministic. The one exception is derived ids (`effect_id_for`), which are pure functions of ids
that arrived in events. `_codec.py` turns all of these into JSON and back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final, TypeAlias, TypeVar

from ._errors import PolicyError, UnknownCategoryError
from ._lifecycle import StepClass
from ._record import NORMALIZE, record

# A JSON value (None, bool, int, float, str, list, dict with str keys). Payloads are treated as
# immutable: the core never mutates one it received.
JsonValue: TypeAlias = Any


class OnFailure(StrEnum):
    """What a step's failure does to its run."""

    fail = "fail"
    continue_ = "continue"


class FailureCategory(StrEnum):
    """The normalized categories of a step failure; a policy retries the ones it lists."""

    timeout = "timeout"
    transient = "transient"
    rate_limited = "rate_limited"
    invalid_input = "invalid_input"
    invalid_output = "invalid_output"  # an answer over the payload limits (RT-22)
    executor_error = "executor_error"
    not_found = "not_found"
    mode_error = "mode_error"
    protocol_error = "protocol_error"
    canceled = "canceled"


_CATEGORIES: Final = {member.value: member for member in FailureCategory}


def failure_category(value: FailureCategory | str) -> FailureCategory:
    """A failure category given as its member or as its plain string, as the member (CORE-33).

    A string that names no category raises `UnknownCategoryError`. Any other value is kept as
    given: `reduce` rejects an event with a wrongly typed field (CORE-1) rather than raise.
    """
    if type(value) is str:
        try:
            return _CATEGORIES[value]
        except KeyError:
            raise UnknownCategoryError(value, _CATEGORIES) from None
    return value  # type: ignore[return-value]  # a member, or a wrong type reduce rejects


class AuditAction(StrEnum):
    """The actions that are authorized and audited."""

    interrupt = "interrupt"
    resume = "resume"
    cancel = "cancel"
    supersede = "supersede"
    provide_input = "provide_input"


# --- step definitions and envelopes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (n >= 1): min(initial * multiplier ** (n - 1), max_delay) seconds."""

    initial: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        for name, value, least in (
            ("initial", self.initial, 0.0),
            ("multiplier", self.multiplier, 1.0),
            ("max_delay", self.max_delay, 0.0),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= least):
                raise PolicyError(
                    f"backoff.{name} must be a finite number >= {least}, got {value!r}"
                )

    def delay(self, retry: int) -> float:
        """The delay before retry number `retry` (1 for the first retry); 0 before a first try.

        A delay too large for a float is `max_delay` (CORE-27), so this never raises.

        pre: self.initial >= 0 and self.multiplier >= 1 and self.max_delay >= 0
        pre: retry >= 0
        post: 0 <= __return__ <= self.max_delay
        """
        if retry <= 0 or self.initial == 0:
            return 0.0
        try:
            growth = self.multiplier ** (retry - 1)
        except OverflowError:  # past about 1.8e308: far beyond any max_delay
            return self.max_delay
        return min(self.initial * growth, self.max_delay)


DEFAULT_RETRY_ON: Final = (
    FailureCategory.timeout,
    FailureCategory.transient,
    FailureCategory.rate_limited,
)

# Seconds an effect asked to stop may take to answer before the runtime journals it as
# abandoned (RT-26): long enough for a tool in a thread to finish a slow request, short enough
# that a resume is not held up for minutes by one that never returns.
DEFAULT_CANCEL_GRACE: Final = 30.0


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """How a step is executed: it travels unchanged into the step's `start_effect`."""

    timeout: float | None = None
    max_attempts: int = 1
    backoff: Backoff = field(default_factory=Backoff)
    retry_on: tuple[FailureCategory, ...] = DEFAULT_RETRY_ON
    on_failure: OnFailure = OnFailure.fail
    # How long an effect asked to stop may take to answer before the runtime stops waiting for
    # it and journals it as abandoned (RT-26): long enough for a thread to finish a request.
    cancel_grace: float = DEFAULT_CANCEL_GRACE

    def __post_init__(self) -> None:
        if any(type(category) is str for category in self.retry_on):  # CORE-33
            retry_on = tuple(failure_category(category) for category in self.retry_on)
            object.__setattr__(self, "retry_on", retry_on)
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise PolicyError(f"max_attempts must be an int >= 1, got {self.max_attempts!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float)
            and math.isfinite(self.timeout)
            and self.timeout > 0
        ):
            raise PolicyError(f"timeout must be None or a finite number > 0, got {self.timeout!r}")
        grace = self.cancel_grace
        if not (
            isinstance(grace, int | float)
            and not isinstance(grace, bool)
            and math.isfinite(grace)
            and grace > 0
        ):
            raise PolicyError(f"cancel_grace must be a finite number > 0, got {grace!r}")


@dataclass(frozen=True, slots=True)
class StepDefinition:
    """One step a mode asks for: its id (unique in the run), class, input and policy."""

    step_id: str
    step_class: StepClass
    input: JsonValue = None
    policy: StepPolicy = field(default_factory=StepPolicy)
    label: str = ""


@record
class StepResult:
    """The normalized result of a step: what its effect returned, kept for good."""

    step_id: str
    attempt: int
    effect_id: str
    output: JsonValue = None


@record
class StepFailure:
    """The normalized failure envelope, of a step or (projected) of a whole run."""

    category: FailureCategory = field(metadata={NORMALIZE: failure_category})
    message: str
    step_id: str | None = None
    attempt: int | None = None
    retryable: bool = False
    details: JsonValue = None


# --- events --------------------------------------------------------------------------------------


@record
class RunRequested:
    """A caller asked for a new run of `mode` over `input`."""

    kind: ClassVar[str] = "run_requested"

    event_id: str
    conversation_id: str
    run_id: str
    mode: str
    input: JsonValue = None
    principal: str | None = None
    supersede: bool = False
    at: float = 0.0
    cause_id: str | None = None
    # The mode's definition document and its fingerprint, as the requester registered it
    # (spec/upgrades.md, UPG-1); None in journals written before runs carried them.
    fingerprint: str | None = None
    definition: JsonValue = None


@record
class InterruptRequested:
    """A caller asked to interrupt the run; it may be resumed later."""

    kind: ClassVar[str] = "interrupt_requested"

    event_id: str
    conversation_id: str
    run_id: str
    reason: str = "interrupt_requested"
    principal: str | None = None
    at: float = 0.0
    cause_id: str | None = None


@record
class ResumeRequested:
    """A caller asked to resume an interrupted run."""

    kind: ClassVar[str] = "resume_requested"

    event_id: str
    conversation_id: str
    run_id: str
    principal: str | None = None
    at: float = 0.0
    cause_id: str | None = None


@record
class CancelRequested:
    """A caller asked to end the run for good (terminal `canceled`)."""

    kind: ClassVar[str] = "cancel_requested"

    event_id: str
    conversation_id: str
    run_id: str
    reason: str = "cancel_requested"
    principal: str | None = None
    at: float = 0.0
    cause_id: str | None = None


@record
class EffectStarted:
    """The runtime started the effect of a step attempt."""

    kind: ClassVar[str] = "effect_started"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    at: float = 0.0
    cause_id: str | None = None


@record
class EffectProgress:
    """A running effect reported progress; `sequence` orders reports of one effect."""

    kind: ClassVar[str] = "effect_progress"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    sequence: int
    progress: JsonValue = None
    at: float = 0.0
    cause_id: str | None = None


@record
class EffectCompleted:
    """An effect finished with an output."""

    kind: ClassVar[str] = "effect_completed"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    output: JsonValue = None
    at: float = 0.0
    cause_id: str | None = None


@record
class EffectFailed:
    """An effect ended with an error."""

    kind: ClassVar[str] = "effect_failed"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    category: FailureCategory = field(metadata={NORMALIZE: failure_category})
    message: str
    retryable: bool = False
    details: JsonValue = None
    at: float = 0.0
    cause_id: str | None = None


@record
class EffectCanceled:
    """An effect stopped because it was asked to."""

    kind: ClassVar[str] = "effect_canceled"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    at: float = 0.0
    cause_id: str | None = None


@record
class EffectLost:
    """The runtime lost an effect without an answer (its process stopped); it never answers."""

    kind: ClassVar[str] = "effect_lost"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    reason: str = "process_restart"
    at: float = 0.0
    cause_id: str | None = None


@record
class HumanInputReceived:
    """A person answered the human gate `step_id` of the run."""

    kind: ClassVar[str] = "human_input_received"

    event_id: str
    conversation_id: str
    run_id: str
    step_id: str
    value: JsonValue = None
    principal: str | None = None
    at: float = 0.0
    cause_id: str | None = None


@record
class RunUpgraded:
    """A run moved to another definition of its mode: one the new definition plans exactly, or
    through a migration the application declared (spec/upgrades.md, UPG-4, UPG-5).

    `renames` maps old step ids to new ones (`None`: dropped); `context` is the run's context
    under the new definition. Everything replay needs is here, so it never consults the code that
    decided the move.
    """

    kind: ClassVar[str] = "run_upgraded"

    event_id: str
    conversation_id: str
    run_id: str
    from_fingerprint: str | None
    fingerprint: str
    definition: JsonValue = None
    context: JsonValue = None
    migration: str | None = None
    renames: JsonValue = None
    at: float = 0.0
    cause_id: str | None = None


Event: TypeAlias = (
    RunRequested
    | InterruptRequested
    | ResumeRequested
    | CancelRequested
    | EffectStarted
    | EffectProgress
    | EffectCompleted
    | EffectFailed
    | EffectCanceled
    | EffectLost
    | HumanInputReceived
    | RunUpgraded
)

# --- directives ----------------------------------------------------------------------------------


@record
class StartEffect:
    """Start the effect of one step attempt, after `delay` seconds (a retry's backoff)."""

    kind: ClassVar[str] = "start_effect"

    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    step_class: StepClass
    input: JsonValue
    policy: StepPolicy
    idempotency_key: str
    delay: float
    cause_id: str

    # The effect's answers, built from this directive (CORE-32): its identity fields and cause
    # are copied; the event id and the time still come from the caller, as everywhere.

    def started(self, *, event_id: str, at: float) -> EffectStarted:
        """The `effect_started` event of this effect."""
        return effect_event(EffectStarted, self, event_id, at)

    def completed(self, output: JsonValue = None, *, event_id: str, at: float) -> EffectCompleted:
        """The `effect_completed` event of this effect, with its output."""
        return effect_event(EffectCompleted, self, event_id, at, output)

    def failed(
        self,
        category: FailureCategory | str,
        message: str,
        *,
        event_id: str,
        at: float,
        retryable: bool = False,
        details: JsonValue = None,
    ) -> EffectFailed:
        """The `effect_failed` event of this effect, with its failure."""
        return effect_event(
            EffectFailed,
            self,
            event_id,
            at,
            failure_category(category),
            message,
            retryable,
            details,
        )

    def canceled(self, *, event_id: str, at: float) -> EffectCanceled:
        """The `effect_canceled` event of this effect: it stopped because it was asked to."""
        return effect_event(EffectCanceled, self, event_id, at)


_E = TypeVar("_E")


def effect_event(
    cls: Callable[..., _E], d: StartEffect, event_id: str, at: float, *fields: Any
) -> _E:
    """The event of class `cls` about the effect `d` starts: its identity fields from `d`, then
    `fields` (what the class has between `attempt` and `at`), `at` and the cause."""
    return cls(
        event_id,
        d.conversation_id,
        d.run_id,
        d.step_id,
        d.effect_id,
        d.attempt,
        *fields,
        at,
        d.cause_id,
    )


@record
class CancelEffects:
    """Cancel these in-flight effects of the run; each answers with its own lifecycle event."""

    kind: ClassVar[str] = "cancel_effects"

    conversation_id: str
    run_id: str
    effect_ids: tuple[str, ...]
    reason: str
    cause_id: str


@record
class EmitLifecycle:
    """Publish a lifecycle change of the run or of one of its steps (`run.interrupted`, ...)."""

    kind: ClassVar[str] = "emit_lifecycle"

    conversation_id: str
    run_id: str
    name: str
    status: str
    cause_id: str
    reason: str | None = None
    step_id: str | None = None
    effect_id: str | None = None
    attempt: int | None = None


@record
class EmitProgress:
    """Publish the progress an effect reported."""

    kind: ClassVar[str] = "emit_progress"

    conversation_id: str
    run_id: str
    step_id: str
    effect_id: str
    attempt: int
    sequence: int
    progress: JsonValue
    cause_id: str


@record
class EmitOutput:
    """The run's one terminal output: its final status and output, or its error projection."""

    kind: ClassVar[str] = "emit_output"

    conversation_id: str
    run_id: str
    status: str
    output: JsonValue
    error: StepFailure | None
    cause_id: str


@record
class EmitAudit:
    """Record an authorization decision (allowed or refused) for an action on a run."""

    kind: ClassVar[str] = "emit_audit"

    conversation_id: str
    run_id: str
    action: AuditAction
    principal: str | None
    allowed: bool
    reason: str
    cause_id: str


Directive: TypeAlias = (
    StartEffect | CancelEffects | EmitLifecycle | EmitProgress | EmitOutput | EmitAudit
)

EVENT_TYPES: Final[dict[str, type[Any]]] = {
    "run_requested": RunRequested,
    "interrupt_requested": InterruptRequested,
    "resume_requested": ResumeRequested,
    "cancel_requested": CancelRequested,
    "effect_started": EffectStarted,
    "effect_progress": EffectProgress,
    "effect_completed": EffectCompleted,
    "effect_failed": EffectFailed,
    "effect_canceled": EffectCanceled,
    "effect_lost": EffectLost,
    "human_input_received": HumanInputReceived,
    "run_upgraded": RunUpgraded,
}
DIRECTIVE_TYPES: Final[dict[str, type[Any]]] = {
    "start_effect": StartEffect,
    "cancel_effects": CancelEffects,
    "emit_lifecycle": EmitLifecycle,
    "emit_progress": EmitProgress,
    "emit_output": EmitOutput,
    "emit_audit": EmitAudit,
}
TYPE_NAMES: Final[dict[type[Any], str]] = {
    cls: name for name, cls in (*EVENT_TYPES.items(), *DIRECTIVE_TYPES.items())
}


def type_name(value: object) -> str:
    """The vocabulary name of an event or directive (`run_requested`, `start_effect`, ...)."""
    return TYPE_NAMES[type(value)]


def effect_id_for(run_id: str, step_id: str, attempt: int) -> str:
    """The effect id of one step attempt: a pure function of ids that arrived in events.

    post: __return__.startswith(run_id)
    """
    return f"{run_id}/{step_id}/{attempt}"


def idempotency_key_for(run_id: str, step_id: str, attempt: int) -> str:
    """The idempotency key handed to an executor: (run_id, step_id, attempt), as one string."""
    return f"{run_id}:{step_id}:{attempt}"
