"""spec/lifecycles.md speaks of everything the lifecycles declare."""

from __future__ import annotations

from pathlib import Path

from interruptible import DirectiveKind, RunStatus, StepClass, StepStatus
from interruptible._interpreter import compile_lifecycle
from interruptible._lifecycle import GUARD_MEANINGS, RunLifecycle, StepLifecycle

DOC = Path(__file__).resolve().parents[2] / "spec" / "lifecycles.md"


def test_spec_5_document_names_every_status_event_guard_and_directive() -> None:
    """Every status, event, guard, directive kind and step class appears in lifecycles.md."""
    text = DOC.read_text(encoding="utf-8")
    run = compile_lifecycle(RunLifecycle, RunStatus)
    step = compile_lifecycle(StepLifecycle, StepStatus)
    names = {
        *(f"`{s.value}`" for s in (*RunStatus, *StepStatus)),
        *(f"`{event}`" for event in (*run.events, *step.events)),
        *(f"`{guard}`" for guard in GUARD_MEANINGS),
        *(f"`{kind.value}`" for kind in DirectiveKind),
        *(f"`{cls.value}`" for cls in StepClass),
    }
    missing = sorted(name for name in names if name not in text)
    assert not missing, f"spec/lifecycles.md does not mention {missing}"
