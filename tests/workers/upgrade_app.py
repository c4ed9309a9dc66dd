"""Versions of one pipeline for worker processes under test (spec/upgrades.md): a tool step, a
human gate, a tool step; version 2 inserts a step before the gate, version 3 renames the first
step (and `MIGRATIONS` moves version 1's runs to it)."""

from __future__ import annotations

from interruptible import Migration, StepClass, StepDefinition
from interruptible._core import Sequence


def _tool(step_id: str) -> StepDefinition:
    return StepDefinition(step_id, StepClass.tool, {"name": "work"})


GATE = StepDefinition("approve", StepClass.human_gate, {"question": "ship?"})
V1 = Sequence("gated", (_tool("first"), GATE, _tool("last")), "1")
V2 = Sequence("gated", (_tool("first"), _tool("check"), GATE, _tool("last")), "2")
V3 = Sequence("gated", (_tool("fetch"), GATE, _tool("last")), "3")
MIGRATIONS = [Migration("gated", "1", "3", steps={"first": "fetch"})]
