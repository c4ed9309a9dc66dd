"""The PostgreSQL server the tests use: a database of their own, made on first use, dropped at the
end of the session, and a fresh schema (namespace) per journal under test.

The server is `INTERRUPTIBLE_TEST_POSTGRES` (a libpq connection string for a user that may
create databases), by default the local one (127.0.0.1:5432, user postgres). Where none answers,
a test that needs it is skipped with the reason, except under `CI=true`, where it fails: CI has
a server, and a suite that silently skipped the PostgreSQL journal would prove nothing about it.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from interruptible._journal import PostgresJournal

ADMIN_DSN = os.environ.get(
    "INTERRUPTIBLE_TEST_POSTGRES",
    "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3",
)


class TestDatabase:
    """One database for the session; each journal gets a schema of its own in it."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.name: str | None = None
        self.dsn: str | None = None
        self.problem: str | None = None

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.admin_dsn, autocommit=True)

    def require(self) -> str:
        """The session database's DSN; skip (fail under CI=true) when there is no server."""
        if self.dsn is None and self.problem is None:
            try:
                import psycopg
                from psycopg.conninfo import make_conninfo

                name = f"interruptible_test_{secrets.token_hex(6)}"
                with self._admin() as admin:
                    admin.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8'".encode())
                self.name = name
                self.dsn = make_conninfo(self.admin_dsn, dbname=name)
            except ImportError:
                self.problem = "psycopg is not installed (pip install -e '.[dev]')"
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                self.problem = f"no PostgreSQL server for the tests ({first})"
        if self.problem is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true requires PostgreSQL: {self.problem}", pytrace=False)
            pytest.skip(self.problem)
        assert self.dsn is not None
        return self.dsn

    def journal(self, schema: str | None = None, **options: Any) -> PostgresJournal:
        """A journal on the session database, in `schema` (default: a fresh one)."""
        from interruptible._journal import PostgresJournal

        return PostgresJournal(self.require(), schema=schema or self.new_schema(), **options)

    def new_schema(self) -> str:
        """A schema name no other test uses."""
        return f"journal_{secrets.token_hex(6)}"

    def drop_schema(self, schema: str) -> None:
        """Drop a test's schema (its journal closed)."""
        import psycopg

        with psycopg.connect(self.require(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())

    def drop(self) -> None:
        """Drop the session database, whatever connections are left on it."""
        if self.name is None:
            return
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'.encode())
        self.name = self.dsn = None


POSTGRES = TestDatabase(ADMIN_DSN)
