"""Conversation, run and step state: immutable records that `reduce` replaces, never mutates.

Retention rule (CORE-3): a conversation keeps the full state of its active run and of its last
`HISTORY_LIMIT` ended runs; older ended runs are forgotten, but their ids stay in `run_ids` for
good, so a run id is unique per conversation forever and a late event for a forgotten run is
recognised as late (it can only be terminal).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Protocol

from .._errors import InterruptibleError
from .._lifecycle import LIVE_STEP_STATUSES, TERMINAL_RUN_STATUSES, RunStatus, StepStatus
from .._record import record, replacer
from .._vocabulary import Directive, JsonValue, StepDefinition, StepFailure, StepResult
from ._steps import Steps

# Enough to show a person the last few runs of a conversation and to answer late events for them
# precisely, while keeping an idle conversation small (the runtime keeps thousands in memory).
HISTORY_LIMIT: Final = 8


class _NoInput:
    """The marker for "no human answer kept"; distinct from a `None` answer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_INPUT"

    def __reduce__(self) -> str:
        return "NO_INPUT"  # unpickles as this module's NO_INPUT, so states stay equal


NO_INPUT: Final = _NoInput()


@record
class StepState:
    """One step of a run: its definition, status, attempts and kept result."""

    definition: StepDefinition
    status: StepStatus = StepStatus.pending
    attempt: int = 0  # the number of the latest attempt; each attempt has its own effect id
    failures: int = 0  # attempts that count toward the policy's max_attempts
    effect_id: str | None = None  # the latest attempt's effect
    progress_sequence: int = -1  # the last progress report seen from that effect
    result: StepResult | None = None
    failure: StepFailure | None = None
    input: JsonValue = NO_INPUT  # a human gate's answer, kept until the gate opens

    @property
    def step_id(self) -> str:
        """The step's id, unique in its run."""
        return self.definition.step_id

    @property
    def is_live(self) -> bool:
        """Whether the latest attempt's effect may still be running in a runtime."""
        return self.status in LIVE_STEP_STATUSES


class _StepWith(Protocol):
    """The signature of `step_with`: one keyword per `StepState` field (a test checks it)."""

    def __call__(
        self,
        step: StepState,
        /,
        *,
        definition: StepDefinition = ...,
        status: StepStatus = ...,
        attempt: int = ...,
        failures: int = ...,
        effect_id: str | None = ...,
        progress_sequence: int = ...,
        result: StepResult | None = ...,
        failure: StepFailure | None = ...,
        input: JsonValue = ...,
    ) -> StepState: ...


# `step_with(step, status=...)`: `step` with some fields changed. `reduce` rebuilds a step on
# every effect event, and `dataclasses.replace` costs about 3 us a call; this is written out
# once from the fields, as the constructor is, and costs what a constructor call does; no
# caller depends on the fields' order.
step_with: Final[_StepWith] = replacer(StepState)


# Recent ids stay in a short tuple (cheap to copy and to scan); every this many they are merged
# into `levels`, frozensets kept like the digits of a binary counter: a new set absorbs every
# level no larger than itself, so there are about log2(n / 32) levels and each id is copied
# about as many times. A plain frozenset would be copied whole on every step, a plain tuple
# scanned, and one frozenset refolded every 32 steps copied whole each time: all quadratic.
_RECENT_IDS: Final = 32


@record
class StepIds:
    """The ids of a run's planned steps: an immutable set whose `add` is cheap on long runs."""

    levels: tuple[frozenset[str], ...] = ()  # largest first
    recent: tuple[str, ...] = ()

    def __contains__(self, step_id: object) -> bool:
        if step_id in self.recent:
            return True
        return any(step_id in level for level in self.levels)

    def __len__(self) -> int:
        return sum(map(len, self.levels)) + len(self.recent)

    def add(self, step_id: str) -> StepIds:
        """These ids and `step_id`."""
        if len(self.recent) < _RECENT_IDS:
            return StepIds(self.levels, (*self.recent, step_id))
        merged = frozenset((*self.recent, step_id))
        levels = list(self.levels)
        while levels and len(levels[-1]) <= len(merged):
            merged = levels.pop() | merged
        levels.append(merged)
        return StepIds(tuple(levels), ())


NO_STEP_IDS: Final = StepIds()


@record
class RunState:
    """One run: identity, status, steps in the order they were planned, and the mode context."""

    run_id: str
    mode: str
    status: RunStatus
    input: JsonValue
    principal: str | None
    # In planning order; a tuple, or for a run of more than `LONG_RUN` steps the equal `Steps`
    # (updated in O(1) per event, see `_steps`).
    steps: tuple[StepState, ...] | Steps = ()
    context: JsonValue = None
    reason: str | None = None
    output: JsonValue = None
    error: StepFailure | None = None
    requested_at: float = 0.0
    early_inputs: tuple[tuple[str, JsonValue], ...] = ()  # answers to gates not planned yet
    step_ids: StepIds = NO_STEP_IDS  # the ids in `steps`, for the "planned before?" test
    # The definition the run follows, as journaled (spec/upgrades.md, UPG-1): None for a run
    # journaled before runs carried one.
    fingerprint: str | None = None
    definition: JsonValue = None

    @property
    def is_terminal(self) -> bool:
        """Whether the run has reached its one terminal status."""
        return self.status in TERMINAL_RUN_STATUSES

    def step(self, step_id: str) -> StepState | None:
        """The step with this id, if the run has planned it."""
        for step in reversed(self.steps):  # the step asked about is usually the latest
            if step.definition.step_id == step_id:
                return step
        return None

    def live_steps(self) -> tuple[StepState, ...]:
        """The steps whose effect may still be running."""
        return tuple(step for step in self.steps if step.status in LIVE_STEP_STATUSES)


@record
class ConversationState:
    """Everything the core knows about one conversation."""

    conversation_id: str | None = None
    active_run: RunState | None = None  # the run that occupies the conversation, if any
    run_history: tuple[RunState, ...] = ()  # retained ended runs, oldest first
    run_ids: frozenset[str] = frozenset()  # every run id this conversation ever had

    @property
    def active_run_id(self) -> str | None:
        """The id of the active run (pending, running or interrupted), if any."""
        return None if self.active_run is None else self.active_run.run_id

    @property
    def history(self) -> tuple[str, ...]:
        """The ids of the retained ended runs, oldest first."""
        return tuple(run.run_id for run in self.run_history)

    @property
    def runs(self) -> Mapping[str, RunState]:
        """Every retained run by id: the history, then the active run."""
        runs = {run.run_id: run for run in self.run_history}
        if self.active_run is not None:
            runs[self.active_run.run_id] = self.active_run
        return MappingProxyType(runs)

    def run(self, run_id: str) -> RunState | None:
        """The retained run with this id, if any."""
        active = self.active_run
        if active is not None and active.run_id == run_id:
            return active
        for run in self.run_history:
            if run.run_id == run_id:
                return run
        return None


def initial_state(conversation_id: str | None = None) -> ConversationState:
    """The state of a conversation before any event (bound to its id by the first run request)."""
    return ConversationState(conversation_id=conversation_id)


class Disposition(StrEnum):
    """What `reduce` did with an event."""

    applied = "applied"  # the state changed
    ignored = "ignored"  # a duplicate, stale or late event: no change, no effect directive
    rejected = "rejected"  # bad input or refused: no change, `error` says why


class IgnoredReason(StrEnum):
    """Why an event changed nothing although it was well formed."""

    duplicate_request = "duplicate_request"
    duplicate_effect_event = "duplicate_effect_event"
    duplicate_input = "duplicate_input"
    stale_effect = "stale_effect"
    effect_already_answered = "effect_already_answered"
    cancel_pending = "cancel_pending"
    run_terminal = "run_terminal"


@record
class Outcome:
    """What `reduce` returns: the new state, the directives in order, and for a refusal, why."""

    state: ConversationState
    directives: tuple[Directive, ...] = ()
    disposition: Disposition = Disposition.applied
    reason: IgnoredReason | None = None  # why an ignored event changed nothing
    error: InterruptibleError | None = None  # why a rejected event was refused

    @property
    def applied(self) -> bool:
        """Whether the event changed the state."""
        return self.disposition is Disposition.applied

    @property
    def ignored(self) -> bool:
        """Whether the event was well formed but changed nothing (`reason` says why)."""
        return self.disposition is Disposition.ignored

    @property
    def rejected(self) -> bool:
        """Whether the event was refused (`error` says why)."""
        return self.disposition is Disposition.rejected
