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
most events change one run at most). The explorer interns conversation states by
`KeyCache.interned_key`, which numbers each distinct step and run key once and builds a
conversation's key from those numbers: a short flat tuple instead of a deep one, so hashing it per
lookup is cheap. The number of a step or run object is remembered by identity: a transaction keeps
the steps it did not touch, and the runs of a history are shared by many states. The cache keeps
each object alive beside its number, so an `id()` is never reused while its entry exists.

The numbers are a bijection with the structural keys of one `KeyCache`, so interned keys are
canonical too (VER-13), but only within that cache; `conversation_key` stays structural,
comparable across caches (replay parity compares keys of two folds).
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Final

from ..._core import NO_INPUT, ConversationState, RunState, StepState
from ..._vocabulary import JsonValue, StepDefinition, StepFailure, StepResult

Key = Hashable

# Enough for the contexts and steps alive in one breadth-first level of the CI bound; an identity
# cache that is full is cleared (its entries keep their objects alive, so ids are never reused).
_JSON_CACHE_LIMIT: Final = 1 << 18

_NO_INPUT_KEY: Final = ("<no input>",)
# `json_key(None)`, written out: most outputs, contexts and failure details are None.
_NULL_KEY: Final = ("null",)
# `json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)` without building an
# encoder per call (a new context is keyed after most events).
_ENCODE: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr).encode


def json_key(value: JsonValue) -> Key:
    """A hashable stand-in for a JSON value; equal exactly when the values are equal as JSON."""
    if type(value) is str:
        return value  # the common case: a plain string stands for itself
    if value is None:
        return _NULL_KEY
    return (_ENCODE(value),)


def failure_key(failure: StepFailure | None) -> Key:
    """The key of a failure envelope."""
    if failure is None:
        return None
    return (
        failure.category,  # enum members are their own keys (hashing them is cheaper than .value)
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

    __slots__ = (
        "_definitions",
        "_json",
        "_numbered_runs",
        "_numbered_steps",
        "_run_numbers",
        "_step_numbers",
        "_steps",
    )

    def __init__(self) -> None:
        self._steps: dict[int, tuple[StepState, Key]] = {}
        self._definitions: dict[int, tuple[StepDefinition, Key]] = {}
        self._json: dict[int, tuple[JsonValue, Key]] = {}
        # Interning: each distinct step or run key gets the next number, for good ...
        self._numbered_steps: dict[Key, int] = {}
        self._numbered_runs: dict[Key, int] = {}
        # ... and each object its key's number, by identity (the object is kept alive).
        self._step_numbers: dict[int, tuple[StepState, int]] = {}
        self._run_numbers: dict[int, tuple[RunState, int]] = {}

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
            definition.step_class,
            json_key(definition.input),
            policy.timeout,
            policy.max_attempts,
            (policy.backoff.initial, policy.backoff.multiplier, policy.backoff.max_delay),
            policy.retry_on,
            policy.on_failure,
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
        key = self._step_key(step)
        if len(self._steps) >= _JSON_CACHE_LIMIT:
            self._steps.clear()
        self._steps[id(step)] = (step, key)
        return key

    def _step_key(self, step: StepState) -> Key:
        return (
            self.definition_key(step.definition),
            step.status,
            step.attempt,
            step.failures,
            step.effect_id,
            step.progress_sequence,
            result_key(step.result),
            failure_key(step.failure),
            _NO_INPUT_KEY if step.input is NO_INPUT else json_key(step.input),
        )

    def run_key(self, run: RunState) -> Key:
        """The key of one run: every field, steps in planning order."""
        return self._run_key(run, tuple([self.step_key(step) for step in run.steps]))

    def _run_key(self, run: RunState, steps: Key) -> Key:
        return (
            run.run_id,
            run.mode,
            run.status,
            self.json_key(run.input),
            run.principal,
            steps,
            self.json_key(run.context),
            run.reason,
            self.json_key(run.output),
            failure_key(run.error),
            run.requested_at,
            tuple([(step_id, json_key(value)) for step_id, value in run.early_inputs]),
        )

    def conversation_key(self, state: ConversationState) -> Key:
        """The key of a whole conversation state."""
        active = state.active_run
        return (
            state.conversation_id,
            None if active is None else self.run_key(active),
            tuple([self.run_key(run) for run in state.run_history]),
            tuple(sorted(state.run_ids)),
        )

    # --- interned keys -----------------------------------------------------------------------

    def step_number(self, step: StepState) -> int:
        """The number of the step's key in this cache: equal exactly for equal steps."""
        cached = self._step_numbers.get(id(step))
        if cached is not None and cached[0] is step:
            return cached[1]
        numbered = self._numbered_steps
        number = numbered.setdefault(self._step_key(step), len(numbered))
        if len(self._step_numbers) >= _JSON_CACHE_LIMIT:
            self._step_numbers.clear()
        self._step_numbers[id(step)] = (step, number)
        return number

    def run_number(self, run: RunState) -> int:
        """The number of the run's key in this cache: equal exactly for equal runs."""
        cached = self._run_numbers.get(id(run))
        if cached is not None and cached[0] is run:
            return cached[1]
        step_number = self.step_number
        numbered = self._numbered_runs
        key = self._run_key(run, tuple([step_number(step) for step in run.steps]))
        number = numbered.setdefault(key, len(numbered))
        if len(self._run_numbers) >= _JSON_CACHE_LIMIT:
            self._run_numbers.clear()
        self._run_numbers[id(run)] = (run, number)
        return number

    def interned_key(self, state: ConversationState) -> Key:
        """A key of the conversation made of run numbers: canonical within this cache only."""
        active = state.active_run
        run_number = self.run_number
        return (
            state.conversation_id,
            -1 if active is None else run_number(active),
            tuple([run_number(run) for run in state.run_history]),
            state.run_ids,  # a frozenset: equal exactly when the sorted ids are
        )


def conversation_key(state: ConversationState) -> Key:
    """The canonical key of a conversation state (uncached; see `KeyCache` for the hot path)."""
    return KeyCache().conversation_key(state)
