"""Fixtures of the journal tests: a fresh journal of either kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interruptible._journal import Journal, MemoryJournal, SQLiteJournal


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
