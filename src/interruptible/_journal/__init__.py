"""The journal: an append-only, per-conversation event log, in memory, SQLite or PostgreSQL, and
replay. `PostgresJournal` is imported on first use: psycopg is an optional dependency, and
importing interruptible never imports it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from ._postgres import PostgresJournal

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
    "PostgresJournal",
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
# The URI schemes libpq accepts: such a spec is a PostgreSQL database, not a file name.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def __getattr__(name: str) -> object:
    if name == "PostgresJournal":
        from ._postgres import PostgresJournal

        return PostgresJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_journal(spec: str | os.PathLike[str] | Journal) -> Journal:
    """A journal from a spec: a journal as is, "memory" or ":memory:", a PostgreSQL URI
    ("postgresql://..."), or a SQLite file path."""
    if isinstance(spec, str | os.PathLike):
        if spec in _MEMORY_SPECS:
            return MemoryJournal()
        if isinstance(spec, str) and spec.startswith(_POSTGRES_SCHEMES):
            from ._postgres import PostgresJournal

            return PostgresJournal(spec)
        return SQLiteJournal(spec)
    if isinstance(spec, Journal):
        return spec
    raise TypeError(f"open_journal takes a path, 'memory', or a Journal, got {type(spec).__name__}")
