"""Fixtures of the journal tests: a fresh journal of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from interruptible._journal import Journal, MemoryJournal, SQLiteJournal
from tests._postgres import POSTGRES

if TYPE_CHECKING:
    from interruptible._journal import PostgresJournal


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a SQLite journal file goes."""
    return tmp_path / "journal.db"


@pytest.fixture
def sqlite_journal(db_path: Path) -> Iterator[SQLiteJournal]:
    """A fresh SQLite journal, closed after the test."""
    journal = SQLiteJournal(db_path)
    yield journal
    journal.close()


@pytest.fixture
def memory_journal() -> Iterator[Journal]:
    """A fresh memory journal."""
    journal = MemoryJournal()
    yield journal
    journal.close()


@pytest.fixture
def postgres_journal() -> Iterator[PostgresJournal]:
    """A fresh PostgreSQL journal in a schema of its own, dropped after the test."""
    journal = POSTGRES.journal()
    yield journal
    journal.close()
    POSTGRES.drop_schema(journal.schema)
