"""The ownership race machine over the runtime's own classes, and the seeded defects it must
catch."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from interruptible._verify._checker._owner_defects import OWNER_BROKEN_PROPERTY, UnfencedJournal

from .owner_defects import (
    EagerTakeoverOwner,
    IdleByEpochOwner,
    KeptPostedOwner,
    SplitAnswerWriter,
    UnnoticedTakeoverOwner,
)
from .owners import OwnerRaceMachine


def test_ver_17_to_21_owner_race_machine_holds_every_invariant() -> None:
    """Under every sampled interleaving of two runtimes' pump rounds, heartbeats, command polls,
    effect answers, run requests, commands from a third process, lapsing leases, crashes and
    closes: one writer per epoch (VER-17), each command journaled at most once (VER-18),
    takeovers only of abandoned owners (VER-19), the journal one conversation's valid history
    (VER-21) after every rule, and a fair world ending every run and answering every command
    at the end (VER-20); run with the loaded profile."""
    run_state_machine_as_test(OwnerRaceMachine, settings=settings())


class UnfencedMachine(OwnerRaceMachine):
    """The race machine against defect `unfenced`: the journal writes a stale owner's batch."""

    journal_class = UnfencedJournal


class EagerTakeoverMachine(OwnerRaceMachine):
    """The race machine against defect `eager_takeover`: a live owner is taken over."""

    owner_class = EagerTakeoverOwner


class SplitAnswerMachine(OwnerRaceMachine):
    """The race machine against defect `split_answer`: answers lag their events by a round."""

    writer_class = SplitAnswerWriter


class KeptPostedMachine(OwnerRaceMachine):
    """The race machine against finding `kept_posted`: commands posted before are skipped."""

    owner_class = KeptPostedOwner


class IdleByEpochMachine(OwnerRaceMachine):
    """The race machine against finding `idle_by_epoch`: the sweep's idle cache ignores writes."""

    owner_class = IdleByEpochOwner


class UnnoticedTakeoverMachine(OwnerRaceMachine):
    """The race machine against finding `unnoticed_takeover`: a takeover is never noticed."""

    owner_class = UnnoticedTakeoverOwner


# As for the core's race machine: derandomized whatever the profile, not shrunk.
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
    ("machine", "defect"),
    [
        pytest.param(UnfencedMachine, "unfenced", id="unfenced"),
        pytest.param(EagerTakeoverMachine, "eager_takeover", id="eager_takeover"),
        pytest.param(SplitAnswerMachine, "split_answer", id="split_answer"),
    ],
)
def test_ver_22_race_machine_catches_seeded_ownership_defect(
    machine: type[OwnerRaceMachine], defect: str
) -> None:
    """Each seeded ownership defect, swapped into the runtime's classes, makes the race machine
    fail on the property it breaks (the same one the model checker reports). The two findings
    need longer schedules than sampling reaches in this budget: each has its scenario below."""
    with pytest.raises(AssertionError, match=OWNER_BROKEN_PROPERTY[defect]):
        run_state_machine_as_test(machine, settings=BROKEN)


def test_ver_20_a_conversation_let_go_with_queued_events_is_taken_back_whole() -> None:
    """The race machine's finding, as a fixed scenario: an owner paused past its lease has an
    effect's answer queued when another process takes over; its heartbeat lets the conversation
    go, and later takes it back from the new owner, which died meanwhile. The conversation is
    queued for the writer once, so the round that writes the takeover's events keeps them (it
    used to be queued twice, and the second, empty batch of the round put back the state and
    sequence from before, fencing the conversation for good)."""
    machine = OwnerRaceMachine()
    machine.request_run(0)
    machine.pump(0)
    machine.effect_answers(0, canceled=False)  # A's answer is queued, not yet written
    machine.time_passes()
    machine.time_passes()
    machine.beat(1)  # B takes over from A, whose lease lapsed
    machine.beat(0)  # A renews, sees B's epoch, lets the conversation go
    machine.time_passes()
    machine.time_passes()
    machine.beat(0)  # B never wrote and its lease lapsed: A takes the conversation back
    a = machine.procs[0]
    conv = a.conversation()
    assert conv is not None and conv.epoch == 3
    a.writer.pump_once()
    assert conv.last == machine.journal.last_sequence("c1") and conv.fenced is None
    machine.teardown()


def _idle_owner_taken_over(machine: OwnerRaceMachine) -> None:
    """A interrupts its run and goes idle; a resume is pending when A stalls past its lease, so
    B takes over, applies it, starts the step again, and crashes."""
    machine.request_run(0)
    machine.pump(0)
    machine.submit_command("interrupt")
    machine.poll_commands(0)
    machine.pump(0)
    machine.effect_answers(0, canceled=True)
    machine.pump(0)  # the run is interrupted; A has nothing in flight
    machine.submit_command("resume")
    machine.pause(0)  # B's heartbeat takes the conversation over: a command is pending
    machine.pump(1)  # B resumes the run: its step starts again, in B
    machine.stop(1, clean=False)


def test_ver_20_an_idle_owner_taken_over_lets_go_at_its_heartbeat() -> None:
    """The model checker's finding `unnoticed_takeover`, on the runtime's classes: an owner
    taken over while it had nothing to write learns it at its next heartbeat and lets the
    conversation go, so when the new owner dies it takes the conversation back and the run
    ends (VER-20); without that, it believes for ever that it owns the conversation."""
    machine = OwnerRaceMachine()
    _idle_owner_taken_over(machine)
    machine.teardown()
    assert machine.folded.active_run is None
    broken = UnnoticedTakeoverMachine()
    _idle_owner_taken_over(broken)
    with pytest.raises(AssertionError, match=OWNER_BROKEN_PROPERTY["unnoticed_takeover"]):
        broken.teardown()


def _posted_then_taken_over(machine: OwnerRaceMachine) -> None:
    """A posts a command to its writer, then stalls past its lease before writing it; B takes
    the conversation over (the command is pending), posts it too, and crashes before writing."""
    machine.request_run(0)
    machine.pump(0)
    machine.submit_command("interrupt")
    machine.poll_commands(0)  # posted in A, not yet written
    machine.pause(0)  # B's heartbeat takes over: the command is pending
    machine.stop(1, clean=False)


def test_ver_20_a_command_posted_before_a_takeover_is_applied_when_taken_back() -> None:
    """The model checker's finding `kept_posted`, on the runtime's classes: a command A had
    posted when it lost the conversation (its inbox was dropped) is posted again when A takes
    the conversation back, and applied once (VER-20, VER-18); skipping the commands A had
    posted before left it pending for ever."""
    machine = OwnerRaceMachine()
    _posted_then_taken_over(machine)
    machine.teardown()
    assert not machine._pending()
    broken = KeptPostedMachine()
    _posted_then_taken_over(broken)
    with pytest.raises(AssertionError, match=OWNER_BROKEN_PROPERTY["kept_posted"]):
        broken.teardown()


def _idle_then_woken(machine: OwnerRaceMachine) -> None:
    """A's run is interrupted (nothing live) when A stalls past its lease: B's sweep finds the
    conversation abandoned and idle. A wakes, resumes the run (its step starts in A), and
    crashes."""
    machine.request_run(0)
    machine.pump(0)
    machine.submit_command("interrupt")
    machine.poll_commands(0)
    machine.pump(0)
    machine.effect_answers(0, canceled=True)
    machine.pump(0)  # interrupted, nothing live
    machine.pause(0)  # B's sweep: abandoned, idle
    machine.submit_command("resume")
    machine.poll_commands(0)
    machine.pump(0)  # A, still the owner, resumes: its step starts again
    machine.stop(0, clean=False)


def test_ver_20_an_idle_conversation_that_gets_work_at_the_same_epoch_is_adopted() -> None:
    """The model checker's finding `idle_by_epoch`, on the runtime's classes: a conversation
    the sweep found abandoned and idle is looked at again once its sequence moves, not only its
    epoch, so the work its owner journaled after waking (then died with) is adopted and the run
    ends (VER-20)."""
    machine = OwnerRaceMachine()
    _idle_then_woken(machine)
    machine.teardown()
    assert machine.folded.active_run is None
    broken = IdleByEpochMachine()
    _idle_then_woken(broken)
    with pytest.raises(AssertionError, match=OWNER_BROKEN_PROPERTY["idle_by_epoch"]):
        broken.teardown()
