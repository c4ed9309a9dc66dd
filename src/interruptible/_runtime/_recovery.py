"""Recovery: the events that answer the effects a stopped (crashed or closed) process left live.

After a process stops, the journal may show effects that were live: a step `scheduled`,
`running`, `waiting_input` or `cancelling` whose latest attempt has no answer (its task died with
the process, or was abandoned by `close`). Nothing will ever answer them, so the next process
does, through the core: one `effect_lost` per lost effect (CORE-25, STEP-14). The step is
`pending` again and the lost attempt does not count toward `max_attempts` (a timer, a human gate
or a system step has one attempt by default, and a process restart must not fail it); a running
run starts the step again at once with a new attempt and a new effect id (at-least-once: the
idempotency key keeps its `run_id:step_id:` prefix); an interrupted run stays interrupted until
someone resumes it. These events go through the runtime's ordinary journal-first path (RT-8).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._core import ConversationState
from .._vocabulary import EffectLost, Event

RESTART_REASON: Final = "process_restart"


def recovery_events(
    state: ConversationState, ids: Callable[[], str], clock: Callable[[], float]
) -> list[Event]:
    """One `effect_lost` per effect left live in `state` (none when nothing was in flight)."""
    run = state.active_run
    conversation_id = state.conversation_id
    if run is None or conversation_id is None:
        return []
    now = clock()
    events: list[Event] = []
    for step in run.live_steps():
        assert step.effect_id is not None  # a live step always has its latest effect
        events.append(
            EffectLost(
                ids(),
                conversation_id,
                run.run_id,
                step.step_id,
                step.effect_id,
                step.attempt,
                RESTART_REASON,
                now,
            )
        )
    return events
