"""The upgrade race machine holds, and its seeded defect is caught (spec/upgrades.md, UPG-8)."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.stateful.upgrades import TrustingUpgradeMachine, UpgradeRaceMachine


def test_upg_8_upgrade_race_machine_holds_every_invariant() -> None:
    """UPG-8: deploys of every change kind, with and without migrations and kept versions,
    interleaved with answers, interrupts, resumes and restarts: no kept step runs again, the
    run never fails, no step is skipped, and replay with the newest version is exact."""
    run_state_machine_as_test(UpgradeRaceMachine, settings=settings())


BROKEN = settings(
    settings(),
    derandomize=True,
    max_examples=500,
    stateful_step_count=30,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    print_blob=False,
)


def test_upg_8_race_machine_catches_a_migration_that_drops_a_kept_step() -> None:
    """UPG-8: trusting a migration whose transform drops a kept step's output makes the race
    machine fail."""
    with pytest.raises(AssertionError, match="UPG-8"):
        run_state_machine_as_test(TrustingUpgradeMachine, settings=BROKEN)
