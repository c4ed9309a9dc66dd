"""Benchmark: validating a tool call's arguments with pydantic against the hand-written checker.

Run: `python bench/bench_tools.py [--quick]`. The baseline is the checker that pydantic replaced,
loaded from the repository's history (the version of `_runtime/_arguments.py` before the commit
that removed `json_type`) and run in the same process on the same signatures and arguments. For
each signature it times `problem(arguments)` (what each check costs per tool call; the new one
also builds the validated arguments the tool is called with), best of several rounds, the two
alternated. The goal (spec/tools.md) is at most 1.5x the old checker's time per call. It also
checks that `import interruptible` loads neither pydantic nor an optional extra (TOOL-3), and
prints the import's time in a fresh interpreter, as bench_runtime.py does.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NotRequired

from pydantic import BaseModel
from typing_extensions import TypedDict

from interruptible._runtime._arguments import Arguments

REPO = Path(__file__).resolve().parents[1]
MODULE = "src/interruptible/_runtime/_arguments.py"
RATIO_GOAL = 1.5
IMPORT_GOAL_MS = 150.0


class Query(TypedDict):
    text: str
    limit: NotRequired[int]


class Trip(BaseModel):
    destination: str
    dates: list[str]


def search(query: str, limit: int = 10, exact: bool = False) -> None: ...
def tagged(tags: list[str], weights: dict[str, float] | None = None) -> None: ...
def typed(query: Query, mode: Literal["fast", "slow"] = "fast") -> None: ...
def batch(queries: list[Query]) -> None: ...
def book(trip: Trip, seats: int = 1) -> None: ...


# (label, callable, arguments): one tool call each; the old checker cannot take `book`.
CASES: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
    ("search(query, limit)", search, {"query": "tides", "limit": 5}),
    (
        "tagged(tags[8], weights{4})",
        tagged,
        {"tags": list("abcdefgh"), "weights": dict.fromkeys("abcd", 0.5)},
    ),
    ("typed(TypedDict, Literal)", typed, {"query": {"text": "q", "limit": 3}, "mode": "slow"}),
    (
        "batch(100 TypedDicts)",
        batch,
        {"queries": [{"text": f"q{i}", "limit": i} for i in range(100)]},
    ),
]


def old_checker() -> tuple[str, types.ModuleType] | None:
    """The hand-written checker, from the commit before the one that removed `json_type`."""
    removed = subprocess.run(
        ["git", "log", "--format=%H", "-S", "def json_type(", "--", MODULE],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not removed:
        return None
    commit = f"{removed[0]}^"
    source = subprocess.run(
        ["git", "show", f"{commit}:{MODULE}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    source = source.replace("from ._cancel import", "from interruptible._runtime._cancel import")
    module = types.ModuleType("old_arguments")
    sys.modules["old_arguments"] = module  # dataclasses and typing look modules up by name
    exec(compile(source, f"{commit}:{MODULE}", "exec"), module.__dict__)
    return removed[0][:10] + "^", module


def per_call(check: Callable[[dict[str, Any]], object], arguments: dict[str, Any], n: int) -> float:
    """Seconds per call of `check(arguments)`, over `n` calls."""
    started = time.perf_counter()
    for _ in range(n):
        check(arguments)
    return (time.perf_counter() - started) / n


def import_ms(code: str, runs: int = 7) -> list[str]:
    """The output lines of `code` in fresh interpreters, the median run's."""
    outputs = sorted(
        (
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
            for _ in range(runs)
        ),
        key=lambda out: float(out[0]),
    )
    return outputs[len(outputs) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    args = parser.parse_args(argv)
    calls, rounds = (2_000, 3) if args.quick else (20_000, 7)
    found = old_checker()
    if found is None:  # a MISS is a finding, never a crash (bench/README.md)
        print("MISS: the old checker is not in this repository's history (a shallow clone?)")
        return 0
    commit, old = found
    misses = 0
    print(f"baseline: the hand-written checker at {commit}, same process, same arguments")
    print(f"{'signature':32} {'old us/call':>12} {'new us/call':>12} {'new/old':>8}  goal")
    for label, function, arguments in CASES:
        before, after = old.Arguments("f", function), Arguments("f", function)
        assert before.problem(arguments) is None and after.problem(arguments) is None, label
        n = max(calls // (10 if "100" in label else 1), 200)
        old_times, new_times = [], []
        for _ in range(rounds):  # alternated, best of each: other load skews both alike
            old_times.append(per_call(before.problem, arguments, n))
            new_times.append(per_call(after.problem, arguments, n))
        ratio = min(new_times) / min(old_times)
        verdict = "PASS" if ratio <= RATIO_GOAL else "MISS"
        misses += verdict == "MISS"
        print(
            f"{label:32} {min(old_times) * 1e6:12.2f} {min(new_times) * 1e6:12.2f} "
            f"{ratio:8.2f}  <= {RATIO_GOAL} {verdict}"
        )
    trip = {"trip": {"destination": "Oslo", "dates": ["2026-01-02", "2026-01-09"]}, "seats": 2}
    new_only = min(per_call(Arguments("f", book).problem, trip, calls) for _ in range(rounds))
    print(f"{'book(pydantic model) (new only)':32} {'-':>12} {new_only * 1e6:12.2f}")

    code = (
        "import time, sys; t = time.perf_counter(); import interruptible; "
        "print(time.perf_counter() - t); "
        "print(any(m in sys.modules for m in ('pydantic', 'langchain_core', 'mcp', 'anthropic')))"
    )
    seconds, heavy = import_ms(code)
    import_time = float(seconds) * 1000
    clean = heavy == "False"
    print()
    print(
        f"import interruptible (fresh interpreter): {import_time:.0f} ms (goal < "
        f"{IMPORT_GOAL_MS:.0f} ms) {'PASS' if import_time < IMPORT_GOAL_MS else 'MISS'}; "
        f"pydantic and the extras not loaded: {'PASS' if clean else 'MISS'}"
    )
    misses += (import_time >= IMPORT_GOAL_MS) + (not clean)
    print(f"\n{'all PASS' if not misses else f'{misses} MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
