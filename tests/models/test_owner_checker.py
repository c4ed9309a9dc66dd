"""The ownership model checker: two owner processes over the real journal and core."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interruptible import event_from_json
from interruptible._cli._check import add_parser
from interruptible._verify._checker import (
    OwnerExplorer,
    OwnerReport,
    OwnerWorld,
    explore_owners,
    replay_moves,
)
from interruptible._verify._checker._defects import TerminalTwice
from interruptible._verify._checker._models import load_model, model_path
from interruptible._verify._checker._owner_defects import (
    OWNER_BROKEN_PROPERTY,
    OWNER_DEFECTS,
    UnfencedJournal,
)
from interruptible._verify._checker._owner_journals import CONVERSATION, history_violation
from interruptible._verify._checker._owner_state import OwnerModel

MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "two_owners.py"
# The CI bound's goals (spec/verification.md, VER-23).
CI_MIN_STATES = 30_000
CI_MAX_SECONDS = 30.0

Record = Callable[[str, object], None]


@pytest.fixture(scope="module")
def model() -> OwnerModel:
    loaded: Any = load_model(MODEL_PATH)
    return loaded  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def ci_report(model: OwnerModel) -> OwnerReport:
    """One exhaustive exploration of the CI bound, shared by the tests that read its figures."""
    return explore_owners(OwnerWorld(model, model.ci_bounds))


def test_ver_17_to_21_ownership_ci_bound_every_property_holds(
    ci_report: OwnerReport, record_property: Record
) -> None:
    """Within the CI bound (two owners, one run, one command, one pause past the lease, one
    crash or close, at every point), every reachable state and move keeps one writer per epoch
    (VER-17), each command journaled at most once (VER-18), takeovers only after a lapse
    (VER-19) and a valid journal history (VER-21), and from every state with an owner alive a
    state where every run has ended and every command is answered is reachable (VER-20)."""
    record_property("figures", ci_report.lines())
    figures = "\n".join(ci_report.lines())
    assert ci_report.ok, figures
    assert ci_report.liveness_checked and ci_report.unexpanded == 0, figures


def test_ver_23_ownership_ci_bound_is_large_and_fast_enough(ci_report: OwnerReport) -> None:
    """The ownership CI bound explores at least 30,000 distinct states, to the end, in under 30
    seconds."""
    figures = "\n".join(ci_report.lines())
    assert ci_report.states >= CI_MIN_STATES, figures
    assert ci_report.seconds < CI_MAX_SECONDS, figures


# The length of each defect's shortest counterexample at the CI bound (breadth-first order).
SHORTEST = {
    "eager_takeover": 5,  # A runs r1 and writes; B takes over a live A
    "unfenced": 8,  # A's effect answers; A pauses; B takes over; A's late answer is written
    "split_answer": 10,  # A writes a command's events, B takes over and applies it again
    "kept_posted": 9,
    "unnoticed_takeover": 14,
    "idle_by_epoch": 14,
}


@pytest.mark.parametrize("defect", sorted(OWNER_DEFECTS))
def test_ver_22_checker_finds_seeded_ownership_defect(
    model: OwnerModel, defect: str, record_property: Record
) -> None:
    """Each seeded ownership defect gives a shortest counterexample for the property it breaks;
    its moves replay to that violation in a fresh defective world (VER-20 aside: a state from
    which nothing ends), and its journal, as JSON events, is a valid history of the real core."""
    world = OwnerWorld(model, model.ci_bounds, OWNER_DEFECTS[defect])
    report = explore_owners(world)
    record_property("figures", [f"defect {defect}:", *report.lines()])
    counterexample = report.counterexample
    assert counterexample is not None, "\n".join(report.lines())
    assert counterexample.violation.property_id == OWNER_BROKEN_PROPERTY[defect]
    assert len(counterexample.moves) == SHORTEST[defect], "\n".join(report.lines())
    document = json.loads(json.dumps(counterexample.to_json()))
    assert document["moves"] == list(counterexample.moves)
    events = [event_from_json(item) for item in document["journal"]]
    assert tuple(events) == counterexample.journal
    fresh = OwnerWorld(model, model.ci_bounds, OWNER_DEFECTS[defect])
    found, made = replay_moves(fresh, counterexample.moves)
    assert made == len(counterexample.moves)
    if counterexample.violation.property_id == "VER-20":
        assert found is None
    else:
        assert found == counterexample.violation
    real = OwnerWorld(model, model.ci_bounds)
    assert history_violation(real.reduce, events) is None
    assert replay_moves(real, counterexample.moves)[0] is None


def test_ver_21_a_broken_core_is_caught_in_the_journal(model: OwnerModel) -> None:
    """The journal's history is folded through the core under test: with a core that ends a
    run twice on a late completion, the ownership world finds a journal whose fold breaks
    VER-3 (reported as VER-21)."""
    world = OwnerWorld(model, model.ci_bounds, coordinator_factory=TerminalTwice)
    report = explore_owners(world)
    assert report.counterexample is not None
    assert report.counterexample.violation.property_id == "VER-21"
    assert "VER-3" in report.counterexample.violation.message


def test_ver_17_to_21_three_owners_race_to_claim(model: OwnerModel) -> None:
    """Three owners, two of which stop (no command, to stay quick): when the owner is
    abandoned, the two others may both decide to take over from the same epoch, and the
    compare-and-set lets exactly one win (OWN-2); every property holds, liveness included."""
    bounds = dataclasses.replace(model.ci_bounds, owners=3, stops=2, commands=0)
    explorer = OwnerExplorer(OwnerWorld(model, bounds))
    report = explorer.run()
    assert report.ok and report.liveness_checked, "\n".join(report.lines())
    world = explorer.world
    assert any(
        label.endswith("loses the claim of epoch 2")
        for state in explorer.states
        for label, _, _ in world.moves(state)
    )


def test_ver_17_the_state_key_mirrors_the_journal(model: OwnerModel) -> None:
    """The journal part of the state key is read back through the journal's API, and the real
    journal each interned key keeps holds exactly that: its log, owners, leases and answers, and
    a fork shares none of its lists with it."""
    explorer = OwnerExplorer(OwnerWorld(model, dataclasses.replace(model.ci_bounds, pauses=0)))
    assert explorer.run().ok
    world = explorer.world
    for view in world.views:
        journal = view.journal
        log, owners, leases, commands, answers = view.key
        assert tuple(r.event.event_id for r in journal.read(CONVERSATION)) == log
        history = journal.ownership_history(CONVERSATION)
        assert tuple((r.owner_id, r.reason) for r in history) == owners
        for number, status in enumerate(answers, start=1):
            assert (journal.answer(number) is None) == (status == -1)
        assert len(leases) == len(world.names) and len(commands) == len(answers)
    empty = world.views[0].journal  # nothing journaled, every owner registered
    fork = empty.fork()
    fork.claim(CONVERSATION, world.names[0], 0, reason="new", at=1.0)
    assert empty.owner(CONVERSATION) is None and fork.owner(CONVERSATION) is not None
    assert type(UnfencedJournal().fork()) is UnfencedJournal


def _check(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="interruptible")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", *argv])
    status: int = args.run(args)
    return status


def test_check_command_runs_the_ownership_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --model two_owners` (a name in models/) checks the ownership model: 0 when every
    property holds, 1 with the moves and journal of a counterexample for a seeded defect, 2 for
    an option or defect that belongs to models of the core."""
    assert model_path("two_owners") == MODEL_PATH or model_path("two_owners").is_file()
    assert _check("--model", "two_owners", "--commands", "0", "--pauses", "0") == 0
    assert "result: no violation (liveness checked)" in capsys.readouterr().out
    trace = tmp_path / "trace.json"
    assert _check("--model", "two_owners", "--defect", "unfenced", "--trace-out", str(trace)) == 1
    out = capsys.readouterr().out
    assert "VIOLATION VER-17" in out and "replayed: VER-17" in out
    document = json.loads(trace.read_text())
    assert document["moves"][-1] == "A: writes completed r1/s1/1"
    assert _check("--model", "two_owners", "--interrupts", "1") == 2
    assert _check("--model", "two_owners", "--defect", "lost_cancel") == 2
    assert _check("--model", str(MODEL_PATH.with_name("sequence_runs.py")), "--pauses", "1") == 2
    assert "ownership models" in capsys.readouterr().err
