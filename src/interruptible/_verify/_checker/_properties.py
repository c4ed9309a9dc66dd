"""The verified properties, as plain functions over one transition or one state.

Theory of operation
-------------------
Every property of `spec/verification.md` that can be decided from one `reduce` call (the state
before, the event, the outcome) is a *transition property*; the few that need the world's view
of effects (which effects are in flight, how many cancels each got) are *ledger properties*,
decided from the conversation state and an `EffectView` per effect the world knows. Properties
about whole histories ("exactly one `emit_output` per run, ever") are stated as transition
properties that imply them by induction: the `emit_output` comes in the one event that moves the
run into a terminal status, and no event emits anything for a run that had already ended.

The same functions serve the Hypothesis machines (sampled interleavings, `tests/stateful/`) and
the exhaustive checker (`_explore.py`), so both check exactly the same thing. Each returns a list
of `Violation`s, empty when the property holds; none of them raises on a wrong outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..._core import RUN, ConversationState, Disposition, Outcome, RunState
from ..._lifecycle import ACTIVE_RUN_STATUSES, RunStatus, StepStatus
from ..._vocabulary import (
    CancelEffects,
    Directive,
    EmitAudit,
    EmitLifecycle,
    EmitOutput,
    EmitProgress,
    Event,
    RunRequested,
    StartEffect,
    effect_id_for,
    idempotency_key_for,
)

# The property ids and what each one says; spec/verification.md states them with the same words.
PROPERTIES: Final = {
    "VER-1": "every run status change is an edge of RunLifecycle (RUN-2, RUN-3)",
    "VER-2": "at most one active run per conversation, and active_run_id names it (CORE-6)",
    "VER-3": "terminal exclusivity: one emit_output per run, in the event that ends it, and no "
    "directive for an ended run afterwards (DIR-1, RUN-6, CORE-21)",
    "VER-4": "at most one live effect per step (CORE-19, STEP-3)",
    "VER-5": "every in-flight effect is its step's current effect or has had exactly one cancel; "
    "no effect is named by two cancels; no step waits for an effect that already answered "
    "(DIR-3, STEP-4, CORE-17)",
    "VER-6": "a step with a kept result is never started again (CORE-11, STEP-2)",
    "VER-7": "every directive carries the event's conversation_id, a run_id and cause_id = "
    "event_id; start_effect ids, key and policy derive from the step (CORE-15, CORE-4)",
    "VER-8": "directive order: the outcome's one cancel_effects first; per run, emit_output last "
    "(DIR-2, RUN-9)",
    "VER-9": "a rejected or ignored event returns the very state given; an ignored one emits "
    "nothing, a rejected one at most a refusal's audit (CORE-2)",
    "VER-10": "reduce never raises (CORE-1)",
    "VER-11": "replay parity: folding the same events again gives the same states and directives "
    "(CORE-5)",
    "VER-12": "liveness under a fair environment: from every reachable state a state where every "
    "run has ended is reachable",
    "VER-13": "the checker's state key is canonical: equal keys exactly for equal states",
    "VER-14": "an independent reference model predicts every disposition and every run and "
    "step status",
    "VER-15": "every seeded defect is caught, by the property it breaks",
    "VER-16": "the CI bound explores at least 100,000 distinct states in under two minutes",
}

# A step here owns a live effect that has not been asked to cancel (STEP-4).
_UNCANCELLED: Final = frozenset(
    {StepStatus.scheduled, StepStatus.running, StepStatus.waiting_input}
)
_RUN_EDGES: Final = frozenset((t.source, t.target) for t in RUN.transitions)
_STATUS_BY_VALUE: Final = {status.value: status for status in RunStatus}
_RUN_LIFECYCLE_NAME: Final = {status: f"run.{status.value}" for status in RunStatus}
# Compared with `==`, as their values are: a status is an enum member, and `.value` is slow.
_COMPLETED: Final = StepStatus.completed
_ENDED_STEP: Final = (StepStatus.failed, StepStatus.canceled)


def retained_runs(state: ConversationState) -> tuple[RunState, ...]:
    """The retained runs: the history, oldest first, then the active run."""
    active = state.active_run
    return state.run_history if active is None else (*state.run_history, active)


def _has_ended(state: ConversationState, run_id: str) -> bool:
    run = state.run(run_id)
    return run.is_terminal if run is not None else run_id in state.run_ids


@dataclass(frozen=True, slots=True)
class Violation:
    """A property that does not hold, with what was seen."""

    property_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.property_id}: {self.message}"


@dataclass(frozen=True, slots=True)
class EffectView:
    """What the world knows about one effect: whose it is, whether it is live, its cancels."""

    effect_id: str
    run_id: str
    step_id: str
    live: bool
    cancels: int
    stray: bool = False  # a cancel named it while it was not in flight


# --- transition properties ---------------------------------------------------------------------


def run_matrix(pre: ConversationState, event: Event, outcome: Outcome) -> list[Violation]:
    """VER-1: each run's lifecycle directives form a path of RunLifecycle edges to its status."""
    post = outcome.state
    found: list[Violation] = []
    chains: dict[str, list[RunStatus]] = {}
    for directive in outcome.directives:
        if type(directive) is EmitLifecycle and directive.step_id is None:
            status = _STATUS_BY_VALUE.get(directive.status)
            if status is None or directive.name != _RUN_LIFECYCLE_NAME[status]:
                found.append(Violation("VER-1", f"unknown run lifecycle directive {directive!r}"))
                continue
            chains.setdefault(directive.run_id, []).append(status)
    for run in retained_runs(post):
        run_id = run.run_id
        before = pre.run(run_id)
        if before is None and run_id in pre.run_ids:
            found.append(Violation("VER-1", f"forgotten run {run_id!r} came back"))
            continue
        current = RunStatus.pending if before is None else before.status
        for status in chains.pop(run_id, ()):
            if (current, status) not in _RUN_EDGES:
                found.append(
                    Violation("VER-1", f"run {run_id!r}: {current.value} -> {status.value}")
                )
            current = status
        if current is not run.status:
            found.append(
                Violation(
                    "VER-1",
                    f"run {run_id!r} is {run.status.value} but its lifecycle directives end at "
                    f"{current.value}",
                )
            )
    for run in retained_runs(pre):
        if not run.is_terminal and post.run(run.run_id) is None:
            found.append(Violation("VER-1", f"active run {run.run_id!r} vanished"))
    for run_id in chains:
        found.append(Violation("VER-1", f"lifecycle directives for unknown run {run_id!r}"))
    return found


def one_active_run(state: ConversationState) -> list[Violation]:
    """VER-2: only the active run is pending, running or interrupted; ids are unique."""
    found = []
    active = state.active_run
    if active is not None and active.status not in ACTIVE_RUN_STATUSES:
        found.append(Violation("VER-2", f"active run {active.run_id!r} is {active.status.value}"))
    for run in state.run_history:
        if run.status in ACTIVE_RUN_STATUSES:
            found.append(
                Violation(
                    "VER-2", f"run {run.run_id!r} is in the history but is {run.status.value}"
                )
            )
    ids = [run.run_id for run in retained_runs(state)]
    if len(set(ids)) != len(ids) or not state.run_ids.issuperset(ids):
        found.append(
            Violation("VER-2", f"retained run ids {ids} vs run_ids {sorted(state.run_ids)}")
        )
    return found


def terminal_exclusivity(pre: ConversationState, event: Event, outcome: Outcome) -> list[Violation]:
    """VER-3: `emit_output` exactly in the event that ends a run; nothing for an ended run."""
    found: list[Violation] = []
    outputs: dict[str, int] = {}
    for directive in outcome.directives:
        run_id = directive.run_id
        if _has_ended(pre, run_id) and not (type(directive) is EmitAudit and not directive.allowed):
            found.append(
                Violation(
                    "VER-3",
                    f"{type(directive).__name__} for run {run_id!r}, which had already ended",
                )
            )
        if type(directive) is EmitOutput:
            outputs[run_id] = outputs.get(run_id, 0) + 1
            after = outcome.state.run(run_id)
            if after is not None and directive.status != after.status.value:
                found.append(
                    Violation(
                        "VER-3",
                        f"emit_output says {directive.status} but run {run_id!r} is "
                        f"{after.status.value}",
                    )
                )
    for run in retained_runs(outcome.state):
        run_id = run.run_id
        before = pre.run(run_id)
        ends_now = run.is_terminal and (before is None or not before.is_terminal)
        count = outputs.pop(run_id, 0)
        if count != (1 if ends_now else 0):
            found.append(
                Violation(
                    "VER-3",
                    f"run {run_id!r} got {count} emit_output in one event "
                    f"({'it ended there' if ends_now else 'it did not end there'})",
                )
            )
    for run_id, count in outputs.items():
        found.append(Violation("VER-3", f"{count} emit_output for forgotten run {run_id!r}"))
    return found


def kept_results_stay(pre: ConversationState, event: Event, outcome: Outcome) -> list[Violation]:
    """VER-6: no `start_effect` for a step that had a kept result or had ended."""
    found: list[Violation] = []
    for directive in outcome.directives:
        if type(directive) is not StartEffect:
            continue
        run = pre.run(directive.run_id)
        step = None if run is None else run.step(directive.step_id)
        if step is not None and (step.result is not None or step.status == _COMPLETED):
            found.append(
                Violation(
                    "VER-6",
                    f"step {directive.step_id!r} of run {directive.run_id!r} has a kept result "
                    f"and was started again ({directive.effect_id})",
                )
            )
        elif step is not None and step.status in _ENDED_STEP:
            found.append(
                Violation(
                    "VER-6",
                    f"step {directive.step_id!r} of run {directive.run_id!r} had ended "
                    f"({step.status.value}) and was started again",
                )
            )
    for run in retained_runs(outcome.state):
        for step in run.steps:
            if step.result is not None and step.status != _COMPLETED:
                found.append(
                    Violation(
                        "VER-6",
                        f"step {step.step_id!r} of run {run.run_id!r} has a kept result but is "
                        f"{step.status.value}",
                    )
                )
    return found


def causality(pre: ConversationState, event: Event, outcome: Outcome) -> list[Violation]:
    """VER-7: ids on every directive; a `start_effect` derived from its step."""
    found: list[Violation] = []
    allowed_runs = {event.run_id}
    if type(event) is RunRequested and pre.active_run_id is not None:
        allowed_runs.add(pre.active_run_id)  # supersede ends the active run in the same outcome
    for directive in outcome.directives:
        if directive.conversation_id != event.conversation_id:
            found.append(Violation("VER-7", f"wrong conversation_id on {directive!r}"))
        if directive.cause_id != event.event_id:
            found.append(
                Violation("VER-7", f"cause_id {directive.cause_id!r} != {event.event_id!r}")
            )
        if directive.run_id not in allowed_runs:
            found.append(Violation("VER-7", f"run_id {directive.run_id!r} not caused by {event!r}"))
        if type(directive) is StartEffect:
            found.extend(_start_effect_problems(outcome.state, directive))
        elif type(directive) is EmitProgress and not (directive.step_id and directive.effect_id):
            found.append(Violation("VER-7", f"progress without step or effect: {directive!r}"))
        elif (
            type(directive) is EmitLifecycle
            and directive.step_id is not None
            and (directive.effect_id is None or directive.attempt is None)
        ):
            found.append(Violation("VER-7", f"step lifecycle without effect: {directive!r}"))
    return found


def _start_effect_problems(post: ConversationState, directive: StartEffect) -> list[Violation]:
    run_id, step_id, attempt = directive.run_id, directive.step_id, directive.attempt
    problems = []
    if directive.effect_id != effect_id_for(run_id, step_id, attempt):
        problems.append(f"effect_id {directive.effect_id!r}")
    if directive.idempotency_key != idempotency_key_for(run_id, step_id, attempt):
        problems.append(f"idempotency_key {directive.idempotency_key!r}")
    run = post.run(run_id)
    step = None if run is None else run.step(step_id)
    if step is None:
        problems.append("no such step")
    else:
        definition = step.definition
        if directive.policy is not definition.policy and directive.policy != definition.policy:
            problems.append("policy differs from the step definition's")
        if directive.step_class is not definition.step_class or directive.input != definition.input:
            problems.append("class or input differs from the step definition's")
    return [Violation("VER-7", f"start_effect {directive.effect_id}: {p}") for p in problems]


def directive_order(pre: ConversationState, event: Event, outcome: Outcome) -> list[Violation]:
    """VER-8: per run, at most one `cancel_effects`, first; `emit_output` last; ids unique."""
    found: list[Violation] = []
    per_run: dict[str, list[Directive]] = {}
    for directive in outcome.directives:
        if type(directive) is not EmitAudit:
            directives = per_run.get(directive.run_id)
            if directives is None:
                per_run[directive.run_id] = [directive]
            else:
                directives.append(directive)
    for run_id, directives in per_run.items():
        cancels: list[int] = []
        outputs: list[int] = []
        for index, directive in enumerate(directives):
            if type(directive) is CancelEffects:
                cancels.append(index)
            elif type(directive) is EmitOutput:
                outputs.append(index)
        if cancels and cancels != [0]:
            found.append(Violation("VER-8", f"run {run_id!r}: cancel_effects at {cancels}"))
        for index in cancels:
            cancel = directives[index]
            assert isinstance(cancel, CancelEffects)
            ids = cancel.effect_ids
            if not ids or len(set(ids)) != len(ids):
                found.append(Violation("VER-8", f"run {run_id!r}: cancel_effects ids {ids}"))
        if outputs and outputs != [len(directives) - 1]:
            found.append(Violation("VER-8", f"run {run_id!r}: emit_output at {outputs}"))
    return found


def cancel_first_in_outcome(
    pre: ConversationState, event: Event, outcome: Outcome
) -> list[Violation]:
    """VER-8, DIR-2 read strictly: the outcome's one `cancel_effects` is its first directive
    (also in a supersede, which ends one run and starts another: tests/models/test_core_findings.py
    keeps the reproduction of the core's first answer there)."""
    directives = outcome.directives
    for directive in directives[1:]:
        if type(directive) is CancelEffects:  # one after the first: the order is wrong
            cancels = [i for i, d in enumerate(directives) if type(d) is CancelEffects]
            kinds = [type(d).__name__ for d in directives]
            return [Violation("VER-8", f"cancel_effects at {cancels} of {kinds}")]
    return []


def refusals_change_nothing(
    pre: ConversationState, event: Event, outcome: Outcome
) -> list[Violation]:
    """VER-9: ignored and rejected outcomes return `pre` itself, with no effect directive."""
    if outcome.disposition is Disposition.applied:
        if outcome.error is not None or outcome.reason is not None:
            return [Violation("VER-9", "an applied outcome carries an error or ignored reason")]
        return []
    found = []
    if outcome.state is not pre:
        found.append(Violation("VER-9", f"{outcome.disposition.value} event changed the state"))
    if outcome.disposition is Disposition.ignored:
        if outcome.directives:
            found.append(Violation("VER-9", f"ignored event emitted {outcome.directives!r}"))
        if outcome.reason is None:
            found.append(Violation("VER-9", "ignored outcome without a reason"))
    else:
        audits = [d for d in outcome.directives if type(d) is EmitAudit and not d.allowed]
        if len(audits) != len(outcome.directives) or len(audits) > 1:
            found.append(Violation("VER-9", f"rejected event emitted {outcome.directives!r}"))
        if outcome.error is None:
            found.append(Violation("VER-9", "rejected outcome without an error"))
    return found


TRANSITION_PROPERTIES: Final = (
    run_matrix,
    terminal_exclusivity,
    kept_results_stay,
    causality,
    directive_order,
    cancel_first_in_outcome,
    refusals_change_nothing,
)


def transition_violations(
    pre: ConversationState, event: Event, outcome: Outcome
) -> list[Violation]:
    """Every transition property of one `reduce` call, plus VER-2 on the state it produced."""
    if outcome.state is pre and not outcome.directives:
        return refusals_change_nothing(pre, event, outcome)  # the others hold trivially
    found: list[Violation] = []
    for check in TRANSITION_PROPERTIES:
        found += check(pre, event, outcome)
    found += one_active_run(outcome.state)
    return found


# --- ledger properties -------------------------------------------------------------------------


def one_live_effect_per_step(effects: Iterable[EffectView]) -> list[Violation]:
    """VER-4: no two effects of one step are in flight at once."""
    seen: dict[tuple[str, str], str] = {}
    found = []
    for effect in effects:
        if not effect.live:
            continue
        step = (effect.run_id, effect.step_id)
        other = seen.get(step)
        if other is not None:
            found.append(
                Violation(
                    "VER-4",
                    f"step {effect.step_id!r} of run {effect.run_id!r} has two live effects: "
                    f"{other} and {effect.effect_id}",
                )
            )
        seen[step] = effect.effect_id
    return found


def cancels_reach_effects(
    state: ConversationState, effects: Iterable[EffectView]
) -> list[Violation]:
    """VER-5: an in-flight effect is tracked by its running step, or had exactly one cancel;
    and a step that waits for an effect waits for one that is in flight (no lost answer)."""
    found = []
    effects = list(effects)
    live = {effect.effect_id for effect in effects if effect.live}
    active = state.active_run
    if active is not None:
        for step in active.steps:
            if step.is_live and step.effect_id not in live:
                found.append(
                    Violation(
                        "VER-5",
                        f"step {step.step_id!r} of run {active.run_id!r} is {step.status.value}, "
                        f"waiting for {step.effect_id}, which already answered",
                    )
                )
    for effect in effects:
        if effect.stray:
            found.append(
                Violation(
                    "VER-5", f"cancel_effects named {effect.effect_id}, which was not in flight"
                )
            )
        if effect.cancels > 1:
            found.append(
                Violation("VER-5", f"effect {effect.effect_id} got {effect.cancels} cancels")
            )
        if not effect.live or effect.cancels == 1:
            continue
        run = state.run(effect.run_id)
        if run is None or run.status is not RunStatus.running:
            status = "forgotten" if run is None else run.status.value
            found.append(
                Violation(
                    "VER-5",
                    f"effect {effect.effect_id} is in flight with no cancel; its run is {status}",
                )
            )
            continue
        tracker = run.step(effect.step_id)
        if (
            tracker is None
            or tracker.effect_id != effect.effect_id
            or tracker.status not in _UNCANCELLED
        ):
            found.append(
                Violation(
                    "VER-5",
                    f"effect {effect.effect_id} is in flight with no cancel, and its step no "
                    f"longer tracks it",
                )
            )
    return found


def ledger_violations(state: ConversationState, effects: Iterable[EffectView]) -> list[Violation]:
    """VER-4 and VER-5 over the world's effects."""
    views = list(effects)
    return one_live_effect_per_step(views) + cancels_reach_effects(state, views)
