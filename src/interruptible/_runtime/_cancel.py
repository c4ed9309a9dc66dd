"""`CancelToken`: how a synchronous tool running in a thread learns that it should stop.

A thread cannot be interrupted from outside, so the runtime never pretends to stop one (RT-24):
it asks, by setting the token, and waits for the tool to return. A tool asks for a token by
annotating a parameter with `CancelToken`; the runtime passes a fresh one per attempt (it is no
argument of the step: the argument check and `tool_schemas` leave it out) and sets it when the
effect is cancelled (an interrupt, a cancel, a policy timeout). A tool that takes a token
promises to stop when it is set: once set, whatever the tool then returns or raises, its
effect answers `effect_canceled` (what it returns may be partial, so it is not kept), RT-25.
"""

from __future__ import annotations

import threading


class CancelToken(threading.Event):
    """Set when the runtime asks the effect to stop (`is_set()`, `wait(timeout)`)."""
