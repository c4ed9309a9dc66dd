"""OpenTelemetry spans of a settled run, built from its journal (spec/observability.md,
OBS-1..OBS-5).

Theory of operation
-------------------
OpenTelemetry's API cannot give a span an id of our choosing, so a run span started and ended
by one process cannot be the parent of step spans made by another. So no span is started while
a run goes on: when the run settles (its terminal event is committed and the writer carries out
its one `emit_output`, RT-3), the process that committed it gathers the run's journaled events
and emits, at once and once, the run's whole trace: a run span from the run's request
to its end, with one child span per step attempt and span events for what was asked of the run,
each with the journal's own times, reasons and principals. A run ends once (CORE: terminal
exclusivity), and the writer carries out a terminal output only right after committing it,
never when folding a journal (restore, takeover, a worker's claim), so recovery and replay never
emit a span again; a run interrupted in one process and finished in another is one trace,
emitted by the second. A run that never ends is never exported (as an OpenTelemetry span is
exported when it ends), and a crash between the terminal commit and the emission loses that
run's trace (at most once).

The events are the journal's: the writer hands each batch to `committed` after its commit,
with its journal sequences, and the tracer keeps them per conversation from the request of a
run it saw start. When they do not hold the whole run (it began in another process or before a
restart, or another process wrote in between: the sequences say so), they are read back from
the journal. The raw events do not say which requests counted (a refused interrupt is journaled
for its audit, RT-13): for a run that was asked anything, the conversation is read back and
folded once more through the runtime's coordinator to learn it. Each step's class and kept
result come from the run's state as the writer holds it, and the run's end is the time of the
event that caused its output. opentelemetry is imported when the first trace is emitted, never
by `import interruptible`; the tracer provider is the one given, else the global one at
emission time: this module never sets a provider.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .._core import Coordinator, Disposition, RunState, initial_state
from .._history import AttemptFact, RequestFact, run_history
from .._journal import Journal, OwnerRecord
from .._vocabulary import (
    CancelRequested,
    EmitOutput,
    Event,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    idempotency_key_for,
)

log: Final = logging.getLogger("interruptible.tracing")

TRACER_NAME: Final = "interruptible"
PREFIX: Final = "interruptible."
# A log past this many events is started again (its run's trace is then read back from the
# journal): what a run costs in memory while it runs stays bounded.
_LOG_LIMIT: Final = 100_000
_REQUESTS: Final = (InterruptRequested, ResumeRequested, CancelRequested, HumanInputReceived)
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
    "upgrade": "run_upgraded",
}


_STEP_ID: Final = PREFIX + "step_id"
_STEP_CLASS: Final = PREFIX + "step_class"
_ATTEMPT: Final = PREFIX + "attempt"
_KEY: Final = PREFIX + "idempotency_key"
_EFFECT_ID: Final = PREFIX + "effect_id"
_OUTCOME: Final = PREFIX + "outcome"
_CATEGORY: Final = PREFIX + "failure_category"


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
        self.read_back = 0  # of those, the ones whose events were read back from the journal
        # Per conversation, the events this writer committed since the journal sequence `first`
        # (exclusive), up to `last`: the facts of a run it saw start, without reading them back.
        self._logs: dict[str, _Log] = {}

    def committed(self, conversation_id: str, last: int, events: list[Event]) -> None:
        """Keep a batch the writer committed (the journal's sequences up to `last`)."""
        log = self._logs.get(conversation_id)
        if log is None or log.last != last - len(events) or len(log.events) > _LOG_LIMIT:
            # A gap (another process wrote in between, or the log starts here): start again.
            log = self._logs[conversation_id] = _Log(last - len(events), last, [])
        log.events.extend(events)
        log.last = last

    def forget(self) -> None:
        """Drop every kept event (the runtime is closing: its unfinished runs end elsewhere or
        in the next runtime, which reads them back)."""
        self._logs.clear()

    def _committed_run(self, conversation_id: str, run_id: str) -> list[Event] | None:
        """The committed events of run `run_id` from its request on, when this writer saw them
        all (the conversation's log is dropped: its run has ended)."""
        log = self._logs.pop(conversation_id, None)
        if log is None:
            return None
        for index, event in enumerate(log.events):
            if type(event) is RunRequested and event.run_id == run_id:
                return log.events[index:]
        return None

    def _tracer(self) -> Any:
        from opentelemetry import trace

        provider = self.provider if self.provider is not None else trace.get_tracer_provider()
        return provider.get_tracer(TRACER_NAME)

    def settled(
        self,
        journal: Journal,
        coordinator: Coordinator,
        conversation_id: str,
        output: EmitOutput,
        run: RunState | None = None,
    ) -> None:
        """Emit the trace of the run `output` ended (`run`: its state as the writer holds it);
        never raises (a trace is not worth a run: a failure is logged on
        `interruptible.tracing`)."""
        try:
            self._emit(journal, coordinator, conversation_id, output, run)
            self.emitted += 1
        except Exception:
            log.exception(
                "the trace of run %r of conversation %r was not emitted",
                output.run_id,
                conversation_id,
            )

    def _emit(
        self,
        journal: Journal,
        coordinator: Coordinator,
        conversation_id: str,
        output: EmitOutput,
        run: RunState | None,
    ) -> None:
        run_id = output.run_id
        committed = self._committed_run(conversation_id, run_id)
        events = committed
        asked = events is not None and any(
            type(e) in _REQUESTS and e.run_id == run_id for e in events
        )
        if events is None or asked or run is None:
            # Not all seen here (the run began in another process, or before a restart), or
            # a fold is needed: the journal has the whole conversation.
            events = [record.event for record in journal.read(conversation_id)]
            self.read_back += 1
            asked = any(type(e) in _REQUESTS and e.run_id == run_id for e in events)
        counts: Callable[[Event], bool] | None = None
        if asked or run is None:
            # Only a fold says which requests counted; a run nobody asked anything of (most)
            # needs none, and the writer's state gives its steps.
            counted, folded = _fold(coordinator, events, run_id)
            counts = lambda event: id(event) in counted  # noqa: E731
            run = folded if run is None else run
        history = run_history(events, run_id, counts=counts)
        requested = history.requested
        if requested is None or run is None:
            return  # not this journal's run (cannot happen for a run this writer ended)
        # The event that ended the run caused its output (the core's cause ids).
        end = next(
            (e.at for e in reversed(events) if e.event_id == output.cause_id),
            history.last_at or requested.at,
        )
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
                    run.fingerprint, history.attempts, history.requests, classes, kept,
                    takeovers)  # fmt: skip

    def _spans(
        self,
        conversation_id: str,
        output: EmitOutput,
        start: float,
        end: float,
        mode: str,
        principal: str | None,
        definition: str | None,
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
                definition=definition,
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
        # The step spans' attributes, built by hand (a span per attempt: this loop is the
        # emission's cost beside the SDK's own).
        base = {PREFIX + "conversation_id": conversation_id, PREFIX + "run_id": run_id}
        for fact in attempts:
            step_id = fact.step_id
            outcome = "completed" if (step_id, fact.attempt) in kept else OUTCOMES[fact.ended_by]
            attributes = {
                **base,
                _STEP_ID: step_id,
                _ATTEMPT: fact.attempt,
                _KEY: idempotency_key_for(run_id, step_id, fact.attempt),
                _EFFECT_ID: fact.effect_id,
                _OUTCOME: outcome,
            }
            step_class = classes.get(step_id)
            if step_class is not None:
                attributes[_STEP_CLASS] = step_class
            if fact.category is not None:
                attributes[_CATEGORY] = fact.category
            step_span = tracer.start_span(
                f"step {step_id}",
                context=context,
                kind=SpanKind.INTERNAL,
                start_time=_ns(fact.start),
                attributes=attributes,
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


@dataclass(slots=True)
class _Log:
    """A conversation's committed events after journal sequence `first`, up to `last`."""

    first: int
    last: int
    events: list[Event]


def _fold(
    coordinator: Coordinator, events: list[Event], run_id: str
) -> tuple[set[int], RunState | None]:
    """The id() of each event the core applied, and the run as the fold leaves it."""
    counted: set[int] = set()
    state = initial_state()
    reduce = coordinator.reduce
    for event in events:
        outcome = reduce(state, event)
        state = outcome.state
        if outcome.disposition is Disposition.applied:
            counted.add(id(event))
    return counted, state.run(run_id)
