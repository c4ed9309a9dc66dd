"""What the command line says to a person: exit statuses, one-line errors, and commands printed
to be run as printed (spec/cli.md).

Theory of operation
-------------------
Every subcommand runs under one guard, `_cli.main`. What a command raises because of the person's
input or machine (a `CommandError` carrying its line and status, a typed `InterruptibleError`,
an `OSError`, Ctrl-C, a closed stdout) becomes one line on stderr and a status of `EXIT_STATUSES`
(CLI-1, CLI-2); a traceback is left for a bug. A command that knows more than the guard (the
demo knows its run and journal) raises `CommandError` with the line it wants said.

A command printed for a person to type (`resume with: ...`) is built by `command`: it starts
with the program as this process was started, so that it runs from the same directory even when
`interruptible` is not on `PATH`, and it carries `--db` when the journal is not the default
(CLI-4). This module imports only the standard library's light modules: `interruptible --help`
loads it.
"""

from __future__ import annotations

import os
import sys
from typing import Final

# The journal every command uses unless given `--db`.
DEFAULT_DB: Final = "interruptible-demo.db"

OK: Final = 0
ERROR: Final = 1
USAGE: Final = 2
INTERRUPTED: Final = 130  # 128 + SIGINT: what a shell reports for a process Ctrl-C ended
OUTPUT_CLOSED: Final = 141  # 128 + SIGPIPE: what a shell reports for one whose reader left

EXIT_STATUSES: Final = (
    (OK, "done"),
    (
        ERROR,
        "error: the command failed or was refused (a file that is not a journal, or is locked "
        "or cannot be written; a request the run's state refuses; a failed run; a parity "
        "problem; a violation; upgrade-check: a run would be blocked)",
    ),
    (
        USAGE,
        "usage: a bad option or --modes, no such journal or run, the demo over an interrupted "
        "run without --new",
    ),
    (INTERRUPTED, "interrupted by Ctrl-C (the demo's run can be resumed)"),
    (OUTPUT_CLOSED, "the output was closed early (piped into head); nothing more is said"),
)


class CommandError(Exception):
    """A user error a command explains in one line, with the exit status it ends with."""

    def __init__(self, line: str, status: int = ERROR) -> None:
        super().__init__(line)
        self.line = line
        self.status = status


def exit_statuses_text() -> str:
    """The exit statuses, as `interruptible --help` ends."""
    import textwrap

    rows = [
        textwrap.fill(
            meaning, width=79, initial_indent=f"  {status:>3}  ", subsequent_indent=" " * 7
        )
        for status, meaning in EXIT_STATUSES
    ]
    return "exit statuses (spec/cli.md):\n" + "\n".join(rows)


def _runnable(path: str, *names: str) -> str:
    """How to type `path` here: a bare name when `PATH` finds `path` by it (compared without
    resolving links: a venv's `python` links to an interpreter without the venv's packages),
    else the path, relative to the current directory when it lies below it."""
    import shutil

    absolute = os.path.abspath(path)
    for name in names:
        found = shutil.which(name)
        if found is not None and os.path.abspath(found) == absolute:
            return name
    relative = os.path.relpath(absolute)
    if relative.startswith(os.pardir):
        return absolute
    return relative if os.sep in relative else os.path.join(os.curdir, relative)


def program() -> list[str]:
    """The words that start this program again from the current directory (CLI-4)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.partition(".")[0] == "interruptible":  # python -m
        return [_runnable(sys.executable, "python", "python3"), "-m", "interruptible"]
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "interruptible":  # the console script
        return [_runnable(script, "interruptible")]
    return ["interruptible"]  # called from other code (a test): the installed name


def command(*words: str, db: str | None = None) -> str:
    """A shell command that runs as printed: this program, `words`, and `--db db` when `db` is
    not the default journal (CLI-4)."""
    import shlex

    argv = [*program(), *words]
    if db is not None and os.path.abspath(db) != os.path.abspath(DEFAULT_DB):
        argv += ["--db", db]
    return shlex.join(argv)
