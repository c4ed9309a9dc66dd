"""Hypothesis profiles for every test: `ci` (reproducible), `dev` (default) and `soak` (long)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests._postgres import POSTGRES

# ci: the same examples on every run, so a red CI is reproducible from its log alone.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    print_blob=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
# soak: long exploration before a release, or after a change to a lifecycle.
settings.register_profile("soak", max_examples=5000, stateful_step_count=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session", autouse=True)
def _postgres_database() -> Iterator[None]:
    """Drop the PostgreSQL test database (made on first use, tests/_postgres.py) at the end."""
    yield
    POSTGRES.drop()
