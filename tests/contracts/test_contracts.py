"""The contracts CrossHair checks hold exhaustively too, and CrossHair does catch a seeded bug."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interruptible import Backoff, FailureCategory, PolicyError, RunStatus, StepPolicy, StepStatus
from interruptible._core._guards import attempts_left, is_retryable
from interruptible._core._table_contracts import RUN_EDGES, run_target, step_target
from interruptible._core._txn import RUN, STEP

ROOT = Path(__file__).resolve().parents[2]
BOOLS = (False, True)


def test_run_1_table_contract_holds_for_every_status_and_event() -> None:
    """RUN-1: every run transition is an edge of design.md's matrix; none leaves a terminal."""
    seen = set()
    for status, k, no_step_left in itertools.product(RunStatus, range(len(RUN.events)), BOOLS):
        target = run_target(status, k, no_step_left)
        if target is not None:
            seen.add((status, target))
            assert (status, target) in RUN_EDGES
            assert target is not RunStatus.completed or no_step_left
    assert seen == RUN_EDGES


def test_step_contracts_hold_for_every_status_event_and_guard() -> None:
    """STEP-1: a new effect starts only from pending or retrying (never beside a live one)."""
    for status, k, *guards in itertools.product(
        StepStatus, range(len(STEP.events)), BOOLS, BOOLS, BOOLS, BOOLS
    ):
        target = step_target(status, k, *guards)
        if target is StepStatus.scheduled:
            assert status in (StepStatus.pending, StepStatus.retrying)


def test_guard_functions_match_their_definitions() -> None:
    """CORE-13: attempts_left and is_retryable are the formulas spec/core.md states."""
    assert attempts_left(0, 2) and not attempts_left(1, 2) and not attempts_left(0, 1)
    assert is_retryable(FailureCategory.timeout, True, (FailureCategory.timeout,))
    assert not is_retryable(FailureCategory.timeout, False, (FailureCategory.timeout,))
    assert not is_retryable(FailureCategory.transient, True, (FailureCategory.timeout,))


def test_voc_policy_values_are_checked() -> None:
    """CORE-13: a backoff or policy no runtime can honour is a typed PolicyError."""
    for bad in (
        lambda: Backoff(multiplier=float("inf")),
        lambda: Backoff(initial=-1.0),
        lambda: StepPolicy(max_attempts=0),
        lambda: StepPolicy(timeout=0.0),
    ):
        with pytest.raises(PolicyError):
            bad()
    assert Backoff(initial=0.5, multiplier=2.0, max_delay=1.5).delay(3) == 1.5


SEEDED = textwrap.dedent(
    '''
    def attempts_left(failures: int, max_attempts: int) -> bool:
        """
        pre: failures >= 0
        post: __return__ == (failures + 1 < max_attempts)
        """
        return failures < max_attempts  # the seeded off-by-one
    '''
)


def test_crosshair_reports_a_seeded_defect(tmp_path: Path) -> None:
    """CORE-13: CrossHair, run as CI runs it, finds the counterexample of a seeded off-by-one."""
    module = tmp_path / "seeded_guard.py"
    module.write_text(SEEDED)
    done = subprocess.run(
        [sys.executable, "-m", "crosshair", "check", "--analysis_kind=PEP316",
         "--per_condition_timeout=10", str(module)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "error: false when calling attempts_left" in done.stdout
