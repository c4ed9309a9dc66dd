"""The race machine over the pure core, and the seeded defects it must catch."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from interruptible._verify._checker._defects import (
    EagerResume,
    LostAnswer,
    LostCancel,
    RerunOnResume,
    TerminalTwice,
)

from .machine import CoreRaceMachine


def test_ver_1_to_14_core_race_machine_holds_every_invariant() -> None:
    """Under every sampled interleaving of requests, interrupts, resumes, cancels, effect
    answers (late, duplicate, stale) and gate answers, every invariant VER-1..VER-11 holds after
    every event and the reference model agrees (VER-14); run with the loaded profile."""
    run_state_machine_as_test(CoreRaceMachine, settings=settings())


class TerminalTwiceMachine(CoreRaceMachine):
    """The race machine against defect (a): a late completion ends a run a second time."""

    coordinator_factory = TerminalTwice
    check_reference = False


class EagerResumeMachine(CoreRaceMachine):
    """The race machine against defect (b): resume does not wait for the cancel's answer."""

    coordinator_factory = EagerResume
    check_reference = False


class LostCancelMachine(CoreRaceMachine):
    """The race machine against defect (c): interrupt emits no cancel_effects."""

    coordinator_factory = LostCancel
    check_reference = False


class RerunOnResumeMachine(CoreRaceMachine):
    """The race machine against defect (e): resume re-runs the last finished step."""

    coordinator_factory = RerunOnResume
    check_reference = False


class LostAnswerMachine(CoreRaceMachine):
    """The race machine against defect (f): a started effect's completion is dropped."""

    coordinator_factory = LostAnswer
    check_reference = False


# Derandomized whatever the profile, so the seeded failure is found the same way on every run;
# not shrunk, which would double the time for a defect we already know (the failing program is
# still printed, unshrunk).
BROKEN = settings(
    settings(),
    derandomize=True,
    max_examples=1000,
    stateful_step_count=50,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    print_blob=False,
)


@pytest.mark.parametrize(
    ("machine", "property_id"),
    [
        pytest.param(TerminalTwiceMachine, "VER-3", id="terminal_twice"),
        pytest.param(EagerResumeMachine, "VER-4", id="eager_resume"),
        pytest.param(LostCancelMachine, "VER-5", id="lost_cancel"),
        pytest.param(RerunOnResumeMachine, "VER-6", id="rerun_on_resume"),
        pytest.param(LostAnswerMachine, "VER-5", id="lost_answer"),
    ],
)
def test_ver_15_race_machine_catches_seeded_defect(
    machine: type[CoreRaceMachine], property_id: str
) -> None:
    """Each seeded defect makes the race machine fail, on the invariant of the property it
    breaks (style rule 14: deliberately broken machines must fail)."""
    with pytest.raises(AssertionError, match=property_id):
        run_state_machine_as_test(machine, settings=BROKEN)
