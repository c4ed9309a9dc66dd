"""Every invariant id that spec/ defines is cited by a test, and each is defined once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFINITION = re.compile(r"\*\*([A-Z]+-\d+)\*\*")


def _definitions() -> list[tuple[str, str]]:
    """(id, file) for every `**ID-n**` in spec/ Markdown, in file order."""
    found = []
    for path in sorted((REPO / "spec").rglob("*.md")):
        for match in DEFINITION.finditer(path.read_text(encoding="utf-8")):
            found.append((match.group(1), path.relative_to(REPO).as_posix()))
    return found


def _test_sources() -> str:
    here = Path(__file__).resolve()
    return "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((REPO / "tests").rglob("*.py")) if p != here
    )


def _cited(invariant: str, sources: str) -> bool:
    prefix, number = invariant.split("-")
    # `run_3` inside a test name, or the literal `RUN-3`; never `run_30` for `run_3`.
    pattern = rf"(?<![A-Za-z0-9]){prefix.lower()}_{number}(?!\d)|(?<![A-Za-z0-9]){invariant}(?!\d)"
    return re.search(pattern, sources) is not None


def test_spec_defines_invariant_ids_once_each() -> None:
    """spec/ defines at least one invariant id, and no id is defined twice."""
    ids = [invariant for invariant, _ in _definitions()]
    assert ids, "no **ID-n** invariant ids found under spec/"
    duplicates = sorted(invariant for invariant, count in Counter(ids).items() if count > 1)
    assert not duplicates, f"invariant ids defined more than once: {duplicates}"


def test_every_invariant_id_is_cited_by_a_test() -> None:
    """Each id is cited under tests/ as `run_3` (in a test name) or as the literal `RUN-3`."""
    sources = _test_sources()
    uncited = [
        f"{invariant} ({where})"
        for invariant, where in _definitions()
        if not _cited(invariant, sources)
    ]
    assert not uncited, f"invariant ids no test cites: {', '.join(uncited)}"
