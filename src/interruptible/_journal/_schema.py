"""The SQLite journal's schema, its version, and the check made when a file is opened.

Theory of operation
-------------------
A journal file holds three tables. `events` is the log: one row per event, keyed by
(conversation_id, sequence) so that a second writer's duplicate sequence is a constraint
violation, never a fork (JRN-3). `meta` holds the schema version, written once when the file is
created. `quarantine` receives torn records moved out of `events` by recovery (JRN-9).

Append-only is enforced by the database, not only by this code (JRN-11): triggers abort every
UPDATE of `events` and `quarantine`, and every DELETE from them, except a DELETE of an `events`
row that recovery has already copied, byte for byte, into `quarantine`.

Version 2 adds ownership (spec/ownership.md): `leases` (one row per owner process, its expiry
renewed by heartbeat), `owners` (per conversation, the append-only history of its owners by
epoch), `commands` and `command_answers` (requests from processes that do not own a
conversation, and the owner's answers), and an `epoch` column on `events`: the trigger
`events_fenced_by_owner` refuses a row whose epoch is not its conversation's current owner epoch
(OWN-3), in the same statement as the write. A version 1 file is migrated forward when a writer
opens it: its rows keep a NULL epoch, which is the epoch of a conversation never owned.

`prepare` runs inside `BEGIN IMMEDIATE`, so two processes opening a new file at once cannot both
create it; a file written by a newer schema is refused before anything is read or written (JRN-7).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from .._errors import JournalError

# Version 1 is this layout. A future layout bumps it and migrates older files forward in
# `prepare`; an older interruptible refuses a newer file rather than misread it.
SCHEMA_VERSION: Final = 2

_TABLES_V1: Final = frozenset({"meta", "events", "quarantine"})
_TABLES: Final = _TABLES_V1 | {"leases", "owners", "commands", "command_answers"}

# A row goes in only right after its conversation's last one (JRN-1, JRN-3): the row's sequence
# - 1 must be the conversation's largest sequence (one seek in the primary key, which also sees
# the rows an INSERT wrote before this one). "Is the last one", not "exists": in a history that
# was damaged (a gap deeper than the tail recovery checks), a stale writer must not fill the gap.
# This makes the `expected_last` check a constraint checked by SQLite row by row, whoever writes:
# an append is a plain INSERT, and a stale one fails as a whole (RAISE(ABORT) undoes the
# statement). Files created before the trigger existed get it when opened (`prepare`); it refuses
# only what the older conditional insert never wrote, so the layout and its version are unchanged.
FOLLOW_LAST: Final = """
CREATE TRIGGER IF NOT EXISTS events_follow_last BEFORE INSERT ON events
WHEN NEW.sequence - 1 IS NOT (
    SELECT coalesce(max(sequence), 0) FROM events WHERE conversation_id = NEW.conversation_id
)
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: a record must follow its conversation''s last');
END
"""
# An earlier form of it, checking only that the predecessor exists; replaced where found.
_FORMER_TRIGGERS: Final = ("events_follow_predecessor",)

# A row goes in only under its conversation's current owner epoch (OWN-3): the largest epoch in
# `owners`, or NULL for a conversation that has never had an owner (`IS NOT` compares NULLs as
# values). One seek in `owners`' primary key per row.
FENCED_BY_OWNER: Final = """
CREATE TRIGGER IF NOT EXISTS events_fenced_by_owner BEFORE INSERT ON events
WHEN NEW.epoch IS NOT (
    SELECT max(epoch) FROM owners WHERE conversation_id = NEW.conversation_id
)
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: a stale owner''s write (epoch)');
END
"""

# Version 2's additions, also run to migrate a version 1 file forward.
OWNERSHIP_DDL: Final = (
    """
CREATE TABLE leases (
    owner_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID
""",
    """
CREATE TABLE owners (
    conversation_id TEXT NOT NULL,
    epoch INTEGER NOT NULL CHECK (epoch >= 1),
    owner_id TEXT NOT NULL,
    previous_owner TEXT,
    reason TEXT NOT NULL,
    taken_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
) WITHOUT ROWID
""",
    """
CREATE TRIGGER owners_follow_last BEFORE INSERT ON owners
WHEN NEW.epoch - 1 IS NOT (
    SELECT coalesce(max(epoch), 0) FROM owners WHERE conversation_id = NEW.conversation_id
)
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: an owner must follow the last epoch');
END
""",
    """
CREATE TRIGGER owners_append_only_update BEFORE UPDATE ON owners
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: owners are append-only');
END
""",
    """
CREATE TRIGGER owners_append_only_delete BEFORE DELETE ON owners
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: owners are append-only');
END
""",
    """
CREATE TABLE commands (
    command_id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    submitted_at REAL NOT NULL
)
""",
    """
CREATE TABLE command_answers (
    command_id INTEGER PRIMARY KEY,
    epoch INTEGER,
    body TEXT NOT NULL,
    answered_at REAL NOT NULL
)
""",
    FENCED_BY_OWNER,
)

# One statement per item: `executescript` would commit the transaction `prepare` holds.
DDL: Final = (
    """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID
""",
    """
CREATE TABLE events (
    conversation_id TEXT NOT NULL,
    sequence INTEGER NOT NULL CHECK (sequence >= 1),
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    crc INTEGER NOT NULL,
    epoch INTEGER,
    PRIMARY KEY (conversation_id, sequence)
) WITHOUT ROWID
""",
    """
CREATE TABLE quarantine (
    conversation_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    type TEXT,
    body,
    crc INTEGER,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
)
""",
    """
CREATE INDEX quarantine_by_record ON quarantine (conversation_id, sequence)
""",
    FOLLOW_LAST,
    """
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: events are append-only');
END
""",
    """
CREATE TRIGGER events_delete_only_quarantined BEFORE DELETE ON events
WHEN NOT EXISTS (
    SELECT 1 FROM quarantine AS q
    WHERE q.conversation_id = OLD.conversation_id AND q.sequence = OLD.sequence
      AND q.body IS OLD.body AND q.crc IS OLD.crc
)
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: only quarantined records may leave events');
END
""",
    """
CREATE TRIGGER quarantine_append_only_update BEFORE UPDATE ON quarantine
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: quarantine is append-only');
END
""",
    """
CREATE TRIGGER quarantine_append_only_delete BEFORE DELETE ON quarantine
BEGIN
    SELECT RAISE(ABORT, 'interruptible journal: quarantine is append-only');
END
""",
    *OWNERSHIP_DDL,
)


def _not_a_journal(path: str, why: str) -> JournalError:
    return JournalError(
        f"{path!r} is not an interruptible journal ({why}); point the journal at a new file or "
        "at one that interruptible created.",
        reason="not_a_journal",
    )


def prepare(conn: sqlite3.Connection, path: str) -> None:
    """Create the schema in an empty file, or check the version of an existing one (JRN-7)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            for statement in DDL:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        else:
            version = _check_version(conn, path, tables)
            if version == 1:
                _migrate_1_to_2(conn)
            for former in _FORMER_TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {former}")
            conn.execute(FOLLOW_LAST)
            conn.execute(FENCED_BY_OWNER)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Add ownership to a version 1 file; its rows keep a NULL epoch (never owned)."""
    conn.execute("ALTER TABLE events ADD COLUMN epoch INTEGER")
    for statement in OWNERSHIP_DDL:
        conn.execute(statement)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _check_version(conn: sqlite3.Connection, path: str, tables: set[str]) -> int:
    if "meta" not in tables:
        raise _not_a_journal(path, f"it has tables {sorted(tables)} but no 'meta'")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise _not_a_journal(path, "its meta table has no schema_version")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise _not_a_journal(path, f"its schema_version is {row[0]!r}") from None
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{path!r} has journal schema version {version}, but this interruptible reads "
            f"versions up to {SCHEMA_VERSION}; upgrade interruptible to open it. Nothing was "
            "changed.",
            reason="schema_too_new",
        )
    if version < 1:
        raise _not_a_journal(path, f"its schema_version is {version}")
    missing = (_TABLES_V1 if version == 1 else _TABLES) - tables
    if missing:
        raise _not_a_journal(path, f"tables {sorted(missing)} are missing")
    return version


def check_readable(conn: sqlite3.Connection, path: str) -> None:
    """Check, reading only, that the file holds a journal of a version this code reads (JRN-7,
    JRN-17); an empty file gets no schema: it is not a journal yet."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        raise _not_a_journal(path, "it is empty: no journal was ever written to it")
    _check_version(conn, path, tables)
