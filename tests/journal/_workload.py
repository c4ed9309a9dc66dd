"""Events for the journal tests: plain batches, and real conversations driven through the core."""

from __future__ import annotations

from interruptible import (
    Coordinator,
    Event,
    FailureCategory,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
)
from interruptible._verify._driver import CoreDriver
from tests._pipeline import PIPELINE


def coordinator() -> Coordinator:
    """The coordinator every journal test replays through."""
    return Coordinator([PIPELINE])


def some_events(conversation_id: str, count: int, start: int = 0) -> list[Event]:
    """`count` distinct events of one conversation (the journal does not look at their meaning)."""
    events: list[Event] = []
    for n in range(start, start + count):
        eid, rid = f"e{n}", f"r{n}"
        if n % 3 == 0:
            events.append(RunRequested(eid, conversation_id, rid, "pipeline", {"n": n}, "alice"))
        elif n % 3 == 1:
            events.append(InterruptRequested(eid, conversation_id, rid, principal="alice", at=n))
        else:
            events.append(ResumeRequested(eid, conversation_id, rid, principal="alice", at=n))
    return events


def drive_conversation(conversation_id: str) -> CoreDriver:
    """A conversation driven live: an interrupt, a resume, a retried failure, a cancel."""
    driver = CoreDriver(coordinator(), conversation_id)
    driver.run("r1", "pipeline", {"topic": conversation_id})
    driver.started("r1", "plan")
    driver.progress("r1", "plan", 1, {"pct": 50})
    driver.interrupt("r1")
    driver.canceled("r1", "plan")
    driver.resume("r1")
    driver.started("r1", "plan")
    driver.complete("r1", "plan", {"plan": ["fetch", "publish"]})
    driver.started("r1", "fetch")
    driver.fail("r1", "fetch", FailureCategory.transient, "503", retryable=True)
    driver.started("r1", "fetch")
    driver.complete("r1", "fetch", {"body": "ok"})
    driver.started("r1", "approve")
    driver.answer("r1", "approve", "yes")
    driver.started("r1", "wait")
    driver.complete("r1", "wait", {"seconds": 1})
    driver.started("r1", "publish")
    driver.complete("r1", "publish", None)
    driver.complete("r1", "publish", "late")  # a late duplicate: journaled, ignored by reduce
    driver.run("r2", "pipeline", {"topic": "again"})
    driver.started("r2", "plan")
    driver.cancel("r2")
    driver.canceled("r2", "plan")
    driver.run("r3", "pipeline", {"topic": "in flight"})
    driver.started("r3", "plan")  # left in flight, as at a crash
    return driver
