"""How many requests to keep in flight: enough to keep the rate budget busy, no more.

A budget of R requests per second against an API that answers in L seconds is kept
busy by R x L requests in flight (Little's law): 8 in flight at 0.6 s each allow 13
requests per second, whatever the rate. :class:`InFlight` admits a batch while fewer
than ``ceil(R x L x headroom) + 1`` are in flight, from the budget's current rate and
the latency measured while running, and never more than the job's ``concurrency``,
which is a ceiling, not the number.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Protocol

__all__ = ["HEADROOM", "MIN_IN_FLIGHT", "InFlight"]

#: Requests in flight beyond rate x latency: room for a late answer or a long backoff.
HEADROOM = 1.5
#: Never fewer in flight than this (a fast API and a low rate still overlap two).
MIN_IN_FLIGHT = 2
#: The latency assumed before the first answer, in seconds.
_FIRST_GUESS_SECONDS = 0.25


class _Latency(Protocol):
    @property
    def latency(self) -> float | None: ...


class InFlight:
    """An async context manager admitting one request (batch) at a time up to the limit.

    :param ceiling: the most in flight, whatever the law says (``--concurrency``).
    :param rate: the budget's current rate, requests per second.
    :param measured: where the smoothed latency is (the client's request stats).
    """

    def __init__(self, ceiling: int, rate: Callable[[], float], measured: _Latency) -> None:
        self.ceiling = max(1, ceiling)
        self._rate = rate
        self._measured = measured
        self.count = 0
        self._changed = asyncio.Condition()

    def limit(self) -> int:
        """How many may be in flight now."""
        latency = self._measured.latency
        wanted = math.ceil(self._rate() * (latency or _FIRST_GUESS_SECONDS) * HEADROOM) + 1
        return min(self.ceiling, max(MIN_IN_FLIGHT, wanted))

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.count < self.limit())
            self.count += 1

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._changed:
            self.count -= 1
            self._changed.notify_all()
