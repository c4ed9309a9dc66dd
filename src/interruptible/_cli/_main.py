"""The `interruptible` command line: one argparse parser, one subparser per subcommand.

Theory of operation
-------------------
`main` builds the parser in `build_parser`. This module's own subcommand, `spec`, is a row of the
`COMMANDS` table: a `Command` names it, says what it does, adds its options and runs with the
parsed namespace, returning the exit status. The other subcommands live in this package's
sibling modules and register themselves through their `add_parsers` / `add_parser`, in the same
shape: the runs' (`demo`, `resume`, `inspect`, `replay`: `_commands.py`; `interrupt`, `cancel`,
`answer`: `_control.py`; `worker`: `_worker.py`; `upgrade-check`: `_upgrade_check.py`) and the
model checker's (`check`: `_check.py`); `main` does not change for any of them.
A `JournalError` that reaches `main` (a journal that cannot be opened or read, such as a torn
record deep in its history) is printed as one line, exit status 1.

`main` runs every subcommand under one guard (spec/cli.md, CLI-1): a user error is one line
on stderr and an exit status of `_shell.EXIT_STATUSES`, never a traceback. A command raises
`CommandError` for a line of its own; a typed `InterruptibleError` is said with the command's
`--db` when its message does not name the file; an `OSError` names its file; Ctrl-C is 130; a
stdout closed under the output (`| head`) ends quietly with 141, and stdout is flushed inside
the guard so that this shows there, not as "Exception ignored" at exit.

Subcommands import what they need inside their functions: `import interruptible` and
`interruptible --help` stay fast, and the diagram toolchain loads only for `spec`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .._errors import InterruptibleError
from ._shell import (
    ERROR,
    INTERRUPTED,
    OUTPUT_CLOSED,
    USAGE,
    CommandError,
    command,
    exit_statuses_text,
)

# Where `spec` writes, at the repository's root (CLI-8).
DEFAULT_OUT: Final = Path("spec/generated")


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its name, one-line help, option setup and body."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _configure_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory to write (default: spec/generated, at the repository's root only)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the directory differs from a fresh generation",
    )


def _at_repository_root() -> bool:
    """Whether the current directory is interruptible's repository root (its `spec/` is here)."""
    pyproject = Path("pyproject.toml")
    if not Path("spec").is_dir() or not pyproject.is_file():
        return False
    return 'name = "interruptible"' in pyproject.read_text(encoding="utf-8", errors="replace")


def _run_spec(args: argparse.Namespace) -> int:
    out: Path | None = args.out
    if out is None:  # the repository's spec/generated, only where it is (CLI-8)
        if not _at_repository_root():
            raise CommandError(
                f"{os.getcwd()} is not the root of the interruptible repository, so there is "
                "no spec/ of it here: run `interruptible spec` at the root, or pass --out DIR.",
                USAGE,
            )
        out = DEFAULT_OUT
    try:
        return _spec(out, args.check)
    except FileNotFoundError as exc:  # python-statemachine's GraphvizNotFoundError is one
        print(f"{exc}\nThe SVG diagrams need Graphviz's `dot` on PATH.", file=sys.stderr)
        return 2


def _traces_dir(out: Path) -> Path:
    """The golden traces live beside the generated directory: spec/generated -> spec/traces."""
    return out.parent / "traces"


def _spec(out: Path, check_only: bool) -> int:
    from .._views._spec import check, generate
    from .._views._traces import SCENARIOS, record, render, write_traces

    traces = _traces_dir(out)
    if check_only:
        stale = check(out)
        stale += [
            f"../traces/{name}.jsonl"
            for name in SCENARIOS
            if not (traces / f"{name}.jsonl").exists()
            or (traces / f"{name}.jsonl").read_text() != render(record(name))
        ]
        if stale:
            print(
                f"{out} is stale: {len(stale)} file(s) differ from the lifecycle classes:",
                file=sys.stderr,
            )
            for name in stale:
                print(f"  {name}", file=sys.stderr)
            again = command("spec", *(["--out", str(out)] if out != DEFAULT_OUT else []))
            print(f"Run `./dev spec` (or `{again}`) and commit the result.", file=sys.stderr)
            return 1
        print(f"{out} is up to date.")
        return 0
    written = generate(out)
    written += write_traces(traces)
    print(f"wrote {len(written)} files under {out} and {traces}")
    return 0


COMMANDS: Final = (
    Command(
        "spec",
        "generate the spec's tables, diagrams and schemas from the lifecycle classes",
        _configure_spec,
        _run_spec,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="interruptible",
        description="The interruptible run engine's command line.",
        epilog=exit_statuses_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in COMMANDS:
        sub = subparsers.add_parser(entry.name, help=entry.help, description=entry.help)
        entry.configure(sub)
        sub.set_defaults(run=entry.run)
    # The runs' commands and the model checker's (check) register themselves; their modules
    # import only argparse at this point.
    from ._check import add_parser as add_check
    from ._commands import add_parsers as add_runtime
    from ._control import add_parsers as add_control
    from ._upgrade_check import add_parsers as add_upgrade_check
    from ._worker import add_parsers as add_worker

    add_runtime(subparsers)
    add_control(subparsers)
    add_worker(subparsers)
    add_upgrade_check(subparsers)
    add_check(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`) and return the exit status;
    a user error is one line on stderr (CLI-1) and a status of spec/cli.md (CLI-2)."""
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        status = run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the guard
        return status
    except CommandError as exc:
        return _say(exc.line, exc.status)
    except InterruptibleError as exc:
        return _say(_naming_the_journal(args, exc.message), ERROR)
    except BrokenPipeError:
        return _say("", OUTPUT_CLOSED)
    except OSError as exc:
        what = exc.strerror or str(exc)
        if exc.filename is None:
            return _say(f"{_name(args)}: {what}", ERROR)
        return _say(f"{exc.filename}: {what}; check the path and its permissions.", ERROR)
    except KeyboardInterrupt:
        return _say(f"{_name(args)}: interrupted (Ctrl-C); nothing more was done.", INTERRUPTED)


def _name(args: argparse.Namespace | None) -> str:
    command = getattr(args, "command", None)
    return "interruptible" + (f" {command}" if command else "")


def _naming_the_journal(args: argparse.Namespace | None, message: str) -> str:
    db = getattr(args, "db", None)
    if getattr(args, "dsn", None):  # a PostgreSQL journal: named by its schema, not its DSN
        schema = getattr(args, "schema", None)
        db = None if "PostgreSQL schema" in message else f"PostgreSQL schema {schema!r}"
    if isinstance(db, str) and db not in message:
        return f"{db}: {message}"
    return message


def _say(line: str, status: int) -> int:
    """Print `line` on stderr (if any) and return `status`; with stdout closed under the
    output, stdout is pointed at /dev/null so that the exit's flush cannot fail again."""
    if status == OUTPUT_CLOSED:
        # ValueError: not a real file (a test's capture), nothing to redirect.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    if line:
        with contextlib.suppress(OSError):  # stderr is gone too: the status says it
            print(line, file=sys.stderr, flush=True)
    return status
