"""Properties of the compiled lifecycle tables, stated as contracts over every status and event.

CrossHair checks these postconditions symbolically (`scripts/check_contracts.py`); the unit tests
also call them for every status, event and guard value, so each property is proven both ways.
An event is named by its index `k` into the table's `events`: CrossHair reasons well about enums
and integers, and poorly about dictionary keys built from symbolic strings.
"""

from __future__ import annotations

from typing import Final

from .._core._txn import RUN, STEP
from .._errors import IllegalTransition
from .._lifecycle import (  # the final-status sets are read by the docstring contracts
    FINAL_STEP_STATUSES,  # noqa: F401
    TERMINAL_RUN_STATUSES,  # noqa: F401
    RunStatus,
    StepStatus,
)

# RUN-2's legal status changes (spec/lifecycles.md), written out literally so the contract
# compares the table against them.
RUN_EDGES: Final = frozenset(
    {
        (RunStatus.pending, RunStatus.running),
        (RunStatus.pending, RunStatus.failed),
        (RunStatus.pending, RunStatus.canceled),
        (RunStatus.running, RunStatus.interrupted),
        (RunStatus.running, RunStatus.completed),
        (RunStatus.running, RunStatus.failed),
        (RunStatus.running, RunStatus.canceled),
        (RunStatus.interrupted, RunStatus.running),
        (RunStatus.interrupted, RunStatus.failed),
        (RunStatus.interrupted, RunStatus.canceled),
    }
)
# The only step statuses from which a new effect may start: neither has a live effect.
_STARTABLE: Final = frozenset({StepStatus.pending, StepStatus.retrying})
_EFFECT_ANSWERS: Final = frozenset(
    {"effect_completed", "effect_failed", "effect_canceled", "effect_lost", "abandon"}
)


def _answered(k: int) -> bool:
    """Whether event `k` answers the effect (or ends the run): the only ways out of cancelling."""
    return STEP.events[k] in _EFFECT_ANSWERS


def run_target(status: RunStatus, k: int, no_step_left: bool) -> RunStatus | None:
    """The run status event `RUN.events[k]` leads to from `status`, or None when illegal.

    pre: 0 <= k < len(RUN.events)
    post: __return__ is None or status not in TERMINAL_RUN_STATUSES
    post: __return__ is None or (status, __return__) in RUN_EDGES
    post: __return__ is not RunStatus.completed or no_step_left
    post: __return__ is not RunStatus.interrupted or status is RunStatus.running
    """
    try:
        return RUN.fire(status, RUN.events[k], {"no_step_left": no_step_left}).target
    except IllegalTransition:
        return None


def step_target(
    status: StepStatus, k: int, awaits_input: bool, has_input: bool, attempts: bool, retry: bool
) -> StepStatus | None:
    """The step status event `STEP.events[k]` leads to from `status`, or None when illegal.

    pre: 0 <= k < len(STEP.events)
    post: __return__ is None or status not in FINAL_STEP_STATUSES
    post: __return__ is not StepStatus.scheduled or status in _STARTABLE
    post: __return__ is not StepStatus.retrying or (attempts and retry)
    post: status is not StepStatus.cancelling or __return__ is None or _answered(k)
    post: __return__ is not StepStatus.waiting_input or status is __return__ or awaits_input
    """
    guards = {
        "awaits_input": awaits_input,
        "has_input": has_input,
        "attempts_left": attempts,
        "is_retryable": retry,
    }
    try:
        return STEP.fire(status, STEP.events[k], guards).target
    except IllegalTransition:
        return None
