"""The environment of the model checker: everything the world could send the core next.

Theory of operation
-------------------
The core is a pure function of events; the world around it is callers (run, interrupt, resume,
cancel, answer a gate) and a runtime executing effects (started, progress, completed, failed,
canceled). A `World` enumerates, for one conversation state and one environment state, every
event the world could send next, within `Bounds`. The environment state is a small tuple:

    (interrupts_left, duplicates_left, unauthorized_left, lost_left, effects, gates)

`effects` is the world's ledger of effects in flight: one entry per `start_effect` the core
emitted and the effect has not answered yet, `(effect_id, run_id, step_id, attempt, step_class,
phase, cancels, progress)`, sorted by id, where `phase` is requested (0) or started (1) and
`cancels` counts the `cancel_effects` directives that named it. An answer removes the entry. A
cancel naming an effect that is not in flight leaves a marker entry (phase 2) for VER-5 to report.
`gates` lists the human gates already answered.

Moves are split by what they cost, which is what keeps the space finite and the liveness check
meaningful (a fair world can always make progress):

* free: a fresh run request (up to `runs`), the first `effect_started`, progress (up to
  `progress` per effect) and answer of each effect, resuming an interrupted run, cancelling the
  active run, the first answer to a gate the mode declares (before or after it is planned);
* `interrupts`: an authorized interrupt of a running run;
* `lost`: an `effect_lost` for an effect in flight (its runtime process stopped, CORE-25);
* `duplicates`: a duplicate, late or stale event (a second answer of an effect, a duplicate
  request, interrupt, resume or cancel, a resume of an unknown run, a conflicting gate answer);
* `unauthorized`: a request by a principal that may not make it.

An effect answers `effect_canceled` only after a cancel named it (a runtime cannot cancel what it
was not asked to). Late, duplicate and stale effect events are enumerated from the conversation
state (every attempt of every planned step has a derivable effect id, CORE-4), not from the
ledger, so answered effects need not be remembered.

A move whose event changes neither the conversation state nor the ledger (only a budget) is a
*no-op*: the explorer checks its transition and then prunes its target, whose every behaviour the
source state already has, with at least as much budget left.

The world lists moves, each with its cost, in two parts that are cached apart: the moves of the
conversation (`conversation_moves`: requests, gate answers, late and stale effect events; per
distinct run, so a few hundred lists serve the CI bound's 30,000 conversation states) and the
moves of the ledger (`ledger_moves`: each effect's answers, with the ledger after each). Which of
them a given env lets through, and the env after each, is decided by the explorer from the cost
alone, in its inner loop (`_explore.py`), so that no env is built for a move that is pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, replace
from typing import Final, Protocol

from ..._core import (
    NO_INPUT,
    ConversationState,
    Coordinator,
    Mode,
    Outcome,
    RunState,
    initial_state,
)
from ..._lifecycle import FINAL_STEP_STATUSES, RunStatus
from ..._vocabulary import (
    CancelEffects,
    CancelRequested,
    Directive,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectProgress,
    EffectStarted,
    Event,
    FailureCategory,
    HumanInputReceived,
    InterruptRequested,
    JsonValue,
    ResumeRequested,
    RunRequested,
    StartEffect,
    effect_id_for,
)
from ._key import KeyCache
from ._properties import EffectView, retained_runs

CONVERSATION: Final = "c1"
OWNER: Final = "alice"
INTRUDER: Final = "mallory"  # a principal the default authorizer refuses for every run
UNKNOWN_RUN: Final = "r0"  # never requested by the world

# The phase of an effect in the ledger; ANSWERED marks a cancel of an effect not in flight.
REQUESTED, STARTED, ANSWERED = 0, 1, 2

# What a move spends (compared by identity: each is one interned string).
FREE, INTERRUPT, DUPLICATE, REFUSED = "free", "interrupt", "duplicate", "refused"
# A duplicate effect event; skipped while its effect is still in flight (the free move covers it).
LATE = "late"
# The first answer of a gate: free, but it adds the gate to the env's answered gates (subject).
OPEN = "open"
# A move of an effect in flight: free, and it changes the ledger; LOST spends `lost` too.
EFFECT = "effect"
LOST = "lost"

EffectEntry = tuple[str, str, str, int, str, int, int, int]
Effects = tuple[EffectEntry, ...]
Env = tuple[int, int, int, int, Effects, tuple[str, ...]]
# Where the ledger and the answered gates are in an `Env`.
EFFECTS: Final = 4
GATES: Final = 5
Start = tuple[str, str, str, int, str]
# A move: (label, event, cost, subject, ledger after it). The subject is the gate an OPEN move
# answers or the effect id a LATE move names; the ledger is that of an EFFECT or LOST move.
Move = tuple[str, Event, str, str, Effects]


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much the world may do; every bound is finite, so the explored space is too."""

    runs: int = 2  # fresh run ids the world requests, r1, r2, ...
    steps: int = 2  # steps per run, read by the model when it builds its modes
    interrupts: int = 1  # authorized interrupts, over all runs
    duplicates: int = 1  # duplicate, late, stale or conflicting events, over all runs
    unauthorized: int = 1  # refused requests, over all runs
    progress: int = 1  # progress reports per effect
    lost: int = 1  # effects lost without an answer (effect_lost), over all runs
    depth: int | None = None  # events per path; None explores until no new state appears

    def describe(self) -> str:
        """The bounds as `name=value` pairs."""
        return " ".join(
            f"{name}={getattr(self, name)}"
            for name in (
                "runs",
                "steps",
                "interrupts",
                "duplicates",
                "unauthorized",
                "progress",
                "lost",
            )
        ) + (f" depth={self.depth}" if self.depth is not None else " depth=unbounded")


class Model(Protocol):
    """An environment model of `models/`: the modes it runs and what its effects answer."""

    @property
    def name(self) -> str:
        """The model's name, shown in reports."""
        ...

    @property
    def ci_bounds(self) -> Bounds:
        """The bound CI checks."""
        ...

    def modes(self, bounds: Bounds) -> SequenceOf[Mode]:
        """The modes the world's runs ask for."""
        ...

    def run_request(self, index: int) -> tuple[str, JsonValue]:
        """The mode and input of the world's run number `index` (1, 2, ...)."""
        ...

    def outputs(self, step_class: str, step_id: str) -> tuple[JsonValue, ...]:
        """The outputs an effect of this step may complete with (one move each)."""
        ...

    def gates(self, bounds: Bounds) -> SequenceOf[str]:
        """The human gate step ids a run may have; the world answers them, early or late."""
        ...


CoordinatorFactory = Callable[[SequenceOf[Mode]], Coordinator]


class World:
    """The moves of the world for one model and bounds, with the coordinator they are sent to."""

    def __init__(
        self,
        model: Model,
        bounds: Bounds,
        coordinator_factory: CoordinatorFactory = Coordinator,
    ) -> None:
        self.model = model
        self.bounds = bounds
        self.coordinator_factory = coordinator_factory
        self.coordinator = coordinator_factory(model.modes(bounds))
        self.gates = tuple(model.gates(bounds))
        self._events: dict[str, Event] = {}
        self._head_moves: dict[tuple[bool, int], list[Move]] = {}
        # The explorer interns states with these keys; a run's moves are cached by its number,
        # since equal runs have equal moves (a few hundred distinct runs in the CI bound, each
        # in a hundred conversation states).
        self.keys = KeyCache()
        self._run_moves: dict[int, list[Move]] = {}
        self._effect_moves: dict[
            EffectEntry, tuple[tuple[str, Event, EffectEntry | None, str], ...]
        ] = {}
        self._ledger_moves: dict[Effects, list[Move]] = {}

    def fresh_coordinator(self) -> Coordinator:
        """Another coordinator like the explored one (replay parity uses a fresh one)."""
        return self.coordinator_factory(self.model.modes(self.bounds))

    def initial(self) -> tuple[ConversationState, Env]:
        """The empty conversation and the world before it sent anything."""
        b = self.bounds
        return initial_state(), (b.interrupts, b.duplicates, b.unauthorized, b.lost, (), ())

    # --- events --------------------------------------------------------------------------------

    def _event(self, label: str, build: Callable[[str], Event]) -> Event:
        event = self._events.get(label)
        if event is None:
            event = build(label)
            self._events[label] = event
        return event

    def conversation_moves(self, state: ConversationState) -> list[Move]:
        """The moves that depend on the conversation only (what the env lets through is the
        explorer's to decide, by each move's cost)."""
        head_key = (state.active_run is None, len(state.run_ids))
        head = self._head_moves.get(head_key)
        if head is None:
            head = self._build_head_moves(*head_key)
            self._head_moves[head_key] = head
        out = list(head)
        run_number = self.keys.run_number
        for run in retained_runs(state):
            # A run's moves depend on that run alone.
            number = run_number(run)
            run_moves = self._run_moves.get(number)
            if run_moves is None:
                run_moves = self._run_moves[number] = self._build_run_moves(run)
            out.extend(run_moves)
        return out

    def _build_head_moves(self, idle: bool, used: int) -> list[Move]:
        moves: list[tuple[tuple[str, Event], str]] = []
        fresh_index = used + 1
        if fresh_index <= self.bounds.runs:
            mode, payload = self.model.run_request(fresh_index)
            run_id = f"r{fresh_index}"
            if idle:
                moves.append((self._request(run_id, mode, payload, False, OWNER), FREE))
            else:
                moves.append((self._request(run_id, mode, payload, True, OWNER), FREE))
                moves.append((self._request(run_id, mode, payload, False, OWNER), DUPLICATE))
                moves.append((self._request(run_id, mode, payload, True, INTRUDER), REFUSED))
        if used:
            moves.append((self._resume(UNKNOWN_RUN, OWNER), DUPLICATE))
        return [(label, event, cost, "", ()) for (label, event), cost in moves]

    def _build_run_moves(self, run: RunState) -> list[Move]:
        moves: list[tuple[tuple[str, Event], str]] = []
        if run.is_terminal:
            self._ended_run_moves(run, moves)
        else:
            self._active_run_moves(run, moves)
        out: list[Move] = []
        for (label, event), cost in moves:
            gate = _gate_of(event) if cost is FREE else ""
            out.append((label, event, OPEN, gate, ()) if gate else (label, event, cost, "", ()))
        run_id = run.run_id
        for step in run.steps:
            # The latest attempt's effect answers again (late or duplicate); the one before
            # answers once more (stale). Older attempts are stale the same way. For an ended
            # run one late completion per step stands for all (each is `run_terminal`).
            first = step.attempt if run.is_terminal else max(1, step.attempt - 1)
            for attempt in range(first, step.attempt + 1):
                effect_id = effect_id_for(run_id, step.step_id, attempt)
                late = self._late_moves(
                    run_id, step.step_id, step.definition.step_class.value, effect_id, attempt
                )
                if attempt < step.attempt or run.is_terminal:
                    late = late[1:2]
                for late_label, late_event in late:
                    out.append((late_label, late_event, LATE, effect_id, ()))
        return out

    def _ended_run_moves(self, run: RunState, moves: list[tuple[tuple[str, Event], str]]) -> None:
        """Requests about an ended run: each is a duplicate or late and must change nothing."""
        run_id = run.run_id
        moves.append((self._request(run_id, run.mode, run.input, False, OWNER), DUPLICATE))
        moves.append((self._interrupt(run_id, OWNER), DUPLICATE))
        moves.append((self._resume(run_id, OWNER), DUPLICATE))
        moves.append((self._cancel(run_id, OWNER), DUPLICATE))
        for gate in self.gates:
            moves.append((self._answer(run_id, gate, "yes", OWNER), DUPLICATE))

    def _active_run_moves(self, run: RunState, moves: list[tuple[tuple[str, Event], str]]) -> None:
        """Requests about the active run: interrupt, resume, cancel, answers; also refused ones."""
        run_id = run.run_id
        moves.append((self._request(run_id, run.mode, run.input, False, OWNER), DUPLICATE))
        moves.append((self._request(run_id, run.mode, ["other"], False, OWNER), DUPLICATE))
        if run.status is RunStatus.running:
            moves.append((self._interrupt(run_id, OWNER), INTERRUPT))
            moves.append((self._interrupt(run_id, INTRUDER), REFUSED))
            moves.append((self._resume(run_id, OWNER), DUPLICATE))
        elif run.status is RunStatus.interrupted:
            moves.append((self._resume(run_id, OWNER), FREE))
            moves.append((self._resume(run_id, INTRUDER), REFUSED))
            moves.append((self._interrupt(run_id, OWNER), DUPLICATE))
        moves.append((self._cancel(run_id, OWNER), FREE))
        moves.append((self._cancel(run_id, INTRUDER), REFUSED))
        for gate in self.gates:
            step = run.step(gate)
            early = any(step_id == gate for step_id, _ in run.early_inputs)
            if step is None:
                answered, closed = early, False
            else:
                answered = early or step.result is not None or not _is_no_input(step.input)
                closed = step.status in FINAL_STEP_STATUSES
            if not answered and not closed:
                moves.append((self._answer(run_id, gate, "yes", OWNER), FREE))
                moves.append((self._answer(run_id, gate, "yes", INTRUDER), REFUSED))
            else:
                moves.append((self._answer(run_id, gate, "yes", OWNER), DUPLICATE))
                moves.append((self._answer(run_id, gate, "no", OWNER), DUPLICATE))

    def _late_moves(
        self, run_id: str, step_id: str, step_class: str, effect_id: str, attempt: int
    ) -> list[tuple[str, Event]]:
        """A second `effect_started`, `effect_completed` and `effect_failed` of one effect."""
        ids = (CONVERSATION, run_id, step_id, effect_id, attempt)
        output = self.model.outputs(step_class, step_id)[0]  # the same event as the free move
        return [
            (
                f"started {effect_id}",
                self._event(f"started {effect_id}", lambda e: EffectStarted(e, *ids)),
            ),
            (
                f"complete {effect_id}",
                self._event(
                    f"complete {effect_id}", lambda e: EffectCompleted(e, *ids, output=output)
                ),
            ),
            (
                f"fail {effect_id} retryable",
                self._event(f"fail {effect_id} retryable", lambda e: _retryable(e, ids)),
            ),
        ]

    def _request(
        self, run_id: str, mode: str, payload: JsonValue, supersede: bool, principal: str
    ) -> tuple[str, Event]:
        label = f"request {run_id}{' supersede' if supersede else ''} by {principal}"
        if payload == ["other"]:
            label += " other-input"
        return label, self._event(
            label,
            lambda eid: RunRequested(
                eid, CONVERSATION, run_id, mode, payload, principal, supersede=supersede
            ),
        )

    def _interrupt(self, run_id: str, principal: str) -> tuple[str, Event]:
        label = f"interrupt {run_id} by {principal}"
        return label, self._event(
            label, lambda eid: InterruptRequested(eid, CONVERSATION, run_id, principal=principal)
        )

    def _resume(self, run_id: str, principal: str) -> tuple[str, Event]:
        label = f"resume {run_id} by {principal}"
        return label, self._event(
            label, lambda eid: ResumeRequested(eid, CONVERSATION, run_id, principal=principal)
        )

    def _cancel(self, run_id: str, principal: str) -> tuple[str, Event]:
        label = f"cancel {run_id} by {principal}"
        return label, self._event(
            label, lambda eid: CancelRequested(eid, CONVERSATION, run_id, principal=principal)
        )

    def _answer(self, run_id: str, step_id: str, value: str, principal: str) -> tuple[str, Event]:
        label = f"answer {run_id}/{step_id} {value} by {principal}"
        return label, self._event(
            label,
            lambda eid: HumanInputReceived(
                eid, CONVERSATION, run_id, step_id, value, principal=principal
            ),
        )

    def effect_moves(
        self, entry: EffectEntry
    ) -> tuple[tuple[str, Event, EffectEntry | None, str], ...]:
        """The free moves of one effect in flight: (label, event, entry after it or None once
        answered, cost)."""
        moves = self._effect_moves.get(entry)
        if moves is None:
            moves = tuple(self._build_effect_moves(entry))
            self._effect_moves[entry] = moves
        return moves

    def _build_effect_moves(
        self, entry: EffectEntry
    ) -> list[tuple[str, Event, EffectEntry | None, str]]:
        eid, run_id, step_id, attempt, step_class, phase, cancels, progress = entry
        ids = (CONVERSATION, run_id, step_id, eid, attempt)
        moves: list[tuple[str, Event, EffectEntry | None, str]] = []
        if phase == REQUESTED:
            label = f"started {eid}"
            event = self._event(label, lambda e: EffectStarted(e, *ids))
            started = (eid, run_id, step_id, attempt, step_class, STARTED, cancels, progress)
            moves.append((label, event, started, FREE))
        elif progress < self.bounds.progress:
            label = f"progress {eid} {progress + 1}"
            event = self._event(
                label,
                lambda e: EffectProgress(e, *ids, sequence=progress + 1, progress={"n": progress}),
            )
            reported = (eid, run_id, step_id, attempt, step_class, phase, cancels, progress + 1)
            moves.append((label, event, reported, FREE))
        for index, output in enumerate(self.model.outputs(step_class, step_id)):
            label = f"complete {eid}" + (f" #{index}" if index else "")
            moves.append((label, self._event(label, _completion(ids, output)), None, FREE))
        label = f"fail {eid} retryable"
        moves.append((label, self._event(label, lambda e: _retryable(e, ids)), None, FREE))
        label = f"fail {eid} fatal"
        event = self._event(
            label,
            lambda e: EffectFailed(
                e, *ids, category=FailureCategory.invalid_input, message="bad input"
            ),
        )
        moves.append((label, event, None, FREE))
        if cancels:
            label = f"canceled {eid}"
            moves.append((label, self._event(label, lambda e: EffectCanceled(e, *ids)), None, FREE))
        label = f"lost {eid}"
        moves.append((label, self._event(label, lambda e: EffectLost(e, *ids)), None, LOST))
        return moves

    # --- the environment's bookkeeping ---------------------------------------------------------

    def ledger_moves(self, effects: Effects) -> list[Move]:
        """The moves of the effects in flight, each with the ledger after it (cached per ledger:
        many states share one)."""
        moves = self._ledger_moves.get(effects)
        if moves is None:
            moves = []
            for index, entry in enumerate(effects):
                for label, event, after, cost in self.effect_moves(entry):
                    if after is None:
                        new_effects = (*effects[:index], *effects[index + 1 :])
                    else:
                        new_effects = (*effects[:index], after, *effects[index + 1 :])
                    moves.append((label, event, EFFECT if cost is FREE else cost, "", new_effects))
            self._ledger_moves[effects] = moves
        return moves

    @staticmethod
    def absorb(env: Env, starts: tuple[Start, ...], cancels: tuple[str, ...]) -> Env:
        """The env after the core's directives: new effects join the ledger, cancels count."""
        if not starts and not cancels:
            return env
        interrupts, duplicates, refused, lost, effects, gates = env
        entries = list(effects)
        for effect_id in cancels:
            for index, (eid, rid, sid, attempt, cls, phase, count, progress) in enumerate(entries):
                if eid == effect_id:
                    entries[index] = (eid, rid, sid, attempt, cls, phase, count + 1, progress)
                    break
            else:
                # A cancel for an effect that is not in flight: a marker for VER-5 to report.
                entries.append((effect_id, "?", "?", 0, "?", ANSWERED, 1, 0))
        for effect_id, run_id, step_id, attempt, step_class in starts:
            entries.append((effect_id, run_id, step_id, attempt, step_class, REQUESTED, 0, 0))
        entries.sort()
        return (interrupts, duplicates, refused, lost, tuple(entries), gates)


def _completion(ids: tuple[str, str, str, str, int], output: JsonValue) -> Callable[[str], Event]:
    def build(event_id: str) -> Event:
        return EffectCompleted(event_id, *ids, output=output)

    return build


def _retryable(event_id: str, ids: tuple[str, str, str, str, int]) -> EffectFailed:
    return EffectFailed(
        event_id, *ids, category=FailureCategory.transient, message="flaky", retryable=True
    )


def effect_views(env: Env) -> list[EffectView]:
    """The ledger as `EffectView`s, for the ledger properties."""
    return [
        EffectView(eid, rid, sid, phase != ANSWERED, cancels, phase == ANSWERED)
        for eid, rid, sid, _attempt, _cls, phase, cancels, _progress in env[EFFECTS]
    ]


def directive_summary(directives: Iterable[Directive]) -> tuple[tuple[Start, ...], tuple[str, ...]]:
    """The effects a list of directives starts and the effect ids it cancels."""
    starts: list[Start] = []
    cancels: list[str] = []
    for directive in directives:
        if type(directive) is StartEffect:
            starts.append(
                (
                    directive.effect_id,
                    directive.run_id,
                    directive.step_id,
                    directive.attempt,
                    directive.step_class.value,
                )
            )
        elif type(directive) is CancelEffects:
            cancels.extend(directive.effect_ids)
    return tuple(starts), tuple(cancels)


@dataclass(slots=True)
class _LedgerEntry:
    run_id: str
    step_id: str
    phase: int = REQUESTED
    cancels: int = 0
    stray: bool = False  # a cancel named it while it was not in flight


class Ledger:
    """A mutable effect ledger, for replaying a list of events outside the explorer."""

    def __init__(self) -> None:
        self.effects: dict[str, _LedgerEntry] = {}

    def sent(self, event: Event) -> None:
        """Record what an effect event says about its effect."""
        effect_id = getattr(event, "effect_id", None)
        entry = None if effect_id is None else self.effects.get(effect_id)
        if entry is None:
            return
        if type(event) is EffectStarted and entry.phase == REQUESTED:
            entry.phase = STARTED
        elif type(event) in (EffectCompleted, EffectFailed, EffectLost) or (
            type(event) is EffectCanceled and entry.cancels
        ):
            # An effect that was never asked to cancel cannot answer `canceled`: such an event
            # is bad input (the core rejects it), not the effect's answer.
            entry.phase = ANSWERED

    def absorb(self, outcome: Outcome) -> None:
        """Record the effects the outcome starts and the cancels it sends."""
        starts, cancels = directive_summary(outcome.directives)
        for effect_id in cancels:
            entry = self.effects.setdefault(effect_id, _LedgerEntry("?", "?", ANSWERED))
            entry.cancels += 1
            if entry.phase == ANSWERED:
                entry.stray = True
        for effect_id, run_id, step_id, _attempt, _class in starts:
            self.effects[effect_id] = _LedgerEntry(run_id, step_id)

    def copy(self) -> Ledger:
        """An independent copy (the ownership world checks a journal from its prefix's)."""
        other = Ledger()
        other.effects = {eid: replace(entry) for eid, entry in self.effects.items()}
        return other

    def views(self) -> list[EffectView]:
        """The ledger as `EffectView`s."""
        return [
            EffectView(eid, e.run_id, e.step_id, e.phase != ANSWERED, e.cancels, e.stray)
            for eid, e in sorted(self.effects.items())
        ]


def _is_no_input(value: object) -> bool:
    return value is NO_INPUT


def _gate_of(event: Event) -> str:
    if type(event) is HumanInputReceived and event.principal == OWNER and event.value == "yes":
        return f"{event.run_id}/{event.step_id}"
    return ""
