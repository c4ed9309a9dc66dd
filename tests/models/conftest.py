"""Show the model checker's figures at the end of a test run, without `-s`.

Tests attach figures with `record_property("figures", [...lines])`; this hook prints them in the
terminal summary (and pytest writes them into a JUnit XML report too).
"""

from __future__ import annotations

from typing import Any

import pytest

_FIGURES: list[tuple[str, list[str]]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "figures" and isinstance(value, list):
            _FIGURES.append((report.nodeid, [str(line) for line in value]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("model checker figures")
    for nodeid, lines in _FIGURES:
        terminalreporter.write_line(nodeid)
        for line in lines:
            terminalreporter.write_line(f"    {line}")
