"""The pytest plugin (entry point `pytest11: interruptible`): fixtures for the conformance kit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from .._core import Coordinator, Mode
from .._journal import MemoryJournal
from .._verify._driver import CoreDriver
from .._views._traces import SCENARIOS, Trace, record


@pytest.fixture
def core_driver() -> Callable[..., CoreDriver]:
    """A factory of `CoreDriver`s: `core_driver(modes_or_coordinator, conversation_id="c1")`."""

    def make(
        modes: Coordinator | Iterable[Mode], conversation_id: str = "c1", principal: str = "alice"
    ) -> CoreDriver:
        return CoreDriver(modes, conversation_id=conversation_id, principal=principal)

    return make


@pytest.fixture
def golden_traces() -> list[Trace]:
    """Every golden trace, recorded fresh from the scenarios (what spec/traces/ holds)."""
    return [record(name) for name in SCENARIOS]


@pytest.fixture
def memory_journal() -> Iterator[MemoryJournal]:
    """An empty in-memory journal, closed after the test."""
    journal = MemoryJournal()
    yield journal
    journal.close()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """A path for a SQLite journal file in the test's temporary directory."""
    return tmp_path / "journal.db"
