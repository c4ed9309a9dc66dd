"""The package's layers import only what lies below them (spec/layers.md).

Every module under src/interruptible is parsed, and each `import` and `from ... import` in it
(inside functions and under `TYPE_CHECKING` too: a lazy import is still a dependency) is resolved
to the module it names. A rule is a set of importers and a set of layers they must not reach.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "interruptible"
BASE = frozenset(
    f"interruptible.{name}"
    for name in (
        "_lifecycle",
        "_interpreter",
        "_vocabulary",
        "_codec",
        "_errors",
        "_record",
        "_limits",
        "_history",
    )
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path) -> Iterator[str]:
    """The absolute name of every module (or name of a package) that `path` imports."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                if node.module:
                    base = f"{base}.{node.module}"
            yield base
            # `from . import _diagrams` imports a module, not a name of the package.
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def _graph() -> dict[str, frozenset[str]]:
    """Each module of the package and the modules of the package it imports."""
    return {
        _module_name(path): frozenset(
            target for target in _imported(path) if target.startswith("interruptible")
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _within(module: str, layer: str) -> bool:
    full = f"interruptible.{layer}"
    return module == full or module.startswith(full + ".")


def _breaches(importers: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module in importers
        for target in _graph()[module]
        if any(_within(target, layer) for layer in forbidden)
    )


def _layer(layer: str) -> set[str]:
    return {module for module in _graph() if _within(module, layer)}


def test_the_graph_sees_every_layer() -> None:
    """The parser finds the modules of every layer and resolves relative imports (a sanity check
    of the checks below: a rule over nothing would pass)."""
    graph = _graph()
    for layer in ("_core", "_journal", "_runtime", "_cli", "_verify", "_views", "testing"):
        assert _layer(layer), layer
    assert set(graph) >= BASE
    assert "interruptible._core._state" in graph["interruptible._core._coordinator"]
    assert "interruptible._views._diagrams" in graph["interruptible._views._spec"]


def test_layer_1_the_base_and_the_core_are_pure() -> None:
    """LAYER-1: no base module and no module of `_core/` imports the journal, the runtime, the
    command line, verification or the views; no base module imports the core."""
    forbidden = ("_journal", "_runtime", "_cli", "_verify", "_views")
    assert _breaches(BASE | _layer("_core"), forbidden) == []
    assert _breaches(set(BASE), ("_core",)) == []


def test_layer_2_the_journal_does_not_drive() -> None:
    """LAYER-2: no module of `_journal/` imports the runtime, the command line, verification or
    the views."""
    assert _breaches(_layer("_journal"), ("_runtime", "_cli", "_verify", "_views")) == []


def test_layer_3_the_runtime_does_not_import_what_proves_or_shows_it() -> None:
    """LAYER-3: no module of `_runtime/` imports the command line, verification or the views."""
    assert _breaches(_layer("_runtime"), ("_cli", "_verify", "_views")) == []


def test_layer_4_the_command_line_is_the_top() -> None:
    """LAYER-4: only `_cli/` itself and `__main__` import the command line; the views and the
    testing kit import neither the command line nor the runtime."""
    outside = set(_graph()) - _layer("_cli") - {"interruptible.__main__"}
    assert _breaches(outside, ("_cli",)) == []
    assert _breaches(_layer("_views") | _layer("testing"), ("_cli", "_runtime")) == []


def test_layer_4_importing_the_package_loads_no_upper_layer() -> None:
    """LAYER-4: `import interruptible` loads none of `_cli`, `_verify` and `_views` (in a fresh
    interpreter on this tree's sources)."""
    code = (
        "import sys, interruptible\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['interruptible', '_cli'], ['interruptible', '_verify'], ['interruptible', '_views'])))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"
