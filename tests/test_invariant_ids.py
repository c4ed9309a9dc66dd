"""Every invariant id that spec/ defines is cited by a test, and each is defined once.

A test cites an id in its name (`test_run_3_...`, or a range `test_ver_1_to_12_...`) or in its
docstring (`RUN-3`, or a range `VER-1..VER-10`). A "test" is a `test_*` function or method
collected by pytest, or a method of a Hypothesis state machine decorated with `@invariant` or
`@rule` (in tests/ or in the conformance kit, `interruptible.testing`, whose machines the kit's
tests run). Comments, helpers and other text do not cite: an id mentioned only in a to-do
comment is not tested.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFINITION = re.compile(r"\*\*([A-Z]+-\d+)\*\*")
# `run_3` or `ver_1_to_12` in a name; `RUN-3` or `VER-1..VER-10` in a docstring.
NAME_CITATION = re.compile(r"(?<![a-z0-9])([a-z]+)_(\d+)(?:_to_(\d+))?(?![0-9])")
DOC_CITATION = re.compile(r"(?<![A-Za-z0-9])([A-Z]+)-(\d+)(?:\.\.\1-(\d+))?(?![0-9])")
MACHINE_DECORATORS = {"invariant", "rule"}


def _definitions() -> list[tuple[str, str]]:
    """(id, file) for every `**ID-n**` in spec/ Markdown, in file order."""
    found = []
    for path in sorted((REPO / "spec").rglob("*.md")):
        for match in DEFINITION.finditer(path.read_text(encoding="utf-8")):
            found.append((match.group(1), path.relative_to(REPO).as_posix()))
    return found


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _tests(path: Path) -> Iterator[tuple[str, str]]:
    """(name, docstring) of every test function and state machine rule or invariant in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("test_") or _decorator_names(node) & MACHINE_DECORATORS:
            yield node.name, ast.get_docstring(node) or ""


def _expand(prefix: str, first: str, last: str | None) -> Iterator[str]:
    end = int(last) if last else int(first)
    for number in range(int(first), end + 1):
        yield f"{prefix.upper()}-{number}"


def _citations(name: str, docstring: str) -> set[str]:
    cited = set()
    for prefix, first, last in NAME_CITATION.findall(name):
        cited.update(_expand(prefix, first, last or None))
    for prefix, first, last in DOC_CITATION.findall(docstring):
        cited.update(_expand(prefix, first, last or None))
    return cited


def _cited_ids() -> set[str]:
    files = sorted((REPO / "tests").rglob("*.py"))
    files += sorted((REPO / "src" / "interruptible" / "testing").rglob("*.py"))
    cited: set[str] = set()
    for path in files:
        if path == Path(__file__).resolve():
            continue
        for name, docstring in _tests(path):
            cited |= _citations(name, docstring)
    return cited


def test_spec_defines_invariant_ids_once_each() -> None:
    """spec/ defines at least one invariant id, and no id is defined twice."""
    ids = [invariant for invariant, _ in _definitions()]
    assert ids, "no **ID-n** invariant ids found under spec/"
    duplicates = sorted(invariant for invariant, count in Counter(ids).items() if count > 1)
    assert not duplicates, f"invariant ids defined more than once: {duplicates}"


def test_every_invariant_id_is_cited_by_a_test() -> None:
    """Each id is cited by a test's name or docstring (not by a comment or a helper)."""
    cited = _cited_ids()
    uncited = [
        f"{invariant} ({where})" for invariant, where in _definitions() if invariant not in cited
    ]
    assert not uncited, f"invariant ids no test cites: {', '.join(uncited)}"


def test_a_citation_is_a_test_name_or_docstring_not_a_comment(tmp_path: Path) -> None:
    """The citation rules themselves: names and docstrings cite (ranges expand), comments and
    helpers do not."""
    source = tmp_path / "test_sample.py"
    source.write_text(
        "# ZZZ-9 is not tested yet\n"
        "def helper_zzz_8():\n"
        '    """ZZZ-8"""\n'
        "def test_zzz_1_to_3_hold():\n"
        '    """Also ZZZ-5..ZZZ-6 and ZZZ-70."""\n'
        "class Machine:\n"
        "    @invariant()\n"
        "    def zzz_4_holds(self):\n"
        "        pass\n"
    )
    cited: set[str] = set()
    for name, docstring in _tests(source):
        cited |= _citations(name, docstring)
    zzz = {invariant for invariant in cited if invariant.startswith("ZZZ-")}
    assert zzz == {"ZZZ-1", "ZZZ-2", "ZZZ-3", "ZZZ-4", "ZZZ-5", "ZZZ-6", "ZZZ-70"}
