"""The `interruptible` command line: one argparse parser, one subparser per subcommand.

Theory of operation
-------------------
`main` builds the parser in `build_parser`. This module's own subcommand, `spec`, is a row of the
`COMMANDS` table: a `Command` names it, says what it does, adds its options and runs with the
parsed namespace, returning the exit status. The runtime's subcommands (`demo`, `resume`,
`inspect`, `replay`, `interrupt`, `cancel`, `answer`) and the model checker's (`check`) register
themselves through their
modules' `add_parsers` / `add_parser`, in the same shape; `main` does not change for either.
A `JournalError` that reaches `main` (a journal that cannot be opened or read, such as a torn
record deep in its history) is printed as one line, exit status 1.

Subcommands import what they need inside their functions: `import interruptible` and
`interruptible --help` stay fast, and the diagram toolchain loads only for `spec`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ._errors import JournalError


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
        default=Path("spec/generated"),
        help="directory to write (default: spec/generated)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the directory differs from a fresh generation",
    )


def _run_spec(args: argparse.Namespace) -> int:
    try:
        return _spec(args.out, args.check)
    except FileNotFoundError as exc:  # python-statemachine's GraphvizNotFoundError is one
        print(f"{exc}\nThe SVG diagrams need Graphviz's `dot` on PATH.", file=sys.stderr)
        return 2


def _traces_dir(out: Path) -> Path:
    """The golden traces live beside the generated directory: spec/generated -> spec/traces."""
    return out.parent / "traces"


def _spec(out: Path, check_only: bool) -> int:
    from ._spec import check, generate
    from ._traces import SCENARIOS, record, render, write_traces

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
            print(
                "Run `./dev spec` (or `interruptible spec`) and commit the result.", file=sys.stderr
            )
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
        prog="interruptible", description="The interruptible run engine's command line."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    # The runtime's commands (demo, resume, inspect, replay) and the model checker's (check)
    # register themselves; their modules import only argparse at this point.
    from ._checker._command import add_parser as add_check
    from ._runtime._commands import add_parsers as add_runtime
    from ._runtime._control import add_parsers as add_control

    add_runtime(subparsers)
    add_control(subparsers)
    add_check(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`) and return the exit status."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except JournalError as exc:  # a journal that cannot be opened or read: one line, no traceback
        print(f"interruptible {args.command}: {exc.message}", file=sys.stderr)
        return 1
