"""`CoreRaceMachine`: a Hypothesis rule-based machine that races every event against the core.

Rules send run requests (fresh or duplicate ids, with or without supersede; the `runs` Bundle
keeps the ids of runs that exist), interrupts, resumes and cancels (by the run's principal or an
intruder, for live, ended or unknown runs), every effect lifecycle answer and `effect_lost` for
any effect id the core ever started (the `effects` Bundle, fed by the `start_effect` directives,
so late, duplicate and stale answers come for free), and human answers for the pipeline's gate,
early, late, twice or conflicting. One rule plays a well-behaved runtime (start the current effect,
complete it, answer the gate) so that runs also get far enough to complete; every other rule is
a race against it. After every rule each
`@invariant()` checks one property of spec/verification.md, named for its id, with the same
functions the exhaustive checker uses; a reference model written apart from the core
(`reference.py`) must agree on every disposition and status (VER-14).

Subclasses swap in a coordinator with a seeded defect; they must fail (VER-15).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Final

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from interruptible import (
    Coordinator,
    Mode,
    OnFailure,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
    initial_state,
    replay,
)
from interruptible._core import ConversationState, Outcome
from interruptible._verify._checker import (
    KeyCache,
    Ledger,
    Violation,
    transition_violations,
)
from interruptible._verify._checker._properties import (
    cancel_first_in_outcome,
    cancels_reach_effects,
    causality,
    directive_order,
    kept_results_stay,
    one_active_run,
    one_live_effect_per_step,
    refusals_change_nothing,
    retained_runs,
    run_matrix,
    terminal_exclusivity,
)
from interruptible._vocabulary import (
    CancelRequested,
    Directive,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectProgress,
    EffectStarted,
    EmitOutput,
    Event,
    FailureCategory,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    StartEffect,
)

from .reference import Reference

CONVERSATION: Final = "c1"
MODE: Final = "pipeline"
OWNER: Final = "alice"
INTRUDER: Final = "mallory"
STEPS: Final = (
    StepDefinition("s1", StepClass.tool, {"tool": "fetch"}, StepPolicy(max_attempts=2)),
    StepDefinition("s2", StepClass.human_gate, {"question": "ship it?"}),
    StepDefinition("s3", StepClass.llm, None, StepPolicy(on_failure=OnFailure.continue_)),
)
RUN_IDS: Final = ("r1", "r2", "r3")
UNKNOWN_RUN: Final = "r0"
EFFECT_KINDS: Final = (
    "started",
    "progress",
    "completed",
    "failed",
    "failed_fatal",
    "canceled",
    "lost",
)

principals = st.sampled_from((OWNER, OWNER, OWNER, INTRUDER))
run_ids = st.sampled_from(RUN_IDS)

CoordinatorFactory = Callable[[Iterable[Mode]], Coordinator]


class CoreRaceMachine(RuleBasedStateMachine):
    """Every interleaving of callers and effects against one conversation of the pure core."""

    coordinator_factory: ClassVar[CoordinatorFactory] = Coordinator
    check_reference: ClassVar[bool] = True

    runs = Bundle("runs")
    effects = Bundle("effects")

    def __init__(self) -> None:
        super().__init__()
        self.coordinator = type(self).coordinator_factory([Sequence(MODE, STEPS)])
        self.state: ConversationState = initial_state()
        self.events: list[Event] = []
        self.outcomes: list[Outcome] = []
        self.ledger = Ledger()
        self.reference = Reference(MODE, STEPS)
        self.expected: str | None = None
        self.last: tuple[ConversationState, Event, Outcome] | None = None
        self.outputs: Counter[str] = Counter()
        self.kept: set[tuple[str, str]] = set()
        self.restarted: list[StartEffect] = []
        self.starts: dict[str, StartEffect] = {}
        self.unclaimed: list[str] = []  # started effects not yet in the `effects` Bundle

    # --- sending -------------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"e{len(self.events) + 1}"

    def _claim(self) -> Any:
        """The effect ids started since the last claim, for the `effects` Bundle."""
        claimed, self.unclaimed = self.unclaimed, []
        return multiple(*claimed)

    def _send(self, event: Event, expected: str) -> Any:
        """Reduce one event (VER-10: an exception fails the test) and record it; return the
        started effect ids not yet in the `effects` Bundle."""
        pre = self.state
        outcome = self.coordinator.reduce(pre, event)
        self.events.append(event)
        self.outcomes.append(outcome)
        self.last = (pre, event, outcome)
        self.expected = expected
        self.ledger.sent(event)
        self.ledger.absorb(outcome)
        self.state = outcome.state
        for directive in outcome.directives:
            if type(directive) is EmitOutput:
                self.outputs[directive.run_id] += 1
            elif type(directive) is StartEffect:
                if (directive.run_id, directive.step_id) in self.kept:
                    self.restarted.append(directive)
                self.starts[directive.effect_id] = directive
                self.unclaimed.append(directive.effect_id)
        for run in retained_runs(self.state):
            for step in run.steps:
                if step.result is not None:
                    self.kept.add((run.run_id, step.step_id))
        return self._claim()

    # --- rules ---------------------------------------------------------------------------------

    @rule(
        target=runs,
        run_id=run_ids,
        supersede=st.booleans(),
        other_input=st.booleans(),
        principal=principals,
    )
    def request_run(self, run_id: str, supersede: bool, other_input: bool, principal: str) -> Any:
        """A fresh or duplicate run id; its started effects wait for the next claim."""
        payload = {"n": 2 if other_input else 1}
        known = run_id in self.reference.runs
        expected = self.reference.run_requested(run_id, payload, principal, supersede)
        event = RunRequested(
            self._next_id(), CONVERSATION, run_id, MODE, payload, principal, supersede=supersede
        )
        self.unclaimed.extend(self._send(event, expected).values)
        return multiple(run_id) if expected == "applied" and not known else multiple()

    @rule(target=effects)
    def claim_started_effects(self) -> Any:
        """Hand effects started by a run request to the `effects` Bundle."""
        return self._claim()

    @rule(target=effects, kind=st.sampled_from(("answer", "answer", "answer", "fail")))
    def runtime_drives_active_run(self, kind: str) -> Any:
        """A well-behaved runtime: start the active run's live effect, then complete it (or
        fail it retryably), or answer its gate; an effect asked to cancel answers `canceled`
        (or, as `fail`, completes across the cancel); nothing when no effect is live."""
        run = self.state.active_run
        live = [] if run is None else [s for s in run.steps if s.is_live and s.effect_id]
        if run is None or not live:
            return self._claim()
        step = live[0]
        assert step.effect_id is not None
        ids = (self._next_id(), CONVERSATION, run.run_id, step.step_id, step.effect_id)
        if step.status.value == "scheduled":
            expected = self.reference.effect("started", *ids[2:])
            return self._send(EffectStarted(*ids, step.attempt), expected)
        if step.status.value == "waiting_input":
            expected = self.reference.human_input(run.run_id, step.step_id, "yes", run.principal)
            event: Event = HumanInputReceived(
                ids[0], CONVERSATION, run.run_id, step.step_id, "yes", principal=run.principal
            )
            return self._send(event, expected)
        if step.status.value == "cancelling" and kind == "answer":
            expected = self.reference.effect("canceled", *ids[2:])
            return self._send(EffectCanceled(*ids, step.attempt), expected)
        if kind == "fail" and step.status.value != "cancelling":
            expected = self.reference.effect("failed", *ids[2:], retryable=True)
            event = EffectFailed(
                *ids,
                step.attempt,
                category=FailureCategory.transient,
                message="flaky",
                retryable=True,
            )
            return self._send(event, expected)
        output = f"{step.step_id}-out"
        expected = self.reference.effect("completed", *ids[2:], output=output)
        return self._send(EffectCompleted(*ids, step.attempt, output=output), expected)

    @rule(action=st.sampled_from(("interrupt", "resume", "cancel", "answer")))
    def request_for_unknown_run(self, action: str) -> None:
        """An interrupt, resume, cancel or gate answer naming a run that never existed."""
        eid = self._next_id()
        event: Event
        if action == "interrupt":
            event = InterruptRequested(eid, CONVERSATION, UNKNOWN_RUN, principal=OWNER)
            expected = self.reference.interrupt(UNKNOWN_RUN, OWNER)
        elif action == "resume":
            event = ResumeRequested(eid, CONVERSATION, UNKNOWN_RUN, principal=OWNER)
            expected = self.reference.resume(UNKNOWN_RUN, OWNER)
        elif action == "cancel":
            event = CancelRequested(eid, CONVERSATION, UNKNOWN_RUN, principal=OWNER)
            expected = self.reference.cancel(UNKNOWN_RUN, OWNER)
        else:
            event = HumanInputReceived(eid, CONVERSATION, UNKNOWN_RUN, "s2", "yes", principal=OWNER)
            expected = self.reference.human_input(UNKNOWN_RUN, "s2", "yes", OWNER)
        self._send(event, expected)

    @rule(run_id=runs, principal=principals)
    def interrupt(self, run_id: str, principal: str) -> None:
        expected = self.reference.interrupt(run_id, principal)
        self.unclaimed.extend(
            self._send(
                InterruptRequested(self._next_id(), CONVERSATION, run_id, principal=principal),
                expected,
            ).values
        )

    @rule(target=effects, run_id=runs, principal=principals)
    def resume(self, run_id: str, principal: str) -> Any:
        expected = self.reference.resume(run_id, principal)
        event = ResumeRequested(self._next_id(), CONVERSATION, run_id, principal=principal)
        return self._send(event, expected)

    @rule(run_id=runs, principal=principals)
    def cancel(self, run_id: str, principal: str) -> None:
        expected = self.reference.cancel(run_id, principal)
        self.unclaimed.extend(
            self._send(
                CancelRequested(self._next_id(), CONVERSATION, run_id, principal=principal),
                expected,
            ).values
        )

    @rule(
        target=effects,
        effect_id=effects,
        kind=st.sampled_from(EFFECT_KINDS),
        sequence=st.integers(0, 2),
    )
    def effect_answers(self, effect_id: str, kind: str, sequence: int) -> Any:
        start = self.starts[effect_id]
        ids = (
            self._next_id(),
            CONVERSATION,
            start.run_id,
            start.step_id,
            effect_id,
            start.attempt,
        )
        event: Event
        category, retryable = FailureCategory.transient, True
        if kind == "started":
            event = EffectStarted(*ids)
        elif kind == "progress":
            event = EffectProgress(*ids, sequence=sequence, progress={"pct": sequence})
        elif kind == "completed":
            event = EffectCompleted(*ids, output=f"{start.step_id}-out")
        elif kind == "canceled":
            event = EffectCanceled(*ids)
        elif kind == "lost":
            event = EffectLost(*ids)
        else:
            if kind == "failed_fatal":
                category, retryable = FailureCategory.invalid_input, False
            event = EffectFailed(*ids, category=category, message="boom", retryable=retryable)
        expected = self.reference.effect(
            kind.removesuffix("_fatal"),
            start.run_id,
            start.step_id,
            effect_id,
            sequence=sequence,
            category=category,
            retryable=retryable,
            output=f"{start.step_id}-out",
        )
        return self._send(event, expected)

    @rule(
        target=effects,
        run_id=runs,
        step_id=st.sampled_from(("s2", "s2", "s2", "s1")),
        value=st.sampled_from(("yes", "yes", "no")),
        principal=principals,
    )
    def answer_gate(self, run_id: str, step_id: str, value: str, principal: str) -> Any:
        expected = self.reference.human_input(run_id, step_id, value, principal)
        event = HumanInputReceived(
            self._next_id(), CONVERSATION, run_id, step_id, value, principal=principal
        )
        return self._send(event, expected)

    # --- invariants, one per property id -------------------------------------------------------

    def _hold(self, violations: list[Violation]) -> None:
        assert not violations, "\n".join(map(str, violations))

    def _transition(
        self, check: Callable[[ConversationState, Event, Outcome], list[Violation]]
    ) -> None:
        if self.last is not None:
            self._hold(check(*self.last))

    @invariant()
    def ver_1_run_matrix(self) -> None:
        """Every run status change is an edge of RunLifecycle (RUN-2, RUN-3)."""
        self._transition(run_matrix)

    @invariant()
    def ver_2_one_active_run(self) -> None:
        """At most one active run per conversation (CORE-6)."""
        self._hold(one_active_run(self.state))

    @invariant()
    def ver_3_terminal_exclusivity(self) -> None:
        """Exactly one emit_output per ended run, ever; nothing for it afterwards (DIR-1)."""
        self._transition(terminal_exclusivity)
        for run in retained_runs(self.state):
            expected = 1 if run.is_terminal else 0
            assert self.outputs[run.run_id] == expected, (
                f"VER-3: run {run.run_id!r} ({run.status.value}) had "
                f"{self.outputs[run.run_id]} emit_output"
            )

    @invariant()
    def ver_4_one_live_effect_per_step(self) -> None:
        """No step ever has two effects in flight (CORE-19, STEP-3)."""
        self._hold(one_live_effect_per_step(self.ledger.views()))

    @invariant()
    def ver_5_one_cancel_per_effect(self) -> None:
        """Every in-flight effect of an interrupted or ended run had exactly one cancel (DIR-3)."""
        self._hold(cancels_reach_effects(self.state, self.ledger.views()))

    @invariant()
    def ver_6_kept_results_never_restarted(self) -> None:
        """A step with a kept result is never started again (CORE-11, STEP-2)."""
        self._transition(kept_results_stay)
        assert not self.restarted, f"VER-6: started again after a kept result: {self.restarted}"

    @invariant()
    def ver_7_causality(self) -> None:
        """Every directive carries conversation_id, run_id and cause_id = event_id (CORE-15)."""
        self._transition(causality)

    @invariant()
    def ver_8_directive_order(self) -> None:
        """The outcome's one cancel_effects first; per run, emit_output last (DIR-2, RUN-9)."""
        self._transition(directive_order)
        self._transition(cancel_first_in_outcome)

    @invariant()
    def ver_9_refusals_change_nothing(self) -> None:
        """A rejected or ignored event returns the very state given (CORE-2)."""
        self._transition(refusals_change_nothing)

    @invariant()
    def ver_11_replay_parity(self) -> None:
        """Folding the events so far again, with a fresh coordinator, gives the same state and
        the same directive sequence (CORE-5)."""
        if not self.events:
            return
        fresh = type(self).coordinator_factory([Sequence(MODE, STEPS)])
        again = replay(fresh, self.events)
        keys = KeyCache()
        assert keys.conversation_key(again.state) == keys.conversation_key(self.state), (
            "VER-11: replayed state differs"
        )
        live: tuple[Directive, ...] = tuple(d for o in self.outcomes for d in o.directives)
        assert again.directives == live, "VER-11: replayed directives differ"

    @invariant()
    def ver_14_reference_agrees(self) -> None:
        """The reference model predicts every disposition and every run and step status."""
        if not type(self).check_reference or self.last is None:
            return
        outcome = self.last[2]
        assert outcome.disposition.value == self.expected, (
            f"VER-14: {self.last[1]!r} was {outcome.disposition.value} "
            f"({outcome.reason or outcome.error!r}), the reference says {self.expected}"
        )
        actual = {
            run.run_id: (
                run.status.value,
                tuple((step.step_id, step.status.value) for step in run.steps),
            )
            for run in retained_runs(self.state)
        }
        assert actual == self.reference.statuses(), (
            f"VER-14: core {actual} != reference {self.reference.statuses()}"
        )


def all_violations(machine: CoreRaceMachine) -> list[Violation]:
    """Every transition property of the machine's last event (for ad-hoc debugging)."""
    return [] if machine.last is None else transition_violations(*machine.last)
