"""The command line: every subcommand under one guard, and the demo's display (spec/cli.md).

`main` is the console script (`interruptible`) and `python -m interruptible`. The commands import
what they run (the runtime, the journal, the checker, the views) inside their functions, so
`interruptible --help` loads only this package and the standard library's light modules.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
