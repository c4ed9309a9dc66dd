"""The model check of upgrades: every change kind, at every point of a run, with and without a
migration (spec/upgrades.md, UPG-8).

Theory of operation
-------------------
A three-step pipeline (a `tool` step, a `human_gate`, a `system` step) is driven by the real
coordinator along its one path to the end. After each event of that path (each point of the run),
two copies are taken: one where the process stops (its live effects are answered `effect_lost`,
as recovery and takeover do), and one where the run was interrupted first (and is then resumed).
At that moment the definition changes (each kind in `CHANGES`), with and without the migration
the kind can use, and the meeting is decided exactly as the runtime decides it (`Meeting`, the
writer's own check). The run is then driven to its end (each effect started and answered, each
gate answered) and three properties are checked:

- no kept step runs again: no `start_effect` after the meeting names a step (under its new id)
  whose result was kept before it;
- no step is skipped: a run that completes has a kept result for every step of the definition it
  ended on (and a run whose every effect succeeds never fails, as it would if a move planned a
  kept step again, which the core refuses);
- replay is exact: the journal of the path (every event folded, the meeting's included), folded
  again by a coordinator that registers only the new version, gives the same states and
  directives.

`seeded=True` replaces the check of migrations by trust (a migration whose context transform drops
a kept step's output is applied as declared): the properties must then fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any, Final

from ..._core import ConversationState, Coordinator, Outcome, Sequence, initial_state
from ..._core._definitions import Migration, judge
from ..._lifecycle import LIVE_STEP_STATUSES, RunStatus, StepClass, StepStatus
from ..._runtime._upgrades import Meeting, upgrade_event
from ..._vocabulary import (
    EffectCanceled,
    EffectCompleted,
    EffectLost,
    EffectStarted,
    Event,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    StartEffect,
    StepDefinition,
    StepPolicy,
)

CID: Final = "c"
RUN: Final = "r"


def _tool(step_id: str, **arguments: Any) -> StepDefinition:
    return StepDefinition(step_id, StepClass.tool, {"name": "t", "arguments": arguments})


A: Final = _tool("a")
GATE: Final = StepDefinition("g", StepClass.human_gate, {"question": "ok?"})
SYSTEM: Final = StepDefinition("s", StepClass.system, {"name": "f", "arguments": {}})
BASE: Final = Sequence("p", (A, GATE, SYSTEM), "1")

# Each change kind: the new version's steps, and the migration it can use (None: none helps).
CHANGES: Final[dict[str, tuple[tuple[StepDefinition, ...], dict[str, str | None] | None]]] = {
    "append": ((A, GATE, SYSTEM, _tool("t")), None),
    "insert_before": ((A, _tool("x"), GATE, SYSTEM), None),
    "remove_ahead": ((A, GATE), None),
    "remove_behind": ((GATE, SYSTEM), {"a": None}),
    "reorder": ((GATE, A, SYSTEM), None),
    "rename": ((_tool("a2"), GATE, SYSTEM), {"a": "a2"}),
    "class": ((StepDefinition("a", StepClass.system, A.input), GATE, SYSTEM), {}),
    "input": ((_tool("a", n=2), GATE, SYSTEM), {}),
    "policy_ahead": ((A, GATE, replace(SYSTEM, policy=StepPolicy(max_attempts=3))), None),
    "policy_live": ((A, replace(GATE, policy=StepPolicy(timeout=9.0)), SYSTEM), None),
}


def _dropping(context: Any) -> Any:
    """A broken transform: it drops the first kept output and moves the run back to it."""
    chunks = [pair for chunk in context["outputs"] for pair in chunk][1:]
    return {**context, "next": 0, "outputs": [chunks] if chunks else []}


@dataclass
class UpgradeReport:
    """What the check explored and what it found."""

    paths: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


class _Path:
    """One run driven by the real coordinator, its events kept as its journal."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.state: ConversationState = initial_state()
        self.events: list[Event] = []
        self.starts: list[StartEffect] = []
        self._ids = count(1)

    def id(self) -> str:
        return f"e{next(self._ids)}"

    def fold(self, event: Event) -> Outcome:
        outcome = self.coordinator.reduce(self.state, event)
        if not outcome.rejected:
            self.events.append(event)
            self.state = outcome.state
            self.starts.extend(d for d in outcome.directives if isinstance(d, StartEffect))
        return outcome

    def copy(self) -> _Path:
        twin = _Path(self.coordinator)
        twin.state, twin.events, twin.starts = self.state, list(self.events), list(self.starts)
        twin._ids = count(len(self.events) + 100)
        return twin

    def next_answer(self) -> Event | None:
        """The event that moves the run's live step one move further (its start, its answer, or
        its gate's answer); None when the run has nothing to move."""
        run = self.state.run(RUN)
        if run is None or run.is_terminal or run.status is not RunStatus.running:
            return None
        live = [step for step in run.steps if step.status in LIVE_STEP_STATUSES]
        if not live:
            return None
        step = live[-1]
        assert step.effect_id is not None
        args = (CID, RUN, step.step_id, step.effect_id, step.attempt)
        if step.status is StepStatus.scheduled:
            return EffectStarted(self.id(), *args)
        if step.status is StepStatus.waiting_input:
            return HumanInputReceived(self.id(), CID, RUN, step.step_id, True)
        return EffectCompleted(self.id(), *args, output=step.step_id)

    def step_once(self) -> bool:
        """Fold `next_answer`; False when nothing is left to do."""
        event = self.next_answer()
        if event is None:
            return False
        self.fold(event)
        return True


def _points() -> Iterator[_Path]:
    """The run of `BASE` after each event of its one path to the end (not the end itself)."""
    coordinator = Coordinator([BASE])
    path = _Path(coordinator)
    current = coordinator.current["p"]
    path.fold(RunRequested(path.id(), CID, RUN, "p", None, None, False, 0.0, None, *current))
    while True:
        yield path.copy()
        if not path.step_once():
            return


def check_upgrades(*, seeded: bool = False) -> UpgradeReport:
    """Explore every change kind at every point, with and without a migration (UPG-8)."""
    report = UpgradeReport()
    for kind, (steps, renames) in CHANGES.items():
        new = Sequence("p", steps, "2")
        migrations: list[tuple[Migration, ...]] = [()]
        if renames is not None:
            migrations.append((Migration("p", "1", "2", renames),))
        if seeded:
            migrations = [(Migration("p", "1", "2", renames or {}, _dropping),)]
        for migration in migrations:
            for point in _points():
                for interrupted in (False, True):
                    _explore(report, kind, point.copy(), new, migration, interrupted, seeded)
    return report


def _explore(
    report: UpgradeReport,
    kind: str,
    path: _Path,
    new: Sequence,
    migrations: tuple[Migration, ...],
    interrupted: bool,
    seeded: bool,
) -> None:
    run = path.state.run(RUN)
    assert run is not None
    if run.is_terminal:
        return
    report.paths += 1
    where = f"{kind} at {len(path.events)} events{' interrupted' if interrupted else ''}"
    if migrations:
        where += " with a migration"
    if interrupted:
        path.fold(InterruptRequested(path.id(), CID, RUN))
        for step in path.state.run(RUN).steps:  # type: ignore[union-attr]
            if step.status is StepStatus.cancelling:
                assert step.effect_id is not None
                args = (CID, RUN, step.step_id, step.effect_id, step.attempt)
                path.fold(EffectCanceled(path.id(), *args))
    # The process is replaced: the new version is registered, the old one is not.
    path.coordinator = Coordinator([new])
    before = path.state.run(RUN)
    assert before is not None
    kept = {s.step_id for s in before.steps if s.status is StepStatus.completed}
    meeting_events = _meeting_events(path, before)
    verdict = judge(before, path.coordinator.versions, path.coordinator.current, migrations)
    report.verdicts[verdict.kind] = report.verdicts.get(verdict.kind, 0) + 1
    meeting = Meeting(lambda: path.coordinator, migrations, path.id, lambda: 0.0)
    starts_before = len(path.starts)
    for event in meeting_events:
        met = (_trusting(path, before, migrations[0]) if seeded and migrations else meeting)(
            path.state, event
        )
        if isinstance(met, Exception):
            if path.state.run(RUN) != before:
                report.violations.append(f"{where}: a refused meeting changed the run")
            return  # refused: the run stays as it was (interrupted)
        for prior in met or ():
            if path.fold(prior).rejected:
                report.violations.append(f"{where}: the core refused {type(prior).__name__}")
        path.fold(event)
    renames = dict(verdict.renames or {}) if verdict.moves or seeded else {}
    kept = {new_id for old in kept if (new_id := renames.get(old, old)) is not None}
    while path.step_once():
        pass
    for start in path.starts[starts_before:]:
        if start.step_id in kept:
            report.violations.append(f"{where}: kept step {start.step_id!r} ran again")
    final = path.state.run(RUN)
    assert final is not None
    if final.status is RunStatus.failed:  # every effect succeeds here: only a move can fail it
        error = final.error.message if final.error is not None else ""
        report.violations.append(f"{where}: the run failed after the meeting ({error})")
    if final.status is RunStatus.completed:
        ended_on = new if final.fingerprint == path.coordinator.fingerprint("p") else BASE
        done = {s.step_id for s in final.steps if s.status is StepStatus.completed}
        skipped = [s.step_id for s in ended_on.steps if s.step_id not in done]
        if skipped:
            report.violations.append(f"{where}: steps {skipped} were skipped")
    _check_replay(report, where, path, new)


def _meeting_events(path: _Path, run: Any) -> list[Event]:
    """What meets the run: a resume if interrupted, else recovery's `effect_lost` answers."""
    if run.status is RunStatus.interrupted:
        return [ResumeRequested(path.id(), CID, RUN)]
    return [
        EffectLost(path.id(), CID, RUN, s.step_id, s.effect_id, s.attempt, "process_restart")
        for s in run.steps
        if s.status in LIVE_STEP_STATUSES
    ]


def _trusting(
    path: _Path, run: Any, migration: Migration
) -> Callable[[ConversationState, Event], tuple[Event, ...] | None]:
    """The seeded defect: the migration applied as declared, its transform unchecked."""

    def meet(state: ConversationState, event: Event) -> tuple[Event, ...] | None:
        current = state.run(RUN)
        if current is None or current.fingerprint in path.coordinator.versions:
            return None
        honest = replace(migration, context=None)
        verdict = judge(current, path.coordinator.versions, path.coordinator.current, (honest,))
        if not verdict.moves:
            return None
        assert migration.context is not None
        trusted = replace(verdict, context=migration.context(verdict.context))
        return (upgrade_event(trusted, CID, RUN, path.id(), 0.0),)

    return meet


def _check_replay(report: UpgradeReport, where: str, path: _Path, new: Sequence) -> None:
    """The path's journal, folded by a coordinator that registers only the new version."""
    again = _Path(Coordinator([new]))
    for event in path.events:
        again.fold(event)
    if again.state != path.state or again.events != path.events:
        report.violations.append(f"{where}: replay with only the new version differs")
