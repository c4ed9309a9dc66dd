"""The seeded ownership defects of `_verify/_checker/_owner_defects.py`, in the runtime's own
classes.

The model checker breaks its model of the runtime; the race machine breaks the runtime itself,
each the same way: the journal's fence (`UnfencedJournal`, shared), the takeover's wait for an
abandoned owner, the answer written with its command's events, and the two behaviours the model
checker found (a takeover that skips commands posted before, a heartbeat that never notices a
takeover).
"""

from __future__ import annotations

from typing import Any

from interruptible._core import Outcome
from interruptible._errors import StaleOwnerError
from interruptible._journal import AppendBatch, Command, OwnerRecord
from interruptible._runtime._owner import Owner
from interruptible._runtime._writer import Conversation, Writer, _Batch
from interruptible._vocabulary import Event


class EagerTakeoverOwner(Owner):
    """Defect `eager_takeover`: every other owner looks abandoned, so a request or a sweep takes
    the conversation from a live owner (OWN-4)."""

    def live_owner(self, record: OwnerRecord | None) -> OwnerRecord | None:
        return None


class SplitAnswerWriter(Writer):
    """Defect `split_answer`: a command's answer is written by the next round, in a write of its
    own, not with the events it caused (OWN-6)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[tuple[Conversation, int, str]] = []

    def _answer(self, batch: _Batch, command_id: int, event: Event, outcome: Outcome) -> None:
        super()._answer(batch, command_id, event, outcome)
        assert batch.answers is not None
        self.held.extend((batch.conv, command, body) for command, body in batch.answers)
        batch.answers = None

    def _drop(self, conv: Conversation, error: Any) -> None:
        # Held answers die with the conversation's inbox when it is let go.
        self.held = [entry for entry in self.held if entry[0] is not conv]
        super()._drop(conv, error)

    def pump_once(self) -> None:
        held, self.held = self.held, []
        for conv, command, body in held:
            if conv.epoch is None:
                continue
            try:
                self.journal.append_many(
                    [
                        AppendBatch(
                            conv.conversation_id, conv.last, [], conv.epoch, [(command, body)]
                        )
                    ]
                )
            except StaleOwnerError as exc:
                self.let_go(conv, exc)
        super().pump_once()


class _WithoutPosted:
    """A journal handle whose pending commands leave out some ids."""

    def __init__(self, journal: Any, hidden: set[int]) -> None:
        self.journal = journal
        self.hidden = hidden

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.journal, attribute)

    def pending_commands(self, after: int = 0, conversation_id: str | None = None) -> list[Command]:
        pending = self.journal.pending_commands(after, conversation_id)
        return [command for command in pending if command.command_id not in self.hidden]


class KeptPostedOwner(Owner):
    """Finding `kept_posted`: a takeover skips the commands this process posted before it lost
    the conversation (they died with its inbox), so they stay pending for ever (OWN-6)."""

    def take_over(
        self, conversation_id: str, record: OwnerRecord | None, *, first: Event | None = None
    ) -> Conversation:
        journal = self.journal
        self.journal = _WithoutPosted(journal, set(self._posted))  # type: ignore[assignment]
        try:
            return super().take_over(conversation_id, record, first=first)
        finally:
            self.journal = journal


class UnnoticedTakeoverOwner(Owner):
    """Finding `unnoticed_takeover`: the heartbeat does not let go of a conversation another
    process took over; only a refused write tells it (OWN-4)."""

    def notice_takeovers(self) -> None:
        return None


class IdleByEpochOwner(Owner):
    """Finding `idle_by_epoch`: the sweep remembers an abandoned, idle conversation by its epoch
    alone, so what its owner journals after waking from a pause is never looked at (OWN-8)."""

    def sweep(self) -> None:
        commanded = {command.conversation_id for command in self.journal.pending_commands()}
        for record in self.journal.owners():
            cid = record.conversation_id
            if record.owner_id == self.owner_id or self.live_owner(record) is not None:
                continue
            if self._idle.get(cid, (0, 0))[0] == record.epoch and cid not in commanded:
                continue
            conv = self.view(cid)
            if conv is None or conv.epoch is not None:
                continue
            run = conv.state.active_run
            if not (run is not None and run.live_steps()) and cid not in commanded:
                self._idle[cid] = (record.epoch, 0)
                continue
            try:
                self.take_over(cid, record)
            except StaleOwnerError:
                continue


__all__ = [
    "EagerTakeoverOwner",
    "IdleByEpochOwner",
    "KeptPostedOwner",
    "SplitAnswerWriter",
    "UnnoticedTakeoverOwner",
]
