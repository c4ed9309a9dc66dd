"""`upgrade_check` and `interruptible upgrade-check`: what new definitions would do to the runs a
journal holds, before they are deployed (spec/upgrades.md, UPG-7).

Each conversation is folded as it was journaled (a run follows the definition it journaled,
UPG-2), and every run that has not ended is judged against the definitions given, as the runtime
would judge it when it meets them (UPG-3): `compatible`, `migrates` (through which migration),
`blocked` (with the first differing step), or `unversioned`. Reading only: nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from .._core import Coordinator, Mode, initial_state
from .._core._definitions import Migration, judge
from .._journal import Journal, JournalRecord
from .._shell import ERROR, OK, USAGE, CommandError

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
        state = initial_state()
        for record in records:
            state = coordinator.reduce(state, record.event).state
        run = state.active_run
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


# --- the command ---------------------------------------------------------------------------------


def add_parsers(subparsers: Any) -> None:
    """Register `upgrade-check` on an argparse subparsers object."""
    from ._commands import fold_options

    text = (
        "judge every run of the journal that has not ended against the given modes: "
        "compatible, migrates or blocked (exit 1 when any is blocked)"
    )
    parser = subparsers.add_parser("upgrade-check", help=text, description=text)
    fold_options(parser)
    migrations_option(parser)
    parser.set_defaults(func=run_upgrade_check, run=run_upgrade_check)


def run_upgrade_check(args: argparse.Namespace) -> int:
    """`interruptible upgrade-check`: one line per unended run, exit 1 if any is blocked."""
    from ._commands import _Reader, journal_label, known_modes, open_reading

    modes = known_modes(args.modes)
    migrations = load_migrations(args.migrations)
    journal = open_reading(args)
    label = journal_label(args)
    reader = _Reader(journal, label)
    try:
        report = check_conversations(
            ((cid, reader.read(cid)) for cid in reader.conversations()), modes, migrations
        )
    finally:
        journal.close()
    out = sys.stdout
    for run in report.runs:
        line = f"{run.conversation_id}  {run.run_id}  {run.status}  {run.verdict}"
        if run.verdict == "migrates":
            line += f" through {run.migration}"
        elif run.verdict == "blocked":
            where = f" at step {run.step_id!r}" if run.step_id else ""
            line += f"{where}: {run.detail} ({run.run_fingerprint} -> {run.current_fingerprint})"
        else:
            line += f": {run.detail}"
        print(line, file=out)
    for line in reader.lines:
        print(line, file=sys.stderr)
    counts = {v: sum(r.verdict == v for r in report.runs) for v in ("compatible", "migrates")}
    print(
        f"{label}: {len(report.runs)} unended runs: {counts['compatible']} compatible, "
        f"{counts['migrates']} migrate, {len(report.blocked)} blocked",
        file=out,
    )
    return OK if report.ok and not reader.lines else ERROR


def migrations_option(parser: argparse.ArgumentParser) -> None:
    """`--migrations MODULE:NAME`, for every command that registers definitions."""
    parser.add_argument(
        "--migrations",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="migrations the new version declares: a Migration or an iterable of them "
        "(repeatable; spec/upgrades.md)",
    )


def load_migrations(specs: list[str]) -> list[Migration]:
    """The migrations `--migrations MODULE:NAME` options name; a usage error for one that
    names none."""
    from ._commands import load_object

    migrations: list[Migration] = []
    for spec in specs:
        value = load_object("--migrations", spec)
        found = [value] if isinstance(value, Migration) else _migrations_in(value)
        if not found:
            raise CommandError(
                f"--migrations {spec}: it is a {type(value).__name__}, neither a Migration nor "
                "an iterable of Migrations",
                USAGE,
            )
        migrations.extend(found)
    return migrations


def _migrations_in(value: object) -> list[Migration]:
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        return []
    return items if items and all(isinstance(item, Migration) for item in items) else []
