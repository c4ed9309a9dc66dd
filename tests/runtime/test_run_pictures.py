"""`inspect --run RUN_ID --diagram FILE` (spec/cli.md, CLI-11): the step lifecycle with the
statuses a run's steps passed through lit, for each shape of run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interruptible import Coordinator, RunStatus, StepStatus
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Runtime
from interruptible._views._pictures import LIT, step_paths
from tests.runtime.support import arun, pipeline, run_cli, system_step, tool_step, until

PICTURE_MODES = [pipeline("pic", [system_step("first", "ok"), tool_step("held", "hold")])]
SPEC = f"{__name__}:PICTURE_MODES"


def _journal(db: Path) -> None:
    """Three runs of `pic`: r1 completed, r2 interrupted in `held` then resumed and completed,
    r3 canceled in `held`."""
    release = asyncio.Event()

    async def hold() -> str:
        await release.wait()
        return "held"

    async def scenario() -> None:
        tools = {"hold": hold}
        functions = {"ok": lambda: "ok"}
        async with Runtime(db, modes=PICTURE_MODES, tools=tools, functions=functions) as rt:
            release.set()
            await (await rt.run("c1", None, mode="pic", run_id="r1")).wait()
            release.clear()
            second = await rt.run("c2", None, mode="pic", run_id="r2")
            await until(lambda: _held_running(rt, "c2"))
            await second.interrupt()
            await second.resume()
            release.set()
            assert (await second.wait("terminal")).status is RunStatus.completed
            release.clear()
            third = await rt.run("c3", None, mode="pic", run_id="r3")
            await until(lambda: _held_running(rt, "c3"))
            await third.cancel()

    arun(scenario())


def _held_running(rt: Runtime, cid: str) -> bool:
    step = rt.snapshot(cid).step("held")
    return step is not None and step.status is StepStatus.running


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("pictures") / "runs.db"
    _journal(db)
    return db


def test_cli_11_each_step_path_is_what_the_journal_says(journal: Path) -> None:
    """CLI-11: the statuses each step passed through, in order, folded from the journal."""
    coordinator = Coordinator(PICTURE_MODES)
    with SQLiteJournal(journal, readonly=True) as reading:
        paths = {
            run: step_paths(coordinator, [r.event for r in reading.read(cid)], run)
            for cid, run in (("c1", "r1"), ("c2", "r2"), ("c3", "r3"))
        }
    done = ["pending", "scheduled", "running", "completed"]
    assert {step: [s.value for s in path] for step, path in paths["r1"].items()} == {
        "first": done,
        "held": done,
    }
    assert [s.value for s in paths["r2"]["held"]] == [
        "pending", "scheduled", "running", "cancelling", "pending", "scheduled", "running",
        "completed",
    ]  # fmt: skip
    # A cancel ends the run for good: its running step is abandoned, not cancelling.
    assert [s.value for s in paths["r3"]["held"]][-2:] == ["running", "canceled"]


@pytest.mark.parametrize(
    ("run_id", "lit", "dark"),
    [
        ("r1", {"pending", "scheduled", "running", "completed"}, {"cancelling", "canceled"}),
        ("r2", {"cancelling", "completed"}, {"canceled", "failed", "waiting_input"}),
        ("r3", {"running", "completed", "canceled"}, {"cancelling", "failed", "retrying"}),
    ],
)
def test_cli_11_the_diagram_lights_the_statuses_its_steps_passed_through(
    journal: Path, tmp_path: Path, run_id: str, lit: set[str], dark: set[str]
) -> None:
    """CLI-11: the DOT source is spec/'s step lifecycle with exactly those statuses filled and
    each step's path in the caption; Graphviz draws it as SVG and PNG."""
    source = tmp_path / f"{run_id}.dot"
    done = run_cli("inspect", "--db", str(journal), "--modes", SPEC, "--run", run_id,
                "--diagram", str(source))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"diagram: {source}" in done.stdout
    text = source.read_text()
    for status in lit:
        assert f"{status} [label=" in text
        node = next(line for line in text.splitlines() if line.startswith(f"{status} ["))
        assert f'fillcolor="{LIT}"' in node, status
    for status in dark:
        node = next(line for line in text.splitlines() if line.startswith(f"{status} ["))
        assert "fillcolor=white" in node, status
    assert f"run {run_id}: the statuses its steps passed through are filled" in text
    for suffix, magic in ((".svg", b"<svg"), (".png", b"\x89PNG")):
        picture = tmp_path / f"{run_id}{suffix}"
        done = run_cli("inspect", "--db", str(journal), "--modes", SPEC, "--run", run_id,
                    "--diagram", str(picture))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert magic in picture.read_bytes()[:400]


def test_cli_11_a_diagram_without_a_run_or_of_an_unknown_format_is_refused(
    journal: Path, tmp_path: Path
) -> None:
    """CLI-11, CLI-1: `--diagram` without `--run`, or with a suffix it cannot draw, is one line
    and status 2, and writes nothing."""
    for args, says in (
        (["--diagram", str(tmp_path / "x.svg")], "give it with --run RUN_ID"),
        (["--run", "r1", "--diagram", str(tmp_path / "x.gif")], "one of .dot, .pdf, .png, .svg"),
    ):
        done = run_cli("inspect", "--db", str(journal), "--modes", SPEC, *args)
        assert done.returncode == 2
        assert says in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_12_the_timeline_holds_each_attempt_and_request(journal: Path) -> None:
    """CLI-12: a run's timeline has a bar per attempt, from its start to the event that ended
    it, and a mark per interrupt, resume and cancel, in the journal's order."""
    from interruptible._views._pictures import timeline

    coordinator = Coordinator(PICTURE_MODES)
    with SQLiteJournal(journal, readonly=True) as reading:
        lines = {
            run: timeline(coordinator, [r.event for r in reading.read(cid)], run)
            for cid, run in (("c1", "r1"), ("c2", "r2"), ("c3", "r3"))
        }
    assert lines["r1"].steps == ["first", "held"]
    assert [(a.step_id, a.attempt, a.ended_by) for a in lines["r1"].attempts] == [
        ("first", 1, "effect_completed"),
        ("held", 1, "effect_completed"),
    ]
    assert lines["r1"].marks == []
    held = [(a.attempt, a.ended_by) for a in lines["r2"].attempts if a.step_id == "held"]
    assert held == [(1, "effect_canceled"), (2, "effect_completed")]
    assert [m.kind for m in lines["r2"].marks] == ["interrupt", "resume"]
    assert [m.kind for m in lines["r3"].marks] == ["cancel"]
    for line in lines.values():
        assert all(0 <= a.start <= a.end for a in line.attempts)
        starts = [a.start for a in line.attempts]
        assert starts == sorted(starts)


def test_cli_12_inspect_draws_the_timeline_the_same_every_time(
    journal: Path, tmp_path: Path
) -> None:
    """CLI-12: `inspect --run RUN_ID --timeline FILE` draws SVG, PNG or PDF; the same run gives
    the same bytes; another suffix, or no --run, is a usage error that writes nothing."""
    for run_id in ("r1", "r2", "r3"):
        for suffix, magic in ((".svg", b"<svg"), (".png", b"\x89PNG"), (".pdf", b"%PDF")):
            picture = tmp_path / f"{run_id}{suffix}"
            done = run_cli("inspect", "--db", str(journal), "--modes", SPEC, "--run", run_id,
                        "--timeline", str(picture))  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert f"timeline: {picture}" in done.stdout
            assert magic in picture.read_bytes()[:400]
        svg = (tmp_path / f"{run_id}.svg").read_text()
        assert "seconds since the run was requested" in svg
        assert "held" in svg and "first" in svg
    again = tmp_path / "again.svg"
    run_cli(
        "inspect", "--db", str(journal), "--modes", SPEC, "--run", "r2", "--timeline", str(again)
    )
    assert again.read_bytes() == (tmp_path / "r2.svg").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, says in (
        (["--timeline", str(empty / "x.svg")], "give it with --run RUN_ID"),
        (["--run", "r1", "--timeline", str(empty / "x.gif")], "one of .pdf, .png, .svg"),
    ):
        done = run_cli("inspect", "--db", str(journal), "--modes", SPEC, *args)
        assert done.returncode == 2
        assert says in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert list(empty.iterdir()) == []
