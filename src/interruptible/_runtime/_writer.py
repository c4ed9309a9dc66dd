"""The writer: one pump that journals, reduces and carries out every conversation's events.

Theory of operation
-------------------
Every event (a caller's request, an effect's answer, a recovery event) is put in its
conversation's inbox; nothing else touches a conversation's state. One asyncio task, the pump,
takes the inboxes of every conversation that has work, and for each:

1. folds the events through the pure `reduce`, in inbox order, into a *pending* state (nothing
   is committed yet: `reduce` has no side effect, so computing first costs nothing if the write
   fails);
2. appends the events that the journal must hold to the journal in one write: `append_many`
   for all conversations (group commit: 500 conversations, one commit), or `append` when only
   one has events; each conversation's batch is fenced by its last sequence, so a stale writer
   in another process is refused (RT-2);
3. only then commits the pending state and carries out the directives, in event order:
   `start_effect` and `cancel_effects` go to the effect manager, `emit_lifecycle`,
   `emit_progress` and `emit_output` to subscribers, `emit_audit` to the audit log and
   `on_audit`, and the callers waiting on the events get their outcome (RT-1, journal-first).

One shortcut keeps a step at one commit: when a `start_effect` can start at once (no backoff
delay, an executor is registered), the pump folds the step's `effect_started` right behind the
event that asked for it and journals both in the same commit; the effect's task is created only
after that commit, so journal-first holds (the journal may say "started" a moment before the
task runs; a crash in that moment is an ordinary crash with a live effect, RT-8). The next
step's `effect_started` thus shares a commit with the previous step's `effect_completed`.

Progress is coalesced (RT-19): an effect's report queued with `post_latest` takes the place of
its previous report while that one still waits in the inbox, so a chatty effect costs one
`effect_progress` per commit, whatever its rate; subscribers see the reports that were journaled.

What the journal holds: every event `reduce` applied or ignored (a duplicate, a late result: a
fact, with its reason reproduced on replay), and every *refused* request that carries an
`emit_audit` (`not_authorized`), so the audit trail is in the journal and replay reproduces it
(RT-13). A request refused without an audit (an unknown run, a run in progress, a malformed
event) changed nothing, is raised to its caller, and is not journaled.

If a write fails, nothing of the failed batches is committed: their callers get the error, and
their conversations are *fenced* (live effects cancelled quietly, every later call raises the
error): another process may own them now, and the journal is the truth. Which batches fail: when
`append_many` refuses the group (a stale conversation, an event the journal refuses, an IO
error), nothing of it was written, and each conversation is written again on its own, so only
the conversations at fault are fenced (RT-23). Opening a new runtime on the journal recovers a
fenced conversation.

A failure that is one conversation's own (folding its events raises, or carrying out one of its
directives does, such as an application's `on_audit`) is a bug, but it must not stall the others:
that conversation alone is fenced with `ConversationFailedError` (a failed fold journals nothing
of it), and the rest of the round is written, committed and carried out as usual (RT-17).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from .._core import ConversationState, Coordinator, Disposition, Outcome
from .._errors import (
    ConversationFailedError,
    InterruptibleError,
    JournalError,
    RuntimeClosedError,
    StaleOwnerError,
)
from .._journal import AppendBatch, Journal, OwnerRecord
from .._lifecycle import TERMINAL_RUN_STATUSES, RunStatus
from .._vocabulary import (
    CancelEffects,
    Directive,
    EffectStarted,
    EmitAudit,
    Event,
    StartEffect,
    effect_event,
)
from ._answers import error_answer, snapshot_answer
from ._effects import EffectManager
from ._requests import REQUEST_PREFIX, RequestMemory
from ._snapshot import RunSnapshot
from ._upgrades import MEETING_EVENTS, Meeting

log: Final = logging.getLogger("interruptible.runtime")

_REJECTED: Final = Disposition.rejected
_APPLIED: Final = Disposition.applied
# A `wait()` returns when its run is in one of these statuses.
SETTLED: Final = frozenset({RunStatus.interrupted, *TERMINAL_RUN_STATUSES})
# What each `wait(until=...)` waits for (RT-31).
UNTIL: Final = {"settled": SETTLED, "terminal": frozenset(TERMINAL_RUN_STATUSES)}

# An event, and who waits for its outcome: a local caller's future, the id of a command from
# another process (its answer is journaled with the event, OWN-6), or nobody.
Item = tuple[Event, "asyncio.Future[Outcome] | int | None"]
# Where `post_latest` queued an event: the inbox it went into and its place there.
Queued = tuple[list[Item], int]
_Reply = tuple["asyncio.Future[Outcome]", Outcome]


class Conversation:
    """One conversation as the runtime holds it: state, journal position, inbox, waiters."""

    __slots__ = (
        "active",
        "conversation_id",
        "epoch",
        "fenced",
        "first_starts",
        "inbox",
        "last",
        "owner",
        "requests",
        "state",
        "waiters",
    )

    def __init__(
        self, conversation_id: str, state: ConversationState, last: int, epoch: int | None = None
    ) -> None:
        self.conversation_id = conversation_id
        self.state = state
        self.last = last  # the journal's last sequence for this conversation
        # This runtime's owner epoch for the conversation (OWN-3), None while it does not own it
        # (then `state` is a read-only view, refreshed from the journal).
        self.epoch = epoch
        self.owner: OwnerRecord | None = None  # the owner last seen, when it is another process
        self.inbox: list[Item] = []
        # Pending `wait`s by (run id, until): "settled" wakes at interrupted or ended, "terminal"
        # only at ended (RT-31).
        self.waiters: dict[tuple[str, str], list[asyncio.Future[Any]]] | None = None
        # run id -> step id -> the step's first journaled start (a timer's deadline origin)
        self.first_starts: dict[str, dict[str, float]] | None = None
        self.fenced: InterruptibleError | None = None
        self.requests: RequestMemory | None = None  # the first answers of requests (RT-34)
        # The journal's activity marker as this owner last wrote or read it (WRK-2); None:
        # not known (written at the next batch).
        self.active: bool | None = None

    def remember(self, event: Event, outcome: Outcome) -> None:
        """Keep the outcome of a request's event (one with a request id) for its retries."""
        if event.event_id.startswith(REQUEST_PREFIX):
            if self.requests is None:
                self.requests = RequestMemory()
            self.requests.remember(event, outcome)

    def first_start(self, run_id: str, step_id: str) -> float | None:
        """When the step's first attempt started, if it did in the active run."""
        if self.first_starts is None:
            return None
        steps = self.first_starts.get(run_id)
        return None if steps is None else steps.get(step_id)

    def note_start(self, event: EffectStarted) -> None:
        """Remember a step's first start; forget those of runs no longer active."""
        starts = self.first_starts
        if starts is None:
            starts = self.first_starts = {}
        steps = starts.get(event.run_id)
        if steps is None:
            if starts:
                active = self.state.active_run_id
                for run_id in [r for r in starts if r != active]:
                    del starts[run_id]
            steps = starts[event.run_id] = {}
        steps.setdefault(event.step_id, event.at)


class _Batch:
    """One conversation's share of one pump round."""

    __slots__ = (
        "active",
        "answers",
        "conv",
        "error",
        "events",
        "last",
        "results",
        "started",
        "starts",
        "state",
    )

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv
        self.state = conv.state
        self.events: list[Event] = []
        self.answers: list[tuple[int, str]] | None = None  # commands answered by this batch
        # Per event, in order: its directives, and the caller's future with the outcome it gets.
        # An outcome no caller waits for is not kept: it holds the intermediate state of its
        # event, which would otherwise live (and be traversed, and promoted, by the cyclic GC)
        # until the round ends; with 500 conversations a round, that cost a full collection in
        # three and a fifth of the young ones.
        self.results: list[tuple[tuple[Directive, ...], _Reply | None]] = []
        self.starts: dict[str, float] | None = None  # effect id -> start folded at once
        self.started: list[EffectStarted] | None = None  # every applied effect_started
        self.last = conv.last
        self.error: InterruptibleError | None = None
        self.active: bool | None = None  # the activity marker to write, when it changes


Publish = Callable[[Conversation, Directive], None]


class Writer:
    """The single writer of every conversation: inboxes, the pump, the journal."""

    def __init__(
        self,
        journal: Journal,
        coordinator: Coordinator,
        effects: EffectManager,
        *,
        publish: Publish,
        clock: Callable[[], float],
        ids: Callable[[], str],
    ) -> None:
        self.journal = journal
        self.coordinator = coordinator
        self.effects = effects
        self.publish = publish
        self.clock = clock
        self.ids = ids
        self.conversations: dict[str, Conversation] = {}
        # A journal shared by workers keeps each conversation's activity marker (WRK-2), and
        # `on_idle` hears of each conversation whose run no longer needs driving.
        self.markers = bool(getattr(journal, "claims_work", False))
        self.on_idle: Callable[[Conversation], None] | None = None
        # The check for events that meet a run of another definition (spec/upgrades.md).
        self.meeting: Meeting | None = None
        # Hears each committed batch (conversation id, its new last sequence, the events), when
        # set: the tracer keeps a running run's committed events (spec/observability.md).
        self.on_commit: Callable[[str, int, list[Event]], None] | None = None
        self.commits = 0  # journal writes made (for benchmarks and tests)
        self._ready: list[Conversation] = []
        self._waker: asyncio.Future[None] | None = None
        self._stopping = False
        self._busy = False
        self._task: asyncio.Task[None] | None = None

    # --- the inbox ------------------------------------------------------------------------------

    def post(
        self, conv: Conversation, event: Event, future: asyncio.Future[Outcome] | int | None
    ) -> None:
        """Queue an event for its conversation (the only way state ever changes)."""
        if conv.fenced is not None:
            if isinstance(future, asyncio.Future):
                future.set_exception(conv.fenced)
            return
        if not conv.inbox:
            self._ready.append(conv)
        conv.inbox.append((event, future))
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    def post_latest(self, conv: Conversation, event: Event, queued: Queued | None) -> Queued | None:
        """Queue an event that supersedes `queued`, an earlier one from the same source: in its
        place while it still waits in the inbox, else at the end. Returns where it went.

        Progress (RT-19): only an effect's latest report is worth journaling, so an effect
        reporting faster than the pump commits costs one record per commit, not one per report.
        """
        inbox = conv.inbox
        if queued is not None and queued[0] is inbox:
            inbox[queued[1]] = (event, None)
            return queued
        self.post(conv, event, None)
        if conv.fenced is not None:
            return None
        return inbox, len(inbox) - 1

    # --- the pump -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pump on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="interruptible pump")

    async def stop(self) -> None:
        """Process what is queued, then stop the pump; waits still pending learn it closed."""
        self._stopping = True
        self._wake()
        if self._task is not None:
            await self._task
        self._close_waiters()

    async def drained(self) -> None:
        """Return once no conversation has queued work and no round is in progress."""
        while self._ready or self._busy:
            await asyncio.sleep(0)

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._ready:
                if self._stopping:
                    return
                self._waker = loop.create_future()
                await self._waker
                self._waker = None
                continue
            self._busy = True
            try:
                self.pump_once()
            except Exception:  # pragma: no cover - a bug here must not wedge every conversation
                log.exception("the runtime's writer failed a round")
            finally:
                self._busy = False
            # Let the effects just started run: their answers then share the next commit.
            await asyncio.sleep(0)

    def pump_once(self) -> None:
        """One round of the pump: fold every ready conversation's inbox, write, apply."""
        ready, self._ready = self._ready, []
        batches = [self._fold(conv) for conv in ready]
        self._write(batches)
        # Applied in order, each batch let go of as soon as it is applied: a round's directives
        # and outcomes then die during the round, not during the next one's folds (where the
        # cyclic GC would traverse them, and promote them).
        batches.reverse()
        while batches:
            batch = batches.pop()
            try:
                self._apply(batch)
            except Exception as exc:  # one conversation's failure is its own (RT-17)
                self._failed(batch, "carrying out its directives", exc)

    def _fold(self, conv: Conversation) -> _Batch:
        """The conversation's batch; if folding raises, a batch with nothing to write that
        fences the conversation when applied (its events go back to the inbox, whose callers
        the fence answers), so the round goes on for the others (RT-17)."""
        items = conv.inbox
        try:
            return self._fold_items(conv)
        except Exception as exc:
            conv.inbox = items
            batch = _Batch(conv)
            batch.error = ConversationFailedError(conv.conversation_id, "folding its events", exc)
            log.exception("%s", batch.error)
            return batch

    def _fold_items(self, conv: Conversation) -> _Batch:
        batch = _Batch(conv)
        items, conv.inbox = conv.inbox, []
        reduce = self.coordinator.reduce
        state = conv.state
        events = batch.events
        results = batch.results
        requests = conv.requests
        meeting = self.meeting
        for event, future in items:
            first = None if requests is None else requests.answer(event)
            if first is not None:  # a retried request: its first answer, nothing journaled
                if type(future) is int:
                    self._answer(batch, future, event, first)
                elif future is not None:
                    assert isinstance(future, asyncio.Future)
                    results.append(((), (future, first)))
                continue
            if meeting is not None and type(event) in MEETING_EVENTS:
                state, outcome = self._meet(batch, meeting, state, event)
            else:
                outcome = reduce(state, event)
            if event.event_id.startswith(REQUEST_PREFIX):
                conv.remember(event, outcome)
                requests = conv.requests
            if type(future) is int:
                self._answer(batch, future, event, outcome)
                future = None
            assert future is None or isinstance(future, asyncio.Future)
            results.append((outcome.directives, None if future is None else (future, outcome)))
            if outcome.disposition is _REJECTED and not _audited(outcome):
                continue  # refused, changed nothing: not journaled
            events.append(event)
            state = outcome.state
            if outcome.disposition is _APPLIED and type(event) is EffectStarted:
                assert isinstance(event, EffectStarted)
                if batch.started is None:
                    batch.started = []
                batch.started.append(event)
            if outcome.directives:
                state = self._start_at_once(batch, state, outcome)
        batch.state = state
        if self.markers and conv.epoch is not None:
            active = has_run_to_drive(state)
            if active is not conv.active:
                batch.active = active
        return batch

    def _meet(
        self, batch: _Batch, meeting: Meeting, state: ConversationState, event: Event
    ) -> tuple[ConversationState, Outcome]:
        """Fold an event that may meet a run of another definition (UPG-3): the events the
        meeting asks for first (journaled in this batch), then the event, or its refusal."""
        met = meeting(state, event)
        if isinstance(met, InterruptibleError):
            return state, Outcome(state, (), Disposition.rejected, None, met)
        for before in met or ():
            prior = self.coordinator.reduce(state, before)
            if prior.disposition is _REJECTED:
                log.warning("%s was refused before %s: %s", before, event, prior.error)
                continue
            batch.events.append(before)
            batch.results.append((prior.directives, None))
            state = prior.state
        return state, self.coordinator.reduce(state, event)

    def _answer(self, batch: _Batch, command_id: int, event: Event, outcome: Outcome) -> None:
        """Answer a command from another process, in the same write as its event (OWN-6)."""
        if outcome.error is not None:
            body = error_answer(outcome.error)
        else:
            run_id: str = getattr(event, "run_id", "")
            run = outcome.state.run(run_id)
            body = (
                snapshot_answer(
                    RunSnapshot.of(batch.conv.conversation_id, run, self.coordinator.mode_of(run))
                )
                if run is not None
                else error_answer(JournalError(f"run {run_id!r} is no longer held", run_id=run_id))
            )
        if batch.answers is None:
            batch.answers = []
        batch.answers.append((command_id, body))

    def _start_at_once(self, batch: _Batch, state: ConversationState, outcome: Outcome) -> Any:
        """Fold `effect_started` right behind each start that needs no wait (one commit/step)."""
        pending = [outcome]
        while pending:
            current = pending.pop()
            for directive in current.directives:
                if type(directive) is not StartEffect or not self.effects.can_start_now(directive):
                    continue
                at = self.clock()
                started = effect_event(EffectStarted, directive, self.ids(), at)
                answer = self.coordinator.reduce(state, started)
                if answer.disposition is not _APPLIED:
                    continue  # cannot happen for a fresh start; the task reports it instead
                state = answer.state
                batch.events.append(started)
                batch.results.append((answer.directives, None))
                if batch.starts is None:
                    batch.starts = {}
                    if batch.started is None:
                        batch.started = []
                batch.starts[directive.effect_id] = at
                assert batch.started is not None
                batch.started.append(started)
                if answer.directives:
                    pending.append(answer)
        return state

    def _write(self, batches: list[_Batch]) -> None:
        todo = [b for b in batches if b.events or b.answers or b.active is not None]
        if not todo:
            return
        journal = self.journal
        if len(todo) == 1:
            self._write_one(todo[0])
            return
        self.commits += 1
        try:
            lasts = journal.append_many(
                [
                    AppendBatch(
                        b.conv.conversation_id,
                        b.conv.last,
                        b.events,
                        b.conv.epoch,
                        b.answers or (),
                        b.active,
                    )
                    for b in todo
                ]
            )
        except Exception:
            # One conversation's batch (stale, or one the journal refuses) refused the whole
            # group, and nothing of it was written: write each on its own, so that only the
            # conversation at fault is fenced (RT-23).
            for batch in todo:
                self._write_one(batch)
            return
        for batch, last in zip(todo, lasts, strict=True):
            batch.last = last

    def _write_one(self, batch: _Batch) -> None:
        self.commits += 1
        conv = batch.conv
        try:
            if batch.answers or batch.active is not None:
                (batch.last,) = self.journal.append_many(
                    [
                        AppendBatch(
                            conv.conversation_id,
                            conv.last,
                            batch.events,
                            conv.epoch,
                            batch.answers or (),
                            batch.active,
                        )
                    ]
                )
            else:
                batch.last = self.journal.append(
                    conv.conversation_id, conv.last, batch.events, epoch=conv.epoch
                )
        except Exception as exc:
            batch.error = _journal_error(exc)

    def _apply(self, batch: _Batch) -> None:
        conv = batch.conv
        if batch.error is not None:
            self._fence(conv, batch)
            return
        conv.state = batch.state
        conv.last = batch.last
        if self.on_commit is not None and batch.events:
            self.on_commit(conv.conversation_id, batch.last, batch.events)
        if batch.active is not None:
            conv.active = batch.active
            if not batch.active and self.on_idle is not None:
                self.on_idle(conv)
        if batch.started is not None:
            for started in batch.started:
                conv.note_start(started)
        starts = batch.starts
        effects = self.effects
        for directives, reply in batch.results:
            for directive in directives:
                kind = type(directive)
                if kind is StartEffect:
                    assert isinstance(directive, StartEffect)
                    at = None if starts is None else starts.get(directive.effect_id)
                    first = conv.first_start(directive.run_id, directive.step_id)
                    effects.start(directive, at, first)
                elif kind is CancelEffects:
                    assert isinstance(directive, CancelEffects)
                    effects.cancel(directive)
                else:
                    self.publish(conv, directive)
            if reply is not None:
                future, outcome = reply
                if future.done():
                    continue
                if outcome.error is not None:
                    future.set_exception(outcome.error)
                else:
                    future.set_result(outcome)
        if conv.waiters:
            self._wake_waiters(conv)

    def _wake_waiters(self, conv: Conversation) -> None:
        waiters = conv.waiters
        assert waiters is not None
        state = conv.state
        for key in list(waiters):
            run_id, until = key
            run = state.run(run_id)
            if run is None or run.status in UNTIL[until]:
                for future in waiters.pop(key):
                    if not future.done():
                        future.set_result(run)

    def _failed(self, batch: _Batch, while_doing: str, exc: Exception) -> None:
        """Fence a conversation whose batch raised while `while_doing` (a bug)."""
        batch.error = ConversationFailedError(batch.conv.conversation_id, while_doing, exc)
        log.exception("%s", batch.error)
        self._fence(batch.conv, batch)

    def _close_waiters(self) -> None:
        """Wake every wait left pending at close with `RuntimeClosedError` (RT-18): its run has
        not settled, and nothing here will settle it now (the next runtime on the journal will)."""
        for conv in self.conversations.values():
            waiters = conv.waiters
            if not waiters:
                continue
            conv.waiters = None
            for (run_id, _until), futures in waiters.items():
                run = conv.state.run(run_id)
                status = run.status.value if run is not None else None
                for future in futures:
                    if not future.done():
                        future.set_exception(_closed(conv.conversation_id, run_id, status))

    def _fence(self, conv: Conversation, batch: _Batch) -> None:
        error = batch.error
        assert error is not None
        if isinstance(error, StaleOwnerError):
            log.info("conversation %r: %s", conv.conversation_id, error)
        elif not isinstance(error, ConversationFailedError):  # (it says it all, and was logged)
            log.error(
                "conversation %r is fenced: its journal write failed (%s); a worker claims it "
                "back at its next sweep (spec/workers.md, WRK-6), an embedded runtime recovers "
                "it when the journal is opened again",
                conv.conversation_id,
                error,
            )
        for _directives, reply in batch.results:
            if reply is not None and not reply[0].done():
                reply[0].set_exception(error)
        self._drop(conv, error)

    def let_go(self, conv: Conversation, error: StaleOwnerError) -> None:
        """Stop driving a conversation another process has taken over (OWN-3), as a refused
        write would: its queued callers get `error`, its effects are stopped quietly."""
        log.info("conversation %r: %s", conv.conversation_id, error)
        self._drop(conv, error)

    def _drop(self, conv: Conversation, error: InterruptibleError) -> None:
        conv.fenced = error
        conv.requests = None  # it may hold answers whose events were not written
        if isinstance(error, StaleOwnerError):
            # Taken over by another process (OWN-3): it drives the conversation now. This one
            # stops its effects and lets go; later calls are routed to the new owner.
            conv.fenced = None
            conv.epoch = None
        for _event, future in conv.inbox:
            if isinstance(future, asyncio.Future) and not future.done():
                future.set_exception(error)
        if conv in self._ready:
            # A conversation is ready exactly while its inbox has items: left there, the next
            # post would queue it twice, and the second batch of a round would put back the
            # state from before the first (the race machine's finding).
            self._ready.remove(conv)
        conv.inbox = []
        self.effects.cancel_quietly(conv.conversation_id)
        if conv.waiters:
            for futures in conv.waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            conv.waiters = None


def has_run_to_drive(state: ConversationState) -> bool:
    """Whether the conversation's active run still needs an owner to drive it: it is neither
    interrupted nor ended (WRK-2)."""
    run = state.active_run
    return run is not None and run.status not in SETTLED


def _audited(outcome: Outcome) -> bool:
    return any(type(directive) is EmitAudit for directive in outcome.directives)


def _closed(conversation_id: str, run_id: str, status: str | None) -> RuntimeClosedError:
    return RuntimeClosedError(
        f"the runtime closed while waiting for run {run_id!r} of conversation "
        f"{conversation_id!r} ({status}); it goes on in the next runtime opened on the same "
        "journal: wait for it there.",
        conversation_id=conversation_id,
        run_id=run_id,
        status=status,
        reason="runtime_closed",
    )


def _journal_error(exc: Exception) -> InterruptibleError:
    if isinstance(exc, InterruptibleError):
        return exc
    return JournalError(f"the journal failed: {type(exc).__name__}: {exc}")
