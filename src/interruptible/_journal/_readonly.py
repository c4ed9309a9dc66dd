"""Opening a SQLite journal to read only (JRN-17): a connection that leaves the file as it was.

Theory of operation
-------------------
A command that reads (`inspect`, `replay`) must not change the journal it reads: no switch to
WAL, no schema written into an empty or new file, no tail recovery, and no side file left
behind. SQLite's own read-only mode (`mode=ro`) alone does not give the last: on a WAL file
whose log is absent (a journal closed cleanly), a read-only connection creates the `-wal` and
`-shm` files and, being read-only, can never remove them. So the connection is chosen by what
is on disk:

- a `-wal` (or rollback `-journal`) file exists: a writer is live, or one was killed. The
  connection is `mode=ro`: it reads the log as it is, never checkpoints it into the file and
  never removes it (the next runtime that opens the journal does both, and recovers it);
- no log exists: every record is in the file itself. The connection is `mode=rw` with
  `PRAGMA query_only`, so no statement can write; the log and index SQLite makes while the file
  is open are empty, and closing the last connection removes them as it found them (absent).
  (A writer that opens the file meanwhile makes its own changes; the reader still makes none.)

- no log exists, and the directory cannot be written (a read-only directory or file system):
  `mode=rw` cannot make the log and index files a WAL file needs, so the connection is
  `mode=ro&immutable=1`: nobody can be writing the file there either (a writer needs those
  files too), so SQLite may read it without locking and without side files (spec/cli.md,
  CLI-3).

Neither URI mode creates a missing file, and the schema is only checked (JRN-7), never made.
A reader waits for a lock only while another connection holds the file exclusively, so it
waits a few seconds (`READONLY_BUSY_TIMEOUT`), not a writer's 30, then says the file is locked.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final

from .._errors import JournalError
from ._schema import check_readable

# Seconds a reader waits for another connection's exclusive lock before it says so: longer
# than any commit holds one, short enough that a person at the command line is answered.
READONLY_BUSY_TIMEOUT: Final = 3.0

# The side files that mean a writer is live, or was killed with work not yet in the file.
_LOGS: Final = ("-wal", "-journal")


def connect_readonly(path: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection that reads the journal at `path` and cannot change it (see above)."""
    if not os.path.isfile(path):
        raise JournalError(
            f"no journal at {path!r}: there is no such file (reading never creates one); "
            "check the path.",
            reason="journal_not_found",
        )
    logged = any(os.path.exists(path + suffix) for suffix in _LOGS)
    conn = _connect(path, "?mode=ro" if logged else "?mode=rw", busy_timeout)
    try:
        try:
            if not logged:
                conn.execute("PRAGMA query_only=1")
            check_readable(conn, path)
        except sqlite3.OperationalError as exc:
            if logged or getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_CANTOPEN:
                raise
            # No log, and none can be made beside the file: a directory nobody writes.
            conn.close()
            conn = _connect(path, "?mode=ro&immutable=1", busy_timeout)
            check_readable(conn, path)
    except sqlite3.OperationalError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise JournalError(
                f"{path!r} is locked by another connection (waited {busy_timeout:g} s); "
                "nothing was read. Try again once the process holding it is done.",
                reason="journal_locked",
            ) from None
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_CANTOPEN:
            raise JournalError(
                f"{path!r} cannot be opened to read: {exc}; check that you may read the file "
                "and its directory.",
                reason="sqlite_error",
            ) from None
        raise _not_a_journal(path, exc) from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _not_a_journal(path, exc) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(path: str, query: str, busy_timeout: float) -> sqlite3.Connection:
    uri = Path(path).absolute().as_uri() + query
    try:
        return sqlite3.connect(
            uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise JournalError(
            f"{path!r} cannot be opened to read: {exc}; check the file and its permissions.",
            reason="sqlite_error",
        ) from None


def _not_a_journal(path: str, exc: sqlite3.Error) -> JournalError:
    return JournalError(
        f"{path!r} cannot be read as a journal: {exc}; point at a file that interruptible created.",
        reason="not_a_journal",
    )
