"""`interruptible upgrade-check`: one line per unended run of a journal and its verdict against
the given definitions (spec/upgrades.md, UPG-7); the judging is the runtime's `upgrade_check`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._core._definitions import Migration
from .._runtime._upgrade_check import check_conversations
from ._shell import ERROR, OK, USAGE, CommandError


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
