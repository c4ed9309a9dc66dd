"""The guard values the coordinator computes from data, with the contracts CrossHair checks.

Each function here is the one definition of a guard's value; the coordinator calls it and
passes the result to the compiled lifecycle under the guard's declared name (`GUARD_MEANINGS`).
"""

from __future__ import annotations

from .._vocabulary import FailureCategory


def attempts_left(failures: int, max_attempts: int) -> bool:
    """Guard `attempts_left`: after one more counted failure, may the step try again?

    pre: failures >= 0
    post: __return__ == (failures + 1 < max_attempts)
    post: not __return__ or max_attempts >= 2
    """
    return failures + 1 < max_attempts


def is_retryable(
    category: FailureCategory, retryable: bool, retry_on: tuple[FailureCategory, ...]
) -> bool:
    """Guard `is_retryable`: the failure says it is retryable and the policy retries its category.

    post: __return__ == (retryable and category in retry_on)
    post: not __return__ or retryable
    """
    return retryable and category in retry_on
