"""A run's history as its journal tells it: each step attempt's start and end, and the requests
made of the run, with their journaled times, reasons and principals.

Theory of operation
-------------------
The pictures (`_views/_pictures.py`: the timeline) and the traces (`_runtime/_tracing.py`:
spans of a settled run) show the same facts, so they read them here, once; this module sits in
the base, below both, and reads only the vocabulary. Nothing is folded: an attempt
starts at its `effect_started` and ends at the first of `effect_completed`, `effect_failed`,
`effect_canceled` or `effect_lost` that names its effect id (an answer that arrived after the
run ended included: the effect did end then); an attempt with no such event is still open at the
journal's end. Which requests counted (an interrupt the authorizer refused is journaled too,
RT-13) is a fold's to say: a reader that folds passes `counts`, and the others show every
journaled request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from ._vocabulary import (
    CancelRequested,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectStarted,
    Event,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    RunUpgraded,
)

# The event that ends an attempt, by event type: named as the step lifecycle's events are.
ENDINGS: Final[dict[type[Event], str]] = {
    EffectCompleted: "effect_completed",
    EffectFailed: "effect_failed",
    EffectCanceled: "effect_canceled",
    EffectLost: "effect_lost",
}


@dataclass(frozen=True, slots=True)
class AttemptFact:
    """One attempt of a step, with the journal's times (Unix seconds): started at `start`,
    ended at `end` by `ended_by` (None, with `end` None: no answer journaled)."""

    step_id: str
    attempt: int
    effect_id: str
    start: float
    end: float | None
    ended_by: str | None
    category: str | None = None  # an `effect_failed`'s failure category
    reason: str | None = None  # an `effect_lost`'s reason


@dataclass(frozen=True, slots=True)
class RequestFact:
    """A request made of the run: `interrupt`, `resume`, `cancel` or `answer` (of `step_id`),
    or its move to another definition, `upgrade` (`reason`: the migration, or `compatible`)."""

    kind: str
    at: float
    step_id: str | None = None
    reason: str | None = None
    principal: str | None = None


@dataclass(slots=True)
class RunHistory:
    """What a run's journaled events say about it, in journal order."""

    run_id: str
    requested: RunRequested | None = None
    steps: list[str] = field(default_factory=list)  # in the order they first started
    attempts: list[AttemptFact] = field(default_factory=list)  # in the order they ended
    requests: list[RequestFact] = field(default_factory=list)
    last_at: float | None = None  # the time of the run's last journaled event


def run_history(
    events: Iterable[Event], run_id: str, *, counts: Callable[[Event], bool] | None = None
) -> RunHistory:
    """The attempts and requests of run `run_id` in its conversation's `events`; a request
    `counts` refuses is left out (default: every journaled request counts)."""
    history = RunHistory(run_id)
    live: dict[str, EffectStarted] = {}  # effect id -> its start
    attempts = history.attempts
    requests = history.requests
    for event in events:
        if getattr(event, "run_id", None) != run_id:
            continue
        history.last_at = event.at
        kind = type(event)
        if kind is EffectStarted:
            assert isinstance(event, EffectStarted)
            if event.step_id not in history.steps:
                history.steps.append(event.step_id)
            live[event.effect_id] = event
        elif kind in ENDINGS:
            effect_id: str = getattr(event, "effect_id", "")
            started = live.pop(effect_id, None)
            if started is not None:
                attempts.append(
                    AttemptFact(
                        started.step_id,
                        started.attempt,
                        effect_id,
                        started.at,
                        event.at,
                        ENDINGS[kind],
                        getattr(event, "category", None),
                        getattr(event, "reason", None),
                    )
                )
        elif kind is RunRequested:
            assert isinstance(event, RunRequested)
            if history.requested is None:
                history.requested = event
        elif counts is not None and not counts(event):
            continue
        elif kind is InterruptRequested:
            assert isinstance(event, InterruptRequested)
            requests.append(RequestFact("interrupt", event.at, None, event.reason, event.principal))
        elif kind is ResumeRequested:
            assert isinstance(event, ResumeRequested)
            requests.append(RequestFact("resume", event.at, None, None, event.principal))
        elif kind is CancelRequested:
            assert isinstance(event, CancelRequested)
            requests.append(RequestFact("cancel", event.at, None, event.reason, event.principal))
        elif kind is HumanInputReceived:
            assert isinstance(event, HumanInputReceived)
            requests.append(RequestFact("answer", event.at, event.step_id, None, event.principal))
        elif kind is RunUpgraded:  # the run moved to another definition (spec/upgrades.md)
            assert isinstance(event, RunUpgraded)
            reason = event.migration or "compatible"
            requests.append(RequestFact("upgrade", event.at, None, reason, None))
    for started in live.values():
        attempts.append(
            AttemptFact(started.step_id, started.attempt, started.effect_id, started.at, None, None)
        )
    return history
