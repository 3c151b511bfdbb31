"""How fast requests go out: a shared, adaptive token bucket and the retry policy.

Every request of a job, look-ups included, takes a token from one
:class:`RateLimiter` before it is sent. The bucket is aiolimiter's leaky bucket
(capacity = burst, drained at the current rate); on top of it this module adds
rate adaptation and pauses.

Adaptation is AIMD, as in TCP and botocore's adaptive mode, simplified:

* On a 429 the rate is multiplied by :data:`DECREASE_FACTOR` (0.7, the factor
  CUBIC uses), at most once per :attr:`RateLimiter.decrease_interval`: the
  requests already in flight when the first 429 came back were sent at the old
  rate, so their 429s carry no new information and must not collapse the rate.
* Each success adds ``increase_per_second / rate`` to the rate, which grows it by
  about ``increase_per_second`` every second of clean traffic, probing back up
  towards the ceiling (the configured rate; unbounded when none was given).
* A ``Retry-After`` from the server pauses every sender: the bucket is filled so
  that the next token appears when the server asked.

The service does not publish its per-account budget, so a configured rate is a
ceiling and a starting point, never a promise.
"""

from __future__ import annotations

import math
import random
from typing import Any

from aiolimiter import AsyncLimiter
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

from .errors import ApiError

__all__ = ["DECREASE_FACTOR", "RateLimiter", "backoff_seconds", "backoff_wait"]

#: Share of the rate kept after a 429.
DECREASE_FACTOR = 0.7


class RateLimiter(AsyncLimiter):
    """A token bucket whose rate adapts to 429s. Use ``async with limiter:`` per request.

    :param rate: starting requests per second.
    :param burst: bucket capacity (requests that may go out at once after a quiet spell).
    :param ceiling: highest rate adaptation may reach; ``None`` for no ceiling.
    :param adaptive: whether 429s and successes move the rate at all.
    """

    __slots__ = (
        "adaptive",
        "ceiling",
        "decrease_interval",
        "floor",
        "increase_per_second",
        "throttles",
        "_last_decrease",
    )

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        ceiling: float | None = None,
        adaptive: bool = True,
        floor: float = 0.2,
        increase_per_second: float | None = None,
        decrease_interval: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        super().__init__(max_rate=burst, time_period=burst / rate)
        #: Highest rate that adaptation may reach (``None``: unbounded).
        self.ceiling = ceiling
        #: Whether 429s and successes change the rate.
        self.adaptive = adaptive
        #: Lowest rate a storm of 429s can push it to.
        self.floor = min(floor, rate)
        #: How fast the rate grows back, in requests/s per second of clean traffic.
        self.increase_per_second = (
            increase_per_second if increase_per_second is not None else max(0.5, rate * 0.05)
        )
        #: Seconds after a decrease during which further 429s do not decrease again.
        self.decrease_interval = decrease_interval
        #: 429s seen.
        self.throttles = 0
        self._last_decrease = -math.inf

    @property
    def rate(self) -> float:
        """The current rate, in requests per second."""
        return self._rate_per_sec

    @property
    def burst(self) -> int:
        """The bucket capacity."""
        return int(self.max_rate)

    def set_rate(self, rate: float) -> None:
        """Change the drain rate now; what already drained at the old rate stays drained."""
        if self.ceiling is not None:
            rate = min(rate, self.ceiling)
        rate = max(rate, self.floor)
        self._leak()
        # aiolimiter keeps the rate in a private slot; the bucket's level and
        # waiters carry over, so only the drain speed changes.
        self._rate_per_sec = rate
        self.time_period = self.max_rate / rate
        self._wake_next()

    def on_success(self) -> None:
        """Note a request the server accepted (probe upwards)."""
        if self.adaptive:
            self.set_rate(self.rate + self.increase_per_second / self.rate)

    def on_throttle(self, retry_after_seconds: float | None = None) -> None:
        """Note a 429: slow down (once per interval) and honour ``Retry-After``."""
        self.throttles += 1
        now = self._loop.time()
        if self.adaptive and now - self._last_decrease >= self.decrease_interval:
            self._last_decrease = now
            self.set_rate(self.rate * DECREASE_FACTOR)
        if retry_after_seconds:
            self.pause(retry_after_seconds)

    def pause(self, seconds: float) -> None:
        """Let no request through for *seconds* (bucket filled past capacity)."""
        self._leak()
        blocked_level = self.max_rate - 1 + seconds * self._rate_per_sec
        self._level = max(self._level, blocked_level)
        self._wake_next()

    def __repr__(self) -> str:
        return (
            f"<RateLimiter rate={self.rate:.2f}/s burst={self.burst} "
            f"level={self._level:.2f} ceiling={self.ceiling} throttles={self.throttles}>"
        )


#: Backoff parameters: full jitter over ``min(MAX, BASE * 2**attempt)`` seconds.
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 20.0

_full_jitter = wait_random_exponential(multiplier=BACKOFF_BASE_SECONDS, max=BACKOFF_MAX_SECONDS)


def backoff_seconds(attempt: int) -> float:
    """Full-jitter delay before resending items that have been sent *attempt* times."""
    return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt, 0)))


def backoff_wait(retry_state: RetryCallState) -> float:
    """Full-jitter exponential backoff that waits at least the server's ``Retry-After``."""
    delay = float(_full_jitter(retry_state))
    outcome: Any = retry_state.outcome
    if outcome is not None and outcome.failed:
        error = outcome.exception()
        if isinstance(error, ApiError) and error.retry_after_seconds:
            delay = max(delay, error.retry_after_seconds)
    return delay
