"""A race machine for upgrades (spec/upgrades.md, UPG-8): deploys of every change kind (with
and without a migration, with and without the old version kept) interleaved with a run's effect
answers, interrupts, resumes and process restarts, every event passing the runtime's own meeting
check as the writer passes it."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from interruptible import (
    Coordinator,
    EffectCanceled,
    EffectLost,
    InterruptRequested,
    Migration,
    ResumeRequested,
    RunStatus,
    RunUpgraded,
    Sequence,
    StartEffect,
    StepStatus,
)
from interruptible._lifecycle import LIVE_STEP_STATUSES
from interruptible._runtime._upgrades import MEETING_EVENTS, Meeting
from interruptible._verify._checker._upgrades import BASE, CHANGES, RUN, _dropping, _Path, _trusting
from interruptible._vocabulary import Event, RunRequested

CID = "c"


class UpgradeRaceMachine(RuleBasedStateMachine):
    """One run of a three-step pipeline while its definition is changed under it."""

    seeded = False  # the broken machine trusts a migration whose transform drops a kept step

    def __init__(self) -> None:
        super().__init__()
        self.path = _Path(Coordinator([BASE]))
        self.versions = 1
        self.migrations: tuple[Migration, ...] = ()
        self.kept: set[str] = set()  # every step id whose result was kept (renamed as it moves)
        self.started_kept: list[str] = []
        current = self.path.coordinator.current["p"]
        self.submit(
            RunRequested(self.path.id(), CID, RUN, "p", None, None, False, 0.0, None, *current)
        )

    # --- the writer's path: the meeting check, then reduce ----------------------------------------

    def meeting(self) -> Any:
        if self.seeded and self.migrations:
            run = self.path.state.run(RUN)
            return _trusting(self.path, run, self.migrations[0])
        return Meeting(lambda: self.path.coordinator, self.migrations, self.path.id, lambda: 0.0)

    def submit(self, event: Event) -> None:
        if type(event) in MEETING_EVENTS:
            met = self.meeting()(self.path.state, event)
            if isinstance(met, Exception):
                return  # refused: nothing journaled
            for before in met or ():
                self.fold(before)
        self.fold(event)

    def fold(self, event: Event) -> None:
        outcome = self.path.fold(event)
        if outcome.rejected:
            return
        if isinstance(event, RunUpgraded) and isinstance(event.renames, dict):
            renamed = {event.renames.get(step_id, step_id) for step_id in self.kept}
            self.kept = {step_id for step_id in renamed if step_id is not None}
        for directive in outcome.directives:
            if isinstance(directive, StartEffect) and directive.step_id in self.kept:
                self.started_kept.append(directive.step_id)
        run = outcome.state.run(RUN)
        if run is not None:
            self.kept |= {s.step_id for s in run.steps if s.status is StepStatus.completed}

    def run(self) -> Any:
        return self.path.state.run(RUN)

    # --- rules ------------------------------------------------------------------------------------

    @precondition(lambda self: self.run().status is RunStatus.running)
    @rule()
    def answer(self) -> None:
        """The live step moves one step further: started, answered, or its gate answered."""
        event = self.path.next_answer()
        if event is not None:
            self.submit(event)

    @precondition(lambda self: self.run().status is RunStatus.running)
    @rule()
    def interrupt(self) -> None:
        """An interrupt, and the cancelled effects' answers."""
        self.submit(InterruptRequested(self.path.id(), CID, RUN))
        for step in self.run().steps:
            if step.status is StepStatus.cancelling:
                args = (CID, RUN, step.step_id, step.effect_id, step.attempt)
                self.submit(EffectCanceled(self.path.id(), *args))

    @precondition(lambda self: self.run().status is RunStatus.interrupted)
    @rule()
    def resume(self) -> None:
        self.submit(ResumeRequested(self.path.id(), CID, RUN))

    @precondition(lambda self: not self.run().is_terminal)
    @rule()
    def restart(self) -> None:
        """The process stops; the next answers each live effect as lost (recovery)."""
        for step in self.run().steps:
            if step.status in LIVE_STEP_STATUSES:
                args = (CID, RUN, step.step_id, step.effect_id, step.attempt, "process_restart")
                self.submit(EffectLost(self.path.id(), *args))

    @precondition(lambda self: not self.run().is_terminal)
    @rule(kind=st.sampled_from(sorted(CHANGES)), migrate=st.booleans(), keep=st.booleans())
    def deploy(self, kind: str, migrate: bool, keep: bool) -> None:
        """A new version is deployed: the change kind, a migration for it or not, the old
        version kept registered beside it or not."""
        steps, renames = CHANGES[kind]
        old = self.path.coordinator.modes["p"]
        self.versions += 1
        new = Sequence("p", steps, str(self.versions))
        old_version = getattr(old, "version", None)
        assert old_version is not None
        self.migrations = ()
        if self.seeded:
            self.migrations = (
                Migration("p", old_version, new.version or "", renames or {}, _dropping),
            )
        elif migrate and renames is not None:
            self.migrations = (Migration("p", old_version, new.version or "", renames),)
        self.path.coordinator = Coordinator([old, new] if keep else [new])

    @precondition(lambda self: self.run().is_terminal)
    @rule()
    def settled(self) -> None:
        """The run has ended: only the invariants are left to check (one run per machine)."""

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def upg_8_no_kept_step_runs_again(self) -> None:
        assert not self.started_kept, f"UPG-8: kept steps {self.started_kept} started again"

    @invariant()
    def upg_8_the_run_never_fails(self) -> None:
        run = self.run()
        message = run.error.message if run.error is not None else ""
        assert run.status is not RunStatus.failed, f"UPG-8: the run failed ({message})"

    @invariant()
    def upg_8_no_step_is_skipped(self) -> None:
        run = self.run()
        if run.status is RunStatus.completed:
            mode = self.path.coordinator.journaled_mode("p", run.fingerprint, run.definition)
            assert mode is not None
            done = {s.step_id for s in run.steps if s.status is StepStatus.completed}
            skipped = [s.step_id for s in mode.steps if s.step_id not in done]  # type: ignore[attr-defined]
            assert not skipped, f"UPG-8: steps {skipped} were skipped"

    @invariant()
    def upg_8_replay_is_exact(self) -> None:
        newest = self.path.coordinator.modes["p"]
        again = _Path(Coordinator([newest]))
        for event in self.path.events:
            again.fold(event)
        assert again.state == self.path.state, "UPG-8: replay with the newest version differs"


class TrustingUpgradeMachine(UpgradeRaceMachine):
    """Seeded defect: migrations are applied as declared, their transform unchecked."""

    seeded = True
