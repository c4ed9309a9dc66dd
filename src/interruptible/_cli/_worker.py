"""`interruptible worker`: one worker process of a PostgreSQL journal (spec/workers.md).

A worker is a `Runtime` in the worker role: it claims conversations with work (new run
requests, commands, conversations whose owner's lease ended) up to `--limit` live ones, drives
them, and renews its lease by heartbeat. SIGTERM (or Ctrl-C) drains it: it stops claiming,
interrupts nothing, lets the effects in flight stop without reporting (their runs go on
elsewhere, from their last kept step), releases its lease, and exits 0; the release notifies
the other workers, which take its conversations over at once (WRK-3). After `kill -9` they take
them over when its lease expires.

Exit status (spec/cli.md): 0 drained, 1 the journal refused (one line), 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .._runtime._owner import DEFAULT_LIMIT
from ._commands import load_modes
from ._shell import USAGE, CommandError
from ._upgrade_check import load_migrations, migrations_option


def add_parsers(subparsers: Any) -> None:
    """Register `worker`."""
    from .._journal import DEFAULT_LEASE

    parser = subparsers.add_parser(
        "worker",
        help="drive runs from a PostgreSQL journal, as one of many workers",
        description="Claim and drive conversations of a PostgreSQL journal until SIGTERM.",
    )
    parser.add_argument("--dsn", required=True, help="the PostgreSQL database (a libpq DSN)")
    parser.add_argument(
        "--schema", default="interruptible", help="the journal's schema (default: interruptible)"
    )
    parser.add_argument(
        "--modes",
        action="append",
        required=True,
        metavar="MODULE:NAME",
        help="the modes to run: an importable Mode, or an iterable of Modes (repeatable)",
    )
    parser.add_argument(
        "--tools",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="a mapping of tool names to callables, for `tool` steps (repeatable)",
    )
    parser.add_argument(
        "--functions",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="a mapping of function names to callables, for `system` steps (repeatable)",
    )
    parser.add_argument(
        "--model",
        metavar="MODULE:NAME",
        help="the chat model for `llm` steps: an object with `async complete(messages, tools)`",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        help=f"at most this many live conversations (default: {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--lease",
        type=_positive_float,
        default=DEFAULT_LEASE,
        help=f"the lease, in seconds: a killed worker's runs move after it (default: "
        f"{DEFAULT_LEASE:g})",
    )
    migrations_option(parser)
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="emit the trace of each run that ends here through the global OpenTelemetry "
        "tracer provider, as the process configures it (opentelemetry-instrument, OTEL_* "
        "variables; the `otel` extra; spec/observability.md)",
    )
    parser.add_argument("--verbose", action="store_true", help="log claims and takeovers")
    parser.set_defaults(func=run_worker, run=run_worker)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def load_callables(option: str, spec: str) -> dict[str, Callable[..., Any]]:
    """The mapping of names to callables `MODULE:NAME` names (`--tools`, `--functions`);
    `CommandError` (a usage error) for anything else."""
    from ._commands import load_object

    value = load_object(option, spec)
    if not isinstance(value, Mapping) or not all(
        isinstance(name, str) and callable(item) for name, item in value.items()
    ):
        raise CommandError(
            f"{option} {spec}: it is a {type(value).__name__}, not a mapping of names to callables",
            USAGE,
        )
    return dict(value)


def run_worker(args: argparse.Namespace) -> int:
    """`interruptible worker --dsn DSN --modes MODULE:NAME`."""
    modes = [mode for spec in args.modes for mode in load_modes(spec)]
    args.loaded_migrations = load_migrations(args.migrations)
    if args.tracing and importlib.util.find_spec("opentelemetry") is None:
        raise CommandError(
            "--tracing needs OpenTelemetry's API: pip install 'interruptible[otel]'", USAGE
        )
    tools: dict[str, Callable[..., Any]] = {}
    for spec in args.tools:
        tools.update(load_callables("--tools", spec))
    functions: dict[str, Callable[..., Any]] = {}
    for spec in args.functions:
        functions.update(load_callables("--functions", spec))
    model = None
    if args.model is not None:
        from ._commands import load_object

        model = load_object("--model", args.model)
        if not callable(getattr(model, "complete", None)):
            raise CommandError(
                f"--model {args.model}: it is a {type(model).__name__}, not a chat model (an "
                "object with `async complete(messages, tools)`)",
                USAGE,
            )
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(_serve(args, modes, tools, functions, model))


async def _serve(
    args: argparse.Namespace,
    modes: list[Any],
    tools: dict[str, Callable[..., Any]],
    functions: dict[str, Callable[..., Any]],
    model: Any,
) -> int:
    from .._journal import PostgresJournal
    from .._runtime._runtime import Runtime

    journal = PostgresJournal(args.dsn, schema=args.schema, application_name="interruptible worker")
    try:
        runtime = Runtime(
            journal,
            modes=modes,
            tools=tools,
            functions=functions,
            model=model,
            lease=args.lease,
            role="worker",
            limit=args.limit,
            migrations=args.loaded_migrations,
            tracing=args.tracing,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with runtime:
            print(
                f"worker {runtime.owner_id} on schema {args.schema!r}: limit {args.limit}, "
                f"lease {args.lease:g} s; SIGTERM or Ctrl-C drains it",
                flush=True,
            )
            await stop.wait()
            held = runtime.live_conversations()
        print(
            f"worker {runtime.owner_id} drained: lease released, {held} live "
            "conversation(s) left to the other workers",
            flush=True,
        )
    finally:
        journal.close()
    return 0
