"""The conformance kit: check that your executor, journal or mode obeys the protocol.

- `strategies`: Hypothesis strategies for every event, directive, step definition and JSON value,
  and `hostile_json_values` (deep, huge, non-finite, invalid text) for what must be refused.
- `ModeConformance`, `JournalConformance`: rule-based state machines to subclass
  (`UNOFFERED_TOOL` and `POSED_ARGUMENTS` are what `ModeConformance`'s hostile answers use).
- `CoreDriver`: drive the pure core event by event.
- Golden traces (`record`, `verify_trace`, `load_trace`): the vectors in `spec/traces/`, for a
  runtime in another language to replay.
- A pytest plugin (installed with the package) with fixtures `core_driver`, `golden_traces`,
  `memory_journal` and `journal_path`.

It needs Hypothesis and pytest, which the core does not.
"""

from __future__ import annotations

from .._verify._driver import CoreDriver
from .._views._traces import (
    Trace,
    iter_traces,
    load_trace,
    project_state,
    record,
    verify_trace,
    write_traces,
)
from . import strategies
from ._machines import POSED_ARGUMENTS, UNOFFERED_TOOL, JournalConformance, ModeConformance

__all__ = [
    "POSED_ARGUMENTS",
    "UNOFFERED_TOOL",
    "CoreDriver",
    "JournalConformance",
    "ModeConformance",
    "Trace",
    "iter_traces",
    "load_trace",
    "project_state",
    "record",
    "strategies",
    "verify_trace",
    "write_traces",
]
