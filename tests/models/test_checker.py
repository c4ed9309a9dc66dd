"""The exhaustive model checker over the real core: the CI bound, seeded defects, soundness."""

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
    Explorer,
    KeyCache,
    Report,
    World,
    explore,
    parity_violations,
    replay_trace,
)
from interruptible._verify._checker._defects import BROKEN_PROPERTY, DEFECTS
from interruptible._verify._checker._key import json_key
from interruptible._verify._checker._models import default_model_path, load_model
from interruptible._verify._checker._world import Model

MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "sequence_runs.py"
AGENT_MODEL_PATH = MODEL_PATH.with_name("agent_loop.py")
# The goals of the issue: the CI bound reaches at least this many distinct states, in this time.
CI_MIN_STATES = 100_000
CI_MAX_SECONDS = 120.0

Record = Callable[[str, object], None]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(MODEL_PATH)


@pytest.fixture(scope="module")
def ci_report(model: Model) -> Report:
    """One exhaustive exploration of the CI bound, shared by the tests that read its figures."""
    return explore(World(model, model.ci_bounds))


def test_ver_1_to_12_progress_bound_every_property_holds_in_every_state(
    model: Model, record_property: Record
) -> None:
    """The CI bound with a progress report per effect instead of a lost effect: every property
    holds in every reachable state and transition, liveness included."""
    bounds = dataclasses.replace(model.ci_bounds, progress=1, lost=0)
    report = explore(World(model, bounds))
    record_property("figures", report.lines())
    assert report.ok and report.liveness_checked, "\n".join(report.lines())
    assert report.states >= CI_MIN_STATES, "\n".join(report.lines())


def test_ver_1_to_12_ci_bound_every_property_holds_in_every_state(
    ci_report: Report, record_property: Record
) -> None:
    """Within the CI bound, every reachable state and transition satisfies VER-1..VER-10, and
    from every reachable state a state where every run has ended is reachable (VER-12)."""
    record_property("figures", ci_report.lines())
    figures = "\n".join(ci_report.lines())
    assert ci_report.ok, figures
    assert ci_report.liveness_checked and ci_report.unexpanded == 0, figures


def test_ver_16_ci_bound_is_large_and_fast_enough(
    ci_report: Report, record_property: Record
) -> None:
    """The CI bound explores at least 100,000 distinct states in under two minutes."""
    for name in ("states", "transitions", "max_depth", "seconds"):
        record_property(name, getattr(ci_report, name))
    record_property("states_per_second", round(ci_report.states_per_second))
    figures = "\n".join(ci_report.lines())
    assert ci_report.states >= CI_MIN_STATES, figures
    assert ci_report.seconds < CI_MAX_SECONDS, figures


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_ver_15_checker_finds_seeded_defect(
    model: Model, defect: str, record_property: Record
) -> None:
    """Each seeded defect gives a counterexample for the property it breaks; the trace, as JSON
    events, replays to that violation on the defective core and to none on the real core."""
    property_id = BROKEN_PROPERTY[defect]
    world = World(model, model.ci_bounds, DEFECTS[defect])
    report = explore(world)
    record_property("figures", [f"defect {defect}:", *report.lines()])
    counterexample = report.counterexample
    assert counterexample is not None, "\n".join(report.lines())
    assert counterexample.violation.property_id == property_id, str(counterexample.violation)
    documents = json.loads(json.dumps(counterexample.to_json()))
    events = [event_from_json(document) for document in documents]
    assert [e.event_id for e in events] == [f"e{n}" for n in range(1, len(events) + 1)]
    real = World(model, model.ci_bounds)
    assert replay_trace(real, events)[0] == []
    if property_id == "VER-12":
        _, outcomes = replay_trace(world, events)
        assert outcomes[-1].state.active_run is not None
        return
    found, _ = replay_trace(world, events)
    assert property_id in {v.property_id for v in found}, found


def test_ver_15_counterexamples_are_shortest(model: Model) -> None:
    """Breadth-first order makes each counterexample as short as any: the lost cancel needs a run
    and an interrupt; the eager resume a run, an interrupt and a resume; the second terminal a
    run, a supersede and the first run's late completion; the re-run a run, an interrupt,
    the first step's completion across the cancel, and a resume."""
    lengths = {}
    for defect in ("lost_cancel", "eager_resume", "terminal_twice", "rerun_on_resume"):
        report = explore(World(model, model.ci_bounds, DEFECTS[defect]))
        assert report.counterexample is not None
        lengths[defect] = len(report.counterexample.events)
    assert lengths == {
        "lost_cancel": 2,
        "eager_resume": 3,
        "terminal_twice": 3,
        "rerun_on_resume": 4,
    }


def test_ver_1_to_12_agent_loop_every_property_holds(record_property: Record) -> None:
    """Runs of the agent loop (each model turn answers or calls a tool, up to three turns), with
    interrupts, retries and late answers: every property holds in every state, so a tool call
    with a kept result is never started again (VER-6, MODE-4)."""
    agent = load_model(AGENT_MODEL_PATH)
    report = explore(World(agent, dataclasses.replace(agent.ci_bounds, runs=1, steps=3)))
    record_property("figures", report.lines())
    assert report.ok and report.liveness_checked, "\n".join(report.lines())


@pytest.mark.parametrize("defect", ["lost_cancel", "eager_resume", "terminal_twice"])
def test_ver_15_checker_finds_seeded_defect_in_agent_loop(defect: str) -> None:
    """The mode-independent seeded defects are caught in the agent loop model too."""
    agent = load_model(AGENT_MODEL_PATH)
    report = explore(World(agent, agent.ci_bounds, DEFECTS[defect]))
    assert report.counterexample is not None
    assert report.counterexample.violation.property_id == BROKEN_PROPERTY[defect]


def test_ver_13_state_key_is_canonical(model: Model) -> None:
    """Two explored conversation states have equal keys exactly when they are equal, both the
    structural keys and the interned keys (numbered runs) the explorer uses."""
    bounds = dataclasses.replace(model.ci_bounds, runs=1, steps=2)
    explorer = Explorer(World(model, bounds))
    assert explorer.run().ok
    states = explorer.convs
    keys = KeyCache()
    computed = [keys.conversation_key(state) for state in states]
    assert len(set(computed)) == len(states)  # interning keeps one state per key
    interned = [explorer.keys.interned_key(state) for state in states]
    assert len(set(interned)) == len(states)
    for i, first in enumerate(states):
        for second in states[i + 1 :]:
            assert first != second
    assert len({json_key(v) for v in (None, "null", 1, True, 1.0, "1", [1], {"a": 1})}) == 8
    # The explored states were de-duplicated by the key under test, so a key that merges two
    # different states cannot show among them. Their raw successors, one reduce of every move
    # away and never de-duplicated, can: within a key, every state must be the same state.
    world = explorer.world
    reduce = world.fresh_coordinator().reduce
    raw = list(states)
    for conv, env in explorer.states:
        state = states[conv]
        ledger = env[4]  # the effects' answers the world may give next
        moves = world.conversation_moves(state) + world.ledger_moves(ledger)
        raw.extend(reduce(state, move[1]).state for move in moves)
    for key_of in (KeyCache().conversation_key, explorer.keys.interned_key):
        by_key: dict[Any, Any] = {}
        for state in raw:
            first = by_key.setdefault(key_of(state), state)
            assert first == state, "two different states share a key"
    assert len(raw) > 4 * len(states)


def test_ver_11_explored_states_replay_to_themselves(model: Model) -> None:
    """Replaying the breadth-first path of a state with a fresh coordinator rebuilds exactly
    that state, and a second fold gives the same states and directives."""
    bounds = dataclasses.replace(model.ci_bounds, runs=2, steps=1)
    explorer = Explorer(World(model, bounds))
    assert explorer.run().ok
    world = explorer.world
    for index in range(0, len(explorer.states), max(1, len(explorer.states) // 300)):
        conv, _env = explorer.states[index]
        events = explorer.trace(index, None)
        found, outcomes = replay_trace(world, events)
        assert found == []
        final = outcomes[-1].state if outcomes else explorer.convs[0]
        assert KeyCache().conversation_key(final) == KeyCache().conversation_key(
            explorer.convs[conv]
        )
        # The rebuilt state is a new object, equal to the explored one: the same interned key.
        keys = explorer.keys
        assert keys.interned_key(final) == keys.interned_key(explorer.convs[conv])
        assert parity_violations(world.fresh_coordinator().reduce, events, outcomes) == []


def test_ver_12_depth_bound_leaves_liveness_unchecked(model: Model) -> None:
    """A depth bound stops the search: the frontier is counted, liveness is not claimed."""
    report = explore(World(model, model.ci_bounds), depth=4)
    assert report.ok and report.max_depth == 4 and report.unexpanded > 0
    assert not report.liveness_checked


def _check(*argv: str) -> tuple[int, Any]:
    parser = argparse.ArgumentParser(prog="interruptible")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", *argv])
    return args.run(args), args


def test_check_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check` exits 0 when every property holds, 1 with a counterexample (written as JSON
    events), 2 when the model cannot be loaded."""
    assert _check("--model", str(MODEL_PATH), "--runs", "1", "--steps", "2")[0] == 0
    assert "result: no violation" in capsys.readouterr().out
    trace = tmp_path / "trace.json"
    status, _ = _check(
        "--model", str(MODEL_PATH), "--defect", "lost_cancel", "--trace-out", str(trace)
    )
    assert status == 1
    out = capsys.readouterr().out
    assert "VIOLATION VER-5" in out and "replayed: VER-5" in out
    assert [event_from_json(d).event_id for d in json.loads(trace.read_text())] == ["e1", "e2"]
    assert _check("--model", str(tmp_path / "missing.py"))[0] == 2
    assert default_model_path() is not None
