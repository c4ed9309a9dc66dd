"""CORE-1, CORE-2 under Hypothesis: arbitrary and malformed events never make reduce raise."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from interruptible import Disposition, initial_state
from interruptible._verify._driver import CoreDriver
from interruptible._vocabulary import EVENT_TYPES
from interruptible.testing.strategies import events, json_values, values_of

from .conftest import STEPS, finish_step, make_coordinator

COORDINATOR = make_coordinator()


def _busy_state() -> object:
    """A conversation with one ended run and one run interrupted mid-step."""
    driver = CoreDriver(make_coordinator(), conversation_id="c1")
    driver.run("done", "pipeline")
    for step_id in STEPS:
        finish_step(driver, "done", step_id)
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    driver.started("r1", "fetch")
    driver.interrupt("r1")
    return driver.state


BUSY = _busy_state()
STATES = st.sampled_from([initial_state(), initial_state("c1"), BUSY])


@st.composite
def malformed_events(draw: st.DrawFn) -> object:
    """A well-formed event with one field replaced by an arbitrary value of any type."""
    event = draw(events())
    field = draw(st.sampled_from([f.name for f in dataclasses.fields(event)]))
    junk = draw(st.one_of(json_values(), st.floats(), st.booleans(), st.none(), st.binary()))
    return dataclasses.replace(event, **{field: junk})


def _targeted_events() -> st.SearchStrategy[object]:
    """Events aimed at the busy state's ids, so handlers run deep, not only the front checks."""
    ids = st.sampled_from(["r1", "done", "r9"])
    steps = st.sampled_from([*STEPS, "ghost"])
    attempts = st.integers(min_value=0, max_value=3)

    def aim(event: object, run_id: str, step_id: str, attempt: int) -> object:
        changes: dict[str, object] = {"conversation_id": "c1", "run_id": run_id}
        names = {f.name for f in dataclasses.fields(event)}  # type: ignore[arg-type]
        if "step_id" in names:
            changes["step_id"] = step_id
        if "effect_id" in names:
            changes["effect_id"] = f"{run_id}/{step_id}/{attempt}"
            changes["attempt"] = attempt
        if "mode" in names:
            changes["mode"] = "pipeline"
        if "principal" in names:
            changes["principal"] = "alice"
        return dataclasses.replace(event, **changes)  # type: ignore[type-var]

    return st.builds(aim, events(), ids, steps, attempts)


@given(state=STATES, event=st.one_of(events(), malformed_events(), _targeted_events()))
def test_core_1_reduce_is_total_and_core_2_refusals_keep_state(
    state: object, event: object
) -> None:
    """CORE-1, CORE-2: reduce never raises; a refused or ignored event keeps the state object."""
    outcome = COORDINATOR.reduce(state, event)  # type: ignore[arg-type]
    assert outcome.disposition in Disposition
    if outcome.disposition is Disposition.applied:
        assert outcome.error is None
    else:
        assert outcome.state is state
        if outcome.disposition is Disposition.rejected:
            assert outcome.error is not None
            assert outcome.error.message
        else:
            assert outcome.directives == ()


@given(data=st.data())
def test_core_1_every_event_type_is_handled(data: st.DataObject) -> None:
    """CORE-1: every event class of the vocabulary has a handler (none is rejected as unknown)."""
    cls = data.draw(st.sampled_from(sorted(EVENT_TYPES.values(), key=lambda c: c.__name__)))
    event = data.draw(values_of(cls))
    outcome = COORDINATOR.reduce(initial_state(), event)
    assert outcome.error is None or "is not an event of the vocabulary" not in str(outcome.error)
