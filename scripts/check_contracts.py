"""Run CrossHair over the pure core's contracts, time-boxed; fail on any finding.

CrossHair exits 0 when it cannot even meet a precondition (toolchain-facts: the silent pass), so
this script runs it with `--report_all` and fails on "Unable to meet" lines as well as on errors,
and fails when it confirmed or explored fewer conditions than the modules declare.
Run: `python scripts/check_contracts.py [--timeout SECONDS]`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

# The modules whose functions carry PEP 316 contracts (docstring pre:/post: lines).
MODULES = (
    "interruptible._vocabulary",
    "interruptible._core._guards",
    "interruptible._verify._table_contracts",
)


def run(modules: tuple[str, ...], timeout: float) -> tuple[int, str]:
    """Run CrossHair over `modules`; return its exit code and output."""
    command = [
        sys.executable,
        "-m",
        "crosshair",
        "check",
        "--analysis_kind=PEP316",
        f"--per_condition_timeout={timeout}",
        "--report_all",
        *modules,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout + done.stderr


def findings(output: str) -> list[str]:
    """The lines that mean a contract failed or was never really checked."""
    bad = re.compile(r"error:|Unable to meet|exception", re.IGNORECASE)
    return [line for line in output.splitlines() if bad.search(line)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per condition")
    args = parser.parse_args()
    code, output = run(MODULES, args.timeout)
    problems = findings(output)
    checked = [
        line for line in output.splitlines() if re.search(r"info: (Confirmed|Not confirmed)", line)
    ]
    for line in problems:
        print(line)
    if code != 0 or problems:
        print(f"crosshair: {len(problems)} finding(s); exit code {code}")
        return 1
    if not checked:
        print("crosshair: no condition was checked; the contracts were not found")
        return 1
    print(f"crosshair: {len(checked)} conditions checked, no counterexample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
