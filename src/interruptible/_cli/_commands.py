"""The subcommands that drive and read a journal's runs: `demo`, `resume`, `inspect`, `replay`.

`add_parsers(subparsers)` registers them on an argparse subparsers object; each sets
`func` (and `run`, the name the package's CLI table uses) to a function taking the parsed
namespace and returning the exit status. A user error is raised as `CommandError` (or the
journal's typed error) for `_cli.main` to say in one line (spec/cli.md). Everything heavy is
imported inside the functions, so `interruptible --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from ._shell import (
    DEFAULT_DB,
    INTERRUPTED,
    OUTPUT_CLOSED,
    USAGE,
    CommandError,
    command,
)

DEMO_DB: Final = DEFAULT_DB


def add_parsers(subparsers: Any) -> None:
    """Register `demo`, `resume`, `inspect` and `replay` on an argparse subparsers object."""
    for name, func, help_text, configure in (
        ("demo", demo, "run the demo pipeline live (Ctrl-C interrupts the run)", _demo_options),
        ("resume", resume, "resume an interrupted demo run in this process", _resume_options),
        (
            "inspect",
            inspect,
            "show conversations, runs, steps and a run's events",
            _inspect_options,
        ),
        ("replay", replay, "re-fold the journal and report replay parity", fold_options),
    ):
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        configure(parser)
        parser.set_defaults(func=func, run=func)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEMO_DB, help=f"the SQLite journal (default: ./{DEMO_DB})")


def _display_options(parser: argparse.ArgumentParser) -> None:
    _db_option(parser)
    parser.add_argument("--ask", action="store_true", help="answer the human gate yourself")
    parser.add_argument("--plain", action="store_true", help="plain lines instead of a live table")


def _demo_options(parser: argparse.ArgumentParser) -> None:
    _display_options(parser)
    parser.add_argument(
        "--new",
        action="store_true",
        help="start a new run even if one is interrupted (it is canceled: superseded)",
    )


def _resume_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to resume")
    _display_options(parser)


def fold_options(parser: argparse.ArgumentParser) -> None:
    """`--db` (or `--dsn` and `--schema`) and `--modes`, for every command that reads or drives
    an application's runs."""
    _db_option(parser)
    parser.add_argument(
        "--dsn",
        help="a PostgreSQL journal instead of --db (a libpq DSN; spec/workers.md)",
    )
    parser.add_argument(
        "--schema",
        default="interruptible",
        help="the PostgreSQL journal's schema, with --dsn (default: interruptible)",
    )
    parser.add_argument(
        "--modes",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="also fold runs of these modes: an importable Mode, or an iterable of Modes "
        "(repeatable; the demo's mode is always known)",
    )


def _inspect_options(parser: argparse.ArgumentParser) -> None:
    fold_options(parser)
    parser.add_argument(
        "--run", dest="run_id", metavar="RUN_ID", help="show this run's steps and events"
    )
    parser.add_argument(
        "--diagram",
        metavar="FILE",
        help="with --run: draw the step lifecycle with the statuses the run's steps passed "
        "through lit (.svg, .png, .pdf or .dot)",
    )
    parser.add_argument(
        "--timeline",
        metavar="FILE",
        help="with --run: draw the run's timeline, a bar per step attempt over time, with its "
        "interrupts, resumes, cancels and gate answers (.svg, .png or .pdf; needs matplotlib)",
    )


# --- demo and resume ----------------------------------------------------------------------------


class _Following:
    """What a live command knows of its run, for the line it says when it is cut short."""

    def __init__(self, db: str, run_id: str | None = None) -> None:
        self.db = db
        self.run_id = run_id

    def cut_short(self, why: str, status: int) -> CommandError:
        """The one line for Ctrl-C (`INTERRUPTED`) or a closed stdout (`OUTPUT_CLOSED`) that
        ended the command outside the run's own handling (CLI-5)."""
        if self.run_id is None:
            where = f"{command('inspect', db=self.db)} shows what the journal holds."
        elif status == INTERRUPTED:
            where = (
                f"the journal is consistent; resume with: "
                f"{command('resume', self.run_id, db=self.db)}"
            )
        else:
            where = (
                f"see where run {self.run_id} stands with: "
                f"{command('inspect', '--run', self.run_id, db=self.db)}"
            )
        return CommandError(f"{why}; {where}", status)


def _live(body: Any, args: argparse.Namespace, following: _Following) -> int:
    """Run a live command's coroutine; Ctrl-C or a closed stdout outside the run's own
    handling (while it starts or stops) is one line that says how to go on (CLI-5)."""
    import asyncio

    try:
        status: int = asyncio.run(body)
    except KeyboardInterrupt:
        raise following.cut_short(f"{args.command}: interrupted (Ctrl-C)", INTERRUPTED) from None
    except BrokenPipeError:
        raise following.cut_short(
            f"{args.command}: the output was closed (piped into head?)", OUTPUT_CLOSED
        ) from None
    return status


def check_journal(db: str, *, create: bool = False) -> None:
    """Refuse, reading only, a `--db` that is not a journal, before a command opens it to write:
    the runtime's open would switch another application's SQLite file to WAL before it found
    out (CLI-3). A missing file is a usage error unless the command creates it (`create`)."""
    from .._journal import SQLiteJournal

    path = Path(db)
    if path.is_dir():
        raise CommandError(f"{db} is a directory, not a journal; pass --db FILE.", USAGE)
    if not path.exists():
        if create:
            return
        raise CommandError(
            f"no journal at {db}; check the path, or start one with: {command('demo', db=db)}",
            USAGE,
        )
    if create and path.stat().st_size == 0:  # an empty file: the runtime makes it a journal
        return
    SQLiteJournal(db, readonly=True).close()  # JournalError: not a journal, too new, locked


@contextlib.asynccontextmanager
async def writing(runtime: Any, db: str) -> AsyncIterator[Any]:
    """`async with runtime`, with a journal `check_journal` found readable but that cannot be
    opened to write (a read-only file or directory) said as such (CLI-3)."""
    from .._errors import JournalError

    try:
        await runtime.start()
    except JournalError as exc:
        if exc.reason != "not_a_journal":
            raise
        raise CommandError(
            f"{db} is a journal this command can read but not write: check that you may write "
            "the file and its directory (SQLite keeps -wal and -shm files beside it); "
            f"{command('inspect', db=db)} reads it.",
        ) from None
    try:
        yield runtime
    finally:
        await runtime.close()


def demo(args: argparse.Namespace) -> int:
    """`interruptible demo`: start the demo pipeline and follow it live."""
    following = _Following(args.db)
    return _live(_demo(args, following), args, following)


async def _demo(args: argparse.Namespace, following: _Following) -> int:
    from .._lifecycle import RunStatus
    from .._runtime._demo import CONVERSATION, DEMO_MODE, demo_runtime
    from .._runtime._handle import RunHandle
    from ._demo import Display, closing_words, follow

    out = sys.stdout
    check_journal(args.db, create=True)
    async with writing(demo_runtime(args.db), args.db) as rt:
        handle = None
        state = rt.state(CONVERSATION) if CONVERSATION in rt.conversations() else None
        active = state.active_run if state is not None else None
        driver = rt.live_owner(CONVERSATION)
        if driver is not None:  # another process drives the demo: leave it alone (OWN-7)
            raise CommandError(_driven_elsewhere(args.db, active, driver))
        if active is not None and active.status is RunStatus.interrupted and not args.new:
            print(f"run {active.run_id} is interrupted in {args.db}.", file=out)
            print(f"resume with: {command('resume', active.run_id, db=args.db)}", file=out)
            print(f"or start over with: {command('demo', '--new', db=args.db)}", file=out)
            return USAGE
        if active is not None and active.status is RunStatus.running:
            print(
                f"continuing run {active.run_id}, left running by a process that stopped", file=out
            )
            handle = RunHandle(rt, CONVERSATION, active.run_id)
        if handle is None:
            handle = await rt.run(
                CONVERSATION, {"topic": "European capitals"}, mode=DEMO_MODE, supersede=args.new
            )
        following.run_id = handle.run_id
        print(f"journal: {Path(args.db).resolve()}  run: {handle.run_id}", file=out)
        with Display(out, plain=args.plain) as display:
            final = await follow(rt, handle, display, ask=args.ask, db=args.db)
    if display.closed:
        raise _output_closed(args, final)
    return closing_words(final, out, db=args.db)


def _output_closed(args: argparse.Namespace, final: Any) -> CommandError:
    """The line for a stdout closed while the run was followed: `follow` interrupted the run
    (nobody reads it), unless it had ended (CLI-5)."""
    from .._lifecycle import RunStatus

    run_id = final.run_id
    if final.status is RunStatus.interrupted:
        then = f"run {run_id} is interrupted; resume with: {command('resume', run_id, db=args.db)}"
    else:
        then = (
            f"run {run_id} is {final.status.value}; see it with: "
            f"{command('inspect', '--run', run_id, db=args.db)}"
        )
    return CommandError(
        f"{args.command}: the output was closed (piped into head?); {then}", OUTPUT_CLOSED
    )


def _driven_elsewhere(db: str, run: Any, driver: Any) -> str:
    """One line: which live process drives the run, and how to stop it from here."""
    if run is None:
        return (
            f"{db}: the demo's conversation is driven by process {driver.pid} on {driver.host}; "
            "wait for it to end, or use another --db."
        )
    return (
        f"{db}: run {run.run_id} is {run.status.value} in process {driver.pid} on {driver.host}; "
        f"interrupt it with: {command('interrupt', run.run_id, db=db)}"
    )


def resume(args: argparse.Namespace) -> int:
    """`interruptible resume RUN_ID`: resume an interrupted demo run and follow it live."""
    following = _Following(args.db, args.run_id)
    return _live(_resume(args), args, following)


DEMO_MODE_NAME: Final = "demo-brief"


def _mode_of(db: str, run_id: str) -> str | None:
    """The mode a run was requested with, read from the journal (read-only), if it is there."""
    from .._journal import SQLiteJournal
    from .._vocabulary import RunRequested

    with SQLiteJournal(db, readonly=True) as journal:
        for conversation_id in journal.conversations():
            for record in journal.read(conversation_id):
                event = record.event
                if type(event) is RunRequested and event.run_id == run_id:
                    return event.mode
    return None


async def _resume(args: argparse.Namespace) -> int:
    from .._errors import InterruptibleError
    from .._runtime._demo import demo_runtime
    from .._runtime._handle import RunHandle
    from ._demo import Display, closing_words, follow

    out = sys.stdout
    check_journal(args.db)
    mode = _mode_of(args.db, args.run_id)
    if mode is not None and mode != DEMO_MODE_NAME:
        raise CommandError(
            f"{args.db}: run {args.run_id} is a run of mode {mode!r}; `interruptible resume` "
            "drives the demo's runs only: resume it from your application "
            "(Runtime.resume_run), which has its modes and tools."
        )
    async with writing(demo_runtime(args.db), args.db) as rt:
        conversation_id = rt.find_run(args.run_id)
        if conversation_id is None:
            raise CommandError(
                f"no run {args.run_id!r} in {args.db}; {command('inspect', db=args.db)} lists "
                "them.",
                USAGE,
            )
        driver = rt.live_owner(conversation_id)
        if driver is not None:
            raise CommandError(
                _driven_elsewhere(args.db, rt.state(conversation_id).run(args.run_id), driver)
            )
        try:
            snapshot = await rt.resume_run(conversation_id, args.run_id)
        except InterruptibleError as exc:
            raise CommandError(f"{args.db}: {exc.message}") from None
        print(f"resumed run {args.run_id} ({snapshot.status.value})", file=out)
        handle = RunHandle(rt, conversation_id, args.run_id)
        with Display(out, plain=args.plain) as display:
            final = await follow(rt, handle, display, ask=args.ask, db=args.db)
    if display.closed:
        raise _output_closed(args, final)
    return closing_words(final, out, db=args.db)


# --- inspect and replay -------------------------------------------------------------------------


def journal_label(args: argparse.Namespace) -> str:
    """How messages name the journal of `args`: its file, or its PostgreSQL schema (the DSN is
    never printed: it may hold a password)."""
    if getattr(args, "dsn", None):
        return f"PostgreSQL schema {args.schema!r}"
    return str(args.db)


def open_reading(args: argparse.Namespace) -> Any:
    """The journal `args` names (`--db`, or `--dsn` and `--schema`), opened to read only."""
    if getattr(args, "dsn", None):
        from .._journal import PostgresJournal

        return PostgresJournal(args.dsn, schema=args.schema, readonly=True)
    return _open(args.db)


def _open(db: str) -> Any:
    """The journal at `db`, opened to read only: a reading command changes nothing (RT-21)."""
    from .._journal import SQLiteJournal

    if Path(db).is_dir():
        raise CommandError(f"{db} is a directory, not a journal; pass --db FILE.", USAGE)
    if not Path(db).exists():
        raise CommandError(f"no journal at {db}; pass --db PATH.", USAGE)
    return SQLiteJournal(db, readonly=True)


class _Reader:
    """A reading command's view of a journal: torn records are noted and reported, never
    repaired (RT-21); any other failure of the journal ends the command with its one line
    (the `JournalError` goes to `_cli.main`)."""

    def __init__(self, journal: Any, db: str) -> None:
        self.journal = journal
        self.db = db
        self.lines: list[str] = []
        self._notes: dict[str, Any] | None = None

    def conversations(self) -> list[str]:
        """The journal's conversations."""
        conversations: list[str] = self.journal.conversations()
        return conversations

    def read(self, conversation_id: str) -> list[Any]:
        """The conversation's whole records; a torn one ends them, and is noted."""
        from .._errors import JournalError

        records: list[Any] = []
        try:
            for record in self.journal.read(conversation_id):
                records.append(record)
        except JournalError as exc:
            if exc.reason != "torn_record":
                raise
            self.lines.append(self._line(conversation_id, len(records), exc))
        return records

    def _line(self, conversation_id: str, last_good: int, exc: Exception) -> str:
        from .._errors import JournalError

        if self._notes is None:  # what is torn, and how: one full check, once a tear is met
            try:
                self._notes = {note.conversation_id: note for note in self.journal.verify()}
            except JournalError:
                self._notes = {}  # the read's own error still says what is torn
        note = self._notes.get(conversation_id)
        what = f"record {note.first_bad} is torn ({note.problem})" if note else str(exc)
        return (
            f"{self.db}: conversation {conversation_id!r}: {what}; read up to record "
            f"{last_good}. Nothing was changed: the next runtime to open this journal moves the "
            "torn records to quarantine."
        )


def known_modes(specs: list[str]) -> list[Any]:
    """The demo's mode and the modes named by `--modes` (an application's mode of the demo's
    name wins)."""
    from .._core._modes import mode_registry
    from .._runtime._demo import DEMO_MODE

    loaded = [mode for spec in specs for mode in load_modes(spec)]
    try:
        mode_registry(loaded)  # every version given is kept (spec/upgrades.md)
    except ValueError as exc:
        raise CommandError(f"--modes {' '.join(specs)}: {exc}", USAGE) from None
    if any(mode.name == DEMO_MODE.name for mode in loaded):
        return loaded
    return [DEMO_MODE, *loaded]


def _coordinator(specs: list[str]) -> Any:
    """A coordinator that knows the demo's mode and the modes named by `--modes`."""
    from .._core import Coordinator

    return Coordinator(known_modes(specs))


def load_object(option: str, spec: str) -> Any:
    """The object `MODULE:NAME` names, for `option` (`--modes`, `--tools`, ...). The module is
    imported from the current directory too (as `python -m` would); importing it runs its
    top-level code. `CommandError` (a usage error, status 2, with the reason) when the module
    or the name is not there, whatever the module does (CLI-2)."""
    import importlib
    import os

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CommandError(
            f"{option} expects MODULE:NAME (e.g. myapp.pipelines:MODES), got {spec!r}", USAGE
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise CommandError(
            f"{option} {spec}: {module_name!r} has no {attribute!r}", USAGE
        ) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # an import that fails, or that exits, names nothing
        raise CommandError(
            f"{option} {spec}: importing {module_name!r} failed: {type(exc).__name__}: {exc}",
            USAGE,
        ) from None
    return value


def load_modes(spec: str) -> list[Any]:
    """The modes `MODULE:NAME` names: a `Mode`, an iterable of them, or a mapping whose values
    they are (`load_object`). `CommandError` (a usage error) for a spec that names none."""
    from collections.abc import Mapping

    from .._core import Mode

    value = load_object("--modes", spec)
    what = type(value).__name__
    try:
        if isinstance(value, Mode):
            modes = [value]
        else:
            modes = list(value.values() if isinstance(value, Mapping) else value)
    except Exception:
        modes = []
    if not modes or not all(isinstance(mode, Mode) for mode in modes):
        raise CommandError(
            f"--modes {spec}: it is a {what}, neither a Mode nor an iterable (or mapping) of Modes",
            USAGE,
        )
    return modes


def inspect(args: argparse.Namespace) -> int:
    """`interruptible inspect [--run RUN_ID]`: what the journal holds."""
    from .._core import initial_state

    for option, value in (("--diagram", args.diagram), ("--timeline", args.timeline)):
        if value is not None and args.run_id is None:
            raise CommandError(f"{option} draws one run: give it with --run RUN_ID", USAGE)
    coordinator = _coordinator(args.modes)
    journal = open_reading(args)
    label = journal_label(args)
    reader = _Reader(journal, label)
    out = sys.stdout
    try:
        found = False
        for conversation_id in reader.conversations():
            records = reader.read(conversation_id)
            state = initial_state()
            outcomes = []
            for record in records:
                outcome = coordinator.reduce(state, record.event)
                outcomes.append(outcome)
                state = outcome.state
            if args.run_id is None:
                _conversation_summary(conversation_id, records, state, out)
                _owner_line(journal, conversation_id, out)
                continue
            if args.run_id not in {getattr(r.event, "run_id", None) for r in records}:
                continue
            found = True
            if state.run(args.run_id) is None:  # older than the retained history (CLI-7)
                state = _keeping_every_run(coordinator, records)
            _run_detail(conversation_id, args.run_id, records, outcomes, state, out)
            for what in ("diagram", "timeline"):
                if getattr(args, what) is not None:
                    _draw(what, coordinator, records, args.run_id, getattr(args, what), out)
        for line in reader.lines:
            print(line, file=sys.stderr)
        if args.run_id is not None and not found:
            lists = "inspect --dsn DSN" if args.dsn else command("inspect", db=args.db)
            raise CommandError(f"no run {args.run_id!r} in {label}; {lists} lists them.", USAGE)
    finally:
        journal.close()
    return 1 if reader.lines else 0


def _draw(
    what: str, coordinator: Any, records: list[Any], run_id: str, target: str, out: Any
) -> None:
    """`inspect --run RUN_ID --diagram FILE` (CLI-11) or `--timeline FILE` (CLI-12): the
    picture `what` of the run, into FILE."""
    from statemachine.contrib.diagram.graphviz import GraphvizError

    from .._core import Coordinator
    from .._views._pictures import write_lit_diagram, write_timeline

    draw, needs = {
        "diagram": (write_lit_diagram, "pydot: pip install 'interruptible[diagrams]'"),
        "timeline": (write_timeline, "matplotlib: pip install 'interruptible[timeline]'"),
    }[what]
    keeping = Coordinator(
        coordinator.registered, coordinator.authorizer, history_limit=len(records)
    )
    try:
        written = draw(keeping, [r.event for r in records], run_id, Path(target))
    except ImportError:
        raise CommandError(f"{target}: drawing the {what} needs {needs}") from None
    except ValueError as exc:
        raise CommandError(str(exc), USAGE) from None
    except GraphvizError as exc:  # Graphviz missing or failing: its message says which
        raise CommandError(f"{target}: Graphviz could not draw the {what}: {exc}") from None
    print(f"{what}: {written}", file=out)


def _keeping_every_run(coordinator: Any, records: list[Any]) -> Any:
    """The conversation's state folded again with every ended run kept, not only the last
    `history_limit` (CLI-7): the status and steps of an old run come from its own events."""
    from .._core import Coordinator, initial_state

    keeping = Coordinator(
        coordinator.registered, coordinator.authorizer, history_limit=len(records)
    )
    state = initial_state()
    for record in records:
        state = keeping.reduce(state, record.event).state
    return state


def _conversation_summary(conversation_id: str, records: list[Any], state: Any, out: Any) -> None:
    print(f"conversation {conversation_id}: {len(records)} events", file=out)
    requested = [r.event for r in records if type(r.event).__name__ == "RunRequested"]
    for event in requested:
        run = state.run(event.run_id)
        if run is None:
            known = f"older than the retained history (inspect --run {event.run_id} shows it)"
            if event.run_id not in state.run_ids:
                known = f"mode {event.mode!r} unknown to this command (pass --modes MODULE:NAME)"
            print(f"  run {event.run_id}  {known}", file=out)
            continue
        steps = ", ".join(f"{s.step_id}={s.status.value}" for s in run.steps)
        reason = f" ({run.reason})" if run.reason else ""
        print(f"  run {run.run_id}  {run.status.value}{reason}  [{steps}]", file=out)


def _owner_line(journal: Any, conversation_id: str, out: Any) -> None:
    """Who drives the conversation: owner, epoch and lease (spec/ownership.md)."""
    import time

    from .._errors import JournalError
    from .._journal import abandonment, this_host

    try:
        record = journal.owner(conversation_id)
    except JournalError:  # a journal from before ownership, opened read-only
        record = None
    if record is None:
        print("  owner: none (never owned)", file=out)
        return
    why = abandonment(record, time.time(), this_host())
    if why is None:
        left = record.expires - time.time()
        lease = f"live, lease {left:.1f} s left"
    else:
        lease = {"released": "released", "lease_expired": "lease expired"}.get(why, "process gone")
    print(
        f"  owner: {record.owner_id} (process {record.pid} on {record.host}), "
        f"epoch {record.epoch}, {lease}",
        file=out,
    )


def _run_detail(
    conversation_id: str, run_id: str, records: list[Any], outcomes: list[Any], state: Any, out: Any
) -> None:
    from .._vocabulary import type_name

    run = state.run(run_id)
    print(f"run {run_id} in conversation {conversation_id}", file=out)
    if run is not None:
        print(f"  status {run.status.value}" + (f" ({run.reason})" if run.reason else ""), file=out)
        if run.fingerprint is not None:  # the definition it follows (spec/upgrades.md)
            version = run.definition.get("version") if isinstance(run.definition, dict) else None
            named = f" (version {version})" if version is not None else ""
            print(f"  definition {run.fingerprint}{named}", file=out)
        for step in run.steps:
            detail = ""
            if step.result is not None:
                detail = _short(step.result.output)
            elif step.failure is not None:
                detail = f"{step.failure.category.value}: {step.failure.message}"
            print(
                f"  step {step.step_id:<12} {step.definition.step_class.value:<10} "
                f"{step.status.value:<13} attempt {step.attempt}  {detail}",
                file=out,
            )
        if run.error is not None:
            print(f"  error {run.error.category.value}: {run.error.message}", file=out)
    print("  events:", file=out)
    start = None
    for record, outcome in zip(records, outcomes, strict=True):
        event = record.event
        if getattr(event, "run_id", None) != run_id:
            continue
        start = event.at if start is None else start
        where = getattr(event, "step_id", "") or ""
        attempt = getattr(event, "attempt", None)
        if attempt is not None:
            where += f"#{attempt}"
        disposition = outcome.disposition.value
        if outcome.reason is not None:
            disposition += f" ({outcome.reason.value})"
        elif outcome.error is not None:
            disposition += f" ({outcome.error.code})"
        extra = (
            getattr(event, "reason", None)
            or getattr(event, "message", None)
            or getattr(event, "migration", None)
            or ""
        )
        print(
            f"  {record.sequence:>5}  +{event.at - start:7.3f}s  {type_name(event):<22} "
            f"{where:<14} {disposition:<10} {extra}".rstrip(),
            file=out,
        )


def _short(value: Any, width: int = 50) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def replay(args: argparse.Namespace) -> int:
    """`interruptible replay`: fold the journal twice and check replay parity."""
    from .._core import Disposition
    from .._core import replay as fold
    from .._vocabulary import EmitAudit, StartEffect

    coordinator = _coordinator(args.modes)
    journal = open_reading(args)
    reader = _Reader(journal, journal_label(args))
    out = sys.stdout
    problems: list[str] = []
    totals: Counter[str] = Counter()
    try:
        for conversation_id in reader.conversations():
            events = [record.event for record in reader.read(conversation_id)]
            first = fold(coordinator, events)
            second = fold(coordinator, events)
            totals["conversations"] += 1
            totals["events"] += len(events)
            totals["directives"] += len(first.directives)
            if first.state != second.state or first.directives != second.directives:
                problems.append(
                    f"{conversation_id}: two folds differ (reduce is not deterministic)"
                )
            started: set[str] = set()
            for event, outcome in zip(events, first.outcomes, strict=True):
                effect_id = getattr(event, "effect_id", None)
                if effect_id is not None and effect_id not in started:
                    problems.append(
                        f"{conversation_id}: {type(event).__name__} for {effect_id}, which no "
                        "replayed start_effect asked for"
                    )
                if outcome.disposition is Disposition.rejected and not any(
                    isinstance(d, EmitAudit) for d in outcome.directives
                ):
                    problems.append(
                        f"{conversation_id}: a journaled {type(event).__name__} is refused on "
                        f"replay ({outcome.error})"
                    )
                if outcome.disposition is Disposition.ignored:
                    totals["ignored"] += 1
                for directive in outcome.directives:
                    if isinstance(directive, StartEffect):
                        started.add(directive.effect_id)
            for status, n in Counter(r.status.value for r in first.state.runs.values()).items():
                totals[f"runs {status}"] += n
    finally:
        journal.close()
    summary = ", ".join(f"{n} {what}" for what, n in totals.items())
    print(f"folded {journal_label(args)}: {summary}", file=out)
    problems += reader.lines
    if problems:
        for problem in problems[:20]:
            print(f"  {problem}", file=out)
        print(f"replay parity: FAIL ({len(problems)} problems)", file=out)
        return 1
    print(
        "replay parity: PASS (two folds agree; every journaled effect event answers a replayed "
        "start_effect; no journaled event is refused)",
        file=out,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line (`_cli.main`), under its guard; tests call it from here."""
    from ._main import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
