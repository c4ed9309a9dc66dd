"""The run and step lifecycles: declarations only.

Theory of operation
-------------------
These two python-statemachine classes are the single source of truth for every status, every
lifecycle event and every guard of the engine. Nothing here runs at event time: the interpreter
(`_interpreter.py`) reads each class once, compiles it into a frozen table, and the coordinator
fires that table. The spec's transition tables, diagrams and JSON files are generated from these
classes too, so a reviewer reading `spec/` reads exactly this file.

Three conventions make the declaration carry everything the table needs:

* Guards are plain names (`cond="no_step_left"`, `unless="..."`), never boolean expressions, so
  that the compiled table can evaluate them as lookups and the diagram prints them as written.
* The `on=` names of a transition are its *directive templates*: the directives that the
  coordinator emits when the transition fires (`interrupt` -> `cancel_effects`,
  `emit_lifecycle`). They are declared beside the transition they belong to, and
  `DIRECTIVE_KINDS` lists the only names allowed there.
* Transitions of one event from one status are tried in declaration order; the first whose guards
  all hold wins (python-statemachine's own rule, which the compiled table reproduces).

What differs per step class (`llm`, `tool`, `timer`, `human_gate`, `system`) is declared in
`STEP_CLASS_TRAITS`, read by the `awaits_input` guard; it is not an `if` chain in the coordinator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from statemachine import State, StateMachine


class RunStatus(StrEnum):
    """The status of a run."""

    pending = "pending"
    running = "running"
    interrupted = "interrupted"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"


class StepStatus(StrEnum):
    """The status of one step of a run."""

    pending = "pending"
    scheduled = "scheduled"
    running = "running"
    waiting_input = "waiting_input"
    cancelling = "cancelling"
    retrying = "retrying"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"


class StepClass(StrEnum):
    """What kind of work a step is; each class has one executor in a runtime."""

    llm = "llm"
    tool = "tool"
    timer = "timer"
    human_gate = "human_gate"
    system = "system"


class DirectiveKind(StrEnum):
    """The directives a transition may emit; a runtime carries them out."""

    start_effect = "start_effect"
    cancel_effects = "cancel_effects"
    emit_lifecycle = "emit_lifecycle"
    emit_progress = "emit_progress"
    emit_output = "emit_output"
    emit_audit = "emit_audit"


DIRECTIVE_KINDS: Final = frozenset(kind.value for kind in DirectiveKind)

TERMINAL_RUN_STATUSES: Final = frozenset(
    {RunStatus.completed, RunStatus.failed, RunStatus.canceled}
)
# A run in one of these statuses occupies its conversation (design: one active run).
ACTIVE_RUN_STATUSES: Final = frozenset(
    {RunStatus.pending, RunStatus.running, RunStatus.interrupted}
)
FINAL_STEP_STATUSES: Final = frozenset(
    {StepStatus.completed, StepStatus.failed, StepStatus.canceled}
)
# A step in one of these statuses has an effect that may still be alive in the runtime.
LIVE_STEP_STATUSES: Final = frozenset(
    {StepStatus.scheduled, StepStatus.running, StepStatus.waiting_input, StepStatus.cancelling}
)
# The step diagram draws each of these sets of statuses as one box, outermost first, so that a
# transition leaving every status of a box alike is drawn once, from the box (spec/lifecycles.md,
# SPEC-6): the live statuses; those of them not asked to cancel; those waiting for a start.
STEP_STATUS_GROUPS: Final = (
    ("live", LIVE_STEP_STATUSES),
    ("active", LIVE_STEP_STATUSES - {StepStatus.cancelling}),
    ("waiting to start", frozenset({StepStatus.pending, StepStatus.retrying})),
)


class RunLifecycle(StateMachine):
    """The lifecycle of a run: the legal status changes of RUN-2, exactly."""

    pending = State(initial=True)
    running = State()
    interrupted = State()
    completed = State(final=True)
    failed = State(final=True)
    canceled = State(final=True)

    start = pending.to(running, on="emit_lifecycle")
    interrupt = running.to(interrupted, on=["cancel_effects", "emit_lifecycle"])
    resume = interrupted.to(running, on="emit_lifecycle")
    complete = running.to(completed, cond="no_step_left", on=["emit_output", "emit_lifecycle"])
    fail = (
        pending.to(failed, on=["emit_output", "emit_lifecycle"])
        | running.to(failed, on=["cancel_effects", "emit_output", "emit_lifecycle"])
        | interrupted.to(failed, on=["emit_output", "emit_lifecycle"])
    )
    cancel = (
        pending.to(canceled, on=["emit_output", "emit_lifecycle"])
        | running.to(canceled, on=["cancel_effects", "emit_output", "emit_lifecycle"])
        | interrupted.to(canceled, on=["emit_output", "emit_lifecycle"])
    )


class StepLifecycle(StateMachine):
    """The lifecycle of one step, shared by every step class."""

    pending = State(initial=True)
    scheduled = State()
    running = State()
    waiting_input = State()
    cancelling = State()
    retrying = State()
    completed = State(final=True)
    failed = State(final=True)
    canceled = State(final=True)

    # The coordinator asks for an effect: the first attempt, a resumed one, or a retry.
    schedule = pending.to(scheduled, on=["start_effect", "emit_lifecycle"]) | retrying.to(
        scheduled, on=["start_effect", "emit_lifecycle"]
    )
    # A human gate whose answer arrived early completes as soon as its gate opens.
    effect_started = (
        scheduled.to(
            completed, cond=["awaits_input", "has_input"], on=["cancel_effects", "emit_lifecycle"]
        )
        | scheduled.to(waiting_input, cond="awaits_input", on="emit_lifecycle")
        | scheduled.to(running, on="emit_lifecycle")
    )
    effect_progress = running.to(running, internal=True, on="emit_progress") | waiting_input.to(
        waiting_input, internal=True, on="emit_progress"
    )
    human_input_received = waiting_input.to(completed, on=["cancel_effects", "emit_lifecycle"])
    effect_completed = (
        scheduled.to(completed, on="emit_lifecycle")
        | running.to(completed, on="emit_lifecycle")
        | waiting_input.to(completed, on="emit_lifecycle")
        # The result crossed the cancel: it is kept and the step is done.
        | cancelling.to(completed, on="emit_lifecycle")
    )
    effect_failed = (
        scheduled.to(retrying, cond=["attempts_left", "is_retryable"], on="emit_lifecycle")
        | scheduled.to(failed, on="emit_lifecycle")
        | running.to(retrying, cond=["attempts_left", "is_retryable"], on="emit_lifecycle")
        | running.to(failed, on="emit_lifecycle")
        | waiting_input.to(retrying, cond=["attempts_left", "is_retryable"], on="emit_lifecycle")
        | waiting_input.to(failed, on="emit_lifecycle")
        # A failure caused by an interrupt's cancel never fails the step.
        | cancelling.to(pending, on="emit_lifecycle")
    )
    effect_canceled = cancelling.to(pending, on="emit_lifecycle")
    # The runtime lost the effect (its process stopped): the step is pending again, uncounted.
    effect_lost = (
        scheduled.to(pending, on="emit_lifecycle")
        | running.to(pending, on="emit_lifecycle")
        | waiting_input.to(pending, on="emit_lifecycle")
        | cancelling.to(pending, on="emit_lifecycle")
    )
    # The run was interrupted: the live effect gets its one cancel, and the step waits for it.
    interrupt = (
        scheduled.to(cancelling, on=["cancel_effects", "emit_lifecycle"])
        | running.to(cancelling, on=["cancel_effects", "emit_lifecycle"])
        | waiting_input.to(cancelling, on=["cancel_effects", "emit_lifecycle"])
    )
    # The run ended (failed or canceled): the step ends too. A cancelling step already had its
    # one cancel, so it gets no second one.
    abandon = (
        pending.to(canceled, on="emit_lifecycle")
        | retrying.to(canceled, on="emit_lifecycle")
        | scheduled.to(canceled, on=["cancel_effects", "emit_lifecycle"])
        | running.to(canceled, on=["cancel_effects", "emit_lifecycle"])
        | waiting_input.to(canceled, on=["cancel_effects", "emit_lifecycle"])
        | cancelling.to(canceled, on="emit_lifecycle")
    )


@dataclass(frozen=True, slots=True)
class StepClassTraits:
    """What a step class declares about itself; read by guards and runtimes, never `if` chains."""

    awaits_input: bool  # the step waits for a human answer (the `awaits_input` guard)
    durable_deadline: bool  # a runtime derives its deadline from the journaled start time


STEP_CLASS_TRAITS: Final = MappingProxyType(
    {
        StepClass.llm: StepClassTraits(awaits_input=False, durable_deadline=False),
        StepClass.tool: StepClassTraits(awaits_input=False, durable_deadline=False),
        StepClass.timer: StepClassTraits(awaits_input=False, durable_deadline=True),
        StepClass.human_gate: StepClassTraits(awaits_input=True, durable_deadline=False),
        StepClass.system: StepClassTraits(awaits_input=False, durable_deadline=False),
    }
)

# Every guard name a lifecycle uses, with what it means; the spec prints this list.
GUARD_MEANINGS: Final = MappingProxyType(
    {
        "no_step_left": "the mode plans no further step and every step has ended",
        "awaits_input": "the step's class waits for a human answer (a human gate)",
        "has_input": "an answer for this gate arrived before the gate opened and is kept",
        "attempts_left": "the step has used fewer counted attempts than its policy's max_attempts",
        "is_retryable": "the failure is retryable and its category is in the policy's retry_on",
    }
)
