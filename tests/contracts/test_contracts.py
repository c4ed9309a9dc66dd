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
from interruptible._core._txn import RUN, STEP
from interruptible._verify._table_contracts import RUN_EDGES, run_target, step_target

ROOT = Path(__file__).resolve().parents[2]
BOOLS = (False, True)


def test_con_1_run_table_contract_holds_for_every_status_and_event() -> None:
    """CON-1, RUN-2, RUN-3: each run transition is a matrix edge; none leaves a terminal."""
    seen = set()
    for status, k, no_step_left in itertools.product(RunStatus, range(len(RUN.events)), BOOLS):
        target = run_target(status, k, no_step_left)
        if target is not None:
            seen.add((status, target))
            assert (status, target) in RUN_EDGES
            assert target is not RunStatus.completed or no_step_left
    assert seen == RUN_EDGES


def test_con_2_step_contracts_hold_for_every_status_event_and_guard() -> None:
    """CON-2, STEP-3: a new effect starts only from pending or retrying."""
    for status, k, *guards in itertools.product(
        StepStatus, range(len(STEP.events)), BOOLS, BOOLS, BOOLS, BOOLS
    ):
        target = step_target(status, k, *guards)
        if target is StepStatus.scheduled:
            assert status in (StepStatus.pending, StepStatus.retrying)


def test_con_3_guard_functions_match_their_definitions() -> None:
    """CON-3, CORE-13: attempts_left and is_retryable are the formulas spec/core.md states."""
    assert attempts_left(0, 2) and not attempts_left(1, 2) and not attempts_left(0, 1)
    assert is_retryable(FailureCategory.timeout, True, (FailureCategory.timeout,))
    assert not is_retryable(FailureCategory.timeout, False, (FailureCategory.timeout,))
    assert not is_retryable(FailureCategory.transient, True, (FailureCategory.timeout,))


def test_con_4_policy_values_are_checked() -> None:
    """CON-4: a backoff or policy no runtime can honour is a typed PolicyError."""
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


def test_con_3_crosshair_reports_a_seeded_defect(tmp_path: Path) -> None:
    """CON-3: CrossHair, run as CI runs it, finds the counterexample of a seeded off-by-one."""
    module = tmp_path / "seeded_guard.py"
    module.write_text(SEEDED)
    done = subprocess.run(
        [sys.executable, "-m", "crosshair", "check", "--analysis_kind=PEP316",
         "--per_condition_timeout=10", str(module)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "error: false when calling attempts_left" in done.stdout


def test_con_5_effect_ids_start_with_their_run_id() -> None:
    """CON-5, CORE-4: effect ids and idempotency keys are derived from the run, step and attempt."""
    from interruptible._vocabulary import effect_id_for, idempotency_key_for

    assert effect_id_for("r1", "s", 2) == "r1/s/2"
    assert effect_id_for("r1", "s", 2).startswith("r1")
    assert idempotency_key_for("r1", "s", 2) == "r1:s:2"
    assert effect_id_for("r1", "s", 1) != effect_id_for("r1", "s", 2)
