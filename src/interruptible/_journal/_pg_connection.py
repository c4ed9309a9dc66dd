"""The PostgreSQL journal's connection: opening it, its session settings, and the one lock and
reconnection every call goes through (the theory of operation is `_postgres.py`'s)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self

try:
    import psycopg as psycopg  # re-exported: the journal's other modules import it from here
    from psycopg import errors as pg_errors
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "PostgresJournal needs psycopg 3: pip install 'interruptible[postgres]'"
    ) from exc

from .._errors import JournalError
from ._check import closed
from ._pg_listen import KEEPALIVES
from ._pg_queries import statements
from ._pg_schema import DEFAULT_SCHEMA, check_readable, prepare
from ._records import RecoveryNote

logger = logging.getLogger("interruptible.journal")

# Errors that a write refused by the fences raises: the trigger's and the primary key's
# integrity errors, and what two stale writers racing on the same rows may get instead.
_REFUSED: Final = (
    pg_errors.IntegrityError,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
)


# How long a connection attempt may take before the call fails (seconds): long enough for a
# server on another machine, short enough that a dead one is reported, not waited on.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

# A connection whose peer is gone is noticed within about half a minute (`KEEPALIVES`), a
# transaction its client abandoned ends within `_IDLE_IN_TRANSACTION`, and no statement waits
# longer than `_LOCK_TIMEOUT` for a row lock (it fails instead: the caller's typed error).
_IDLE_IN_TRANSACTION: Final = "30s"
_LOCK_TIMEOUT: Final = "10s"

SynchronousCommit = Literal["on", "off", "local", "remote_write", "remote_apply"]
_SYNCHRONOUS_COMMIT: Final = frozenset({"on", "off", "local", "remote_write", "remote_apply"})


def _storable(text: str) -> bool:
    """Whether PostgreSQL text can hold `text` (no NUL, no unpaired surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(what: str, value: str, reason: str) -> JournalError:
    return JournalError(
        f"{what} {value!r} cannot be stored in PostgreSQL text (it holds a NUL character or an "
        f"unpaired surrogate); use another {what}.",
        reason=reason,
    )


class PgConnection:
    """One connection per journal, in autocommit mode, shared by threads under one lock; a lost
    one is dropped and the next call connects again."""

    def __init__(
        self,
        dsn: str = "",
        *,
        schema: str = DEFAULT_SCHEMA,
        synchronous_commit: SynchronousCommit = "on",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        readonly: bool = False,
        application_name: str = "interruptible",
    ) -> None:
        if synchronous_commit not in _SYNCHRONOUS_COMMIT:
            raise ValueError(
                f"synchronous_commit must be one of {sorted(_SYNCHRONOUS_COMMIT)}, "
                f"got {synchronous_commit!r}"
            )
        if type(schema) is not str or not schema or not _storable(schema):
            raise ValueError(f"schema must be a non-empty PostgreSQL name, got {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.synchronous_commit: SynchronousCommit = synchronous_commit
        self.connect_timeout = connect_timeout
        # Read only: nothing is created or migrated on open, and the session refuses writes
        # (a reading command never writes, RT-21).
        self.readonly = readonly
        # What `pg_stat_activity` shows for its connections (its listener's: + " listener").
        self.application_name = application_name
        # Recovery notes of `recover` (nothing is checked on open: PGJ-7).
        self.recovered: list[RecoveryNote] = []
        self._sql = statements(schema)
        self._lock = threading.Lock()
        self._closed = False
        conn = self._connect()
        try:
            encoding = conn.info.parameter_status("server_encoding")
            if encoding != "UTF8":
                raise JournalError(
                    f"the database's encoding is {encoding!r}, and the journal needs UTF8 (its "
                    "text is Unicode); create the database with ENCODING 'UTF8'.",
                    reason="not_a_journal",
                )
            if readonly:
                check_readable(conn, schema)
            else:
                prepare(conn, schema)
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(
                f"PostgreSQL failed while preparing schema {schema!r}: {exc}; check that the "
                "user may create it (or that it holds an interruptible journal), then retry.",
                reason="postgres_error",
            ) from None
        except BaseException:
            conn.close()
            raise
        self._conn: psycopg.Connection[Any] | None = conn

    # --- connection ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name=self.application_name,
                **KEEPALIVES,
            )
        except psycopg.Error as exc:
            raise JournalError(
                f"cannot connect to PostgreSQL ({' '.join(str(exc).split())}); check the DSN and "
                "that the server is running, then retry.",
                reason="connection_failed",
            ) from None
        try:
            # READ COMMITTED whatever the server's default: the schema's fences are written for
            # it (stricter levels stay safe, but fail to serialize where it waits).
            conn.execute(
                (
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; "
                    f"SET synchronous_commit TO {self.synchronous_commit}; "
                    # A transaction left open by a lost client gives its locks back within
                    # these, instead of when TCP gives up (hours): a worker's calls run on its
                    # event loop, and one blocked on such a lock would stall them all.
                    f"SET idle_in_transaction_session_timeout TO '{_IDLE_IN_TRANSACTION}'; "
                    f"SET lock_timeout TO '{_LOCK_TIMEOUT}'"
                    + ("; SET default_transaction_read_only TO on" if self.readonly else "")
                ).encode()
            )
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(
                f"PostgreSQL refused the journal's session settings: {exc}",
                reason="postgres_error",
            ) from None
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise closed("PostgresJournal")

    def _live(self) -> psycopg.Connection[Any]:
        """The open connection, connecting again if the last one was lost (call under the lock)."""
        if self._closed:
            raise closed("PostgresJournal")
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _failed(
        self, conn: psycopg.Connection[Any], exc: psycopg.Error, doing: str, *, write: bool
    ) -> JournalError:
        """The error for a failed call; a lost connection is dropped (the next call reconnects)."""
        if conn.broken or conn.closed:
            conn.close()
            if self._conn is conn:
                self._conn = None
            outcome = (
                " If it was lost during the commit, the write may have been made: read the "
                "conversation's last sequence before writing again."
                if write
                else ""
            )
            return JournalError(
                f"the connection to PostgreSQL was lost while {doing} "
                f"({' '.join(str(exc).split())}); the next call connects again.{outcome}",
                reason="connection_lost",
            )
        return JournalError(
            f"PostgreSQL failed while {doing}: {' '.join(str(exc).split())}; nothing was written. "
            "Check "
            "the server and the journal's schema, then retry.",
            reason="postgres_error",
        )

    def _query(self, name: str, params: Sequence[Any], doing: str = "reading") -> list[Any]:
        with self._lock:
            conn = self._live()
            try:
                return conn.execute(self._sql[name], params).fetchall()
            except psycopg.Error as exc:
                raise self._failed(conn, exc, doing, write=False) from None

    def _execute(self, name: str, params: Sequence[Any], doing: str) -> None:
        with self._lock:
            conn = self._live()
            try:
                conn.execute(self._sql[name], params)
            except psycopg.Error as exc:
                raise self._failed(conn, exc, doing, write=True) from None

    def _where(self) -> str:
        return f"PostgreSQL schema {self.schema!r}"

    # --- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; later calls raise `JournalError`. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
