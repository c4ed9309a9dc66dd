"""Where an old run meets new code: the check the writer makes before it folds such an event.

A run follows the definition it journaled (spec/upgrades.md). When a process whose registered
definitions differ takes it up, the first event that would move it on is a *meeting*: a resume, a
gate answer, an effect's answer (late, or the `effect_lost` of a recovery or a takeover). Before
folding it, the writer asks `Meeting` (UPG-3):

- the run follows a registered definition (the common case, one dict lookup), or was journaled
  before runs carried one: nothing to do;
- the newest definition plans it exactly, or a declared migration moves it: a `run_upgraded` is
  folded and journaled first, in the same write (UPG-4, UPG-5);
- neither: a resume or a gate answer is refused with `DefinitionChangedError` (nothing is
  journaled, the run stays as it was); an effect's answer is a fact and is kept, but a running
  run is first interrupted with the reason `definition_changed`, so nothing of the new code runs
  for it (UPG-3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from .._core import ConversationState, Coordinator
from .._core._definitions import Migration, Verdict, judge
from .._errors import DefinitionChangedError
from .._lifecycle import RunStatus
from .._vocabulary import (
    EffectCompleted,
    EffectFailed,
    EffectLost,
    Event,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunUpgraded,
)

# The events that move a run on with the code of the process that folds them.
MEETING_EVENTS: Final = frozenset(
    {ResumeRequested, HumanInputReceived, EffectCompleted, EffectFailed, EffectLost}
)
# Refused when blocked: a caller's request, which may be asked again once the old definition is
# registered; an effect's answer is a fact and is never refused.
_REQUESTS: Final = (ResumeRequested, HumanInputReceived)

DEFINITION_CHANGED: Final = "definition_changed"


class Meeting:
    """The writer's check for events that meet an old run (UPG-3)."""

    __slots__ = ("clock", "coordinator", "ids", "migrations")

    def __init__(
        self,
        coordinator: Callable[[], Coordinator],
        migrations: Sequence[Migration],
        ids: Callable[[], str],
        clock: Callable[[], float],
    ) -> None:
        self.coordinator = coordinator
        self.migrations = tuple(migrations)
        self.ids = ids
        self.clock = clock

    def __call__(
        self, state: ConversationState, event: Event
    ) -> tuple[Event, ...] | DefinitionChangedError | None:
        """The events to fold before `event`, or the refusal of `event`; None: fold it as is."""
        run = state.active_run
        if run is None or run.run_id != getattr(event, "run_id", None):
            return None
        coordinator = self.coordinator()
        if run.fingerprint is None or run.fingerprint in coordinator.versions:
            return None
        verdict = judge(run, coordinator.versions, coordinator.current, self.migrations)
        conversation_id = event.conversation_id
        if verdict.moves:
            return (upgrade_event(verdict, conversation_id, run.run_id, self.ids(), self.clock()),)
        if isinstance(event, _REQUESTS):
            return refusal(verdict, conversation_id, run.run_id, run.status.value)
        if run.status is RunStatus.running:
            return (
                InterruptRequested(
                    self.ids(),
                    conversation_id,
                    run.run_id,
                    DEFINITION_CHANGED,
                    run.principal,  # on the run's own behalf, as the default authorizer allows
                    self.clock(),
                ),
            )
        return None


def upgrade_event(
    verdict: Verdict, conversation_id: str, run_id: str, event_id: str, at: float
) -> RunUpgraded:
    """The `run_upgraded` that carries out a verdict that moves the run."""
    assert verdict.current_fingerprint is not None
    return RunUpgraded(
        event_id,
        conversation_id,
        run_id,
        verdict.run_fingerprint,
        verdict.current_fingerprint,
        verdict.definition,
        verdict.context,
        None if verdict.migration is None else verdict.migration.name,
        None if verdict.renames is None else dict(verdict.renames),
        at,
    )


def refusal(
    verdict: Verdict, conversation_id: str, run_id: str, status: str
) -> DefinitionChangedError:
    """The typed refusal of a request that meets a blocked run (UPG-3)."""
    where = f" at step {verdict.step_id!r}" if verdict.step_id is not None else ""
    return DefinitionChangedError(
        f"run {run_id!r} started on definition {verdict.run_fingerprint}, and the registered "
        f"one ({verdict.current_fingerprint}) differs{where}: {verdict.detail}. Register the "
        "old version beside the new (modes=[old, new]) or declare a Migration; "
        "`interruptible upgrade-check` lists every such run.",
        conversation_id=conversation_id,
        run_id=run_id,
        run_fingerprint=verdict.run_fingerprint,
        current_fingerprint=verdict.current_fingerprint,
        step_id=verdict.step_id,
        status=status,
    )
