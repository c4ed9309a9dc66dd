"""The ownership world: owner processes sharing one conversation through one journal (OWN-1..6).

Theory of operation
-------------------
The world of `_world.py` checks the core; this one checks the protocol by which runtimes in
several processes share a conversation: leases, claims, the epoch fence, commands and their
answers. Every claim, append, submit and lease change is a call of the real `MemoryJournal` (its
fence and compare-and-set decide what is written), and every event an owner journals is folded
by the real `Coordinator.reduce`. What is modelled, not imported, is the runtime's side
(`_runtime/_owner.py`, `_runtime/_writer.py`: the checker may not import the runtime); the race
machine of `tests/stateful/` drives the runtime's own classes against the same properties.

A state (`OwnerState`) is the journal, one `Proc` per owner process, what the world may still
do, and one ghost bit for VER-19 (whether the current owner's lease has lapsed since it claimed).
The journal is a number: each distinct journal content (its log, its owners by epoch, the leases,
the commands and their answers) is interned once, with the real journal object that holds it;
a move that writes forks that object (`MemoryJournal.fork`), calls the journal, and reads the
result back through the journal's API. Journal calls are memoized per (journal, call): the
journal is deterministic, so each distinct call is made once.

A `Proc` is what a runtime holds in memory and loses when it crashes: its epoch (0: it does not
own the conversation), a claim it decided on and has not yet made (`intent`: the epoch it saw,
the request that made it claim, the reason), its view (the sequence it has folded to: a view is
always a fold of a prefix of the log, so the number is the whole view), its inbox, the effects
it runs (and whether a cancel named each), the commands it posted (the runtime's `_posted`),
whether a failed write fenced it, and, for a seeded defect, answers it holds back.

The clock is abstract: a lease is valid, lapsed or released. A live owner's lease lapses only
while it is paused (a GC pause, a stalled loop: `pauses` of them); a stopped owner's lapses
whenever the world likes; a live owner renews its lease at any time (its heartbeat). The owners
run on different hosts, so an owner is abandoned only by its lease: the runtime's probe of a pid
on its own host only sees a crash sooner, which this model covers by letting the lease of a
stopped owner lapse at once.

Moves of an owner process (each one label in a trace):

* `run rN`: a request for run N reaches the process: posted if it owns the conversation, refused
  if a live process owns it (nothing changes, the move is not followed), else it decides to claim;
* `sees X abandoned`: its heartbeat's sweep reads the owner record and decides to take over
  (when the conversation has work: a pending command or an effect left live);
* `claims epoch k`: the compare-and-set; on success it folds the journal and posts the pending
  commands, one `effect_lost` per effect left live, and the request that made it claim;
* `polls commands`: the runtime's command watcher (it prunes `_posted` to what is pending, and
  posts what is new when it owns the conversation);
* `writes`: one round of the writer: the inbox folded through `reduce` (a `start_effect` gets its
  `effect_started` folded right behind it), appended at its epoch and last sequence with the
  answers of the commands it applied, in one write; a refused write un-owns the conversation
  (`StaleOwnerError`) or fences it (`StaleWriterError`), and drops the inbox and the effects;
* an effect it runs answers (`completed`; also `canceled` once a cancel named it);
* `renews` its lease, `pauses` past it, `crashes` (its memory is lost, the lease stays until it
  lapses), `closes` (drained: the lease is released).

The world's moves: a third process submits a command (interrupt, resume or cancel of the latest
journaled run: `commands` of them), and a stopped owner's lease lapses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from .._core import ConversationState, Coordinator, Disposition, Mode, Outcome, initial_state
from .._errors import StaleOwnerError, StaleWriterError
from .._journal import AppendBatch, MemoryJournal, OwnerRecord, abandonment
from .._lifecycle import RunStatus
from .._vocabulary import (
    CancelEffects,
    CancelRequested,
    EffectCanceled,
    EffectCompleted,
    EffectLost,
    EffectStarted,
    EmitAudit,
    Event,
    InterruptRequested,
    JsonValue,
    ResumeRequested,
    RunRequested,
    StartEffect,
)
from ._owner_defects import NO_DEFECT, OwnerDefect
from ._properties import Violation, ledger_violations, transition_violations
from ._world import Ledger

CONVERSATION: Final = "c1"
PRINCIPAL: Final = "alice"
# The abstract clock: the model's "now" never moves; a lease is valid until after it or lapsed
# before it, which is all `abandonment` compares.
NOW: Final = 100.0
_VALID_UNTIL: Final = NOW + 10.0
_LAPSED_AT: Final = NOW - 10.0
VALID, LAPSED, RELEASED = 0, 1, 2
_LEASE_WORDS: Final = ("valid", "lapsed", "released")
COMMAND_KINDS: Final = ("interrupt", "resume", "cancel")
NAMES: Final = "ABCDEFGH"
# What a journal call gave.
OK, STALE_OWNER, STALE_WRITER = "ok", "stale_owner", "stale_writer"


@dataclass(frozen=True, slots=True)
class OwnerBounds:
    """How much the world may do; every bound is finite, so the explored space is too."""

    owners: int = 2  # owner processes A, B, ...
    runs: int = 1  # run requests, r1, r2, ..., each sent to one process
    retries: int = 0  # a run request sent again (to any process: a client's retry)
    steps: int = 1  # steps per run, read by the model when it builds its modes
    commands: int = 1  # commands a third process submits, over all runs
    pauses: int = 1  # leases of live owners that lapse (a pause longer than the lease)
    stops: int = 1  # owners that crash or close; fewer than `owners` keeps one alive
    depth: int | None = None  # moves per path; None explores until no new state appears

    def describe(self) -> str:
        """The bounds as `name=value` pairs."""
        names = ("owners", "runs", "retries", "steps", "commands", "pauses", "stops")
        return " ".join(f"{name}={getattr(self, name)}" for name in names) + (
            f" depth={self.depth}" if self.depth is not None else " depth=unbounded"
        )


class OwnerModel(Protocol):
    """An ownership model of `models/`: the runs the owners drive and the commands sent."""

    @property
    def name(self) -> str:
        """The model's name, shown in reports."""
        ...

    @property
    def ci_bounds(self) -> OwnerBounds:
        """The bound CI checks."""
        ...

    def modes(self, bounds: OwnerBounds) -> SequenceOf[Mode]:
        """The modes the runs ask for."""
        ...

    def run_request(self, index: int) -> tuple[str, JsonValue]:
        """The mode and input of run number `index` (1, 2, ...)."""
        ...

    def outputs(self, step_class: str, step_id: str) -> tuple[JsonValue, ...]:
        """The output an effect of this step completes with (the first is used)."""
        ...

    def commands(self, bounds: OwnerBounds) -> SequenceOf[str]:
        """The commands a third process may submit: some of `COMMAND_KINDS`."""
        ...


Intent = tuple[int, str, str]  # the epoch seen, the request that made it claim (or ""), why
Item = tuple[str, int]  # an event label, and the command it carries out (0: none)


class Proc(NamedTuple):
    """What one owner process holds in memory (everything here is lost when it crashes)."""

    alive: bool = True
    epoch: int = 0  # the epoch it owns the conversation at; 0 when it does not
    intent: Intent | None = None
    last: int = 0  # the journal sequence its view is folded to
    inbox: tuple[Item, ...] = ()
    effects: tuple[tuple[str, bool], ...] = ()  # effects it runs, and whether one was canceled
    posted: tuple[int, ...] = ()  # commands it posted, not yet seen answered
    fenced: bool = False  # a write failed with StaleWriterError: it never writes again
    held: tuple[tuple[int, str], ...] = ()  # answers held back (seeded defect split_answer)
    # The epoch and last sequence its sweep last found the conversation abandoned with no work
    # at: it looks again only once one of them moves.
    idle: tuple[int, int] | None = None


STOPPED: Final = Proc(alive=False)

# A journal's content: log event ids, owners (id, reason) by epoch, each owner's lease, the
# commands submitted (event ids) and each command's answer epoch (-1 while pending).
JournalKey = tuple[
    tuple[str, ...], tuple[tuple[str, str], ...], tuple[int, ...], tuple[str, ...], tuple[int, ...]
]
Op = tuple[object, ...]


class OwnerState(NamedTuple):
    """One state of the ownership world."""

    journal: int  # the interned journal's number
    procs: tuple[Proc, ...]
    runs: int  # fresh run requests left
    retries: int
    commands: int
    pauses: int
    stops: int
    lapsed: bool  # ghost: the current owner's lease lapsed since it claimed (VER-19)


class JournalView(NamedTuple):
    """What the owners read of one interned journal."""

    key: JournalKey
    record: OwnerRecord | None  # the current owner
    pending: tuple[tuple[int, str], ...]  # pending commands: (command id, event id)
    journal: MemoryJournal


Move = tuple[str, OwnerState, Violation | None]
# A writer round: the events it journals, the answers, and (start|cancel, effect id) in order.
Round = tuple[tuple[str, ...], tuple[tuple[int, str], ...], tuple[tuple[bool, str], ...]]


class OwnerWorld:
    """The ownership world for one model, bounds and (seeded) defect."""

    def __init__(
        self,
        model: OwnerModel,
        bounds: OwnerBounds,
        defect: OwnerDefect = NO_DEFECT,
        coordinator_factory: Callable[[SequenceOf[Mode]], Coordinator] = Coordinator,
    ) -> None:
        if not 1 <= bounds.owners <= len(NAMES):
            raise ValueError(f"owners must be 1..{len(NAMES)}, got {bounds.owners}")
        self.model = model
        self.bounds = bounds
        self.defect = defect
        self.coordinator = coordinator_factory(model.modes(bounds))
        self.reduce = self.coordinator.reduce
        self.names = NAMES[: bounds.owners]
        self.hosts = tuple(f"host-{name}" for name in self.names)
        self.command_kinds = tuple(model.commands(bounds))
        self.events: dict[str, Event] = {}
        self._effects: dict[str, StartEffect] = {}
        self.views: list[JournalView] = []
        self._journal_index: dict[JournalKey, int] = {}
        self.journal_violations: list[Violation | None] = []
        self._ops: dict[tuple[int, Op], tuple[str, int]] = {}
        self._folds: dict[tuple[str, ...], ConversationState] = {}
        # Each journal log checked by VER-21, with its fold and its effects' ledger.
        self._histories: dict[tuple[str, ...], tuple[ConversationState, Ledger]] = {
            (): (initial_state(CONVERSATION), Ledger())
        }
        self._rounds: dict[tuple[tuple[str, ...], tuple[Item, ...]], Round] = {}
        self.journal_calls = 0
        self._client_moves: dict[tuple[int, bool], tuple[tuple[str, int, int], ...]] = {}

    # --- the journal ---------------------------------------------------------------------------

    def initial(self) -> OwnerState:
        """Every owner registered with a valid lease, nothing journaled."""
        journal = self.defect.journal()
        for index, name in enumerate(self.names):
            journal.register(name, self.hosts[index], 1000 + index, _VALID_UNTIL)
        leases = tuple(VALID for _ in self.names)
        b = self.bounds
        return OwnerState(
            self._intern(journal, leases, ()),
            tuple(Proc() for _ in self.names),
            b.runs,
            b.retries,
            b.commands,
            b.pauses,
            b.stops,
            False,
        )

    def _intern(
        self, journal: MemoryJournal, leases: tuple[int, ...], commands: tuple[str, ...]
    ) -> int:
        """The number of this journal's content, read back through the journal's API."""
        log = tuple(record.event.event_id for record in journal.read(CONVERSATION))
        history = journal.ownership_history(CONVERSATION)
        owners = tuple((record.owner_id, record.reason) for record in history)
        answers = []
        for command_id in range(1, len(commands) + 1):
            answer = journal.answer(command_id)
            answers.append(-1 if answer is None else (answer.epoch or 0))
        key: JournalKey = (log, owners, leases, commands, tuple(answers))
        index = self._journal_index.get(key)
        if index is None:
            index = len(self.views)
            self._journal_index[key] = index
            pending = tuple(
                (command.command_id, command.event.event_id)
                for command in journal.pending_commands(conversation_id=CONVERSATION)
            )
            self.views.append(JournalView(key, history[-1] if history else None, pending, journal))
            self.journal_violations.append(self._journal_violation(key))
        return index

    def _call(self, index: int, op: Op) -> tuple[str, int]:
        """Make one journal call on a fork of journal `index`: what it gave, and the journal
        after it (memoized: the journal is deterministic)."""
        memo_key = (index, op)
        found = self._ops.get(memo_key)
        if found is not None:
            return found
        self.journal_calls += 1
        view = self.views[index]
        journal = view.journal.fork()
        _log, _owners, leases, commands, _answers = view.key
        kind = op[0]
        result = OK
        try:
            if kind == "claim":
                _, owner, seen, reason = op
                assert isinstance(owner, int) and isinstance(seen, int) and isinstance(reason, str)
                journal.claim(CONVERSATION, self.names[owner], seen, reason=reason, at=NOW)
            elif kind == "append":
                _, last, epoch, labels, answers = op
                assert isinstance(last, int) and isinstance(epoch, int)
                assert isinstance(labels, tuple) and isinstance(answers, tuple)
                events = [self.events[label] for label in labels]
                batch = AppendBatch(CONVERSATION, last, events, epoch or None, answers)
                journal.append_many([batch])
            elif kind == "submit":
                label = op[1]
                assert isinstance(label, str)
                journal.submit(CONVERSATION, self.events[label], NOW)
                commands = (*commands, label)
            else:  # "lease"
                _, owner, status = op
                assert isinstance(owner, int) and isinstance(status, int)
                name = self.names[owner]
                if status == RELEASED:
                    journal.release(name)
                else:
                    journal.renew(name, _VALID_UNTIL if status == VALID else _LAPSED_AT)
                leases = (*leases[:owner], status, *leases[owner + 1 :])
        except StaleOwnerError:
            result = STALE_OWNER
        except StaleWriterError:
            result = STALE_WRITER
        found = (result, self._intern(journal, leases, commands))
        self._ops[memo_key] = found
        return found

    def _journal_violation(self, key: JournalKey) -> Violation | None:
        """VER-18 and VER-21 on a journal's content."""
        log, _owners, _leases, commands, _answers = key
        for label in commands:
            count = log.count(label)
            if count > 1:
                return Violation(
                    "VER-18", f"command {label!r} is journaled {count} times (applied twice)"
                )
        return self.history_violation(log)

    def history_violation(self, log: tuple[str, ...]) -> Violation | None:
        """VER-21 on the events of `log`, folded through this world's core from the longest
        prefix already checked (a journal only grows, so most of its log was)."""
        if log in self._histories:
            return None
        known = len(log) - 1
        while log[:known] not in self._histories:
            known -= 1
        state, ledger = self._histories[log[:known]]
        ledger = ledger.copy()
        for number in range(known + 1, len(log) + 1):
            event = self.events[log[number - 1]]
            outcome = self.reduce(state, event)
            found = _event_violation(number, state, event, outcome, ledger)
            if found is not None:
                return found
            state = outcome.state
        self._histories[log] = (state, ledger)
        return None

    # --- folds ---------------------------------------------------------------------------------

    def fold(self, log: tuple[str, ...]) -> ConversationState:
        """The conversation after the events of `log` (memoized per log)."""
        state = self._folds.get(log)
        if state is None:
            if not log:
                state = initial_state(CONVERSATION)
            else:
                state = self.reduce(self.fold(log[:-1]), self.events[log[-1]]).state
            self._folds[log] = state
        return state

    def round(self, prefix: tuple[str, ...], inbox: tuple[Item, ...]) -> Round:
        """What one writer round makes of an inbox, from the view `prefix` (memoized)."""
        key = (prefix, inbox)
        found = self._rounds.get(key)
        if found is not None:
            return found
        state = self.fold(prefix)
        labels: list[str] = []
        answers: list[tuple[int, str]] = []
        actions: list[tuple[bool, str]] = []
        for label, command in inbox:
            event = self.events[label]
            outcome = self.reduce(state, event)
            if command:
                answers.append((command, _answer_body(outcome)))
            if outcome.disposition is Disposition.rejected and not any(
                type(d) is EmitAudit for d in outcome.directives
            ):
                continue  # refused, changed nothing: not journaled (the writer's rule)
            labels.append(label)
            state = outcome.state
            pending = [outcome]
            while pending:
                current = pending.pop(0)
                for directive in current.directives:
                    if type(directive) is CancelEffects:
                        actions.extend((False, effect_id) for effect_id in directive.effect_ids)
                    elif type(directive) is StartEffect:
                        # The writer folds the start right behind its cause (one commit a step).
                        started = self._started(directive)
                        answer = self.reduce(state, self.events[started])
                        if answer.disposition is not Disposition.applied:
                            continue
                        state = answer.state
                        labels.append(started)
                        actions.append((True, directive.effect_id))
                        pending.append(answer)
        found = (tuple(labels), tuple(answers), tuple(actions))
        self._rounds[key] = found
        return found

    # --- events --------------------------------------------------------------------------------

    def _started(self, directive: StartEffect) -> str:
        label = f"started {directive.effect_id}"
        if label not in self.events:
            self._effects[directive.effect_id] = directive
            self.events[label] = EffectStarted(
                label,
                CONVERSATION,
                directive.run_id,
                directive.step_id,
                directive.effect_id,
                directive.attempt,
            )
        return label

    def _effect_event(self, kind: str, effect_id: str) -> str:
        label = f"{kind} {effect_id}"
        if label not in self.events:
            d = self._effects[effect_id]
            ids = (label, CONVERSATION, d.run_id, d.step_id, d.effect_id, d.attempt)
            if kind == "completed":
                output = self.model.outputs(d.step_class.value, d.step_id)[0]
                self.events[label] = EffectCompleted(*ids, output=output)
            elif kind == "canceled":
                self.events[label] = EffectCanceled(*ids)
            else:
                self.events[label] = EffectLost(*ids)
        return label

    def _request(self, index: int, again: bool) -> str:
        label = f"run r{index}" + (" again" if again else "")
        if label not in self.events:
            mode, payload = self.model.run_request(index)
            self.events[label] = RunRequested(
                label, CONVERSATION, f"r{index}", mode, payload, PRINCIPAL
            )
        return label

    def _command(self, number: int, kind: str, run_id: str) -> str:
        label = f"cmd{number} {kind} {run_id}"
        if label not in self.events:
            build = {
                "interrupt": InterruptRequested,
                "resume": ResumeRequested,
                "cancel": CancelRequested,
            }[kind]
            self.events[label] = build(label, CONVERSATION, run_id, principal=PRINCIPAL)
        return label

    # --- moves ---------------------------------------------------------------------------------

    def moves(self, s: OwnerState) -> list[Move]:
        """Every move the world and the owners can make from `s`, each with its target and the
        transition property it breaks (if any)."""
        out: list[Move] = []
        view = self.views[s.journal]
        for index in range(len(self.names)):
            if s.procs[index].alive:
                self._owner_moves(s, index, view, out)
            elif view.key[2][index] == VALID:
                self._lease(s, index, LAPSED, f"{self.names[index]}'s lease lapses", out)
        client = self._client_moves.get((s.journal, s.commands > 0))
        if client is None:
            client = self._client_moves[(s.journal, s.commands > 0)] = self._submits(s)
        for label, journal, spent in client:
            out.append((label, s._replace(journal=journal, commands=s.commands - spent), None))
        return out

    def _submits(self, s: OwnerState) -> tuple[tuple[str, int, int], ...]:
        """The third process's commands: (label, journal after, commands spent)."""
        view = self.views[s.journal]
        state = self.fold(view.key[0])
        run_id = state.active_run_id or (state.history[-1] if state.history else None)
        if run_id is None:
            return ()
        out: list[tuple[str, int, int]] = []
        number = len(view.key[3]) + 1
        if s.commands:
            for kind in self.command_kinds:
                label = self._command(number, kind, run_id)
                _, journal = self._call(s.journal, ("submit", label))
                out.append((f"client: submits {label}", journal, 1))
        run = state.active_run
        if run is not None and run.status is RunStatus.interrupted and not view.pending:
            # The fair world resumes an interrupted run (free: an interrupt is bounded, and
            # this is sent only while no command is pending), so that it can end (VER-20).
            label = self._command(number, "resume", run_id)
            _, journal = self._call(s.journal, ("submit", label))
            out.append((f"client: submits {label}", journal, 0))
        return tuple(out)

    def _set(self, s: OwnerState, index: int, proc: Proc, **changes: Any) -> OwnerState:
        procs = (*s.procs[:index], proc, *s.procs[index + 1 :])
        if not changes:  # the common case, without `_replace`'s keyword machinery
            return OwnerState(s.journal, procs, *s[2:])
        return s._replace(procs=procs, **changes)

    def _has_work(self, view: JournalView) -> bool:
        """Whether the heartbeat's sweep takes the conversation over: it has a pending command
        or an effect left live."""
        if view.pending:
            return True
        run = self.fold(view.key[0]).active_run
        return run is not None and bool(run.live_steps())

    def _abandoned(self, index: int, record: OwnerRecord) -> str | None:
        """Why process `index` sees `record`'s owner as abandoned; None if it sees it alive."""
        reason = abandonment(record, NOW, self.hosts[index])
        if reason is None and (record.owner_id == self.names[index] or self.defect.eager_takeover):
            return "abandoned"  # the runtime's word when `abandonment` gives no reason
        return reason

    def _lease(
        self, s: OwnerState, index: int, status: int, label: str, out: list[Move], **more: Any
    ) -> None:
        _, journal = self._call(s.journal, ("lease", index, status))
        lapsed = s.lapsed
        record = self.views[s.journal].record
        if status != VALID and record is not None and record.owner_id == self.names[index]:
            lapsed = True
        out.append((label, s._replace(journal=journal, lapsed=lapsed, **more), None))

    def _owner_moves(self, s: OwnerState, index: int, view: JournalView, out: list[Move]) -> None:
        p = s.procs[index]
        name = self.names[index]
        record = view.record
        if s.runs:
            self._route(s, index, self._request(self.bounds.runs - s.runs + 1, False), out)
        if s.retries and s.runs < self.bounds.runs:
            self._route(s, index, self._request(self.bounds.runs - s.runs, True), out)
        if (
            p.epoch
            and record is not None
            and record.owner_id != name
            and not self.defect.unnoticed_takeover
        ):
            # The heartbeat reads the owner records: another process has the conversation (this
            # one was paused past its lease), so this one lets it go, as a refused write makes
            # it do; without this, an owner with nothing to write never learns it.
            proc = p._replace(epoch=0, inbox=(), effects=(), fenced=False, held=())
            label = f"{name}: sees {record.owner_id} owns epoch {record.epoch}, lets go"
            out.append((label, self._set(s, index, proc), None))
        if (
            not p.epoch
            and p.intent is None
            and not p.fenced
            and record is not None
            and record.owner_id != name
        ):
            reason = self._abandoned(index, record)
            found_idle = (record.epoch, len(view.key[0]))
            if self.defect.idle_by_epoch:
                found_idle = (record.epoch, 0)
            if reason is None or (p.idle == found_idle and not view.pending):
                pass  # alive, or found idle at this epoch before (the sweep looks no further)
            elif self._has_work(view):
                intent = (record.epoch, "", reason)
                label = f"{name}: sees {record.owner_id} abandoned ({reason})"
                out.append((label, self._set(s, index, p._replace(intent=intent)), None))
            elif p.idle != found_idle and view.key[0]:  # (nothing journaled: not looked at)
                label = f"{name}: sees {record.owner_id} abandoned ({reason}) and idle"
                out.append((label, self._set(s, index, p._replace(idle=found_idle)), None))
        if p.intent is not None:
            self._claim(s, index, view, out)
        self._poll(s, index, view, out)
        if p.inbox:
            self._write(s, index, view, out)
        if p.held:
            self._write_held(s, index, view, out)
        for position, (effect_id, canceled) in enumerate(p.effects):
            rest = (*p.effects[:position], *p.effects[position + 1 :])
            for kind in ("completed", "canceled") if canceled else ("completed",):
                label = self._effect_event(kind, effect_id)
                proc = p._replace(effects=rest, inbox=(*p.inbox, (label, 0)))
                out.append(
                    (f"{name}: effect {effect_id} answers {kind}", self._set(s, index, proc), None)
                )
        lease = view.key[2][index]
        if lease != VALID:
            self._lease(s, index, VALID, f"{name}: renews its lease", out)
        elif s.pauses:
            self._lease(
                s, index, LAPSED, f"{name}: pauses past its lease", out, pauses=s.pauses - 1
            )
        if s.stops:
            out.append((f"{name}: crashes", self._set(s, index, STOPPED, stops=s.stops - 1), None))
            if not p.inbox and not p.held:
                stopped = self._set(s, index, STOPPED, stops=s.stops - 1)
                self._lease(stopped, index, RELEASED, f"{name}: closes", out)

    def _route(self, s: OwnerState, index: int, label: str, out: list[Move]) -> None:
        """A request reaches process `index`: posted, refused, or the reason to claim."""
        p = s.procs[index]
        spend = {"runs": s.runs - 1} if not label.endswith(" again") else {"retries": s.retries - 1}
        move = f"{self.names[index]}: {label}"
        if p.fenced:
            return  # refused with the fence's error: nothing changes
        if p.epoch:
            out.append(
                (move, self._set(s, index, p._replace(inbox=(*p.inbox, (label, 0))), **spend), None)
            )
            return
        if p.intent is not None:
            return  # one routing at a time
        view = self.views[s.journal]
        record = view.record
        if record is None:
            intent = (0, label, "new" if not view.key[0] else "unowned")
        else:
            reason = self._abandoned(index, record)
            if reason is None:
                return  # owned by a live process: refused (owned_elsewhere), nothing changes
            intent = (record.epoch, label, reason)
        out.append((move, self._set(s, index, p._replace(intent=intent), **spend), None))

    def _claim(self, s: OwnerState, index: int, view: JournalView, out: list[Move]) -> None:
        p = s.procs[index]
        name = self.names[index]
        assert p.intent is not None
        seen, first, reason = p.intent
        result, journal = self._call(s.journal, ("claim", index, seen, reason))
        if result != OK:
            label = f"{name}: loses the claim of epoch {seen + 1}"
            out.append((label, self._set(s, index, p._replace(intent=None)), None))
            return
        violation = None
        if seen and not s.lapsed:
            previous = view.record.owner_id if view.record is not None else "?"
            violation = Violation(
                "VER-19",
                f"{name} took epoch {seen + 1} from {previous}, whose lease has not lapsed "
                f"since it claimed epoch {seen}",
            )
        after = self.views[journal]
        log = after.key[0]
        state = self.fold(log)
        # The request that made it claim goes first (OWN-8), then the pending commands, then
        # the answers to the effects the previous owner left live.
        inbox: list[Item] = [(first, 0)] if first else []
        posted = set(p.posted)
        for command_id, label in after.pending:
            if self.defect.kept_posted and command_id in posted:
                continue
            posted.add(command_id)
            inbox.append((label, command_id))
        run = state.active_run
        if run is not None:
            for step in run.live_steps():
                assert step.effect_id is not None
                inbox.append((self._effect_event("lost", step.effect_id), 0))
        proc = p._replace(
            epoch=seen + 1,
            intent=None,
            last=len(log),
            inbox=tuple(inbox),
            posted=tuple(sorted(posted)),
        )
        lapsed = after.key[2][index] != VALID
        target = self._set(s, index, proc, journal=journal, lapsed=lapsed)
        out.append((f"{name}: claims epoch {seen + 1} ({reason})", target, violation))

    def _poll(self, s: OwnerState, index: int, view: JournalView, out: list[Move]) -> None:
        p = s.procs[index]
        if not view.pending and not p.posted:
            return  # nothing to post, nothing to forget
        pending = {command_id for command_id, _ in view.pending}
        posted = [command_id for command_id in p.posted if command_id in pending]
        inbox = list(p.inbox)
        if p.epoch:
            for command_id, label in view.pending:
                if command_id not in posted:
                    posted.append(command_id)
                    if not p.fenced:
                        inbox.append((label, command_id))
        posted.sort()
        if tuple(posted) == p.posted and len(inbox) == len(p.inbox):
            return
        proc = p._replace(posted=tuple(posted), inbox=tuple(inbox))
        out.append((f"{self.names[index]}: polls commands", self._set(s, index, proc), None))

    def _write(self, s: OwnerState, index: int, view: JournalView, out: list[Move]) -> None:
        p = s.procs[index]
        name = self.names[index]
        labels, answers, actions = self.round(view.key[0][: p.last], p.inbox)
        held = p.held
        if self.defect.split_answer and answers:
            held = (*held, *answers)
            answers = ()
        if not labels and not answers:
            proc = p._replace(inbox=(), held=held)
            out.append((f"{name}: writes nothing", self._set(s, index, proc), None))
            return
        self._append(s, index, view, labels, answers, held, actions, out)

    def _write_held(self, s: OwnerState, index: int, view: JournalView, out: list[Move]) -> None:
        p = s.procs[index]
        self._append(s, index, view, (), p.held, (), (), out, held_only=True)

    def _append(
        self,
        s: OwnerState,
        index: int,
        view: JournalView,
        labels: tuple[str, ...],
        answers: tuple[tuple[int, str], ...],
        held: tuple[tuple[int, str], ...],
        actions: tuple[tuple[bool, str], ...],
        out: list[Move],
        *,
        held_only: bool = False,
    ) -> None:
        p = s.procs[index]
        name = self.names[index]
        result, journal = self._call(s.journal, ("append", p.last, p.epoch, labels, answers))
        what = (
            "answers " + ", ".join(f"cmd{c}" for c, _ in answers)
            if held_only
            else ("writes " + ", ".join(labels) + "".join(f" + answer cmd{c}" for c, _ in answers))
        )
        if result == OK:
            violation = None
            record = view.record
            if record is None or record.owner_id != name:
                owner = (
                    "no owner"
                    if record is None
                    else f"epoch {record.epoch}'s owner {record.owner_id}"
                )
                violation = Violation(
                    "VER-17",
                    f"{name} (at epoch {p.epoch}) appended while the conversation belongs to "
                    f"{owner}",
                )
            effects = dict(p.effects)
            for start, effect_id in actions:
                if start:
                    effects[effect_id] = False
                elif effect_id in effects:
                    effects[effect_id] = True
            proc = p._replace(
                last=p.last + len(labels),
                inbox=p.inbox if held_only else (),
                effects=tuple(sorted(effects.items())),
                held=() if held_only else held,
            )
            out.append((f"{name}: {what}", self._set(s, index, proc, journal=journal), violation))
            return
        if result == STALE_OWNER:
            proc = p._replace(epoch=0, inbox=(), effects=(), held=())
            word = "another owner took the conversation"
        else:
            proc = p._replace(fenced=True, inbox=(), effects=(), held=())
            word = "another writer advanced the conversation"
        label = f"{name}: {what}: refused, {word}"
        out.append((label, self._set(s, index, proc, journal=journal), None))

    # --- liveness ------------------------------------------------------------------------------

    def settled(self, s: OwnerState) -> bool:
        """Every journaled run has ended and every submitted command is answered."""
        view = self.views[s.journal]
        return not view.pending and self.fold(view.key[0]).active_run is None

    @staticmethod
    def someone_alive(s: OwnerState) -> bool:
        """Some owner process is alive and may still write (VER-20 asks progress only then)."""
        return any(p.alive and not p.fenced for p in s.procs)

    def journal_events(self, s: OwnerState) -> tuple[Event, ...]:
        """The events the journal holds in state `s`."""
        return tuple(self.events[label] for label in self.views[s.journal].key[0])


def history_violation(
    reduce: Callable[[ConversationState, Event], Outcome], events: SequenceOf[Event]
) -> Violation | None:
    """VER-21: a journal's events, folded through the core, keep every core property (the
    transition properties of each `reduce`, and the ledger of the effects the history starts
    and answers), whichever owners wrote them."""
    state = initial_state(CONVERSATION)
    ledger = Ledger()
    for number, event in enumerate(events, start=1):
        outcome = reduce(state, event)
        found = _event_violation(number, state, event, outcome, ledger)
        if found is not None:
            return found
        state = outcome.state
    return None


def _event_violation(
    number: int, pre: ConversationState, event: Event, outcome: Outcome, ledger: Ledger
) -> Violation | None:
    """VER-21 for the journal's event `number`: its transition, and the ledger after it."""
    found = transition_violations(pre, event, outcome)
    ledger.sent(event)
    ledger.absorb(outcome)
    found += ledger_violations(outcome.state, ledger.views())
    if not found:
        return None
    first = found[0]
    return Violation(
        "VER-21",
        f"journal event {number} ({event.event_id}) breaks {first.property_id}: {first.message}",
    )


def _answer_body(outcome: Outcome) -> str:
    """A command's answer (the runtime writes a snapshot or an error; its content is not
    checked here, only that it is written once, with the events)."""
    return json.dumps({"disposition": outcome.disposition.value}, separators=(",", ":"))


def lease_word(status: int) -> str:
    """A lease status as a word."""
    return _LEASE_WORDS[status]
