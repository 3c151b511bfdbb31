"""How long to wait before sending again: exponential backoff with full jitter.

One formula serves every retry: a random wait, uniform between 0 and
``min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)``. Random waits spread
the retries of many concurrent batches, so that they do not come back all at once
("full jitter": https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
"""

from __future__ import annotations

import random

from tenacity import RetryCallState

from .errors import ApiError

__all__ = ["BACKOFF_BASE_SECONDS", "BACKOFF_MAX_SECONDS", "backoff_seconds", "backoff_wait"]

#: The widest wait after the first failure (attempt 0), in seconds.
BACKOFF_BASE_SECONDS = 0.25
#: No wait is longer than this, in seconds.
BACKOFF_MAX_SECONDS = 20.0
# 0.25 * 2**7 already passes the cap: a larger exponent only risks an OverflowError.
_MAX_EXPONENT = 32


def backoff_seconds(attempt: int) -> float:
    """A full-jitter delay: uniform in ``[0, min(20, 0.25 * 2**attempt)]`` seconds.

    The engine passes the sends an item has had so far; a negative *attempt* counts as 0.
    """
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    return random.uniform(0.0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0**exponent))


def backoff_wait(retry_state: RetryCallState) -> float:
    """A tenacity ``wait``: full jitter, and never less than the error's ``Retry-After``.

    Tenacity numbers attempts from 1, so its attempt *n* is :func:`backoff_seconds`'s
    ``n - 1``: up to 0.25 s after the first failure, as tenacity's own
    ``wait_random_exponential(multiplier=0.25, max=20)`` would wait.
    """
    delay = backoff_seconds(retry_state.attempt_number - 1)
    outcome = retry_state.outcome
    if outcome is not None and outcome.failed:
        error = outcome.exception()
        if isinstance(error, ApiError) and error.retry_after_seconds:
            delay = max(delay, error.retry_after_seconds)
    return delay
