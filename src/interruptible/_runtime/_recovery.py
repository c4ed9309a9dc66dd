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

`restore` is what an embedded runtime does when it opens: fold every conversation back, and
take over the abandoned ones that have work (their lost effects answered as above); what it
found is its `RecoveryReport` (`Runtime.recovery`). A worker never folds the whole journal: it
takes up conversations one claim at a time (spec/workers.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._core import ConversationState, Coordinator, Disposition, initial_state
from .._errors import StaleOwnerError
from .._journal import RecoveryNote
from .._vocabulary import EffectLost, EffectStarted, EmitAudit, Event
from ._writer import Conversation

if TYPE_CHECKING:
    from ._owner import Owner
    from ._writer import Writer

log: Final = logging.getLogger("interruptible.runtime")

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


class RecoveryReport:
    """What opening the journal found: conversations, events, and what recovery restarted."""

    __slots__ = (
        "conversations",
        "events",
        "left_alone",
        "rejected",
        "restarted_runs",
        "taken_over",
        "torn",
    )

    def __init__(self) -> None:
        self.conversations = 0
        self.events = 0
        self.rejected: list[tuple[str, int, str]] = []  # (conversation, sequence, error)
        # (conversation, run) whose in-flight effects recovery answered as lost (a running run's
        # steps start again; an interrupted run's stay until it is resumed)
        self.restarted_runs: list[tuple[str, str]] = []
        # (conversation, previous owner, new epoch, why it was abandoned): every takeover (OWN-5)
        self.taken_over: list[tuple[str, str, int, str]] = []
        # (conversation, owner): live effects found, left to the live process that owns them
        self.left_alone: list[tuple[str, str]] = []
        # The journal's torn records that opening it quarantined, one note per conversation
        # (JRN-9): shown here, not only in the log (RT-33)
        self.torn: list[RecoveryNote] = []

    def __repr__(self) -> str:
        return (
            f"RecoveryReport(conversations={self.conversations}, events={self.events}, "
            f"rejected={len(self.rejected)}, restarted_runs={len(self.restarted_runs)}, "
            f"taken_over={len(self.taken_over)}, left_alone={len(self.left_alone)}, "
            f"torn={len(self.torn)})"
        )


def restore(
    writer: Writer,
    owner: Owner,
    coordinator: Coordinator,
    report: RecoveryReport,
    *,
    adopt: bool,
) -> None:
    """Fold every conversation of the writer's journal back (RT-8) into `writer`, and take over
    (with `adopt`) each abandoned one that has work: its live effects are answered as lost, its
    pending commands applied (OWN-4, OWN-6). What it found goes into `report`."""
    reduce = coordinator.reduce
    journal = writer.journal
    report.torn = list(getattr(journal, "recovered", ()))  # a journal that tears keeps them
    owners = {record.conversation_id: record for record in journal.owners()}
    commanded = {command.conversation_id for command in journal.pending_commands()}
    for conversation_id in journal.conversations():
        state = initial_state()
        last = 0
        starts: list[EffectStarted] = []
        conv = Conversation(conversation_id, state, 0)
        for record in journal.read(conversation_id):
            outcome = reduce(state, record.event)
            conv.remember(record.event, outcome)
            state = outcome.state
            last = record.sequence
            if outcome.disposition is Disposition.rejected and not any(
                isinstance(d, EmitAudit) for d in outcome.directives
            ):
                report.rejected.append((conversation_id, record.sequence, str(outcome.error)))
            elif outcome.applied and type(record.event) is EffectStarted:
                starts.append(record.event)
        report.conversations += 1
        report.events += last
        conv.state, conv.last = state, last
        for started in starts:
            if started.run_id == state.active_run_id:
                conv.note_start(started)
        writer.conversations[conversation_id] = conv
        # Only an abandoned conversation is taken over (OWN-4): a live owner's effects are
        # its own, however they look from here.
        found = owners.get(conversation_id)
        live = owner.live_owner(found)
        has_work = (
            state.active_run is not None and bool(state.active_run.live_steps())
        ) or conversation_id in commanded
        if live is not None:
            conv.owner = live
            if has_work:
                report.left_alone.append((conversation_id, live.owner_id))
        elif has_work and adopt:
            try:
                owner.take_over(conversation_id, found)
            except StaleOwnerError:  # another process took it first
                conv.owner = journal.owner(conversation_id)
    if report.rejected:
        log.warning(
            "%d journaled events were refused on replay (a mode not registered?): %s",
            len(report.rejected),
            report.rejected[:5],
        )
