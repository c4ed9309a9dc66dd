"""`upgrade_check`: what new definitions would do to the runs a journal holds, before they are
deployed (spec/upgrades.md, UPG-7); `interruptible upgrade-check` is its command
(`_cli/_upgrade_check.py`).

Each conversation is folded as it was journaled (a run follows the definition it journaled,
UPG-2), and every run that has not ended is judged against the definitions given, as the runtime
would judge it when it meets them (UPG-3): `compatible`, `migrates` (through which migration),
`blocked` (with the first differing step), or `unversioned`. Reading only: nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .._core import Coordinator, Mode, replay
from .._core._definitions import Migration, judge
from .._journal import Journal, JournalRecord

# A run whose own definition is registered is compatible: it finishes on it (UPG-4).
_SHOWN: Final = {"current": "compatible"}
_DETAILS: Final = {
    "current": "its own definition is registered",
    "compatible": "the newest definition plans it exactly",
    "unversioned": "journaled without a definition: it goes on with the registered mode",
}


@dataclass(frozen=True, slots=True)
class RunCheck:
    """One run that has not ended, judged against the new definitions (UPG-7)."""

    conversation_id: str
    run_id: str
    status: str
    verdict: str  # compatible, migrates, blocked, unversioned
    run_fingerprint: str | None
    current_fingerprint: str | None
    step_id: str | None = None
    detail: str = ""
    migration: str | None = None


@dataclass(frozen=True, slots=True)
class UpgradeReport:
    """Every run of a journal that has not ended, and its verdict."""

    runs: tuple[RunCheck, ...]

    @property
    def blocked(self) -> tuple[RunCheck, ...]:
        """The runs the new definitions would block."""
        return tuple(run for run in self.runs if run.verdict == "blocked")

    @property
    def ok(self) -> bool:
        """Whether no run would be blocked."""
        return not self.blocked


def check_conversations(
    conversations: Iterable[tuple[str, Iterable[JournalRecord]]],
    modes: Iterable[Mode],
    migrations: Iterable[Migration] = (),
) -> UpgradeReport:
    """Judge every unended run of these conversations (their journaled records) (UPG-7)."""
    registered = list(modes)
    coordinator = Coordinator(registered, history_limit=1)
    known = tuple(migrations)
    found: list[RunCheck] = []
    for conversation_id, records in conversations:
        run = replay(coordinator, (record.event for record in records)).state.active_run
        if run is None:
            continue
        verdict = judge(run, coordinator.versions, coordinator.current, known)
        detail = _DETAILS.get(verdict.kind, verdict.detail)
        found.append(
            RunCheck(
                conversation_id,
                run.run_id,
                run.status.value,
                _SHOWN.get(verdict.kind, verdict.kind),
                verdict.run_fingerprint,
                verdict.current_fingerprint,
                verdict.step_id,
                detail,
                None if verdict.migration is None else verdict.migration.name,
            )
        )
    return UpgradeReport(tuple(found))


def upgrade_check(
    journal: Journal | str,
    modes: Iterable[Mode],
    migrations: Iterable[Migration] = (),
) -> UpgradeReport:
    """Judge every unended run of `journal` (a journal, or a SQLite file opened read-only)
    against `modes` and `migrations`, as a runtime registering them would (UPG-7)."""
    if isinstance(journal, str):
        from .._journal import SQLiteJournal

        opened: Journal = SQLiteJournal(journal, readonly=True)
    else:
        opened = journal
    try:
        return check_conversations(
            ((cid, opened.read(cid)) for cid in opened.conversations()), modes, migrations
        )
    finally:
        if opened is not journal:
            opened.close()
