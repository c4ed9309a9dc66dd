"""The ownership world's vocabulary: its bounds, its models, and its states.

An `OwnerState` is the journal (a number: `_owner_journals.py`), one `Proc` per owner process,
what the world may still do, and a ghost bit for VER-19. Every part is a tuple, so states hash
and compare as values; `_owners.py` lists the moves between them.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from ..._core import Mode
from ..._vocabulary import JsonValue
from ._properties import Violation

COMMAND_KINDS: Final = ("interrupt", "resume", "cancel")
NAMES: Final = "ABCDEFGH"


@dataclass(frozen=True, slots=True)
class OwnerBounds:
    """How much the world may do; every bound is finite, so the explored space is too."""

    owners: int = 2  # owner processes A, B, ...
    runs: int = 1  # run requests, r1, r2, ..., each sent to one process
    retries: int = 0  # a run request sent again (to any process: a client's retry)
    steps: int = 1  # steps per run, read by the model when it builds its modes
    commands: int = 1  # commands a third process submits, over all runs
    pauses: int = 1  # leases of live owners that lapse (a pause longer than the lease)
    stops: int = 1  # owners that crash or close; fewer than `owners` keeps one alive
    depth: int | None = None  # moves per path; None explores until no new state appears

    def describe(self) -> str:
        """The bounds as `name=value` pairs."""
        names = ("owners", "runs", "retries", "steps", "commands", "pauses", "stops")
        return " ".join(f"{name}={getattr(self, name)}" for name in names) + (
            f" depth={self.depth}" if self.depth is not None else " depth=unbounded"
        )


class OwnerModel(Protocol):
    """An ownership model of `models/`: the runs the owners drive and the commands sent."""

    @property
    def name(self) -> str:
        """The model's name, shown in reports."""
        ...

    @property
    def ci_bounds(self) -> OwnerBounds:
        """The bound CI checks."""
        ...

    def modes(self, bounds: OwnerBounds) -> SequenceOf[Mode]:
        """The modes the runs ask for."""
        ...

    def run_request(self, index: int) -> tuple[str, JsonValue]:
        """The mode and input of run number `index` (1, 2, ...)."""
        ...

    def outputs(self, step_class: str, step_id: str) -> tuple[JsonValue, ...]:
        """The output an effect of this step completes with (the first is used)."""
        ...

    def commands(self, bounds: OwnerBounds) -> SequenceOf[str]:
        """The commands a third process may submit: some of `COMMAND_KINDS`."""
        ...


Intent = tuple[int, str, str]  # the epoch seen, the request that made it claim (or ""), why
Item = tuple[str, int]  # an event label, and the command it carries out (0: none)


class Proc(NamedTuple):
    """What one owner process holds in memory (everything here is lost when it crashes)."""

    alive: bool = True
    epoch: int = 0  # the epoch it owns the conversation at; 0 when it does not
    intent: Intent | None = None
    last: int = 0  # the journal sequence its view is folded to
    inbox: tuple[Item, ...] = ()
    effects: tuple[tuple[str, bool], ...] = ()  # effects it runs, and whether one was canceled
    posted: tuple[int, ...] = ()  # commands it posted, not yet seen answered
    fenced: bool = False  # a write failed with StaleWriterError: it never writes again
    held: tuple[tuple[int, str], ...] = ()  # answers held back (seeded defect split_answer)
    # The epoch and last sequence its sweep last found the conversation abandoned with no work
    # at: it looks again only once one of them moves.
    idle: tuple[int, int] | None = None


STOPPED: Final = Proc(alive=False)


class OwnerState(NamedTuple):
    """One state of the ownership world."""

    journal: int  # the interned journal's number
    procs: tuple[Proc, ...]
    runs: int  # fresh run requests left
    retries: int
    commands: int
    pauses: int
    stops: int
    lapsed: bool  # ghost: the current owner's lease lapsed since it claimed (VER-19)


Move = tuple[str, OwnerState, Violation | None]
# A writer round: the events it journals, the answers, and (start|cancel, effect id) in order.
Round = tuple[tuple[str, ...], tuple[tuple[int, str], ...], tuple[tuple[bool, str], ...]]
