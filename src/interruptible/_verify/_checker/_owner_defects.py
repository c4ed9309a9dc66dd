"""Seeded defects of the ownership protocol, which the checker and the race machine must catch.

A property that no broken protocol can violate proves nothing (VER-22). Each defect breaks one
promise of the ownership rules (OWN-3, OWN-4, OWN-6) the way a plausible bug would; the model
checker runs the ownership world (`_owners.py`) with it, and the race machine of
`tests/stateful/` swaps the same bug into the real runtime's classes.

* `unfenced`: a journal that stamps each batch with the conversation's current epoch instead of
  comparing the writer's, so a stale owner's append goes through (OWN-3).
* `eager_takeover`: a takeover that does not wait for the owner to be abandoned (OWN-4).
* `split_answer`: a command's answer written in a write of its own, after the events it caused,
  instead of in the same transaction: an owner that stops between the two leaves the command
  pending with its effect journaled, and the next owner applies it again (OWN-6).

Three more are the runtime's behaviour before the model checker found them (spec/verification.md,
Findings), kept so that both tools go on catching them:

* `kept_posted`: a takeover skips the pending commands this process had posted before it lost
  the conversation (they died with its inbox), so they are never applied (OWN-6);
* `unnoticed_takeover`: an owner that was taken over while paused, and has nothing to write,
  never learns it (only a refused write told it), so when the new owner dies nobody takes the
  conversation back (OWN-4);
* `idle_by_epoch`: the sweep remembers an abandoned, idle conversation by its epoch alone, so
  work its owner journals after waking from a pause (then dies) is never adopted (OWN-8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from ..._journal import AppendBatch, MemoryJournal


class UnfencedJournal(MemoryJournal):
    """Defect `unfenced`: each batch is written at the conversation's current epoch, whatever
    epoch its writer holds (the fence's comparison lost in a rewrite)."""

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        """Append, stamping every batch with its conversation's current owner epoch."""
        stamped = []
        for batch in batches:
            record = self.owner(batch.conversation_id)
            stamped.append(replace(batch, epoch=None if record is None else record.epoch))
        return super().append_many(stamped)


@dataclass(frozen=True, slots=True)
class OwnerDefect:
    """Which part of the protocol is broken (none, for the real one)."""

    name: str = ""
    journal: type[MemoryJournal] = MemoryJournal
    eager_takeover: bool = False  # take over without asking whether the owner is abandoned
    split_answer: bool = False  # answer a command in a write after the one of its events
    kept_posted: bool = False  # a takeover skips commands this process posted before
    unnoticed_takeover: bool = False  # the heartbeat does not let go of what others took
    idle_by_epoch: bool = False  # the sweep's idle cache ignores writes at the same epoch


NO_DEFECT: Final = OwnerDefect()

OWNER_DEFECTS: Final = {
    "unfenced": OwnerDefect("unfenced", journal=UnfencedJournal),
    "eager_takeover": OwnerDefect("eager_takeover", eager_takeover=True),
    "split_answer": OwnerDefect("split_answer", split_answer=True),
    "kept_posted": OwnerDefect("kept_posted", kept_posted=True),
    "unnoticed_takeover": OwnerDefect("unnoticed_takeover", unnoticed_takeover=True),
    "idle_by_epoch": OwnerDefect("idle_by_epoch", idle_by_epoch=True),
}
# The property each defect breaks: the one the checker must report.
OWNER_BROKEN_PROPERTY: Final = {
    "unfenced": "VER-17",
    "eager_takeover": "VER-19",
    "split_answer": "VER-18",
    "kept_posted": "VER-20",
    "unnoticed_takeover": "VER-20",
    "idle_by_epoch": "VER-20",
}
