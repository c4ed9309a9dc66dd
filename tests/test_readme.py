"""The README runs as written: every Python block is executed, and what it prints is what its
comments say."""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def promised(source: str) -> list[str]:
    """The output a block's comments promise: for each `print(...)`, the comment that follows it
    on its line, or alone on the next line."""
    lines = source.splitlines()
    out = []
    for number, line in enumerate(lines):
        if not line.lstrip().startswith("print("):
            continue
        _, _, comment = line.partition(")  # ")
        if not comment and number + 1 < len(lines) and lines[number + 1].startswith("# "):
            comment = lines[number + 1][2:]
        out.append(comment.strip())
    return out


def run_block(source: str, tmp_path: Path) -> tuple[dict[str, object], str]:
    namespace: dict[str, object] = {"__name__": "readme"}
    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(ast.parse(source), str(README), "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace, printed.getvalue()


def test_readme_has_the_six_python_blocks() -> None:
    """The README's examples: the runtime, a client of workers, tools from elsewhere, the pure
    core, the kit, and traces with a rejoinable stream."""
    assert len(BLOCKS) == 6
    assert "Runtime(" in BLOCKS[0] and 'role="client"' in BLOCKS[1]
    assert "McpTools(client)" in BLOCKS[2]
    assert "coordinator.reduce" in BLOCKS[3]
    assert "ModeConformance" in BLOCKS[4]
    assert "tracer_provider=" in BLOCKS[5] and "after=" in BLOCKS[5]


@pytest.mark.parametrize("index", [0, 2, 3, 5], ids=["runtime", "tools", "pure_core", "watching"])
def test_readme_blocks_print_what_their_comments_say(index: int, tmp_path: Path) -> None:
    """The runtime, tools (TOOL-1, TOOL-6, TOOL-8), pure-core and watching examples run and
    print exactly what their comments promise (OBS-1, OBS-7: the trace of a run, and a stream
    rejoined after a position)."""
    source = BLOCKS[index]
    _, printed = run_block(source, tmp_path)
    assert printed.splitlines() == promised(source)


def test_readme_conformance_example_passes_the_kit(tmp_path: Path) -> None:
    """MODE-1: the conformance example's mode is complete and passes `ModeConformance`."""
    namespace, _ = run_block(BLOCKS[4], tmp_path)
    machine = namespace["FetchConformance"]
    run_state_machine_as_test(
        machine,  # type: ignore[arg-type]
        settings=settings(settings.default, max_examples=30, stateful_step_count=20),
    )


# The application the README's worker example names (`myapp.pipelines:MODES`,
# `myapp.tools:TOOLS`): a `research` mode of two tool steps, the first long enough to be
# interrupted while it runs.
_PIPELINES = """
from interruptible import Sequence, StepClass, StepDefinition

MODES = [
    Sequence(
        "research",
        (
            StepDefinition("search", StepClass.tool, {"name": "search"}),
            StepDefinition("write", StepClass.tool, {"name": "write"}),
        ),
    )
]
"""
_TOOLS = """
import asyncio


async def search() -> str:
    await asyncio.sleep(0.5)
    return "found"


def write() -> str:
    return "written"


TOOLS = {"search": search, "write": write}
"""


def test_readme_client_example_runs_against_the_readmes_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WRK-5: the README's worker command line, as written, starts a worker; the README's
    client example, as written, runs, interrupts and resumes through it and prints what its
    comments say."""
    import shlex
    import subprocess
    import sys

    from tests._postgres import POSTGRES

    dsn = POSTGRES.require()
    (line,) = [
        text.strip()
        for text in README.read_text().splitlines()
        if text.startswith("interruptible worker ")
    ]
    argv = [sys.executable, "-m", "interruptible", *shlex.split(line)[1:]]
    argv = [dsn if word == "$DSN" else word for word in argv]
    app = tmp_path / "myapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "pipelines.py").write_text(_PIPELINES)
    (app / "tools.py").write_text(_TOOLS)
    monkeypatch.setenv("DSN", dsn)
    monkeypatch.syspath_prepend(str(tmp_path))
    POSTGRES.drop_schema("interruptible")  # the README's default schema, fresh
    worker = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().startswith("worker ")
        _, printed = run_block(BLOCKS[1], tmp_path)
        assert printed.splitlines() == promised(BLOCKS[1])
    finally:
        worker.terminate()
        worker.communicate(timeout=20)
        for name in [m for m in sys.modules if m == "myapp" or m.startswith("myapp.")]:
            del sys.modules[name]
        POSTGRES.drop_schema("interruptible")
    assert worker.returncode == 0
