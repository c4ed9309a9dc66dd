"""The journal: an append-only, per-conversation event log, in memory or in SQLite, and replay."""

from __future__ import annotations

import os

from ._memory import MemoryJournal
from ._ownership import (
    DEFAULT_LEASE,
    HEARTBEATS_PER_LEASE,
    Command,
    CommandAnswer,
    OwnerRecord,
    abandonment,
    new_owner_id,
    pid_alive,
    this_host,
)
from ._protocol import AppendBatch, Journal, JournalRecord
from ._records import RecoveryNote
from ._replay import Parity, replay_conversation, replay_parity, restore
from ._sqlite import SQLiteJournal

__all__ = [
    "DEFAULT_LEASE",
    "HEARTBEATS_PER_LEASE",
    "AppendBatch",
    "Command",
    "CommandAnswer",
    "Journal",
    "JournalRecord",
    "MemoryJournal",
    "OwnerRecord",
    "Parity",
    "RecoveryNote",
    "SQLiteJournal",
    "abandonment",
    "new_owner_id",
    "open_journal",
    "pid_alive",
    "replay_conversation",
    "replay_parity",
    "restore",
    "this_host",
]

# The spellings that mean "no file": SQLite's own ":memory:" and the runtime's "memory".
_MEMORY_SPECS = frozenset({"memory", ":memory:"})


def open_journal(spec: str | os.PathLike[str] | Journal) -> Journal:
    """A journal from a spec: a journal as is, "memory" or ":memory:", or a SQLite file path."""
    if isinstance(spec, str | os.PathLike):
        if spec in _MEMORY_SPECS:
            return MemoryJournal()
        return SQLiteJournal(spec)
    if isinstance(spec, Journal):
        return spec
    raise TypeError(f"open_journal takes a path, 'memory', or a Journal, got {type(spec).__name__}")
