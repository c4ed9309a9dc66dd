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


def test_readme_has_the_three_python_blocks() -> None:
    """The README's examples: the runtime, the pure core, the conformance kit."""
    assert len(BLOCKS) == 3
    assert "Runtime(" in BLOCKS[0] and "coordinator.reduce" in BLOCKS[1]
    assert "ModeConformance" in BLOCKS[2]


@pytest.mark.parametrize("index", [0, 1], ids=["runtime", "pure_core"])
def test_readme_blocks_print_what_their_comments_say(index: int, tmp_path: Path) -> None:
    """The runtime and pure-core examples run and print exactly what their comments promise."""
    source = BLOCKS[index]
    _, printed = run_block(source, tmp_path)
    assert printed.splitlines() == promised(source)


def test_readme_conformance_example_passes_the_kit(tmp_path: Path) -> None:
    """MODE-1: the conformance example's mode is complete and passes `ModeConformance`."""
    namespace, _ = run_block(BLOCKS[2], tmp_path)
    machine = namespace["FetchConformance"]
    run_state_machine_as_test(
        machine,  # type: ignore[arg-type]
        settings=settings(settings.default, max_examples=30, stateful_step_count=20),
    )
