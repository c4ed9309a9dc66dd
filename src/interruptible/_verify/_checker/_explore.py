"""The exhaustive bounded model checker: breadth-first over (conversation, environment) states.

Theory of operation
-------------------
A state of the checked system is a pair: the core's `ConversationState` and the world's `Env`
(`_world.py`). From each state, the world's every possible next event is sent to the real
`Coordinator.reduce`; the outcome's state and directives give the successor. States are
identified by a canonical key (`_key.py`), and explored level by level, so the first violation
found has a shortest trace.

Two tables keep this fast without checking less:

* Conversation states are interned: each distinct one gets a number (by `KeyCache.interned_key`,
  built from numbered run keys), and a product state's key is `(number, env)`. Many product
  states share one conversation state (they differ in the world's budgets or ledger), so
* `reduce` results are memoized per (conversation number, event). `reduce` is a pure function of
  those two (CORE-4, checked by VER-11), so each distinct pair is reduced, and its transition
  properties checked, exactly once.

Ledger properties (VER-4, VER-5) depend on the env too and are checked on every new product
state. A move that changes neither the conversation nor the ledger (an ignored duplicate, a
refused request) is checked and then not followed: its target differs from its source only by a
smaller budget, so it has no behaviour the source lacks (see `_world.py`). The inner loop decides
from each move's cost whether the env lets it through, and builds the env after it only for a
move that is not pruned: most moves (three in four on the CI bound) are known no-ops.

Liveness (VER-12) is checked after the search, by reverse reachability over the explored edges:
every state must reach a state where the conversation has runs and none is active. States left
unexpanded by a depth bound are counted apart and never reported.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from array import array
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from ..._codec import to_json
from ..._core import ConversationState, Disposition, Outcome, initial_state
from ..._vocabulary import Event
from ._key import conversation_key
from ._liveness import first_stuck
from ._properties import (
    Violation,
    ledger_violations,
    refusals_change_nothing,
    transition_violations,
)
from ._world import (
    DUPLICATE,
    EFFECT,
    EFFECTS,
    FREE,
    GATES,
    INTERRUPT,
    LATE,
    LOST,
    OPEN,
    REFUSED,
    Env,
    Ledger,
    Move,
    Start,
    World,
    directive_summary,
    effect_views,
)

# What a (conversation, move) pair gave: the target conversation, the effects started, the
# effects canceled, and whether the event changed nothing at all.
MemoEntry = tuple[int, tuple[Start, ...], tuple[str, ...], bool]

_APPLIED, _IGNORED, _REJECTED = Disposition.applied, Disposition.ignored, Disposition.rejected

# Hears how far a search got: (distinct states, transitions, depth) so far (CLI-9).
Progress = Callable[[int, int, int], None]
# A person at the command line wants a sign of life about once a second.
PROGRESS_EVERY: Final = 1.0
# States expanded between two readings of the clock: a state costs about 40 us, so the clock is
# read every few milliseconds, and its cost (about 50 ns) vanishes.
_CLOCK_EVERY: Final = 64


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A shortest trace to a violation, as events that replay it from `initial_state()`."""

    violation: Violation
    events: tuple[Event, ...]

    def to_json(self) -> list[dict[str, object]]:
        """The trace as a list of JSON events (`interruptible._codec.to_json`)."""
        return [to_json(event) for event in self.events]


@dataclass(slots=True)
class Report:
    """What one exploration did and found."""

    model: str
    bounds: str
    states: int = 0
    conversation_states: int = 0
    transitions: int = 0
    reductions: int = 0
    pruned: int = 0
    max_depth: int = 0
    unexpanded: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: the figure that other load cannot skew
    liveness_checked: bool = False
    counterexample: Counterexample | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no property failed."""
        return self.counterexample is None

    @property
    def states_per_second(self) -> float:
        """Distinct states explored per second of wall time."""
        return self.states / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_states_per_second(self) -> float:
        """Distinct states explored per second of this process's CPU time."""
        return self.states / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """The figures, one per line, for a terminal or a log."""
        out = [
            f"model: {self.model}",
            f"bounds: {self.bounds}",
            f"states: {self.states} distinct ({self.conversation_states} conversation states)",
            f"transitions: {self.transitions} ({self.reductions} distinct reduce calls, "
            f"{self.pruned} no-op moves checked and not followed)",
            f"max depth: {self.max_depth}"
            + (f" ({self.unexpanded} states left unexpanded)" if self.unexpanded else ""),
            f"seconds: {self.seconds:.2f} wall, {self.cpu_seconds:.2f} CPU",
            f"states/s: {self.states_per_second:,.0f} wall, {self.cpu_states_per_second:,.0f} CPU",
        ]
        if self.counterexample is None:
            liveness = "checked" if self.liveness_checked else "not checked"
            out.append(f"result: no violation (liveness {liveness})")
        else:
            cx = self.counterexample
            out.append(f"result: VIOLATION {cx.violation}")
            out.append(f"counterexample: {len(cx.events)} events")
        return out


class Explorer:
    """Breadth-first search of one `World`, keeping what a counterexample needs."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.keys = world.keys
        self.conv_index: dict[Hashable, int] = {}
        self.convs: list[ConversationState] = []
        self.conv_moves: list[list[Move] | None] = []
        self.memo: list[dict[str, MemoEntry]] = []  # per conversation, per move label
        self.state_index: dict[tuple[int, Env], int] = {}
        self.states: list[tuple[int, Env]] = []
        self.parent = array("i")
        self.via: list[str] = []
        self.depth = array("i")
        self.edge_from = array("i")
        self.edge_to = array("i")
        self.reductions = 0
        self._reduce_event = world.coordinator.reduce

    # --- interning -----------------------------------------------------------------------------

    def _intern_conv(self, state: ConversationState) -> int:
        key = self.keys.interned_key(state)
        index = self.conv_index.get(key)
        if index is None:
            index = len(self.convs)
            self.conv_index[key] = index
            self.convs.append(state)
            self.conv_moves.append(None)
            self.memo.append({})
        return index

    def _add_state(self, conv: int, env: Env, parent: int, via: str, depth: int) -> int | None:
        key = (conv, env)
        if key in self.state_index:
            return None
        index = len(self.states)
        self.state_index[key] = index
        self.states.append(key)
        self.parent.append(parent)
        self.via.append(via)
        self.depth.append(depth)
        return index

    # --- the search ----------------------------------------------------------------------------

    def run(
        self,
        *,
        depth: int | None = None,
        check_liveness: bool = True,
        max_states: int | None = None,
        progress: Progress | None = None,
        progress_every: float = PROGRESS_EVERY,
    ) -> Report:
        """Explore until no new state appears (or `depth`), stopping at the first violation;
        `progress(states, transitions, depth)` is called about every `progress_every` seconds
        and once at the end of the search (CLI-9)."""
        with _young_collections_only():
            return self._run(depth, check_liveness, max_states, progress, progress_every)

    def _run(
        self,
        depth: int | None,
        check_liveness: bool,
        max_states: int | None,
        progress: Progress | None,
        progress_every: float,
    ) -> Report:
        world = self.world
        report = Report(world.model.name, world.bounds.describe())
        started = time.perf_counter()
        cpu_started = time.process_time()
        absorb = world.absorb
        conversation, env = world.initial()
        root = self._add_state(self._intern_conv(conversation), env, -1, "", 0)
        assert root == 0
        frontier = [0]
        level = 0
        ledger_moves = world.ledger_moves
        convs, conv_moves, memos = self.convs, self.conv_moves, self.memo
        state_index = self.state_index
        states = self.states
        parent, via, depths = self.parent, self.via, self.depth
        edge_from, edge_to = self.edge_from, self.edge_to
        transitions = pruned = 0
        violation: tuple[Violation, int, str] | None = None
        # The clock is read once per _CLOCK_EVERY expanded states, not once per state.
        report_at = started + progress_every
        clock_every = _CLOCK_EVERY if progress_every > 0 else 1
        expanded = 0
        while frontier and violation is None:
            if depth is not None and level >= depth:
                report.unexpanded = len(frontier)
                break
            next_frontier: list[int] = []
            for source in frontier:
                if progress is not None:
                    expanded += 1
                    if expanded >= clock_every:
                        expanded = 0
                        now = time.perf_counter()
                        if now >= report_at:
                            progress(len(states), transitions, level)
                            report_at = now + progress_every
                conv, env = states[source]
                moves = conv_moves[conv]
                if moves is None:
                    moves = conv_moves[conv] = world.conversation_moves(convs[conv])
                interrupts, duplicates, refused, lost, ledger, gates = env
                if ledger:
                    moves = moves + ledger_moves(ledger)
                memo = memos[conv]
                live: set[str] | None = None
                for label, event, cost, subject, after in moves:
                    # Whether the env lets the move through (see the costs in `_world.py`);
                    # the commonest costs are tested first.
                    if cost is DUPLICATE:
                        if not duplicates:
                            continue
                    elif cost is LATE:
                        if not duplicates:
                            continue
                        if live is None:
                            live = {entry[0] for entry in ledger}
                        if subject in live:
                            continue
                    elif cost is REFUSED:
                        if not refused:
                            continue
                    elif cost is LOST:
                        if not lost:
                            continue
                    elif cost is INTERRUPT:
                        if not interrupts:
                            continue
                    elif cost is OPEN and subject in gates:
                        continue
                    transitions += 1
                    entry = memo.get(label)
                    if entry is None:
                        reduced = self._reduce(conv, label, event)
                        if isinstance(reduced, Violation):
                            violation = (reduced, source, label)
                            break
                        entry = reduced
                    target_conv, starts, cancels, noop = entry
                    # The env after the move, before the core's directives. A no-op that only
                    # spends a budget is pruned: nothing new can happen in its target.
                    if cost is DUPLICATE or cost is LATE:
                        if noop:
                            pruned += 1
                            continue
                        target_env = (interrupts, duplicates - 1, refused, lost, ledger, gates)
                    elif cost is EFFECT:
                        target_env = (interrupts, duplicates, refused, lost, after, gates)
                    elif cost is LOST:
                        target_env = (interrupts, duplicates, refused, lost - 1, after, gates)
                    elif cost is FREE:
                        if noop:
                            pruned += 1
                            continue
                        target_env = env
                    elif cost is REFUSED:
                        if noop:
                            pruned += 1
                            continue
                        target_env = (interrupts, duplicates, refused - 1, lost, ledger, gates)
                    elif cost is INTERRUPT:
                        if noop:
                            pruned += 1
                            continue
                        target_env = (interrupts - 1, duplicates, refused, lost, ledger, gates)
                    else:  # OPEN
                        opened = tuple(sorted((*gates, subject)))
                        target_env = (interrupts, duplicates, refused, lost, ledger, opened)
                    if starts or cancels:
                        target_env = absorb(target_env, starts, cancels)
                    if (
                        target_conv == conv
                        and target_env[EFFECTS] == ledger
                        and target_env[GATES] == gates
                    ):
                        pruned += 1  # only a budget changed: nothing new can happen there
                        continue
                    key = (target_conv, target_env)
                    target = state_index.get(key)
                    if target is None:
                        target = len(states)
                        state_index[key] = target
                        states.append(key)
                        parent.append(source)
                        via.append(label)
                        depths.append(level + 1)
                        found = ledger_violations(convs[target_conv], effect_views(target_env))
                        if found:
                            violation = (found[0], source, label)
                            break
                        next_frontier.append(target)
                    edge_from.append(source)
                    edge_to.append(target)
                if violation is not None or (max_states is not None and len(states) >= max_states):
                    break
            if next_frontier:
                level += 1
            frontier = next_frontier
            if max_states is not None and len(states) >= max_states:
                report.unexpanded = len(frontier)
                break
        if progress is not None:
            progress(len(states), transitions, level)
        report.transitions = transitions
        report.pruned = pruned
        report.states = len(self.states)
        report.reductions = self.reductions
        report.conversation_states = len(self.convs)
        report.max_depth = level
        if violation is not None:
            found_violation, source, label = violation
            report.counterexample = Counterexample(found_violation, self.trace(source, label))
        elif check_liveness and report.unexpanded == 0:
            stuck = self.stuck_state()
            report.liveness_checked = True
            if stuck is not None:
                report.counterexample = Counterexample(
                    Violation(
                        "VER-12",
                        "from the state this trace reaches, no state where every run has ended "
                        "is reachable",
                    ),
                    self.trace(stuck, None),
                )
        report.seconds = time.perf_counter() - started
        report.cpu_seconds = time.process_time() - cpu_started
        return report

    def _reduce(self, conv: int, label: str, event: Event) -> MemoEntry | Violation:
        """Reduce one (conversation, event) pair, check its transition properties, memoize."""
        self.reductions += 1
        pre = self.convs[conv]
        try:
            outcome = self._reduce_event(pre, event)
        except Exception as exc:  # VER-10: reduce must be total
            return Violation("VER-10", f"reduce raised {exc!r}")
        directives = outcome.directives
        entry: MemoEntry
        if outcome.state is pre and not directives:
            # Nothing happened (five reduce calls in six): only VER-9 can fail, and for such an
            # outcome it holds when the disposition comes with its reason and nothing else.
            # Written out here; `refusals_change_nothing` says what is wrong otherwise.
            disposition = outcome.disposition
            if not (
                (disposition is _IGNORED and outcome.reason is not None)
                or (disposition is _REJECTED and outcome.error is not None)
                or (disposition is _APPLIED and outcome.error is None and outcome.reason is None)
            ):
                found = refusals_change_nothing(pre, event, outcome)
                if found:
                    return found[0]
            entry = (conv, (), (), True)
        else:
            found = transition_violations(pre, event, outcome)
            if found:
                return found[0]
            target = conv if outcome.state is pre else self._intern_conv(outcome.state)
            starts, cancels = directive_summary(directives)
            entry = (target, starts, cancels, target == conv and not starts and not cancels)
        self.memo[conv][label] = entry
        return entry

    # --- liveness ------------------------------------------------------------------------------

    def stuck_state(self) -> int | None:
        """The shallowest state from which no state with every run ended is reachable."""
        good = bytearray(len(self.states))
        for index, (conv, _env) in enumerate(self.states):
            state = self.convs[conv]
            if state.active_run_id is None and state.run_ids:
                good[index] = 1
        return first_stuck(len(self.states), self.edge_from, self.edge_to, good)

    # --- traces --------------------------------------------------------------------------------

    def trace(self, state: int, last: str | None) -> tuple[Event, ...]:
        """The events from the initial state to `state` (then `last`), with ids e1, e2, ..."""
        labels: list[str] = [] if last is None else [last]
        while state > 0:
            labels.append(self.via[state])
            state = self.parent[state]
        labels.reverse()
        events = self.world._events
        return tuple(
            dataclasses.replace(events[label], event_id=f"e{number}")
            for number, label in enumerate(labels, start=1)
        )


# Full collections wait for this many young ones: never, in any exploration we run.
_FULL_COLLECTION_NEVER: Final = 1 << 30


@contextmanager
def _young_collections_only() -> Iterator[None]:
    """Run the cyclic garbage collector's young collections only, and restore its thresholds.

    The explorer's tables grow to millions of tracked objects (states, memo entries, interned
    conversations) that all live until the search ends. A full collection traverses every one of
    them, and CPython runs one whenever the old generation grew by a quarter: on the CI bound,
    eleven full collections took 1.3 s of 7, and found nothing (the tables are not garbage).
    Young collections still run as usual, so a cycle that a `reduce` call leaves behind is still
    collected while it is young; an old one waits for the next full collection after the search.
    """
    first, second, third = gc.get_threshold()
    gc.set_threshold(first, second, _FULL_COLLECTION_NEVER)
    try:
        yield
    finally:
        gc.set_threshold(first, second, third)


def explore(
    world: World,
    *,
    depth: int | None = None,
    check_liveness: bool = True,
    max_states: int | None = None,
    progress: Progress | None = None,
    progress_every: float = PROGRESS_EVERY,
) -> Report:
    """Explore `world` exhaustively (within its bounds) and report figures and a counterexample;
    `progress(states, transitions, depth)` hears how far it got as it goes (CLI-9)."""
    return Explorer(world).run(
        depth=depth if depth is not None else world.bounds.depth,
        check_liveness=check_liveness,
        max_states=max_states,
        progress=progress,
        progress_every=progress_every,
    )


def replay_trace(
    world: World, events: tuple[Event, ...] | list[Event]
) -> tuple[list[Violation], list[Outcome]]:
    """Replay a trace with a fresh coordinator, checking every property after every event.

    Returns the violations of the first event that has any (or none), and the outcomes so far.
    Replay parity (VER-11) is checked too: a second fresh fold must give equal state keys and
    equal directives.
    """
    coordinator = world.fresh_coordinator()
    state = initial_state()
    ledger = Ledger()
    outcomes: list[Outcome] = []
    for event in events:
        try:
            outcome = coordinator.reduce(state, event)
        except Exception as exc:
            return [Violation("VER-10", f"reduce raised {exc!r}")], outcomes
        outcomes.append(outcome)
        found = transition_violations(state, event, outcome)
        ledger.sent(event)
        ledger.absorb(outcome)
        found.extend(ledger_violations(outcome.state, ledger.views()))
        state = outcome.state
        if found:
            return found, outcomes
    return parity_violations(world.fresh_coordinator().reduce, events, outcomes), outcomes


def parity_violations(
    reduce: Callable[[ConversationState, Event], Outcome],
    events: tuple[Event, ...] | list[Event],
    outcomes: list[Outcome],
) -> list[Violation]:
    """VER-11: folding `events` again gives the same states and directives as `outcomes`."""
    state = initial_state()
    for number, (event, expected) in enumerate(zip(events, outcomes, strict=False), start=1):
        outcome = reduce(state, event)
        if outcome.directives != expected.directives:
            return [Violation("VER-11", f"event {number}: directives differ on replay")]
        if conversation_key(outcome.state) != conversation_key(expected.state):
            return [Violation("VER-11", f"event {number}: state differs on replay")]
        state = outcome.state
    return []
