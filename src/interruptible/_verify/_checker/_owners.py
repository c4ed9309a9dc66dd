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

A state (`OwnerState`, `_owner_state.py`) is the journal, one `Proc` per owner process, what
the world may still do, and one ghost bit for VER-19 (whether the current owner's lease has
lapsed since it claimed). The journal is a number (`_owner_journals.py`): each distinct content
is interned once with the real journal that holds it, and a move that writes calls a fork of it.

A `Proc` is what a runtime holds in memory and loses when it crashes: its epoch (0: it does not
own the conversation), a claim it decided on and has not yet made (`intent`: the epoch it saw,
the request that made it claim, the reason), its view (the sequence it has folded to: a view is
always a fold of a prefix of the log, so the number is the whole view), its inbox, the effects
it runs (and whether a cancel named each), the commands it posted (the runtime's `_posted`),
whether a failed write fenced it, what its sweep last found idle, and, for a seeded defect,
answers it holds back.

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
  when the conversation has work (a pending command or an effect left live), or else remembers
  it idle at its epoch and last sequence, and looks again only once one of them moves;
* `sees X owns epoch k, lets go`: its heartbeat finds another process in the owner record of a
  conversation it believes it owns (it was paused past its lease): it drops its inbox and its
  effects, as a refused write would make it;
* `claims epoch k`: the compare-and-set; on success it folds the journal and posts the request
  that made it claim (OWN-8), the pending commands, and one `effect_lost` per effect left live;
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
journaled run: `commands` of them, and a resume of an interrupted run while none is pending, for
fairness), and a stopped owner's lease lapses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Sequence as SequenceOf
from typing import Any, Final

from ..._core import Coordinator, Disposition, Mode, Outcome
from ..._journal import OwnerRecord, abandonment
from ..._lifecycle import RunStatus
from ..._vocabulary import (
    CancelEffects,
    CancelRequested,
    EffectCanceled,
    EffectCompleted,
    EffectLost,
    EffectStarted,
    EmitAudit,
    Event,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    StartEffect,
)
from ._owner_defects import NO_DEFECT, OwnerDefect
from ._owner_journals import (
    CONVERSATION,
    LAPSED,
    NOW,
    OK,
    RELEASED,
    STALE_OWNER,
    VALID,
    Journals,
    JournalView,
)
from ._owner_state import (
    NAMES,
    STOPPED,
    Item,
    Move,
    OwnerBounds,
    OwnerModel,
    OwnerState,
    Proc,
    Round,
)
from ._properties import Violation

PRINCIPAL: Final = "alice"


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
        self.journals = Journals(self.names, self.events, self.reduce)
        # The journals' tables, under the names the explorer reads.
        self.views = self.journals.views
        self.journal_violations = self.journals.violations
        self.fold = self.journals.fold
        self._call = self.journals.call
        self._rounds: dict[tuple[tuple[str, ...], tuple[Item, ...]], Round] = {}
        self._client_moves: dict[tuple[int, bool], tuple[tuple[str, int, int], ...]] = {}

    @property
    def journal_calls(self) -> int:
        """Distinct journal calls made so far."""
        return self.journals.calls

    def history_violation(self, log: tuple[str, ...]) -> Violation | None:
        """VER-21 on a journal's log (see `Journals.history_violation`)."""
        return self.journals.history_violation(log)

    # --- the journal ---------------------------------------------------------------------------

    def initial(self) -> OwnerState:
        """Every owner registered with a valid lease, nothing journaled."""
        b = self.bounds
        return OwnerState(
            self.journals.initial(self.defect.journal, self.hosts),
            tuple(Proc() for _ in self.names),
            b.runs,
            b.retries,
            b.commands,
            b.pauses,
            b.stops,
            False,
        )

    # --- folds ---------------------------------------------------------------------------------

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


def _answer_body(outcome: Outcome) -> str:
    """A command's answer (the runtime writes a snapshot or an error; its content is not
    checked here, only that it is written once, with the events)."""
    return json.dumps({"disposition": outcome.disposition.value}, separators=(",", ":"))
