"""A worker's ownership: claims from a journal that workers share (spec/workers.md).

Theory of operation
-------------------
A `WorkerOwner` is an `Owner` (leases, takeovers, commands, notifications: `_owner.py`) that
never sweeps the whole journal. It claims conversations with work in one call of the journal
(`claim_work`: one transaction, up to its limit of live ones, WRK-1) when a notification says
there may be some (a command submitted, a lease released, a slot freed here) and at every
sweep (leases expire silently). At each sweep it also:

- claims back, under a new epoch, each conversation whose write failed with the connection, and
  folds it again from the journal (what that write did is unknown, WRK-6);
- takes up each conversation the journal says it owns, with work, that it does not drive at
  that epoch (a claim whose reply was lost, one whose taking up failed);
- forgets the conversations it holds that have nothing to drive: its memory holds its live
  work. A command for a forgotten one folds it again (`unheld_command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from .._core import initial_state
from .._errors import JournalError, StaleOwnerError
from .._journal import Command
from ._owner import DEFAULT_LIMIT, Owner
from ._writer import Conversation, has_run_to_drive

log: Final = logging.getLogger("interruptible.runtime")

# How many conversations a worker claims in one transaction (it claims again at once if it
# got that many).
_CLAIM_BATCH: Final = 32


class WorkerOwner(Owner):
    """The ownership of a runtime in the worker role (WRK-1, WRK-6)."""

    def __init__(self, *args: Any, limit: int = DEFAULT_LIMIT, **kwargs: Any) -> None:
        super().__init__(*args, role="worker", **kwargs)
        self.limit = limit  # live conversations at most (WRK-1)
        self._claim_soon = False
        self.claims = 0  # conversations claimed by `claim` (for tests and benchmarks)

    def start(self) -> None:
        """Start as an owner, and hear from the writer when a slot frees."""
        super().start()
        self.writer.on_idle = self._idled

    async def after_notes(self, work: bool, sweep: bool) -> None:
        """Claim when there may be work; at a sweep, first set right what is held here."""
        if not (work or self._claim_soon):
            return
        await asyncio.sleep(0)  # the commands just posted are written first
        self._claim_soon = False
        if sweep:
            self._foreign.clear()
            self.reclaim_failed()
            self.reconcile()
            self.evict_idle()
        self.claim()
        if self._claim_soon:
            self.listener.nudge()

    def unheld_command(self, command: Command) -> None:
        """A command for a conversation not driven here: this worker's own but forgotten
        (perhaps read since, as a view), another's, or nobody's yet (a claim takes it); the
        journal says which, once per command between sweeps."""
        if command.command_id in self._foreign:
            return
        if self._reload(command.conversation_id) is None:
            self._foreign.add(command.command_id)

    def claim(self) -> int:
        """Claim conversations with work from the shared journal, up to `limit` live ones held
        here (WRK-1), and drive them; how many it claimed."""
        journal: Any = self.journal
        claimed = journal.claim_work(
            self.owner_id, limit=self.limit, at=self.clock(), max_claims=_CLAIM_BATCH
        )
        for row in claimed:
            try:
                conv = self.adopt_claimed(
                    row.conversation_id,
                    row.epoch,
                    row.previous_owner,
                    row.reason,
                    active=row.active,
                )
            except JournalError:
                # Claimed, not adopted (the journal failed meanwhile): the next sweep's
                # `reconcile` finds it owned here with work, and adopts it.
                self.writer.conversations.pop(row.conversation_id, None)
                log.warning("could not take up claimed conversation %r", row.conversation_id)
                continue
            if not conv.inbox and conv.active is not False and not has_run_to_drive(conv.state):
                # Marked active, nothing to do (a migrated journal; a run that settled in a
                # write whose marker was lost): clear it, or it counts against the limit.
                with contextlib.suppress(StaleOwnerError):
                    journal.mark(conv.conversation_id, row.epoch, False)
                    conv.active = False
        self.claims += len(claimed)
        if len(claimed) == _CLAIM_BATCH:
            self._claim_soon = True  # there may be more: claim again at the next turn
        return len(claimed)

    def _idled(self, conv: Conversation) -> None:
        """The writer cleared a conversation's marker: a slot is free under the limit."""
        self._claim_soon = True
        if self.listener is not None:
            self.listener.nudge()

    def reclaim_failed(self) -> None:
        """Claim back, under a new epoch, each conversation held here whose write failed with
        the journal (a lost connection): what that write did is unknown, so the conversation is
        folded again from the journal, and its live effects are answered as lost (WRK-6)."""
        writer = self.writer
        for cid, conv in list(writer.conversations.items()):
            error = conv.fenced
            if conv.epoch is None or not isinstance(error, JournalError):
                continue
            fresh = Conversation(cid, initial_state(cid), 0)
            try:
                claimed = self.journal.claim(
                    cid, self.owner_id, conv.epoch, reason="write_failed", at=self.clock()
                )
            except StaleOwnerError:  # another owner has it now, or this one's reply was lost
                writer.conversations[cid] = fresh
                record = self.journal.owner(cid)
                if record is not None and record.owner_id == self.owner_id:
                    self.adopt_claimed(cid, record.epoch, None, "write_failed")
                else:
                    fresh.owner = record
                continue
            writer.conversations[cid] = fresh
            self.adopt_claimed(cid, claimed.epoch, self.owner_id, "write_failed")

    def reconcile(self) -> int:
        """Take up every conversation the journal says this worker owns, with work, that it
        does not drive at that epoch: a claim whose reply was lost with the connection, one
        whose taking up failed, one forgotten and then only read (WRK-1). How many."""
        writer = self.writer
        journal: Any = self.journal
        taken = 0
        for cid, epoch, active in journal.owned_with_work(self.owner_id):
            conv = writer.conversations.get(cid)
            if conv is not None and conv.epoch == epoch:
                continue  # driven here (or fenced, for `reclaim_failed`)
            if conv is not None and conv.epoch is not None:  # held at an older epoch
                writer.let_go(
                    conv,
                    StaleOwnerError(
                        f"conversation {cid!r} is at epoch {epoch} in the journal, held here at "
                        f"{conv.epoch}; it is folded again",
                        conversation_id=cid,
                        reason="stale_owner",
                    ),
                )
            writer.conversations.pop(cid, None)
            self.adopt_claimed(cid, epoch, None, "reconciled", active=active)
            taken += 1
        return taken

    def evict_idle(self) -> int:
        """Forget the conversations held here that have nothing to drive (no run to drive, no
        queued event, no waiter, no live effect): a worker's memory holds its live work, not
        every conversation it ever drove. It still owns them; a command for one folds it again
        from the journal (`poll_commands`, WRK-1). How many it forgot."""
        writer = self.writer
        effects = writer.effects
        gone = [
            cid
            for cid, conv in writer.conversations.items()
            if conv.active is False
            and not conv.inbox
            and not conv.waiters
            and conv.fenced is None
            and not has_run_to_drive(conv.state)
            and not effects.has_live(cid)
        ]
        for cid in gone:
            del writer.conversations[cid]
        return len(gone)

    def _reload(self, conversation_id: str) -> Conversation | None:
        """A conversation this worker owns in the journal but forgot (`evict_idle`), folded
        again from the journal; None when another owner has it."""
        record = self.journal.owner(conversation_id)
        if record is None or record.owner_id != self.owner_id:
            return None
        self.writer.conversations.pop(conversation_id, None)  # a view of it: folded anew
        return self.adopt_claimed(conversation_id, record.epoch, None, "reloaded", active=False)
