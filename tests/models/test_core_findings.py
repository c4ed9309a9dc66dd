"""Core findings of the verification: minimal reproductions, kept as regression tests once fixed.

Each test replays the shortest event list that showed the deviation and checks the rule with the
verification's own property function. A finding stays `xfail(strict=True)` until the core is
fixed; then the marker goes and its check joins `TRANSITION_PROPERTIES` (as DIR-2's has).
"""

from __future__ import annotations

from interruptible import Coordinator, Outcome, replay
from interruptible._verify._checker._properties import cancel_first_in_outcome, directive_order
from interruptible._vocabulary import CancelEffects, Event, InterruptRequested, RunRequested
from tests._pipeline import PIPELINE

# Two events: a run whose first step is scheduled, then a second run that supersedes it.
SUPERSEDE: list[Event] = [
    RunRequested("e1", "c1", "r1", "pipeline", None, "alice"),
    RunRequested("e2", "c1", "r2", "pipeline", None, "alice", supersede=True),
]


def the_first_cancel(outcome: Outcome, effect_id: str | None) -> CancelEffects:
    """The outcome's one `cancel_effects`: present, first, alone, and cancelling `effect_id`."""
    directives = outcome.directives
    assert [type(d) for d in directives].count(CancelEffects) == 1, directives
    cancel = directives[0]
    assert type(cancel) is CancelEffects, directives
    assert cancel.effect_ids == (effect_id,)
    return cancel


def test_ver_8_dir_2_supersede_puts_cancel_effects_first() -> None:
    """DIR-2: within one outcome, the one merged cancel_effects is the first directive, also
    when a supersede cancels the active run."""
    coordinator = Coordinator([PIPELINE])
    run = replay(coordinator, SUPERSEDE)
    pre = run.outcomes[0].state
    assert cancel_first_in_outcome(pre, SUPERSEDE[1], run.outcomes[1]) == []
    the_first_cancel(run.outcomes[1], pre.active_run.steps[0].effect_id)


def test_ver_8_interrupt_puts_cancel_effects_first() -> None:
    """DIR-2 holds for an interrupt: its cancel_effects precedes its audit (the contrast case)."""
    events: list[Event] = [
        SUPERSEDE[0],
        InterruptRequested("e2", "c1", "r1", principal="alice"),
    ]
    run = replay(Coordinator([PIPELINE]), events)
    pre = run.outcomes[0].state
    assert cancel_first_in_outcome(pre, events[1], run.outcomes[1]) == []
    assert directive_order(pre, events[1], run.outcomes[1]) == []
    the_first_cancel(run.outcomes[1], pre.active_run.steps[0].effect_id)
