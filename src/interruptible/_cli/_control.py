"""The commands that act on a run from any terminal: `interrupt`, `cancel`, `answer`.

Each opens a runtime on the journal that takes nothing over by itself (`adopt=False`,
spec/ownership.md OWN-8), finds the run, and makes the one call. Where another live process
drives the run (the demo in another terminal), the call is delivered to it and answered from
there (OWN-6); where nobody does, this process takes the conversation over just long enough to
apply the request, which goes before the answers to the effects the dead owner left live, so an
interrupt or cancel of an abandoned run starts nothing. An answer to a gate whose run nobody
drives and that is still running is refused with what to do: applying it here would go on with
the run in this short-lived process.

Exit status (spec/cli.md): 0 done, 1 refused (the typed error's message, one line) or a file
that is not a journal (refused read-only, and left as it was: CLI-3), 2 no such run or journal.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._commands import fold_options
from ._shell import USAGE, CommandError, command


def add_parsers(subparsers: Any) -> None:
    """Register `interrupt`, `cancel` and `answer`."""
    interrupt = subparsers.add_parser(
        "interrupt",
        help="interrupt a run (it may be resumed), from any terminal",
        description="Interrupt a run; delivered to the process that drives it.",
    )
    interrupt.add_argument("run_id", metavar="RUN_ID")
    interrupt.add_argument("--reason", default="interrupted from the command line")
    cancel = subparsers.add_parser(
        "cancel",
        help="cancel a run for good, from any terminal",
        description="Cancel a run (terminal); delivered to the process that drives it.",
    )
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", default="canceled from the command line")
    answer = subparsers.add_parser(
        "answer",
        help="answer a run's human gate, from any terminal",
        description="Answer a human gate; VALUE is JSON if it parses as JSON, else a string.",
    )
    answer.add_argument("run_id", metavar="RUN_ID")
    answer.add_argument("step_id", metavar="STEP_ID")
    answer.add_argument("value", metavar="VALUE")
    for parser, func in ((interrupt, run_interrupt), (cancel, run_cancel), (answer, run_answer)):
        fold_options(parser)
        parser.set_defaults(func=func, run=func)


def run_interrupt(args: argparse.Namespace) -> int:
    """`interruptible interrupt RUN_ID`."""
    return _act(args, "interrupt")


def run_cancel(args: argparse.Namespace) -> int:
    """`interruptible cancel RUN_ID`."""
    return _act(args, "cancel")


def run_answer(args: argparse.Namespace) -> int:
    """`interruptible answer RUN_ID STEP_ID VALUE`."""
    return _act(args, "answer")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _act(args: argparse.Namespace, what: str) -> int:
    import asyncio

    from ._commands import check_journal, known_modes

    modes = known_modes(args.modes)  # a usage error before the journal is opened (CLI-2)
    if args.dsn:
        return asyncio.run(_act_shared(args, what, modes))
    check_journal(args.db)
    return asyncio.run(_act_async(args, what, modes))


async def _act_shared(args: argparse.Namespace, what: str, modes: list[Any]) -> int:
    """The request sent, as a client (spec/workers.md, WRK-5), to the worker that owns the run
    in a PostgreSQL journal; its answer printed, or its typed error as one line."""
    from .._errors import InterruptibleError
    from .._journal import PostgresJournal
    from .._runtime._runtime import Runtime
    from ._commands import journal_label

    label = journal_label(args)
    try:
        journal = PostgresJournal(args.dsn, schema=args.schema, readonly=True)
        try:
            conversation_id = journal.find_run(args.run_id)
            if conversation_id is None:
                raise CommandError(
                    f"no run {args.run_id!r} in {label}; inspect --dsn DSN lists them.", USAGE
                )
        finally:
            journal.close()
        shared = PostgresJournal(args.dsn, schema=args.schema)
        try:
            async with Runtime(shared, modes=modes, role="client") as rt:
                snapshot = await _send(rt, what, conversation_id, args)
        finally:
            shared.close()
    except InterruptibleError as exc:
        raise CommandError(f"{label}: {exc.message}") from None
    step = f", step {args.step_id} answered" if what == "answer" else ""
    print(f"run {args.run_id}: {snapshot.status.value}{step}", file=sys.stdout)
    return 0


async def _send(rt: Any, what: str, conversation_id: str, args: argparse.Namespace) -> Any:
    """Make the one call `what` names on the run, through `rt` (any role)."""
    if what == "interrupt":
        return await rt.interrupt_run(conversation_id, args.reason, run_id=args.run_id)
    if what == "cancel":
        return await rt.cancel_run(conversation_id, args.run_id, reason=args.reason)
    return await rt.provide_input(conversation_id, args.run_id, args.step_id, _value(args.value))


async def _act_async(args: argparse.Namespace, what: str, modes: list[Any]) -> int:
    from .._errors import InterruptibleError
    from .._lifecycle import RunStatus
    from .._runtime._runtime import Runtime
    from ._commands import writing

    out = sys.stdout
    try:
        async with writing(Runtime(args.db, modes=modes, adopt=False), args.db) as rt:
            conversation_id = rt.find_run(args.run_id)
            if conversation_id is None:
                raise CommandError(
                    f"no run {args.run_id!r} in {args.db}; {command('inspect', db=args.db)} "
                    "lists them.",
                    USAGE,
                )
            driver = rt.live_owner(conversation_id)
            where = "" if driver is None else f" (in process {driver.pid} on {driver.host})"
            if what == "answer" and driver is None:
                current = rt.snapshot(conversation_id, args.run_id)
                if current.status is RunStatus.running:
                    raise CommandError(
                        f"run {args.run_id} is running but no process drives it; resume it "
                        f"first ({command('resume', args.run_id, db=args.db)}) and answer then."
                    )
            snapshot = await _send(rt, what, conversation_id, args)
    except InterruptibleError as exc:
        db = "" if args.db in exc.message else f"{args.db}: "
        raise CommandError(f"{db}{exc.message}") from None
    step = f", step {args.step_id} answered" if what == "answer" else ""
    print(f"run {args.run_id}: {snapshot.status.value}{step}{where}", file=out)
    return 0
