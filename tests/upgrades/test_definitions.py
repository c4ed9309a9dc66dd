"""The pure rules of spec/upgrades.md: fingerprints, folding by the journaled definition,
following a run with a new definition, migrations, and the model check (UPG-1..UPG-5, UPG-8)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from interruptible import (
    AgentLoop,
    Coordinator,
    DefinitionChangedError,
    Migration,
    RunUpgraded,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
    definition_of,
    fingerprint_of,
    replay,
)
from interruptible._core._definitions import judge, rebuild
from interruptible._verify._checker._upgrades import BASE, _points, check_upgrades

A = StepDefinition("extra", StepClass.tool, {"name": "t", "arguments": {}})
B = StepDefinition("b", StepClass.system, {"name": "f", "arguments": {}})


class Own:
    """A mode of the application's own, with a version and nothing else declared."""

    name = "own"

    def __init__(self, version: str | None) -> None:
        self.version = version


def test_upg_1_fingerprints_are_stable_and_change_with_what_a_mode_declares() -> None:
    """UPG-1: the same definition has the same fingerprint; a step, a policy, a version or an
    agent loop's tools change it; a mode of one's own is covered by its name and version."""
    one = Sequence("p", (A, B), "1")
    print_one = fingerprint_of(definition_of(one))
    assert print_one == fingerprint_of(definition_of(Sequence("p", (A, B), "1")))
    assert len(print_one) == 16 and int(print_one, 16) >= 0
    others = [
        Sequence("p", (A,), "1"),
        Sequence("p", (A, replace(B, policy=StepPolicy(max_attempts=2))), "1"),
        Sequence("p", (A, B), "2"),
    ]
    assert len({print_one, *(fingerprint_of(definition_of(m)) for m in others)}) == 4
    loop = fingerprint_of(definition_of(AgentLoop(tools=("search",))))
    assert loop != fingerprint_of(definition_of(AgentLoop(tools=("search", "book"))))
    assert fingerprint_of(definition_of(Own("1"))) != fingerprint_of(definition_of(Own("2")))  # type: ignore[arg-type]
    assert definition_of(Own(None)) == {  # type: ignore[arg-type]
        "kind": "mode",
        "name": "own",
        "version": None,
        "declared": None,
    }


def test_upg_2_built_in_modes_are_rebuilt_from_their_document() -> None:
    """UPG-2: a `Sequence` and an `AgentLoop` come back equal from their definition document,
    and a journal folds the same with only a newer version registered."""
    one = Sequence("p", (A, B), "1")
    loop = AgentLoop(tools=("search",), max_turns=3, version="7")
    assert rebuild(definition_of(one)) == one
    assert rebuild(definition_of(loop)) == loop
    assert rebuild({"kind": "mode", "name": "own"}) is None
    path = next(p for i, p in enumerate(_points()) if i == 3)
    newer = Sequence("p", (*BASE.steps, A), "9")
    folded = replay(Coordinator([newer]), path.events)
    assert folded.state == path.state
    assert folded.outcomes == replay(Coordinator([BASE]), path.events).outcomes


def _run_at(index: int) -> Any:
    path = next(p for i, p in enumerate(_points()) if i == index)
    run = path.state.run("r")
    assert run is not None
    return run


@pytest.mark.parametrize(
    ("steps", "index", "kind", "step_id"),
    [
        ((*BASE.steps, A), 3, "compatible", None),  # appended
        (BASE.steps[:2], 3, "compatible", None),  # removed ahead of the position
        ((BASE.steps[0], A, *BASE.steps[1:]), 3, "blocked", "g"),  # inserted before
        (BASE.steps[1:], 3, "blocked", "a"),  # removed behind
        ((BASE.steps[1], BASE.steps[0], BASE.steps[2]), 3, "blocked", "a"),  # reordered
        ((replace(BASE.steps[0], input={"x": 1}), *BASE.steps[1:]), 3, "blocked", "a"),
        (
            (BASE.steps[0], replace(BASE.steps[1], input={"q": "new"}), BASE.steps[2]),
            1,
            "compatible",
            None,
        ),  # the input of a step not planned yet
        (
            (*BASE.steps[:2], replace(BASE.steps[2], policy=StepPolicy(max_attempts=3))),
            3,
            "compatible",
            None,
        ),  # a policy ahead
        (
            (BASE.steps[0], replace(BASE.steps[1], policy=StepPolicy(timeout=9.0)), BASE.steps[2]),
            3,
            "blocked",
            "g",
        ),  # the policy of a live step
        (
            (BASE.steps[0], replace(BASE.steps[1], label="Approve?"), BASE.steps[2]),
            3,
            "compatible",
            None,
        ),  # a label
    ],
)
def test_upg_3_following_a_run_with_a_new_definition(
    steps: tuple[StepDefinition, ...], index: int, kind: str, step_id: str | None
) -> None:
    """UPG-3: the written rules, per change kind, at a run waiting at its gate (point 3) or
    with its first step running (point 1)."""
    new = Coordinator([Sequence("p", steps, "2")])
    verdict = judge(_run_at(index), new.versions, new.current)
    assert (verdict.kind, verdict.step_id) == (kind, step_id), verdict.detail
    if kind == "blocked":
        assert verdict.detail


def test_upg_5_migrations_rename_drop_and_transform_within_the_rules() -> None:
    """UPG-5: a migration renames a done step and may drop one the new version lacks; dropping a
    kept step the new version still has, renaming the live gate, or a transform that moves the
    run back are each blocked."""
    run = _run_at(3)  # `a` done, the gate live
    a = BASE.steps[0]
    renamed = Coordinator([Sequence("p", (replace(a, step_id="a2"), *BASE.steps[1:]), "2")])
    ok = judge(run, renamed.versions, renamed.current, [Migration("p", "1", "2", {"a": "a2"})])
    assert (ok.kind, ok.migration and ok.migration.name) == ("migrates", "p:1->2")
    same = Coordinator([Sequence("p", BASE.steps, "2")])
    dropped = judge(run, same.versions, same.current, [Migration("p", "1", "2", {"a": None})])
    assert dropped.kind == "compatible"  # a definition that plans it exactly needs none
    blocked_shape = Coordinator([Sequence("p", (replace(a, step_id="z"), *BASE.steps), "2")])
    verdict = judge(
        run, blocked_shape.versions, blocked_shape.current, [Migration("p", "1", "2", {"a": None})]
    )
    assert (verdict.kind, verdict.step_id) == ("blocked", "g")
    live = Coordinator(
        [Sequence("p", (a, replace(BASE.steps[1], step_id="g2"), BASE.steps[2]), "2")]
    )
    verdict = judge(run, live.versions, live.current, [Migration("p", "1", "2", {"g": "g2"})])
    assert (verdict.kind, verdict.step_id) == ("blocked", "g")
    back = judge(
        run,
        renamed.versions,
        renamed.current,
        [Migration("p", "1", "2", {"a": "a2"}, lambda ctx: {**ctx, "next": 0})],
    )
    assert (back.kind, back.step_id) == ("blocked", "g") and "skipped or run again" in back.detail


def test_upg_4_run_upgraded_is_applied_once_and_checked_by_the_core() -> None:
    """UPG-4: the core applies a `run_upgraded` that the new definition plans exactly, ignores
    it once applied, and refuses one it does not plan (nothing changes)."""
    path = next(p for i, p in enumerate(_points()) if i == 3)
    v2 = Sequence("p", (*BASE.steps, A), "2")
    coordinator = Coordinator([v2])
    run = path.state.run("r")
    assert run is not None
    verdict = judge(run, coordinator.versions, coordinator.current)
    event = RunUpgraded(
        "u1",
        "c",
        "r",
        run.fingerprint,
        verdict.current_fingerprint,
        verdict.definition,
        verdict.context,
    )
    moved = coordinator.reduce(path.state, event)
    assert moved.applied and moved.state.run("r").fingerprint == coordinator.fingerprint("p")
    assert coordinator.reduce(moved.state, event).ignored
    bad = Coordinator([Sequence("p", (A, B), "3")])
    refused = bad.reduce(
        path.state,
        replace(event, fingerprint=bad.fingerprint("p"), definition=bad.current["p"][1]),
    )
    assert refused.rejected and isinstance(refused.error, DefinitionChangedError)
    assert refused.state is path.state


def test_upg_4_two_versions_of_one_name_need_their_own_versions() -> None:
    """UPG-4: one name may be registered in several versions (the last listed is the newest);
    two definitions of one name and one version are refused."""
    one, two = Sequence("p", (A,), "1"), Sequence("p", (A, B), "2")
    coordinator = Coordinator([one, two])
    assert coordinator.modes["p"] is two
    assert list(coordinator.versions.values()) == [one, two]
    with pytest.raises(ValueError, match="own `version`"):
        Coordinator([one, Sequence("p", (B,), "1")])


def test_upg_8_the_model_check_explores_every_change_and_finds_the_seeded_defect() -> None:
    """UPG-8: every change kind at every point of a run, interrupted or in flight, with and
    without a migration: no kept step runs again, none is skipped, replay is exact; and a
    migration whose transform drops a kept step, applied without the check, is caught."""
    report = check_upgrades()
    assert report.violations == []
    assert report.paths >= 150
    assert {"compatible", "migrates", "blocked"} <= set(report.verdicts)
    seeded = check_upgrades(seeded=True)
    assert seeded.violations
    assert any("failed after the meeting" in v or "ran again" in v for v in seeded.violations)


def test_upg_2_a_subclass_is_rebuilt_only_as_its_own_registered_class() -> None:
    """UPG-2: a definition of a `Sequence` subclass (the demo's) names its class; it is rebuilt
    as the class registered under its name, with the journaled steps, and not otherwise."""
    from interruptible._runtime._demo import DEMO_MODE

    document = definition_of(DEMO_MODE)
    assert document["class"].endswith("EditedSequence")
    older = replace(DEMO_MODE, steps=DEMO_MODE.steps[:3], version="0")
    rebuilt = rebuild(definition_of(older), DEMO_MODE)
    assert rebuilt == older and type(rebuilt) is type(DEMO_MODE)
    assert rebuild(document) is None
    assert rebuild(document, Sequence(DEMO_MODE.name, DEMO_MODE.steps)) is None
