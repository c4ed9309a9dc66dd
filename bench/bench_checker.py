"""Benchmark: the model checker's states/s on the CI bound, against a bare breadth-first search.

Run: `python bench/bench_checker.py`. It explores the CI bound of `models/sequence_runs.py` with
the real core, then runs a plain BFS (a dict from state to successors, a visited set, a deque)
over the very graph the checker explored, in the same process: the ratio is what reducing,
checking and keying each state costs over only walking the graph. The goals are the issue's:
at least 20,000 states/s, and a CI bound of at least 100,000 states in under two minutes.

States/s are given per wall second and per CPU second of this process; on a shared machine the
CPU figure is the one other load cannot skew.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from interruptible._verify._checker import Explorer, World
from interruptible._verify._checker._models import load_model

MODEL = Path(__file__).resolve().parents[1] / "models" / "sequence_runs.py"
STATES_PER_SECOND_GOAL = 20_000
CI_STATES_GOAL = 100_000
CI_SECONDS_GOAL = 120.0


def bare_bfs(successors: dict[int, list[int]], root: int) -> tuple[int, float]:
    """Visit every state reachable from `root`; the count and the CPU seconds it took."""
    started = time.process_time()
    seen = {root}
    queue = deque([root])
    while queue:
        for target in successors.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return len(seen), time.process_time() - started


def main() -> int:
    """Explore the CI bound, walk the same graph bare, print figures, ratios and PASS/MISS."""
    model = load_model(MODEL)
    explorer = Explorer(World(model, model.ci_bounds))
    report = explorer.run()
    for line in report.lines():
        print(line)
    successors: dict[int, list[int]] = {}
    for source, target in zip(explorer.edge_from, explorer.edge_to, strict=True):
        successors.setdefault(source, []).append(target)
    visited, bare_seconds = bare_bfs(successors, 0)
    bare_rate = visited / bare_seconds
    print()
    print(
        f"baseline: bare BFS over the same graph as a dict table: {visited:,} states, "
        f"{len(explorer.edge_to):,} edges, {bare_seconds:.3f} s CPU, {bare_rate:,.0f} states/s"
    )
    print(
        f"ratio: the checker spends {report.cpu_seconds / bare_seconds:,.0f}x the bare walk's "
        f"CPU time "
        f"({report.reductions:,} reduce calls, {report.reductions / report.states:.1f} per state)"
    )
    print()
    checks = (
        (
            "states/s (CPU)",
            f"{report.cpu_states_per_second:,.0f}",
            f">= {STATES_PER_SECOND_GOAL:,}",
            report.cpu_states_per_second >= STATES_PER_SECOND_GOAL,
        ),
        (
            "states/s (wall)",
            f"{report.states_per_second:,.0f}",
            f">= {STATES_PER_SECOND_GOAL:,}",
            report.states_per_second >= STATES_PER_SECOND_GOAL,
        ),
        (
            "CI bound states",
            f"{report.states:,}",
            f">= {CI_STATES_GOAL:,}",
            report.states >= CI_STATES_GOAL,
        ),
        (
            "CI bound seconds (wall)",
            f"{report.seconds:.1f}",
            f"< {CI_SECONDS_GOAL:g}",
            report.seconds < CI_SECONDS_GOAL,
        ),
        ("CI bound result", "ok" if report.ok else "VIOLATION", "ok", report.ok),
    )
    for label, value, goal, passed in checks:
        print(f"{label:<24} {value:>10}  goal {goal:<10} {'PASS' if passed else 'MISS'}")
    # A miss is reported, not raised: `./dev bench` runs every benchmark and prints them all.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
