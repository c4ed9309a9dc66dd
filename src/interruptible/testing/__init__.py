"""The conformance kit: Hypothesis strategies (and, later, stateful bases) for the vocabulary.

Test authors import it to check that their executor, journal or mode obeys the protocol:
`from interruptible.testing import strategies`. It needs Hypothesis, which the core does not.
"""

from __future__ import annotations

__all__ = ["strategies"]
