"""`OwnerRaceMachine`: two runtimes' ownership code racing over one conversation in one journal.

The model checker (`_verify/_checker/_owners.py`) explores a model of the runtime's side of the
ownership protocol; this machine drives the runtime's own classes instead: per process, a real
`Writer` (one pump round a rule) and a real `Owner` (`route`, `beat`, `poll_commands`), over one
shared `MemoryJournal`, with a clock the machine moves. Effects are records the machine answers when
it likes (`FakeEffects` has the effect manager's interface), so every interleaving of a pump round,
a heartbeat, a command poll, an effect's answer, a run request, a command from a third process, time
passing (leases lapse unless renewed), a crash and a clean close is a sequence of rules.

After every rule, each `@invariant()` checks one property of spec/verification.md on the journal
(each process reaches it through a `Recorded` handle, which notes who appended at which epoch,
and what the owner records said before each claim). At the end of each example, `teardown`
plays a fair world with the processes still alive (time passes, each one beats, polls, pumps and
lets its effects answer, an interrupted run is resumed) and requires every journaled run to end
and every command to be answered (VER-20).

Subclasses swap in a seeded defect (`_verify/_checker/_owner_defects.py`); they must fail (VER-22).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence as SequenceOf
from typing import Any, ClassVar, Final

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from interruptible import Coordinator, Sequence, StepClass, StepDefinition
from interruptible._core import ConversationState, initial_state
from interruptible._journal import AppendBatch, Command, MemoryJournal, OwnerRecord
from interruptible._lifecycle import RunStatus
from interruptible._runtime._owner import Owner
from interruptible._runtime._recovery import RecoveryReport
from interruptible._runtime._writer import Conversation, Writer
from interruptible._verify._checker import Ledger, ledger_violations, transition_violations
from interruptible._vocabulary import (
    CancelEffects,
    CancelRequested,
    EffectCanceled,
    EffectCompleted,
    Event,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    StartEffect,
)

CONVERSATION: Final = "c1"
PRINCIPAL: Final = "alice"
MODE: Final = "pipeline"
STEPS: Final = (
    StepDefinition("s1", StepClass.tool, None),
    StepDefinition("s2", StepClass.tool, None),
)
LEASE: Final = 10.0
# Time passes in steps of more than half a lease: an owner that misses two heartbeats lapses.
TICK: Final = 6.0
NAMES: Final = ("A", "B")
COMMAND_KINDS: Final = ("interrupt", "resume", "cancel")
# Rounds of the fair world in `teardown`: each one lets every effect answer and every process
# write; a stopped owner's lease lapses within two.
FAIR_ROUNDS: Final = 12


class FakeEffects:
    """The effect manager, as the writer sees it: effects are records, answered by the machine."""

    def __init__(self) -> None:
        self.live: dict[str, tuple[StartEffect, bool]] = {}  # effect id -> (start, canceled)

    def can_start_now(self, directive: StartEffect) -> bool:
        return True

    def start(self, d: StartEffect, started_at: float | None, first: float | None) -> None:
        self.live[d.effect_id] = (d, False)

    def cancel(self, d: CancelEffects) -> None:
        for effect_id in d.effect_ids:
            if effect_id in self.live:
                self.live[effect_id] = (self.live[effect_id][0], True)

    def cancel_quietly(self, conversation_id: str | None = None) -> list[Any]:
        self.live = {
            effect_id: entry
            for effect_id, entry in self.live.items()
            if conversation_id is not None and entry[0].conversation_id != conversation_id
        }
        return []


class Recorded:
    """A process's handle on the shared journal: the journal's API, noting every accepted append
    (who, and the owner record just before it) and every claim."""

    def __init__(self, shared: MemoryJournal, name: str, machine: OwnerRaceMachine) -> None:
        self.shared = shared
        self.name = name
        self.machine = machine

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.shared, attribute)

    def append(
        self,
        conversation_id: str,
        expected_last: int,
        events: SequenceOf[Event],
        *,
        epoch: int | None = None,
    ) -> int:
        return self.append_many([AppendBatch(conversation_id, expected_last, events, epoch)])[0]

    def append_many(self, batches: SequenceOf[AppendBatch]) -> list[int]:
        before = [self.shared.owner(batch.conversation_id) for batch in batches]
        lasts = self.shared.append_many(batches)
        for batch, record in zip(batches, before, strict=True):
            self.machine.appends.append((self.name, batch.epoch, record))
        return lasts

    def claim(
        self, conversation_id: str, owner_id: str, seen_epoch: int, *, reason: str, at: float
    ) -> OwnerRecord:
        before = self.shared.owner(conversation_id)
        record = self.shared.claim(conversation_id, owner_id, seen_epoch, reason=reason, at=at)
        self.machine.claims.append((owner_id, before, self.machine.lapsed))
        self.machine.lapsed = record.expires <= self.machine.now
        return record


class Process:
    """One runtime's ownership side: its writer, its owner, its effects."""

    def __init__(
        self,
        name: str,
        machine: OwnerRaceMachine,
        owner_class: type[Owner],
        writer_class: type[Writer],
    ) -> None:
        self.name = name
        self.alive = True
        journal: Any = Recorded(machine.journal, name, machine)
        coordinator = machine.coordinator
        counter = itertools.count(1)

        def ids() -> str:
            return f"{name}{next(counter)}"

        self.effects = FakeEffects()
        self.writer = writer_class(
            journal,
            coordinator,
            self.effects,  # type: ignore[arg-type]
            publish=lambda conv, directive: None,
            clock=machine.clock,
            ids=ids,
        )
        self.owner = owner_class(
            journal,
            self.writer,
            RecoveryReport(),
            coordinator=lambda: coordinator,
            clock=machine.clock,
            ids=ids,
            lease=LEASE,
            adopt=True,
            owner_id=name,
        )
        self.owner.register()
        self.ids = ids

    def conversation(self) -> Conversation | None:
        return self.writer.conversations.get(CONVERSATION)

    def post(self, event: Event) -> None:
        """What `Runtime._post_answer` does with an effect's answer."""
        conv = self.conversation()
        if conv is not None:
            self.writer.post(conv, event, None)


processes = st.sampled_from(range(len(NAMES)))


class OwnerRaceMachine(RuleBasedStateMachine):
    """Every interleaving of two runtimes' ownership code over one conversation."""

    journal_class: ClassVar[type[MemoryJournal]] = MemoryJournal
    owner_class: ClassVar[type[Owner]] = Owner
    writer_class: ClassVar[type[Writer]] = Writer

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.journal = type(self).journal_class()
        self.coordinator = Coordinator([Sequence(MODE, STEPS)])
        # Accepted appends: (writer, its epoch, the owner record just before the write).
        self.appends: list[tuple[str, int | None, OwnerRecord | None]] = []
        # Claims: (claimant, the owner record before, whether its lease had lapsed).
        self.claims: list[tuple[str, OwnerRecord | None, bool]] = []
        self.lapsed = False  # the current owner's lease lapsed since it claimed (VER-19)
        self.commands: list[str] = []  # event ids of the submitted commands
        self.runs = 0
        self.checked = 0  # journal events already checked by VER-21
        self.folded: ConversationState = initial_state(CONVERSATION)
        self.ledger = Ledger()
        self.procs = [
            Process(name, self, type(self).owner_class, type(self).writer_class) for name in NAMES
        ]

    def clock(self) -> float:
        return self.now

    def alive(self) -> list[Process]:
        return [p for p in self.procs if p.alive]

    # --- what the world does -------------------------------------------------------------------

    @precondition(lambda self: self.runs < 3)
    @rule(index=processes)
    def request_run(self, index: int) -> None:
        """A run request reaches a process, as `Runtime.run` delivers it: claimed if the
        conversation is new or abandoned, refused if a live process owns it."""
        proc = self.procs[index]
        if not proc.alive:
            return
        self.runs += 1
        run_id = f"r{self.runs}"
        event = RunRequested(
            proc.ids(), CONVERSATION, run_id, MODE, {"n": self.runs}, PRINCIPAL, False, self.now
        )
        conv = proc.conversation()
        if conv is not None and conv.epoch is not None:
            proc.writer.post(conv, event, None)
        else:
            # Claimed if new or abandoned, the request first (OWN-8); else owned_elsewhere.
            proc.owner.route(CONVERSATION, create=True, first=(event, None))

    @precondition(lambda self: len(self.commands) < 4)
    @rule(kind=st.sampled_from(COMMAND_KINDS))
    def submit_command(self, kind: str) -> None:
        """A third process submits a command for the latest journaled run."""
        run_id = self._latest_run()
        if run_id is None:
            return
        self._submit(kind, run_id)

    def _submit(self, kind: str, run_id: str) -> None:
        build = {
            "interrupt": InterruptRequested,
            "resume": ResumeRequested,
            "cancel": CancelRequested,
        }[kind]
        event_id = f"cmd{len(self.commands) + 1}"
        self.journal.submit(
            CONVERSATION, build(event_id, CONVERSATION, run_id, principal=PRINCIPAL), self.now
        )
        self.commands.append(event_id)

    @rule(index=processes)
    def pump(self, index: int) -> None:
        """One round of a process's writer."""
        if self.procs[index].alive:
            self.procs[index].writer.pump_once()

    @rule(index=processes)
    def beat(self, index: int) -> None:
        """A process's heartbeat: renew, let go of what was taken, adopt what is abandoned."""
        if self.procs[index].alive:
            self.procs[index].owner.beat()

    @rule(index=processes)
    def poll_commands(self, index: int) -> None:
        """A process's command watcher looks at the pending commands."""
        if self.procs[index].alive:
            self.procs[index].owner.poll_commands()

    @rule(index=processes, canceled=st.booleans())
    def effect_answers(self, index: int, canceled: bool) -> None:
        """A process's oldest live effect answers: completed, or canceled once a cancel named
        it (a canceled effect may also complete across its cancel)."""
        proc = self.procs[index]
        if not proc.alive or not proc.effects.live:
            return
        effect_id, (start, cancel) = next(iter(proc.effects.live.items()))
        del proc.effects.live[effect_id]
        ids = (CONVERSATION, start.run_id, start.step_id, effect_id, start.attempt)
        if canceled and cancel:
            proc.post(EffectCanceled(proc.ids(), *ids, at=self.now))
        else:
            proc.post(EffectCompleted(proc.ids(), *ids, output=f"{start.step_id}-out"))

    @rule()
    def time_passes(self) -> None:
        """More than half a lease passes: an owner that does not beat twice in a row lapses
        (it is paused, or stopped)."""
        self.now += TICK
        self._note_lapse()

    @rule(index=processes)
    def pause(self, index: int) -> None:
        """A process stalls past its lease (a long GC pause, a blocked loop): a lease and more
        passes, during which every other live process beats (and may take over)."""
        self.now += LEASE + 1.0
        self._note_lapse()
        for number, proc in enumerate(self.procs):
            if number != index and proc.alive:
                proc.owner.beat()

    @precondition(lambda self: len([p for p in self.procs if p.alive]) > 1)
    @rule(index=processes, clean=st.booleans())
    def stop(self, index: int, clean: bool) -> None:
        """A process crashes (its memory is lost, its lease stays until it lapses) or closes
        (drains its writer, stops its effects quietly, releases its lease)."""
        proc = self.procs[index]
        if not proc.alive:
            return
        if clean:
            for _ in range(4):
                proc.writer.pump_once()
            proc.effects.cancel_quietly()
            proc.owner.release()
            self._note_lapse()
        proc.alive = False

    # --- helpers -------------------------------------------------------------------------------

    def _note_lapse(self) -> None:
        record = self.journal.owner(CONVERSATION)
        if record is not None and record.expires <= self.now:
            self.lapsed = True

    def _log(self) -> list[Event]:
        return [record.event for record in self.journal.read(CONVERSATION)]

    def _latest_run(self) -> str | None:
        self._fold()
        state = self.folded
        return state.active_run_id or (state.history[-1] if state.history else None)

    def _pending(self) -> list[Command]:
        return self.journal.pending_commands(conversation_id=CONVERSATION)

    def _fold(self) -> None:
        """Fold the journal's new events, checking VER-21 on each."""
        log = self._log()
        for number, event in enumerate(log[self.checked :], start=self.checked + 1):
            pre = self.folded
            outcome = self.coordinator.reduce(pre, event)
            found = transition_violations(pre, event, outcome)
            self.ledger.sent(event)
            self.ledger.absorb(outcome)
            found += ledger_violations(outcome.state, self.ledger.views())
            assert not found, f"VER-21: journal event {number} ({event!r}) breaks {found[0]}"
            self.folded = outcome.state
        self.checked = len(log)

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def ver_17_one_writer_per_epoch(self) -> None:
        """Every accepted append was written by the owner of the epoch current at that moment:
        no epoch has appends from two owners, and a stale owner appends nothing (OWN-3)."""
        for writer, epoch, record in self.appends:
            assert record is not None and record.owner_id == writer, (
                f"VER-17: {writer} (at epoch {epoch}) appended while the conversation belongs "
                f"to {record.owner_id if record else 'no owner'}"
                f"{f' at epoch {record.epoch}' if record else ''}"
            )

    @invariant()
    def ver_18_commands_applied_at_most_once(self) -> None:
        """Each command's event is journaled at most once (OWN-6)."""
        ids = [event.event_id for event in self._log()]
        for command in self.commands:
            count = ids.count(command)
            assert count <= 1, f"VER-18: command {command} is journaled {count} times"

    @invariant()
    def ver_19_takeovers_only_of_abandoned_owners(self) -> None:
        """Every claim of a conversation that had an owner follows a lapse of that owner's
        lease since it claimed (OWN-4), and every takeover is in the owner history (OWN-5)."""
        for claimant, before, lapsed in self.claims:
            if before is not None:
                assert lapsed, (
                    f"VER-19: {claimant} took epoch {before.epoch + 1} from {before.owner_id}, "
                    "whose lease has not lapsed since it claimed"
                )
        history = self.journal.ownership_history(CONVERSATION)
        assert [record.owner_id for record in history] == [c for c, _, _ in self.claims]

    @invariant()
    def ver_21_journal_is_one_conversations_history(self) -> None:
        """The journal, folded through the core, keeps every core property (VER-1..VER-10):
        one terminal status per run, one live effect per step, whoever wrote it."""
        self._fold()

    def teardown(self) -> None:
        """VER-20: with a process alive, a fair world ends every journaled run and answers every
        command."""
        # Hypothesis calls this even after an invariant failed: fail again on that one, so its
        # id is the one reported, not this check's.
        self.ver_17_one_writer_per_epoch()
        self.ver_18_commands_applied_at_most_once()
        self.ver_19_takeovers_only_of_abandoned_owners()
        self.ver_21_journal_is_one_conversations_history()
        if not self.alive():
            return
        for _ in range(FAIR_ROUNDS):
            self._fold()
            if not self._pending() and self.folded.active_run is None:
                return
            run = self.folded.active_run
            if run is not None and run.status is RunStatus.interrupted and not self._pending():
                self._submit("resume", run.run_id)
            self.now += TICK
            for proc in self.alive():
                proc.owner.beat()
                proc.owner.poll_commands()
                proc.writer.pump_once()
                while proc.effects.live:
                    self.effect_answers(self.procs.index(proc), True)
                proc.writer.pump_once()
        self._fold()
        active = self.folded.active_run
        raise AssertionError(
            f"VER-20: after {FAIR_ROUNDS} fair rounds, run "
            f"{active.run_id if active else None} is "
            f"{active.status.value if active else 'ended'} and commands "
            f"{[c.event.event_id for c in self._pending()]} are pending; owners "
            f"{[(r.epoch, r.owner_id) for r in self.journal.ownership_history(CONVERSATION)]}"
        )
