"""A reference model of the core for one `Sequence` pipeline, written apart from the core.

It predicts, for every event, the disposition (`applied`, `ignored`, `rejected`) and the status
of every run and of every planned step, from design.md and spec/core.md alone, with plain
mutable records and no lifecycle tables. The race machine compares it with the real core after
every rule (VER-14): two independent readings of the spec that must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from interruptible import StepClass, StepDefinition
from interruptible._vocabulary import FailureCategory, JsonValue

APPLIED, IGNORED, REJECTED = "applied", "ignored", "rejected"
LIVE: Final = frozenset({"scheduled", "running", "waiting_input", "cancelling"})
UNCANCELLED: Final = frozenset({"scheduled", "running", "waiting_input"})
FINAL: Final = frozenset({"completed", "failed", "canceled"})
TERMINAL: Final = frozenset({"completed", "failed", "canceled"})
_NOTHING: Final = object()  # no answer kept


@dataclass
class RefStep:
    """One step: planned once it was first scheduled."""

    definition: StepDefinition
    status: str = "pending"
    attempt: int = 0
    failures: int = 0
    progress: int = -1
    answer: object = _NOTHING  # a human answer kept until the gate opens
    result: object = _NOTHING  # the kept result's output

    @property
    def planned(self) -> bool:
        return self.attempt > 0


@dataclass
class RefRun:
    """One run of the pipeline."""

    run_id: str
    input: JsonValue
    principal: str | None
    steps: list[RefStep] = field(default_factory=list)
    status: str = "running"

    def step(self, step_id: str) -> RefStep | None:
        return next((s for s in self.steps if s.definition.step_id == step_id), None)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class Reference:
    """The expected behaviour of the core for runs of one `Sequence` of `steps`."""

    def __init__(self, mode: str, steps: tuple[StepDefinition, ...]) -> None:
        self.mode = mode
        self.definitions = steps
        self.runs: dict[str, RefRun] = {}
        self.active: str | None = None

    # --- helpers -------------------------------------------------------------------------------

    def _effect(self, run: RefRun, step: RefStep) -> str:
        return f"{run.run_id}/{step.definition.step_id}/{step.attempt}"

    def _schedule(self, step: RefStep) -> None:
        step.attempt += 1
        step.progress = -1
        step.status = "scheduled"

    def _advance(self, run: RefRun) -> None:
        if run.status != "running" or any(s.status in LIVE for s in run.steps):
            return
        for step in run.steps:
            if step.status not in ("completed", "failed"):
                self._schedule(step)
                return
        run.status = "completed"
        self._ended(run)

    def _end(self, run: RefRun, status: str) -> None:
        run.status = status
        for step in run.steps:
            if step.status not in FINAL:
                step.status = "canceled"
        self._ended(run)

    def _ended(self, run: RefRun) -> None:
        if self.active == run.run_id:
            self.active = None

    def _keep(self, run: RefRun, step: RefStep, output: object) -> None:
        step.status = "completed"
        step.result = output
        step.answer = _NOTHING
        self._advance(run)

    # --- run requests --------------------------------------------------------------------------

    def run_requested(
        self, run_id: str, input: JsonValue, principal: str | None, supersede: bool
    ) -> str:
        existing = self.runs.get(run_id)
        if existing is not None:
            same = (existing.input, existing.principal) == (input, principal)
            return IGNORED if same else REJECTED
        if self.active is not None:
            active = self.runs[self.active]
            if not supersede or principal != active.principal:
                return REJECTED
            self._end(active, "canceled")
        run = RefRun(run_id, input, principal, [RefStep(d) for d in self.definitions])
        self.runs[run_id] = run
        self.active = run_id
        self._advance(run)
        return APPLIED

    def interrupt(self, run_id: str, principal: str | None) -> str:
        run = self.runs.get(run_id)
        if run is None:
            return REJECTED
        if principal != run.principal:
            return REJECTED
        if run.status != "running":
            return IGNORED
        for step in run.steps:
            if step.status in UNCANCELLED:
                step.status = "cancelling"
        run.status = "interrupted"
        return APPLIED

    def resume(self, run_id: str, principal: str | None) -> str:
        run = self.runs.get(run_id)
        if run is None or principal != run.principal:
            return REJECTED
        if run.status == "running":
            return IGNORED
        if run.status != "interrupted":
            return REJECTED
        run.status = "running"
        self._advance(run)
        return APPLIED

    def cancel(self, run_id: str, principal: str | None) -> str:
        run = self.runs.get(run_id)
        if run is None or principal != run.principal:
            return REJECTED
        if run.terminal:
            return IGNORED
        self._end(run, "canceled")
        return APPLIED

    # --- effects -------------------------------------------------------------------------------

    def effect(
        self,
        kind: str,
        run_id: str,
        step_id: str,
        effect_id: str,
        *,
        sequence: int = 0,
        category: FailureCategory = FailureCategory.transient,
        retryable: bool = False,
        output: object = None,
    ) -> str:
        run = self.runs.get(run_id)
        if run is None:
            return REJECTED
        if run.terminal:
            return IGNORED
        step = run.step(step_id)
        if step is None or not step.planned:
            return REJECTED
        if effect_id != self._effect(run, step):
            return IGNORED  # stale
        if kind == "started":
            if step.status != "scheduled":
                return IGNORED
            if step.definition.step_class is StepClass.human_gate:
                if step.answer is not _NOTHING:
                    self._keep(run, step, step.answer)
                else:
                    step.status = "waiting_input"
            else:
                step.status = "running"
            return APPLIED
        if step.status not in LIVE:
            return IGNORED
        if kind == "progress":
            if step.status == "cancelling" or sequence <= step.progress:
                return IGNORED
            if step.status == "scheduled":
                return REJECTED
            step.progress = sequence
            return APPLIED
        if kind == "completed":
            self._keep(run, step, output)
            return APPLIED
        if kind == "lost":  # the runtime lost it: pending again, the attempt not counted
            step.status = "pending"
            self._advance(run)
            return APPLIED
        if kind == "canceled":
            if step.status != "cancelling":
                return REJECTED
            step.status = "pending"
            self._advance(run)
            return APPLIED
        # failed
        if step.status == "cancelling":
            step.status = "pending"
            self._advance(run)
            return APPLIED
        policy = step.definition.policy
        step.failures += 1
        if retryable and category in policy.retry_on and step.failures < policy.max_attempts:
            self._schedule(step)
            return APPLIED
        step.status = "failed"
        if policy.on_failure.value == "continue":
            self._advance(run)
        else:
            self._end(run, "failed")
        return APPLIED

    # --- human gates ---------------------------------------------------------------------------

    def human_input(self, run_id: str, step_id: str, value: object, principal: str | None) -> str:
        run = self.runs.get(run_id)
        if run is None or principal != run.principal:
            return REJECTED
        step = run.step(step_id)
        if step is None or step.definition.step_class is not StepClass.human_gate:
            return REJECTED
        kept = step.result if step.result is not _NOTHING else step.answer
        if kept is not _NOTHING:
            return IGNORED if kept == value else REJECTED
        if run.terminal or step.status in FINAL:
            return REJECTED
        if step.status == "waiting_input" and run.status == "running":
            self._keep(run, step, value)
        else:
            step.answer = value  # kept until the gate opens
        return APPLIED

    # --- what the core must agree with ---------------------------------------------------------

    def statuses(self) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
        """Each run's status and its planned steps' statuses."""
        return {
            run_id: (
                run.status,
                tuple((s.definition.step_id, s.status) for s in run.steps if s.planned),
            )
            for run_id, run in self.runs.items()
        }
