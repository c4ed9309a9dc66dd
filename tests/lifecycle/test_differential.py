"""Differential test: the compiled table's `fire` against python-statemachine's own `send`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statemachine.exceptions import TransitionNotAllowed

from interruptible import DirectiveKind, IllegalTransition, RunStatus, StepStatus
from interruptible._interpreter import CompiledLifecycle, compile_lifecycle
from interruptible._lifecycle import RunLifecycle, StepLifecycle

LIFECYCLES = [
    pytest.param(RunLifecycle, compile_lifecycle(RunLifecycle, RunStatus), id="run"),
    pytest.param(StepLifecycle, compile_lifecycle(StepLifecycle, StepStatus), id="step"),
]
UNKNOWN_EVENT = "no_such_event"


class Model:
    """The machine's model: guard attributes, and one recording method per directive kind."""

    def __init__(self, guard_names: frozenset[str]) -> None:
        self.calls: list[str] = []
        for name in guard_names:
            setattr(self, name, False)
        for kind in DirectiveKind:
            setattr(self, kind.value, self._recorder(kind.value))

    def _recorder(self, name: str) -> Any:
        def record() -> None:
            self.calls.append(name)

        return record


@pytest.mark.parametrize(("machine", "compiled"), LIFECYCLES)
@given(data=st.data())
def test_int_2_fire_agrees_with_send(
    machine: type[Any], compiled: CompiledLifecycle[Any], data: st.DataObject
) -> None:
    """For random events and guard values, fire and send reach the same status, run the same
    directive templates in the same order, and refuse the same events."""
    guard_names = compiled.guard_names()
    model = Model(guard_names)
    instance = machine(model=model)
    status = compiled.initial
    steps = data.draw(st.integers(min_value=1, max_value=50), label="steps")
    for _ in range(steps):
        allowed = list(compiled.allowed[status])
        # Mostly events the status allows (to go deep), sometimes any event or an unknown one.
        pool = st.sampled_from([*compiled.events, UNKNOWN_EVENT])
        event = data.draw(st.sampled_from(allowed) | pool if allowed else pool, label="event")
        guards = {name: data.draw(st.booleans(), label=name) for name in sorted(guard_names)}
        for name, value in guards.items():
            setattr(model, name, value)
        model.calls.clear()
        try:
            instance.send(event)
        except TransitionNotAllowed:
            with pytest.raises(IllegalTransition):
                compiled.fire(status, event, guards)
            assert instance.current_state_value == status.value
            assert model.calls == []
            continue
        transition = compiled.fire(status, event, guards)
        assert instance.current_state_value == transition.target.value
        assert model.calls == [kind.value for kind in transition.directives]
        status = transition.target
