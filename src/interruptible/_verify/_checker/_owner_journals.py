"""The journals of the ownership world: each distinct content once, with the real journal.

Theory of operation
-------------------
The ownership world (`_owners.py`) names a journal by a number. Each distinct journal content
(its log, its owners by epoch, the owners' leases, the commands submitted and their answers) is
interned once by `Journals.intern`, which reads the content back through the journal's own API
(`read`, `ownership_history`, `answer`, `pending_commands`) and keeps the real `MemoryJournal`
that holds it. A move that writes (a claim, an append, a submit, a lease change) is made by
`Journals.call` on a fork of that journal (`MemoryJournal.fork`): the journal's compare-and-set
and epoch fence decide, and the result is interned again. Calls are memoized per (journal,
call): the journal is deterministic, so each distinct call is made once.

Each new content is checked once: VER-18 (a command's event journaled at most once) and VER-21
(the log, folded through the core, keeps the core's properties), the latter from the fold of the
longest prefix already checked, since a journal only grows.

The clock is abstract: the world's "now" never moves; a lease is valid (it ends after now),
lapsed (it ended before now) or released (0), which is all `abandonment` compares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

from ..._core import ConversationState, Outcome, initial_state
from ..._errors import StaleOwnerError, StaleWriterError
from ..._journal import AppendBatch, MemoryJournal, OwnerRecord
from ..._vocabulary import Event
from ._properties import Violation, ledger_violations, transition_violations
from ._world import Ledger

CONVERSATION: Final = "c1"
NOW: Final = 100.0
VALID_UNTIL: Final = NOW + 10.0
LAPSED_AT: Final = NOW - 10.0
VALID, LAPSED, RELEASED = 0, 1, 2
# What a journal call gave.
OK, STALE_OWNER, STALE_WRITER = "ok", "stale_owner", "stale_writer"

# A journal's content: log event ids, owners (id, reason) by epoch, each owner's lease, the
# commands submitted (event ids) and each command's answer epoch (-1 while pending).
JournalKey = tuple[
    tuple[str, ...], tuple[tuple[str, str], ...], tuple[int, ...], tuple[str, ...], tuple[int, ...]
]
Op = tuple[object, ...]


class JournalView(NamedTuple):
    """What the owners read of one interned journal."""

    key: JournalKey
    record: OwnerRecord | None  # the current owner
    pending: tuple[tuple[int, str], ...]  # pending commands: (command id, event id)
    journal: MemoryJournal


class Journals:
    """Every journal content the ownership world reached, numbered, with its real journal."""

    def __init__(
        self,
        names: Sequence[str],
        events: dict[str, Event],
        reduce: Callable[[ConversationState, Event], Outcome],
    ) -> None:
        self.names = tuple(names)
        self.events = events  # event id -> event: the world's, filled as it makes them
        self.reduce = reduce
        self.views: list[JournalView] = []
        self.violations: list[Violation | None] = []  # per journal: VER-18 or VER-21, or None
        self.calls = 0  # distinct journal calls made
        self._index: dict[JournalKey, int] = {}
        self._calls: dict[tuple[int, Op], tuple[str, int]] = {}
        self._folds: dict[tuple[str, ...], ConversationState] = {}
        # Each journal log checked by VER-21, with its fold and its effects' ledger.
        self._histories: dict[tuple[str, ...], tuple[ConversationState, Ledger]] = {
            (): (initial_state(CONVERSATION), Ledger())
        }

    def initial(self, journal_class: type[MemoryJournal], hosts: Sequence[str]) -> int:
        """A new journal in which every owner registered a valid lease."""
        journal = journal_class()
        for index, name in enumerate(self.names):
            journal.register(name, hosts[index], 1000 + index, VALID_UNTIL)
        return self.intern(journal, tuple(VALID for _ in self.names), ())

    def intern(
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
        index = self._index.get(key)
        if index is None:
            index = len(self.views)
            self._index[key] = index
            pending = tuple(
                (command.command_id, command.event.event_id)
                for command in journal.pending_commands(conversation_id=CONVERSATION)
            )
            self.views.append(JournalView(key, history[-1] if history else None, pending, journal))
            self.violations.append(self._violation(key))
        return index

    def call(self, index: int, op: Op) -> tuple[str, int]:
        """Make one journal call on a fork of journal `index`: what it gave, and the journal
        after it (memoized: the journal is deterministic)."""
        memo_key = (index, op)
        found = self._calls.get(memo_key)
        if found is not None:
            return found
        self.calls += 1
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
                    journal.renew(name, VALID_UNTIL if status == VALID else LAPSED_AT)
                leases = (*leases[:owner], status, *leases[owner + 1 :])
        except StaleOwnerError:
            result = STALE_OWNER
        except StaleWriterError:
            result = STALE_WRITER
        found = (result, self.intern(journal, leases, commands))
        self._calls[memo_key] = found
        return found

    def _violation(self, key: JournalKey) -> Violation | None:
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


def history_violation(
    reduce: Callable[[ConversationState, Event], Outcome], events: Sequence[Event]
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
