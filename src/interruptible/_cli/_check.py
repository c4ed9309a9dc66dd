"""`interruptible check`: run the exhaustive model checker and print its figures.

Exit status: 0 when every property holds within the bounds, 1 on a violation (the shortest
counterexample is printed: for a model of the core a replayable JSON list of events, for an
ownership model the moves and the journal's events), 2 when the model cannot be loaded or an
option does not apply to it, 130 on Ctrl-C. With no bound options the model's CI bound is
checked. While it explores, it says how far it got on stderr about once a second (CLI-9); the
figures go to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Final, TextIO, cast

from .._verify._checker._defects import DEFECTS
from .._verify._checker._explore import explore, replay_trace
from .._verify._checker._models import default_model_path, load_model, model_path
from .._verify._checker._owner_defects import OWNER_DEFECTS
from .._verify._checker._owner_explore import explore_owners, replay_moves
from .._verify._checker._owner_state import OwnerBounds, OwnerModel
from .._verify._checker._owners import OwnerWorld
from .._verify._checker._world import Bounds, World
from ._shell import INTERRUPTED, CommandError

# Seconds between two progress lines (CLI-9).
PROGRESS_EVERY: Final = 1.0

_BOUND_HELP = {
    "runs": "fresh runs the world requests",
    "steps": "steps per run",
    "interrupts": "authorized interrupts, over all runs",
    "duplicates": "duplicate, late, stale or conflicting events, over all runs",
    "unauthorized": "refused requests, over all runs",
    "progress": "progress reports per effect",
    "lost": "effects lost without an answer (effect_lost), over all runs",
}
# The bounds of an ownership model (`models/two_owners.py`); `--runs`, `--steps` serve both.
_OWNER_BOUND_HELP = {
    "owners": "owner processes sharing the conversation (ownership models)",
    "retries": "run requests sent again to any process (ownership models)",
    "commands": "commands a third process submits (ownership models)",
    "pauses": "live owners paused past their lease (ownership models)",
    "stops": "owners that crash or close (ownership models)",
}
_SHARED = ("runs", "steps")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of `check` to its parser."""
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="an environment model file, or the name of one in models/ (two_owners: the "
        "ownership protocol); default: models/sequence_runs.py",
    )
    for name, text in (*_BOUND_HELP.items(), *_OWNER_BOUND_HELP.items()):
        parser.add_argument(
            f"--{name}", type=int, default=None, metavar="N", help=f"{text} (default: CI bound)"
        )
    parser.add_argument(
        "--depth", type=int, default=None, metavar="N", help="events per path (default: unbounded)"
    )
    parser.add_argument(
        "--max-states", type=int, default=None, metavar="N", help="stop after N states"
    )
    parser.add_argument(
        "--defect",
        choices=sorted({*DEFECTS, *OWNER_DEFECTS}),
        default=None,
        help="check a seeded defect instead (it must fail): of the core, or of the ownership "
        "protocol for an ownership model",
    )
    parser.add_argument(
        "--trace-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a counterexample's events to FILE as a JSON list",
    )
    parser.add_argument(
        "--no-liveness", action="store_true", help="skip the liveness check (VER-12)"
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `check` on an argparse subparsers object; its `run` is set as the default."""
    text = "explore every interleaving within bounds against the real core; exit 1 on a violation"
    parser: argparse.ArgumentParser = subparsers.add_parser("check", help=text, description=text)
    configure(parser)
    parser.set_defaults(run=run)
    return parser


class _Progress:
    """Progress lines on stderr: rewritten in place on a terminal, one per report otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.terminal = stream.isatty()
        self.started = time.perf_counter()
        self.states = 0

    def __call__(self, states: int, transitions: int, depth: int) -> None:
        self.states = states
        elapsed = time.perf_counter() - self.started
        rate = f", {states / elapsed:,.0f} states/s" if elapsed > 0 else ""
        line = (
            f"explored {states:,} states, {transitions:,} transitions, depth {depth} "
            f"({elapsed:.1f} s{rate})"
        )
        self.stream.write(f"\r\033[K{line}" if self.terminal else f"{line}\n")
        self.stream.flush()

    def clear(self) -> None:
        """Leave the terminal's line empty for what comes next."""
        if self.terminal:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    """Check the model within the bounds given (or its CI bound); print the figures."""
    path = model_path(args.model) if args.model is not None else default_model_path()
    if path is None:
        print(
            "no model given and models/sequence_runs.py not found; pass --model PATH",
            file=sys.stderr,
        )
        return 2
    try:
        model = load_model(path)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if isinstance(getattr(model, "ci_bounds", None), OwnerBounds):
        return _run_owners(args, cast(OwnerModel, model))
    misplaced = _given(args, _OWNER_BOUND_HELP)
    if misplaced or (args.defect and args.defect not in DEFECTS):
        what = misplaced[0] if misplaced else f"--defect {args.defect}"
        print(f"{what} is for ownership models (two_owners), not {model.name}", file=sys.stderr)
        return 2
    changes = {name: getattr(args, name) for name in _BOUND_HELP if getattr(args, name) is not None}
    if args.depth is not None:
        changes["depth"] = args.depth
    bounds: Bounds = dataclasses.replace(model.ci_bounds, **changes)
    factory = DEFECTS[args.defect] if args.defect else None
    world = World(model, bounds, factory) if factory is not None else World(model, bounds)
    progress = _Progress(sys.stderr)
    try:
        report = explore(
            world,
            check_liveness=not args.no_liveness,
            max_states=args.max_states,
            progress=progress,
            progress_every=PROGRESS_EVERY,
        )
    except KeyboardInterrupt:
        progress.clear()
        raise CommandError(
            f"check: interrupted (Ctrl-C) after {progress.states:,} states; nothing was written.",
            INTERRUPTED,
        ) from None
    progress.clear()
    if args.defect:
        report.model += f" with seeded defect {args.defect}"
    for line in report.lines():
        print(line)
    counterexample = report.counterexample
    if counterexample is None:
        return 0
    if counterexample.violation.property_id == "VER-12":
        print("replayed: the trace reaches a state from which no run can end (liveness)")
    else:
        replayed, _ = replay_trace(world, counterexample.events)
        print("replayed: " + ("; ".join(map(str, replayed)) if replayed else "no violation"))
    trace = json.dumps(counterexample.to_json(), indent=2)
    if args.trace_out is not None:
        args.trace_out.write_text(trace + "\n")
        print(f"counterexample written to {args.trace_out}")
    else:
        print(trace)
    return 1


def _given(args: argparse.Namespace, names: dict[str, str]) -> list[str]:
    return [f"--{name}" for name in names if getattr(args, name) is not None]


def _run_owners(args: argparse.Namespace, model: OwnerModel) -> int:
    """Check an ownership model: figures, and the moves of a shortest counterexample."""
    misplaced = [name for name in _given(args, _BOUND_HELP) if name[2:] not in _SHARED]
    if misplaced or (args.defect and args.defect not in OWNER_DEFECTS):
        what = misplaced[0] if misplaced else f"--defect {args.defect}"
        print(f"{what} is for models of the core, not {model.name}", file=sys.stderr)
        return 2
    names = (*_SHARED, *_OWNER_BOUND_HELP)
    changes = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.depth is not None:
        changes["depth"] = args.depth
    bounds: OwnerBounds = dataclasses.replace(model.ci_bounds, **changes)
    defect = OWNER_DEFECTS[args.defect] if args.defect else None
    try:
        world = OwnerWorld(model, bounds, defect) if defect else OwnerWorld(model, bounds)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    report = explore_owners(world, check_liveness=not args.no_liveness, max_states=args.max_states)
    for line in report.lines():
        print(line)
    counterexample = report.counterexample
    if counterexample is None:
        return 0
    if counterexample.violation.property_id == "VER-20":
        print("replayed: the moves reach a state from which, with an owner alive, no run ends")
    else:
        fresh = OwnerWorld(model, bounds, defect) if defect else OwnerWorld(model, bounds)
        found, _ = replay_moves(fresh, counterexample.moves)
        print(f"replayed: {found if found is not None else 'no violation'}")
    trace = json.dumps(counterexample.to_json(), indent=2)
    if args.trace_out is not None:
        args.trace_out.write_text(trace + "\n")
        print(f"counterexample written to {args.trace_out}")
    else:
        print(trace)
    return 1
