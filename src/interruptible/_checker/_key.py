"""Canonical, hashable keys for conversation states: the model checker's state identity.

Theory of operation
-------------------
`ConversationState` holds JSON payloads (dicts, lists), so it cannot be hashed as it is. A key is a
nested tuple over every field of the conversation, its runs and their steps, with each JSON value
mapped to a hashable form (`json.dumps(sort_keys=True)` for containers, tagged so that `None`,
`1`, `True`, `"1"` and `"null"` stay distinct). Two states have equal keys exactly when they are
equal (VER-13), which is what makes breadth-first exploration with a visited set sound: a state
reached twice has the same future.

Keys of runs are the hot part (a conversation with two runs is re-keyed after every event, and
most events change one run at most), so `KeyCache` remembers the key of each `RunState` object
it was asked to keep, by identity. It keeps the object alive beside its key, so an `id()` is
never reused while its entry exists.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Final

from .._core import NO_INPUT, ConversationState, RunState, StepState
from .._vocabulary import JsonValue, StepDefinition, StepFailure, StepResult

Key = Hashable

# Enough for the contexts and steps alive in one breadth-first level of the CI bound; an identity
# cache that is full is cleared (its entries keep their objects alive, so ids are never reused).
_JSON_CACHE_LIMIT: Final = 1 << 18

_NO_INPUT_KEY: Final = ("<no input>",)


def json_key(value: JsonValue) -> Key:
    """A hashable stand-in for a JSON value; equal exactly when the values are equal as JSON."""
    if type(value) is str:
        return value  # the common case: a plain string stands for itself
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr),)


def failure_key(failure: StepFailure | None) -> Key:
    """The key of a failure envelope."""
    if failure is None:
        return None
    return (
        failure.category.value,
        failure.message,
        failure.step_id,
        failure.attempt,
        failure.retryable,
        json_key(failure.details),
    )


def result_key(result: StepResult | None) -> Key:
    """The key of a kept step result."""
    if result is None:
        return None
    return (result.step_id, result.attempt, result.effect_id, json_key(result.output))


class KeyCache:
    """Keys of conversations, runs and step definitions, with identity caches for the hot parts."""

    __slots__ = ("_definitions", "_json", "_runs", "_steps")

    def __init__(self) -> None:
        self._runs: dict[int, tuple[RunState, Key]] = {}
        self._steps: dict[int, tuple[StepState, Key]] = {}
        self._definitions: dict[int, tuple[StepDefinition, Key]] = {}
        self._json: dict[int, tuple[JsonValue, Key]] = {}

    def json_key(self, value: JsonValue) -> Key:
        """`json_key`, remembered by identity: a context often outlives many run states."""
        if type(value) is str or value is None:
            return json_key(value)
        cached = self._json.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        key = json_key(value)
        if len(self._json) >= _JSON_CACHE_LIMIT:
            self._json.clear()
        self._json[id(value)] = (value, key)
        return key

    def definition_key(self, definition: StepDefinition) -> Key:
        """The key of a step definition (modes hand out the same objects, so cache them)."""
        cached = self._definitions.get(id(definition))
        if cached is not None and cached[0] is definition:
            return cached[1]
        policy = definition.policy
        key = (
            definition.step_id,
            definition.step_class.value,
            json_key(definition.input),
            policy.timeout,
            policy.max_attempts,
            (policy.backoff.initial, policy.backoff.multiplier, policy.backoff.max_delay),
            tuple(category.value for category in policy.retry_on),
            policy.on_failure.value,
            definition.label,
        )
        if len(self._definitions) < 4096:  # modes built per plan call would grow it for ever
            self._definitions[id(definition)] = (definition, key)
        return key

    def step_key(self, step: StepState) -> Key:
        """The key of one step, remembered by identity: a transaction keeps untouched steps."""
        cached = self._steps.get(id(step))
        if cached is not None and cached[0] is step:
            return cached[1]
        key = (
            self.definition_key(step.definition),
            step.status.value,
            step.attempt,
            step.failures,
            step.effect_id,
            step.progress_sequence,
            result_key(step.result),
            failure_key(step.failure),
            _NO_INPUT_KEY if step.input is NO_INPUT else json_key(step.input),
        )
        if len(self._steps) >= _JSON_CACHE_LIMIT:
            self._steps.clear()
        self._steps[id(step)] = (step, key)
        return key

    def run_key(self, run: RunState) -> Key:
        """The key of one run: every field, steps in planning order."""
        cached = self._runs.get(id(run))
        if cached is not None and cached[0] is run:
            return cached[1]
        return (
            run.run_id,
            run.mode,
            run.status.value,
            self.json_key(run.input),
            run.principal,
            tuple([self.step_key(step) for step in run.steps]),
            self.json_key(run.context),
            run.reason,
            self.json_key(run.output),
            failure_key(run.error),
            run.requested_at,
            tuple([(step_id, json_key(value)) for step_id, value in run.early_inputs]),
        )

    def keep(self, state: ConversationState) -> None:
        """Remember the keys of this state's runs (the caller keeps the state alive)."""
        for run in (*state.run_history, state.active_run):
            if run is not None and id(run) not in self._runs:
                self._runs[id(run)] = (run, self.run_key(run))

    def conversation_key(self, state: ConversationState) -> Key:
        """The key of a whole conversation state."""
        active = state.active_run
        return (
            state.conversation_id,
            None if active is None else self.run_key(active),
            tuple([self.run_key(run) for run in state.run_history]),
            tuple(sorted(state.run_ids)),
        )


def conversation_key(state: ConversationState) -> Key:
    """The canonical key of a conversation state (uncached; see `KeyCache` for the hot path)."""
    return KeyCache().conversation_key(state)
