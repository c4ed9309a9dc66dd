"""Breadth-first exploration of the ownership world, with liveness (VER-17..VER-21).

Theory of operation
-------------------
States of `OwnerWorld` are hashable tuples (the journal as a number, the processes as small
tuples), so the visited set is a dict from state to number. Each state's moves are listed by the
world with the transition property each one breaks (VER-17 on an append, VER-19 on a claim); a
new state's journal is checked once per distinct journal (VER-18, VER-21). Breadth-first order
makes the first violation's trace a shortest one.

Liveness (VER-20) is checked after the search by reverse reachability over the edges followed:
from every state in which some owner is alive (and not fenced), a settled state (every journaled
run ended, every submitted command answered) must be reachable. A move that changes nothing is
not followed (a refused request: its only change is a spent budget, so its target has no
behaviour the source lacks).
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass

from ..._codec import to_json
from ..._vocabulary import Event
from ._liveness import first_stuck
from ._owner_state import OwnerState
from ._owners import OwnerWorld
from ._properties import Violation


@dataclass(frozen=True, slots=True)
class OwnerTrace:
    """A shortest trace to a violation: the moves, and the events the journal then holds."""

    violation: Violation
    moves: tuple[str, ...]
    journal: tuple[Event, ...]

    def to_json(self) -> dict[str, object]:
        """The trace as JSON: the moves, and the journal's events (`interruptible._codec`)."""
        return {
            "violation": str(self.violation),
            "moves": list(self.moves),
            "journal": [to_json(event) for event in self.journal],
        }


@dataclass(slots=True)
class OwnerReport:
    """What one exploration of the ownership world did and found."""

    model: str
    bounds: str
    states: int = 0
    journals: int = 0
    transitions: int = 0
    journal_calls: int = 0
    max_depth: int = 0
    unexpanded: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    liveness_checked: bool = False
    counterexample: OwnerTrace | None = None

    @property
    def ok(self) -> bool:
        """Whether no property failed."""
        return self.counterexample is None

    def lines(self) -> list[str]:
        """The figures, one per line, for a terminal or a log."""
        rate = self.states / self.cpu_seconds if self.cpu_seconds > 0 else 0.0
        out = [
            f"model: {self.model}",
            f"bounds: {self.bounds}",
            f"states: {self.states} distinct ({self.journals} journal contents)",
            f"transitions: {self.transitions} ({self.journal_calls} distinct journal calls)",
            f"max depth: {self.max_depth}"
            + (f" ({self.unexpanded} states left unexpanded)" if self.unexpanded else ""),
            f"seconds: {self.seconds:.2f} wall, {self.cpu_seconds:.2f} CPU",
            f"states/s: {rate:,.0f} CPU",
        ]
        if self.counterexample is None:
            liveness = "checked" if self.liveness_checked else "not checked"
            out.append(f"result: no violation (liveness {liveness})")
        else:
            cx = self.counterexample
            out.append(f"result: VIOLATION {cx.violation}")
            out.append(f"counterexample: {len(cx.moves)} moves")
            out.extend(f"  {number}. {move}" for number, move in enumerate(cx.moves, start=1))
        return out


class OwnerExplorer:
    """Breadth-first search of one `OwnerWorld`."""

    def __init__(self, world: OwnerWorld) -> None:
        self.world = world
        self.index: dict[OwnerState, int] = {}
        self.states: list[OwnerState] = []
        self.parent = array("i")
        self.via: list[str] = []
        self.edge_from = array("i")
        self.edge_to = array("i")

    def _add(self, state: OwnerState, parent: int, via: str) -> int | None:
        if state in self.index:
            return None
        number = len(self.states)
        self.index[state] = number
        self.states.append(state)
        self.parent.append(parent)
        self.via.append(via)
        return number

    def run(
        self,
        *,
        depth: int | None = None,
        check_liveness: bool = True,
        max_states: int | None = None,
    ) -> OwnerReport:
        """Explore until no new state appears (or `depth`), stopping at the first violation."""
        world = self.world
        report = OwnerReport(world.model.name, world.bounds.describe())
        if world.defect.name:
            report.model += f" with seeded defect {world.defect.name}"
        started = time.perf_counter()
        cpu_started = time.process_time()
        root = self._add(world.initial(), -1, "")
        assert root == 0
        frontier = [0]
        level = transitions = 0
        violation: tuple[Violation, int, str | None] | None = None
        journal_violations = world.journal_violations
        states, index = self.states, self.index
        while frontier and violation is None:
            if depth is not None and level >= depth:
                report.unexpanded = len(frontier)
                break
            next_frontier: list[int] = []
            for source in frontier:
                for label, target_state, broken in world.moves(states[source]):
                    transitions += 1
                    if broken is not None:
                        violation = (broken, source, label)
                        break
                    target = index.get(target_state)
                    if target is None:
                        target = self._add(target_state, source, label)
                        assert target is not None
                        found = journal_violations[target_state.journal]
                        if found is not None:
                            violation = (found, target, None)
                            break
                        next_frontier.append(target)
                    if target != source:
                        self.edge_from.append(source)
                        self.edge_to.append(target)
                if violation is not None:
                    break
                if max_states is not None and len(states) >= max_states:
                    break
            if next_frontier:
                level += 1
            frontier = next_frontier
            if max_states is not None and len(states) >= max_states:
                report.unexpanded = len(frontier)
                break
        report.states = len(states)
        report.journals = len(world.views)
        report.transitions = transitions
        report.journal_calls = world.journal_calls
        report.max_depth = level
        if violation is not None:
            found_violation, state, last = violation
            report.counterexample = self.trace(found_violation, state, last)
        elif check_liveness and report.unexpanded == 0:
            report.liveness_checked = True
            good = bytearray(world.settled(s) for s in states)
            required = bytearray(world.someone_alive(s) for s in states)
            stuck = first_stuck(len(states), self.edge_from, self.edge_to, good, required)
            if stuck is not None:
                report.counterexample = self.trace(
                    Violation(
                        "VER-20",
                        "from the state this trace reaches, with an owner alive, no state where "
                        "every journaled run has ended and every command is answered is reachable",
                    ),
                    stuck,
                    None,
                )
        report.seconds = time.perf_counter() - started
        report.cpu_seconds = time.process_time() - cpu_started
        return report

    def trace(self, violation: Violation, state: int, last: str | None) -> OwnerTrace:
        """The moves from the initial state to `state` (then `last`), and the journal there."""
        moves: list[str] = [] if last is None else [last]
        final = self.states[state]
        if last is not None:
            # The violating move's target: the journal it wrote (or the source's, if refused).
            for label, target, _ in self.world.moves(final):
                if label == last:
                    final = target
                    break
        while state > 0:
            moves.append(self.via[state])
            state = self.parent[state]
        moves.reverse()
        return OwnerTrace(violation, tuple(moves), self.world.journal_events(final))


def explore_owners(
    world: OwnerWorld,
    *,
    depth: int | None = None,
    check_liveness: bool = True,
    max_states: int | None = None,
) -> OwnerReport:
    """Explore the ownership world exhaustively (within its bounds)."""
    return OwnerExplorer(world).run(
        depth=depth if depth is not None else world.bounds.depth,
        check_liveness=check_liveness,
        max_states=max_states,
    )


def replay_moves(
    world: OwnerWorld, moves: tuple[str, ...] | list[str]
) -> tuple[Violation | None, int]:
    """Replay a trace's moves from `world`'s initial state: the first violation met (of a move,
    or of a journal it reaches) and the number of moves made; a move the state does not offer
    stops the replay there."""
    state = world.initial()
    for done, label in enumerate(moves):
        for move, target, broken in world.moves(state):
            if move == label:
                if broken is not None:
                    return broken, done + 1
                state = target
                found = world.journal_violations[state.journal]
                if found is not None:
                    return found, done + 1
                break
        else:
            return None, done
    return None, len(moves)
