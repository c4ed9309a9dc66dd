"""`Steps`: a long run's steps, an immutable sequence whose per-event update costs O(1).

Theory of operation
-------------------
A run's steps change at one end only: the last step planned is the only one that can be
unfinished (CORE-10), so an event either replaces the last step (started, progress, completed,
interrupted, ...) or appends the next one. Kept in a tuple, every such change copies the whole
tuple, twice per event (into the transaction's list and back): a run's cost per step grows with
its length, and a run of n steps costs O(n^2) in all (measured: 14 us a step at 100 steps, 43 us
at 8,000).

`Steps` holds the same sequence as `(base, count, last)`: the first `count` steps are
`base[:count]`, and the last step is `last`, apart. Replacing the last step is a new `Steps`
that shares `base`. Appending a step first puts `last` at `base[count]`: when `base` ends there,
`base.append(last)` extends it in place, which every other `Steps` sharing `base` cannot see
(each reads only its own first `count` items, and items are only ever added past the end). When
another version already appended, and `base[count]` is not `last`, the new version copies
`base[:count]` (the branch case: a model checker exploring two futures of one state). The check
reads `base[count]` after the append, so two appends racing from two threads cannot both claim
one slot for different steps: the loser sees another object there and copies (two racers with
the same last step may share the slot, which holds exactly that step). A `Steps` made from a
whole sequence (`Steps(items)`, `freeze` of a list, unpickling) has its last step at
`base[count]` too; once that step is replaced, the next append copies `base` once.

It behaves as the tuple of its items for every reading (indexing, slicing, iteration, `in`,
`index`, `count`, `==`, order comparisons, `hash`, `+`, `*`, pickling), with one exception:
`dataclasses.asdict` recurses into tuples and lists only, so it leaves a `Steps` of step records
as it is; convert with `tuple(run.steps)` first where that matters.

Short runs keep a plain tuple: a tuple's copy of a few hundred pointers is cheaper than the
Python-level indexing `Steps` costs, so the core switches a run to `Steps` once it has more than
`LONG_RUN` steps (`freeze`). Both are sequences of `StepState`: a `Steps` equals the tuple of its
items and hashes like it, so a state holding either compares as the same state (replay parity,
the model checker's deduplication, tests written with tuples).

The core's transaction edits steps through `StepsDraft` (the same three fields, mutable, private
to one `reduce`), or through a plain list for a short run; `freeze` turns either back into the
value a `RunState` holds.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from collections.abc import Sequence as SequenceABC
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, Final, overload

if TYPE_CHECKING:
    from ._state import StepState

# More steps than this, and a run's steps are kept as `Steps` rather than a tuple. Measured per
# step of a run (two events): a tuple costs 13.3 us at 20 steps, 14.2 at 256, 14.9 at 512 and
# 16.3 at 1,000; `Steps` costs 14.5-15 throughout (its indexing is Python code). The two meet
# near 512.
LONG_RUN: Final = 512


class _Chain:
    """What `Steps` and `StepsDraft` read alike: the items `base[:count]`, then `last`."""

    __slots__ = ("_base", "_count", "_last")

    _base: list[StepState]
    _count: int
    _last: StepState

    def __len__(self) -> int:
        return self._count + 1

    @overload
    def __getitem__(self, index: int) -> StepState: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[StepState, ...]: ...

    def __getitem__(self, index: int | slice) -> StepState | tuple[StepState, ...]:
        if type(index) is not int:
            if isinstance(index, slice):
                return tuple(self)[index]
            index = operator.index(index)  # bool, IntEnum, numpy ints: as a tuple takes them
        count = self._count
        if index == count or index == -1:
            return self._last
        if index < 0:
            index += count + 1
        if 0 <= index < count:
            return self._base[index]
        raise IndexError("steps index out of range")

    def __iter__(self) -> Iterator[StepState]:
        return chain(islice(self._base, self._count), (self._last,))


class Steps(_Chain, SequenceABC["StepState"]):
    """An immutable sequence of step states: `base[:count]`, then `last`; equal to its tuple.

    Its fields are private and never reassigned once built (`_hash` caches the hash).
    """

    __slots__ = ("_hash",)

    _hash: int | None

    def __init__(self, items: SequenceABC[StepState]) -> None:
        base = list(items)
        if not base:
            raise ValueError("Steps holds at least one step; an empty run's steps are ()")
        self._base = base
        self._count = len(base) - 1
        self._last = base[-1]
        self._hash = None

    @classmethod
    def _of(cls, base: list[StepState], count: int, last: StepState) -> Steps:
        steps = cls.__new__(cls)
        steps._base = base
        steps._count = count
        steps._last = last
        steps._hash = None
        return steps

    def __reversed__(self) -> Iterator[StepState]:
        count = self._count
        base = self._base
        return chain((self._last,), (base[i] for i in range(count - 1, -1, -1)))

    # --- value semantics: the same as the tuple of its items ---------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Steps):
            if other._base is self._base and other._count == self._count:
                return other._last == self._last  # one history: only the last step can differ
            return len(other) == len(self) and tuple(self) == tuple(other)
        if isinstance(other, tuple):
            return len(other) == len(self) and tuple(self) == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __lt__(self, other: object) -> bool:
        return bool(_as_tuple(self) < _as_tuple(other))

    def __le__(self, other: object) -> bool:
        return bool(_as_tuple(self) <= _as_tuple(other))

    def __gt__(self, other: object) -> bool:
        return bool(_as_tuple(self) > _as_tuple(other))

    def __ge__(self, other: object) -> bool:
        return bool(_as_tuple(self) >= _as_tuple(other))

    def __mul__(self, times: int) -> tuple[StepState, ...]:
        return tuple(self) * times

    __rmul__ = __mul__

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            cached = self._hash = hash(tuple(self))
        return cached

    def __repr__(self) -> str:
        return f"Steps({tuple(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Steps, (tuple(self),))

    def __add__(self, other: object) -> tuple[StepState, ...]:
        if isinstance(other, (tuple, Steps)):
            return (*self, *other)
        return NotImplemented

    def __radd__(self, other: object) -> tuple[StepState, ...]:
        if isinstance(other, tuple):
            return (*other, *self)
        return NotImplemented

    def draft(self) -> StepsDraft:
        """A mutable copy for one transaction (O(1): it shares `base`)."""
        return StepsDraft(self._base, self._count, self._last)


class StepsDraft(_Chain):
    """The steps a transaction is editing: O(1) to replace the last step or append one."""

    __slots__ = ()

    def __init__(self, base: list[StepState], count: int, last: StepState) -> None:
        self._base = base
        self._count = count
        self._last = last

    def __setitem__(self, index: int, step: StepState) -> None:
        count = self._count
        if index == count or index == -1:
            self._last = step
            return
        if index < 0:
            index += count + 1
        if not 0 <= index < count:
            raise IndexError("steps index out of range")
        # An earlier step changes (CORE-10 leaves only a run's end to abandon one, so this is
        # rare): the draft copies what it keeps of `base` and owns the copy.
        base = self._base[:count]
        base[index] = step
        self._base = base

    def append(self, step: StepState) -> None:
        """Add `step` after the last one."""
        base, count, last = self._base, self._count, self._last
        if len(base) == count:
            base.append(last)
        if base[count] is not last:  # another version appended here first: branch off
            base = base[:count]
            base.append(last)
            self._base = base
        self._count = count + 1
        self._last = step

    def freeze(self) -> Steps:
        """The immutable steps this draft holds now."""
        return Steps._of(self._base, self._count, self._last)


Draft = list["StepState"] | StepsDraft


def _as_tuple(value: object) -> Any:
    """A `Steps` as its tuple, anything else as it is (for the order comparisons)."""
    return tuple(value) if isinstance(value, Steps) else value


def freeze(steps: Draft) -> tuple[StepState, ...] | Steps:
    """The value a `RunState` keeps: a tuple for a short run, `Steps` for a long one."""
    if type(steps) is StepsDraft:
        return steps.freeze()
    assert type(steps) is list
    if len(steps) <= LONG_RUN:
        return tuple(steps)
    # The transaction's list is private: it becomes the shared base as it is.
    return Steps._of(steps, len(steps) - 1, steps[-1])
