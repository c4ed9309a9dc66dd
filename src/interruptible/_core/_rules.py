"""The protocol's event rules: what each vocabulary event requires, fires and answers, as data.

Theory of operation
-------------------
`_lifecycle.py` declares what a run and a step may do; this module declares when the coordinator
lets a vocabulary event do it. One frozen `EventRule` per event names the audit action it is
authorized under, what it answers for a run id the conversation never had (`unknown`) or no longer
retains (`forgotten`), what it answers in each run status and in each status of its step (ignored
with an `IgnoredReason`, or refused with a builder of `_refusals.py`), whether an effect event
must carry its step's current effect id and attempt (freshness), and which lifecycle events it
fires on the run and on its steps (SPEC-7).

Every status set is read from the compiled tables (`sources`, `targets`, `finals` of `RUN` and
`STEP`), never restated: adding a transition to a lifecycle moves the rules with it. At import,
each rule's ordered checks are folded into one plain dict per status kind (`run_answers`,
`step_answers`: status -> answer, first check wins), so the coordinator's pre-checks stay one
lookup each (style rule 15). What a table cannot express (duplicate answers of a gate, a
supersede, a definition's fingerprint) stays in the coordinator, and its rule's `note` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from .._errors import InterruptibleError
from .._interpreter import CompiledLifecycle
from .._lifecycle import RunStatus, StepStatus
from .._vocabulary import (
    AuditAction,
    CancelRequested,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectProgress,
    EffectStarted,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    RunUpgraded,
)
from ._refusals import (
    resume_not_allowed_for_uninterrupted,
    run_not_found_for_unknown_id,
    run_terminal_for_gate_answer,
)
from ._state import IgnoredReason
from ._txn import RUN, STEP

S = TypeVar("S", RunStatus, StepStatus)


@dataclass(frozen=True, slots=True)
class StatusSet(Generic[S]):
    """A set of statuses read from a compiled table, with how it was read (for the spec)."""

    text: str
    statuses: frozenset[S]

    def __sub__(self, other: StatusSet[S]) -> StatusSet[S]:
        return StatusSet(f"{self.text} but {other.text}", self.statuses - other.statuses)


def _name(lifecycle: CompiledLifecycle[Any]) -> str:
    return "run" if lifecycle is RUN else "step"


def sources(lifecycle: CompiledLifecycle[S], event: str) -> StatusSet[S]:
    """The statuses `event` leaves in `lifecycle`."""
    found = frozenset(t.source for t in lifecycle.transitions if t.event == event)
    return StatusSet(f"sources of {_name(lifecycle)} `{event}`", found)


def targets(lifecycle: CompiledLifecycle[S], event: str) -> StatusSet[S]:
    """The statuses `event` leads to in `lifecycle`."""
    found = frozenset(t.target for t in lifecycle.transitions if t.event == event)
    return StatusSet(f"targets of {_name(lifecycle)} `{event}`", found)


def finals(lifecycle: CompiledLifecycle[S]) -> StatusSet[S]:
    """The final statuses of `lifecycle`."""
    return StatusSet(f"{_name(lifecycle)} finals", frozenset(lifecycle.finals))


def every(lifecycle: CompiledLifecycle[S]) -> StatusSet[S]:
    """Every status of `lifecycle`."""
    return StatusSet(f"every {_name(lifecycle)} status", frozenset(lifecycle.statuses))


@dataclass(frozen=True, slots=True)
class Ignore:
    """The event changes nothing, and says why."""

    reason: IgnoredReason


# A refusal builder of `_refusals.py`: the event and the status to name (None: none to name).
Builder = Callable[..., InterruptibleError]


@dataclass(frozen=True, slots=True)
class Refuse:
    """The event is rejected with the error `build` makes; `status` overrides the run's."""

    build: Builder
    status: str | None = None


Answer = Ignore | Refuse
AnswerAt = Answer | Callable[[StepStatus], Answer]


@dataclass(frozen=True, slots=True)
class EventRule:
    """The rules of one vocabulary event (SPEC-7); `run_checks`/`step_checks` are tried in order."""

    event: type[Any]
    authorized_as: AuditAction | None = None
    unknown: Answer | None = Refuse(run_not_found_for_unknown_id)
    forgotten: Answer | None = None
    run_checks: tuple[tuple[StatusSet[RunStatus], Answer], ...] = ()
    fresh_effect: bool = False
    step_checks: tuple[tuple[StatusSet[StepStatus], Answer], ...] = ()
    run_fires: tuple[str, ...] = ()
    step_fires: tuple[str, ...] = ()
    advances: bool = False  # then asks the mode for the next step (`schedule`, `complete`, `fail`)
    note: str = ""
    run_answers: Mapping[RunStatus, Answer] = field(init=False)
    step_answers: Mapping[StepStatus, Answer] = field(init=False)

    def __post_init__(self) -> None:
        run_answers: dict[RunStatus, Answer] = {}
        for statuses, answer in self.run_checks:
            for status in statuses.statuses:
                run_answers.setdefault(status, answer)
        step_answers: dict[StepStatus, Answer] = {}
        for step_statuses, answer in self.step_checks:
            for step_status in step_statuses.statuses:
                step_answers.setdefault(step_status, answer)
        object.__setattr__(self, "run_answers", run_answers)  # plain dicts: read per event
        object.__setattr__(self, "step_answers", step_answers)


_IGNORED_TERMINAL: Final = Ignore(IgnoredReason.run_terminal)
# The step statuses whose effect may still answer: the sources of `effect_completed` (STEP-11).
_LIVE: Final = sources(STEP, "effect_completed")
# A late effect event: its step is waiting for a cancel's answer, still live, or has ended.
_LATE: Final = (
    (targets(STEP, "interrupt"), Ignore(IgnoredReason.cancel_pending)),
    (_LIVE, Ignore(IgnoredReason.duplicate_effect_event)),
    (every(STEP), Ignore(IgnoredReason.effect_already_answered)),
)
_ANSWERED: Final = ((every(STEP) - _LIVE, Ignore(IgnoredReason.effect_already_answered)),)


def _effect_rule(
    event: type[Any], *step_checks: tuple[StatusSet[StepStatus], Answer], **more: Any
) -> EventRule:
    return EventRule(
        event,
        forgotten=_IGNORED_TERMINAL,
        run_checks=((finals(RUN), _IGNORED_TERMINAL),),
        fresh_effect=True,
        step_checks=step_checks,
        **more,
    )


RULES: Final[Mapping[type[Any], EventRule]] = MappingProxyType(
    {
        rule.event: rule
        for rule in (
            EventRule(
                RunRequested,
                authorized_as=AuditAction.supersede,
                unknown=None,
                run_fires=("start", "cancel"),
                advances=True,
                note="a reused run id is a duplicate or a conflict; an active run is refused "
                "unless superseded (then canceled, authorized as `supersede`)",
            ),
            EventRule(
                InterruptRequested,
                authorized_as=AuditAction.interrupt,
                forgotten=_IGNORED_TERMINAL,
                run_checks=(
                    (targets(RUN, "interrupt"), Ignore(IgnoredReason.duplicate_request)),
                    (finals(RUN), _IGNORED_TERMINAL),
                ),
                run_fires=("interrupt",),
                step_fires=("interrupt",),
            ),
            EventRule(
                ResumeRequested,
                authorized_as=AuditAction.resume,
                forgotten=Refuse(resume_not_allowed_for_uninterrupted, "a forgotten ended run"),
                run_checks=(
                    (targets(RUN, "resume"), Ignore(IgnoredReason.duplicate_request)),
                    (
                        every(RUN) - sources(RUN, "resume"),
                        Refuse(resume_not_allowed_for_uninterrupted),
                    ),
                ),
                run_fires=("resume",),
                advances=True,
            ),
            EventRule(
                CancelRequested,
                authorized_as=AuditAction.cancel,
                forgotten=_IGNORED_TERMINAL,
                run_checks=((finals(RUN), _IGNORED_TERMINAL),),
                run_fires=("cancel",),
                step_fires=("abandon",),
            ),
            _effect_rule(
                EffectStarted,
                *((late - sources(STEP, "effect_started"), answer) for late, answer in _LATE),
                step_fires=("effect_started",),
                advances=True,
            ),
            _effect_rule(
                EffectProgress,
                _LATE[0],
                *_ANSWERED,
                step_fires=("effect_progress",),
            ),
            _effect_rule(
                EffectCompleted,
                *_ANSWERED,
                step_fires=("effect_completed", "effect_failed"),
                advances=True,
                note="an output the mode refuses fails the step instead (`effect_failed`)",
            ),
            _effect_rule(EffectFailed, *_ANSWERED, step_fires=("effect_failed",), advances=True),
            _effect_rule(
                EffectCanceled, *_ANSWERED, step_fires=("effect_canceled",), advances=True
            ),
            _effect_rule(EffectLost, *_ANSWERED, step_fires=("effect_lost",), advances=True),
            EventRule(
                HumanInputReceived,
                authorized_as=AuditAction.provide_input,
                forgotten=Refuse(run_terminal_for_gate_answer, "forgotten"),
                run_checks=((finals(RUN), Refuse(run_terminal_for_gate_answer)),),
                step_fires=("human_input_received",),
                advances=True,
                note="the same answer again is a duplicate and another one a conflict (checked "
                "first); an answer before its gate is planned is kept if the mode declares it",
            ),
            EventRule(
                RunUpgraded,
                forgotten=_IGNORED_TERMINAL,
                run_checks=((finals(RUN), _IGNORED_TERMINAL),),
                note="the same fingerprint again is a duplicate; another definition must follow",
            ),
        )
    }
)
