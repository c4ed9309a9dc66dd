"""A pipeline changed while its runs are interrupted, waiting at a gate or in flight: what each
meeting point (resume, recovery, gate answer, late effect answer) does (spec/upgrades.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from interruptible import (
    Coordinator,
    DefinitionChangedError,
    InterruptRequested,
    Migration,
    RunStatus,
    Runtime,
    RunUpgraded,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
    replay,
)
from interruptible._journal import SQLiteJournal
from tests.runtime.support import Ledger, arun, check_journal, tool_step, until

GATE = StepDefinition("approve", StepClass.human_gate, {"question": "ship?"})


def tools(ledger: Ledger) -> dict[str, Any]:
    """Every tool records its execution, so a re-run shows."""

    def work(**_: Any) -> str:
        return ledger.record()

    return {"work": work}


def v1() -> Sequence:
    return Sequence("p", (tool_step("a", "work"), GATE, tool_step("b", "work")), "1")


def events(db: Path, cid: str = "c") -> list[Any]:
    journal = SQLiteJournal(db, readonly=True)
    try:
        return [record.event for record in journal.read(cid)]
    finally:
        journal.close()


async def interrupted_at_gate(db: Path, ledger: Ledger) -> None:
    """A run of v1 that did `a` and waits at the gate, interrupted and left so."""
    async with Runtime(db, modes=[v1()], tools=tools(ledger)) as rt:
        await rt.run("c", None, mode="p", run_id="r")
        await until(lambda: rt.snapshot("c").steps[-1].status is StepStatus.waiting_input)
        await rt.interrupt_run("c", run_id="r")


def test_upg_3_a_resume_after_steps_were_appended_continues_on_the_new_definition(
    tmp_path: Path,
) -> None:
    """UPG-3, UPG-4: steps appended after the run's position are compatible: the resume first
    journals `run_upgraded`, then the run goes on, runs the appended step, and no kept step
    runs again."""
    db, ledger = tmp_path / "j.db", Ledger()
    v2 = Sequence("p", (*v1().steps, tool_step("c", "work")), "2")

    async def scenario() -> Any:
        await interrupted_at_gate(db, ledger)
        async with Runtime(db, modes=[v2], tools=tools(ledger)) as rt:
            await rt.resume_run("c", "r")
            await rt.provide_input("c", "r", "approve", True)
            return await rt.wait("c", "r")

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert sorted(final.output["outputs"]) == ["a", "approve", "b", "c"]
    assert ledger.steps() == {"r:a": 1, "r:b": 1, "r:c": 1}
    kinds = [type(e).__name__ for e in events(db)]
    assert kinds.index("RunUpgraded") == kinds.index("ResumeRequested") - 1
    upgraded = next(e for e in events(db) if isinstance(e, RunUpgraded))
    coordinator = Coordinator([v2])
    assert (upgraded.from_fingerprint, upgraded.fingerprint, upgraded.migration) == (
        Coordinator([v1()]).fingerprint("p"),
        coordinator.fingerprint("p"),
        None,
    )


def test_upg_3_a_resume_refused_when_a_step_was_inserted_before_the_position(
    tmp_path: Path,
) -> None:
    """UPG-3: a step inserted before where the run is would be skipped: the resume is refused
    with `DefinitionChangedError` naming the run, both fingerprints and the first differing
    step; nothing is journaled and the run stays interrupted."""
    db, ledger = tmp_path / "j.db", Ledger()
    a, gate, b = v1().steps
    v2 = Sequence("p", (a, tool_step("check", "work"), gate, b), "2")

    async def scenario() -> None:
        await interrupted_at_gate(db, ledger)
        before = len(events(db))
        async with Runtime(db, modes=[v2], tools=tools(ledger)) as rt:
            with pytest.raises(DefinitionChangedError) as caught:
                await rt.resume_run("c", "r")
            error = caught.value
            assert (error.run_id, error.step_id, error.reason) == (
                "r",
                "approve",
                "definition_changed",
            )
            assert error.run_fingerprint == Coordinator([v1()]).fingerprint("p")
            assert error.current_fingerprint == Coordinator([v2]).fingerprint("p")
            assert "check" in error.message
            assert rt.snapshot("c").status is RunStatus.interrupted
            with pytest.raises(DefinitionChangedError):  # a gate answer meets it too
                await rt.provide_input("c", "r", "approve", True)
        assert len(events(db)) == before

    arun(scenario())
    assert ledger.steps() == {"r:a": 1}


@pytest.mark.parametrize(
    "change",
    ["class", "input", "removed_behind", "reordered", "renamed"],
)
def test_upg_3_each_change_that_alters_the_run_blocks_its_resume(
    tmp_path: Path, change: str
) -> None:
    """UPG-3: a changed class or input of a started step, and a removed, reordered or renamed
    step behind the position, each block the run: met at recovery while its gate was live, it
    is interrupted with the reason `definition_changed`, and its resume and its gate's answer
    are refused."""
    db, ledger = tmp_path / "j.db", Ledger()
    a, gate, b = v1().steps
    other = {
        "class": (StepDefinition("a", StepClass.system, a.input), gate, b),
        "input": (tool_step("a", "work", extra=1), gate, b),
        "removed_behind": (gate, b),
        "reordered": (gate, a, b),
        "renamed": (tool_step("a2", "work"), gate, b),
    }[change]
    v2 = Sequence("p", other, "2")

    async def scenario() -> None:
        async with Runtime(db, modes=[v1()], tools=tools(ledger)) as rt:
            await rt.run("c", None, mode="p", run_id="r")
            await until(lambda: rt.snapshot("c").steps[-1].status is StepStatus.waiting_input)
        # The gate was live when the process stopped: recovery meets the run (UPG-3).
        async with Runtime(db, modes=[v2], tools=tools(ledger)) as rt:
            await until(lambda: rt.snapshot("c").status is RunStatus.interrupted)
            assert rt.snapshot("c").reason == "definition_changed"
            with pytest.raises(DefinitionChangedError):
                await rt.resume_run("c", "r")
            with pytest.raises(DefinitionChangedError):  # the gate's answer meets it too
                await rt.provide_input("c", "r", "approve", True)
            assert rt.snapshot("c").status is RunStatus.interrupted

    arun(scenario())
    assert ledger.steps() == {"r:a": 1}


def test_upg_3_a_policy_change_for_a_step_not_started_is_compatible(tmp_path: Path) -> None:
    """UPG-3: a policy changed for a step that has not started goes on, and the step runs under
    the new policy."""
    db, ledger = tmp_path / "j.db", Ledger()
    a, gate, _ = v1().steps
    v2 = Sequence("p", (a, gate, tool_step("b", "work", StepPolicy(max_attempts=4))), "2")

    async def scenario() -> Any:
        await interrupted_at_gate(db, ledger)
        async with Runtime(db, modes=[v2], tools=tools(ledger)) as rt:
            await rt.resume_run("c", "r")
            await rt.provide_input("c", "r", "approve", True)
            final = await rt.wait("c", "r")
            run = rt.state("c").run("r")
            assert run is not None and run.step("b").definition.policy.max_attempts == 4
            return final

    assert arun(scenario()).status is RunStatus.completed
    assert ledger.steps() == {"r:a": 1, "r:b": 1}


def test_upg_4_old_runs_finish_on_the_old_version_kept_beside_the_new(tmp_path: Path) -> None:
    """UPG-4: with both versions registered, the old run resumes on the one it started with
    (no `run_upgraded`), and a new run gets the newest (the last listed)."""
    db, ledger = tmp_path / "j.db", Ledger()
    a, gate, b = v1().steps
    v2 = Sequence("p", (a, tool_step("check", "work"), gate, b), "2")

    async def scenario() -> tuple[Any, Any]:
        await interrupted_at_gate(db, ledger)
        async with Runtime(db, modes=[v1(), v2], tools=tools(ledger)) as rt:
            await rt.resume_run("c", "r")
            await rt.provide_input("c", "r", "approve", True)
            old = await rt.wait("c", "r")
            handle = await rt.run("c2", None, mode="p", run_id="n")
            await until(lambda: rt.snapshot("c2").steps[-1].status is StepStatus.waiting_input)
            await rt.provide_input("c2", "n", "approve", True)
            return old, await handle.wait()

    old, new = arun(scenario())
    assert sorted(old.output["outputs"]) == ["a", "approve", "b"]
    assert sorted(new.output["outputs"]) == ["a", "approve", "b", "check"]
    assert not any(isinstance(e, RunUpgraded) for e in events(db))
    assert ledger.steps() == {"r:a": 1, "r:b": 1, "n:a": 1, "n:check": 1, "n:b": 1}


def test_upg_5_a_declared_migration_moves_the_run_and_replay_stays_exact(tmp_path: Path) -> None:
    """UPG-5: a done step renamed and a step removed behind the position are blocked as they
    are, but move through the migration the application declares; the move is a journaled
    `run_upgraded` naming the migration, the run finishes without running a kept step again,
    and the journal replays exactly with only the new version registered (UPG-2)."""
    db, ledger = tmp_path / "j.db", Ledger()
    v2 = Sequence("p", (tool_step("fetch", "work"), GATE, tool_step("b", "work")), "2")
    migration = Migration(
        "p", "1", "2", steps={"a": "fetch"}, context=lambda ctx: {**ctx, "migrated": True}
    )

    async def scenario() -> Any:
        await interrupted_at_gate(db, ledger)
        async with Runtime(db, modes=[v2], tools=tools(ledger), migrations=[migration]) as rt:
            await rt.resume_run("c", "r")
            await rt.provide_input("c", "r", "approve", True)
            return await rt.wait("c", "r")

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert sorted(final.output["outputs"]) == ["approve", "b", "fetch"]
    assert ledger.steps() == {"r:a": 1, "r:b": 1}
    upgraded = next(e for e in events(db) if isinstance(e, RunUpgraded))
    assert (upgraded.migration, upgraded.renames) == ("p:1->2", {"a": "fetch"})
    assert upgraded.context["migrated"] is True
    # Replayed with the new version alone (the old one rebuilt from the journal), and with
    # neither registered by the migration's code: the same state and directives.
    journal = SQLiteJournal(db, readonly=True)
    try:
        facts = check_journal(journal, Coordinator([v2]))
        facts.assert_ok()
        assert not facts.rejected
        recorded = [record.event for record in journal.read("c")]
        first = replay(Coordinator([v2]), recorded)
        second = replay(Coordinator([v1(), v2]), recorded)
        assert first.state == second.state and first.outcomes == second.outcomes
        assert all(not outcome.rejected for outcome in first.outcomes)
    finally:
        journal.close()


def test_upg_3_recovery_interrupts_a_blocked_running_run_and_moves_a_compatible_one(
    tmp_path: Path,
) -> None:
    """UPG-3: a run in flight when its process stopped meets the new code at recovery: blocked,
    it is interrupted with the reason `definition_changed` before its lost effect is answered
    (nothing of it starts again); compatible, it moves and its step starts again at once."""
    ledger = Ledger()

    async def slow(**_: Any) -> str:
        key = ledger.record()
        if key == "r:a:1":
            await asyncio.sleep(60)  # in flight when the process stops (cancelled at close)
        return key

    one = Sequence("p", (tool_step("a", "slow"), tool_step("b", "slow")), "1")
    blocked = Sequence("p", (tool_step("z", "slow"), tool_step("a", "slow")), "2")
    compatible = Sequence("p", (*one.steps, tool_step("c", "slow")), "3")

    async def scenario(db: Path, new: Sequence) -> Any:
        async with Runtime(db, modes=[one], tools={"slow": slow}) as rt:
            await rt.run("c", None, mode="p", run_id="r")
            await until(lambda: ledger.keys["r:a:1"] >= 1)
        async with Runtime(db, modes=[new], tools={"slow": slow}) as rt:
            assert rt.recovery.restarted_runs == [("c", "r")]
            return await rt.wait("c", "r")

    interrupted = arun(scenario(tmp_path / "blocked.db", blocked))
    assert (interrupted.status, interrupted.reason) == (RunStatus.interrupted, "definition_changed")
    kinds = [type(e).__name__ for e in events(tmp_path / "blocked.db")]
    assert kinds[-2:] == ["InterruptRequested", "EffectLost"]
    assert ledger.keys["r:a:2"] == 0  # nothing started again
    ledger.keys.clear()
    finished = arun(scenario(tmp_path / "compatible.db", compatible))
    assert finished.status is RunStatus.completed
    assert sorted(finished.output["outputs"]) == ["a", "b", "c"]
    kinds = [type(e).__name__ for e in events(tmp_path / "compatible.db")]
    assert kinds[kinds.index("EffectLost") - 1] == "RunUpgraded"


def test_upg_3_a_late_effect_answer_is_kept_and_interrupts_a_blocked_run(tmp_path: Path) -> None:
    """UPG-3: an effect's answer is a fact: met by a blocked definition it is journaled and
    folded under the run's own definition, after the run is interrupted with the reason
    `definition_changed` (nothing of the new definition runs)."""
    db = tmp_path / "j.db"
    one = Sequence("p", (tool_step("a", "t"), tool_step("b", "t")), "1")
    two = Sequence("p", (tool_step("z", "t"), tool_step("a", "t"), tool_step("b", "t")), "2")
    coordinator = Coordinator([one])

    async def scenario() -> Any:
        gate = asyncio.Event()

        async def t() -> str:
            await gate.wait()
            return "done"

        async with Runtime(db, modes=[one], tools={"t": t}) as rt:
            await rt.run("c", None, mode="p", run_id="r")
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.running)
            # The definition changes under the live process (a second version registered at
            # run time), then the running effect answers.
            rt.coordinator = Coordinator([two])
            rt._writer.coordinator = rt.coordinator  # type: ignore[union-attr]
            gate.set()
            return await rt.wait("c", "r")

    final = arun(scenario())
    assert (final.status, final.reason) == (RunStatus.interrupted, "definition_changed")
    assert final.steps[0].status is StepStatus.completed  # the answer was kept
    kinds = [type(e).__name__ for e in events(db)]
    assert kinds[-2:] == ["InterruptRequested", "EffectCompleted"]
    assert coordinator.fingerprint("p") != Coordinator([two]).fingerprint("p")
    interrupt = next(e for e in events(db) if isinstance(e, InterruptRequested))
    assert interrupt.reason == "definition_changed"


def test_upg_6_a_journal_written_before_fingerprints_still_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UPG-6: a run whose `run_requested` carries no definition (as versions before this one
    wrote it) folds with the mode registered under its name and resumes as it did before."""
    db, ledger = tmp_path / "j.db", Ledger()

    async def scenario() -> Any:
        with monkeypatch.context() as patch:  # requests as an older version wrote them
            patch.setattr(Runtime, "_register", lambda self, mode: (mode, None, None))
            await interrupted_at_gate(db, ledger)
        requested = events(db)[0]
        assert (requested.fingerprint, requested.definition) == (None, None)
        async with Runtime(db, modes=[v1()], tools=tools(ledger)) as rt:
            run = rt.state("c").run("r")
            assert run is not None and run.fingerprint is None
            await rt.resume_run("c", "r")
            await rt.provide_input("c", "r", "approve", True)
            return await rt.wait("c", "r")

    assert arun(scenario()).status is RunStatus.completed


def test_upg_4_a_traced_run_that_moves_shows_the_move_in_its_trace(tmp_path: Path) -> None:
    """UPG-4, OBS-1: the trace of a run that moved to another definition is one run span, with
    the definition it ended on and a `run_upgraded` event naming how it moved; its timeline
    draws the move too."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from interruptible._views._pictures import write_timeline

    db, ledger = tmp_path / "j.db", Ledger()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    v2 = Sequence("p", (*v1().steps, tool_step("c", "work")), "2")

    async def scenario() -> None:
        await interrupted_at_gate(db, ledger)
        async with Runtime(db, modes=[v2], tools=tools(ledger), tracer_provider=provider) as rt:
            await rt.resume_run("c", "r")
            await rt.provide_input("c", "r", "approve", True)
            assert (await rt.wait("c", "r")).status is RunStatus.completed

    arun(scenario())
    (run_span,) = [s for s in exporter.get_finished_spans() if s.parent is None]
    assert run_span.attributes is not None
    assert run_span.attributes["interruptible.definition"] == Coordinator([v2]).fingerprint("p")
    moved = [e for e in run_span.events if e.name == "run_upgraded"]
    assert len(moved) == 1 and moved[0].attributes["interruptible.reason"] == "compatible"
    picture = write_timeline(Coordinator([v2]), events(db), "r", tmp_path / "t.svg")
    assert "upgrade (compatible)" in picture.read_text()


def test_upg_4_a_snapshot_shows_the_upcoming_steps_of_the_runs_own_version(tmp_path: Path) -> None:
    """UPG-4: with both versions registered, an old run's snapshot lists the steps its own
    version will run, not the newest's."""
    db, ledger = tmp_path / "j.db", Ledger()
    a, gate, _ = v1().steps
    v2 = Sequence("p", (a, gate, tool_step("other", "work")), "2")

    async def scenario() -> list[str]:
        await interrupted_at_gate(db, ledger)
        async with Runtime(db, modes=[v1(), v2], tools=tools(ledger)) as rt:
            return [step.step_id for step in rt.snapshot("c", "r").upcoming]

    assert arun(scenario()) == ["b"]
