"""OpenTelemetry spans of a settled run, built from its journal (spec/observability.md,
OBS-1..OBS-5).

Theory of operation
-------------------
OpenTelemetry's API cannot give a span an id of our choosing, so a run span started and ended
by one process cannot be the parent of step spans made by another. So no span is started while
a run goes on: when the run settles (its terminal event is committed and the writer carries out
its one `emit_output`, RT-3), the process that committed it reads the conversation from the
journal and emits, at once and once, the run's whole trace: a run span from the run's request
to its end, with one child span per step attempt and span events for what was asked of the run,
each with the journal's own times, reasons and principals. A run ends once (CORE: terminal
exclusivity), and the writer carries out a terminal output only right after committing it,
never when folding a journal (restore, takeover, a worker's claim), so recovery and replay never
emit a span again; a run interrupted in one process and finished in another is one trace,
emitted by the second. A run that never ends is never exported (as an OpenTelemetry span is
exported when it ends), and a crash between the terminal commit and the emission loses that
run's trace (at most once).

The journal is folded once more here, through the runtime's coordinator, only to learn what the
raw events do not say: which requests counted (a refused interrupt is journaled for its audit,
RT-13), each step's class, and when the run ended. opentelemetry is imported when the first
trace is emitted, never by `import interruptible`; the tracer provider is the one given, else the
global one at emission time: this module never sets a provider.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from .._core import Coordinator, Disposition, initial_state
from .._history import AttemptFact, RequestFact, run_history
from .._journal import Journal, OwnerRecord
from .._lifecycle import RunStatus
from .._vocabulary import EmitOutput, Event, idempotency_key_for

log: Final = logging.getLogger("interruptible.tracing")

TRACER_NAME: Final = "interruptible"
PREFIX: Final = "interruptible."
_TERMINAL: Final = frozenset({RunStatus.completed, RunStatus.failed, RunStatus.canceled})
# An attempt's outcome, by the event that ended it; "open": no answer was journaled before the
# run ended (a cancel ends the run first, then the effect answers).
OUTCOMES: Final = {
    "effect_completed": "completed",
    "effect_failed": "failed",
    "effect_canceled": "canceled",
    "effect_lost": "lost",
    None: "open",
}
# A request's span event name, by its kind in `_history`.
REQUEST_EVENTS: Final = {
    "interrupt": "interrupt",
    "resume": "resume",
    "cancel": "cancel",
    "answer": "human_input",
}


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _attributes(**values: object) -> dict[str, Any]:
    """OpenTelemetry attributes under our prefix; a None value is left out (none is allowed)."""
    return {PREFIX + key: value for key, value in values.items() if value is not None}


class RunTracer:
    """Emits the trace of each run that settles in this process (`Runtime(tracer_provider=)`)."""

    def __init__(self, provider: Any | None = None) -> None:
        self.provider = provider  # None: the global provider, looked up at each emission
        self.emitted = 0  # runs whose trace was emitted (for tests and benchmarks)

    def _tracer(self) -> Any:
        from opentelemetry import trace

        provider = self.provider if self.provider is not None else trace.get_tracer_provider()
        return provider.get_tracer(TRACER_NAME)

    def settled(
        self, journal: Journal, coordinator: Coordinator, conversation_id: str, output: EmitOutput
    ) -> None:
        """Emit the trace of the run `output` ended; never raises (a trace is not worth a run:
        a failure is logged on `interruptible.tracing`)."""
        try:
            self._emit(journal, coordinator, conversation_id, output)
            self.emitted += 1
        except Exception:
            log.exception(
                "the trace of run %r of conversation %r was not emitted",
                output.run_id,
                conversation_id,
            )

    def _emit(
        self, journal: Journal, coordinator: Coordinator, conversation_id: str, output: EmitOutput
    ) -> None:
        run_id = output.run_id
        events: list[Event] = []
        counted: set[int] = set()  # id() of the applied events: the requests that counted
        ended_at: float | None = None
        state = initial_state()
        reduce = coordinator.reduce
        for record in journal.read(conversation_id):
            event = record.event
            events.append(event)
            outcome = reduce(state, event)
            state = outcome.state
            if outcome.disposition is Disposition.applied:
                counted.add(id(event))
            if ended_at is None and getattr(event, "run_id", None) == run_id:
                run = state.run(run_id)
                if run is not None and run.status in _TERMINAL:
                    ended_at = event.at
        run = state.run(run_id)
        history = run_history(events, run_id, counts=lambda event: id(event) in counted)
        requested = history.requested
        if requested is None or run is None:
            return  # not this journal's run (cannot happen for a run this writer ended)
        end = ended_at if ended_at is not None else (history.last_at or requested.at)
        classes = {step.step_id: step.definition.step_class.value for step in run.steps}
        # The attempt whose result each step kept: a gate's attempt is completed by its answer
        # (its waiter then answers `effect_canceled`), a result may cross a cancel (CORE-18).
        kept = {
            (step.step_id, step.result.attempt) for step in run.steps if step.result is not None
        }
        takeovers = [
            record
            for record in journal.ownership_history(conversation_id)
            if record.previous_owner is not None and requested.at <= record.taken_at <= end
        ]
        self._spans(conversation_id, output, requested.at, end, run.mode, requested.principal,
                    history.attempts, history.requests, classes, kept, takeovers)  # fmt: skip

    def _spans(
        self,
        conversation_id: str,
        output: EmitOutput,
        start: float,
        end: float,
        mode: str,
        principal: str | None,
        attempts: list[AttemptFact],
        requests: list[RequestFact],
        classes: dict[str, str],
        kept: set[tuple[str, int]],
        takeovers: list[OwnerRecord],
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        tracer = self._tracer()
        run_id = output.run_id
        error = output.error
        run_span = tracer.start_span(
            f"run {mode}",
            kind=SpanKind.INTERNAL,
            start_time=_ns(start),
            attributes=_attributes(
                conversation_id=conversation_id,
                run_id=run_id,
                mode=mode,
                principal=principal,
                outcome=output.status,
                failure_category=None if error is None else error.category.value,
            ),
        )
        if error is not None:
            run_span.set_status(
                Status(StatusCode.ERROR, f"{error.category.value}: {error.message}")
            )
        context = trace.set_span_in_context(run_span)
        marks: list[tuple[float, str, dict[str, Any]]] = []  # added in time order
        for fact in attempts:
            kept_here = (fact.step_id, fact.attempt) in kept
            outcome = "completed" if kept_here else OUTCOMES[fact.ended_by]
            step_span = tracer.start_span(
                f"step {fact.step_id}",
                context=context,
                kind=SpanKind.INTERNAL,
                start_time=_ns(fact.start),
                attributes=_attributes(
                    conversation_id=conversation_id,
                    run_id=run_id,
                    step_id=fact.step_id,
                    step_class=classes.get(fact.step_id),
                    attempt=fact.attempt,
                    idempotency_key=idempotency_key_for(run_id, fact.step_id, fact.attempt),
                    effect_id=fact.effect_id,
                    outcome=outcome,
                    failure_category=fact.category,
                ),
            )
            if outcome == "failed":
                step_span.set_status(Status(StatusCode.ERROR, str(fact.category)))
            if outcome == "lost":
                lost = _attributes(step_id=fact.step_id, attempt=fact.attempt, reason=fact.reason)
                marks.append((fact.end or end, "effect_lost", lost))
            step_span.end(end_time=_ns(max(fact.start, fact.end if fact.end is not None else end)))
        for request in requests:
            asked = _attributes(
                step_id=request.step_id, reason=request.reason, principal=request.principal
            )
            marks.append((request.at, REQUEST_EVENTS[request.kind], asked))
        for record in takeovers:
            taken = _attributes(
                owner=record.owner_id,
                previous_owner=record.previous_owner,
                reason=record.reason,
                epoch=record.epoch,
            )
            marks.append((record.taken_at, "takeover", taken))
        for at, name, attributes in sorted(marks, key=lambda mark: mark[0]):
            run_span.add_event(name, attributes, timestamp=_ns(at))
        run_span.end(end_time=_ns(end))
