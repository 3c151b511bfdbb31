"""The in-process rate budget: one token bucket, paced by the adaptive control law."""

from __future__ import annotations

import asyncio

from ._adaptive import DECREASE_FACTOR, DOUBLING_SECONDS, REGROWTH_SECONDS, AdaptiveRate
from ._bucket import TokenBucket
from ._protocol import Ticket

__all__ = ["LocalBudget"]

#: Tokens left in the bucket after a 429: the server's next one is on average half a
#: token away, and whatever burst the bucket stored would only meet more 429s.
_TOKENS_AFTER_429 = 0.5


class LocalBudget:
    """A :class:`~bulkchime.budget.RateBudget` for the requests of one process.

    Usage::

        ticket = await budget.acquire()
        ...  # send the request
        await budget.on_success(ticket)  # or: await budget.on_throttle(ticket, retry_after)

    :param rate: starting requests per second (lowered to *ceiling* if above it).
    :param burst: bucket capacity: requests that may go at once after a quiet spell.
    :param ceiling: highest rate adaptation may reach; ``None`` for no ceiling.
    :param adaptive: whether 429s and successes move the rate at all.
    :param floor: lowest rate a storm of 429s can push it to.
    :param decrease_factor: share of the estimated budget kept after a 429.
    :param regrowth_seconds: seconds to grow back to ``w_max`` after a cut.
    :param doubling_seconds: seconds per doubling before the first 429.
    """

    __slots__ = ("_bucket", "_control")

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        ceiling: float | None = None,
        adaptive: bool = True,
        floor: float = 0.2,
        decrease_factor: float = DECREASE_FACTOR,
        regrowth_seconds: float = REGROWTH_SECONDS,
        doubling_seconds: float = DOUBLING_SECONDS,
    ) -> None:
        # The controller checks the rate and its bounds, the bucket the burst.
        self._control = AdaptiveRate(
            rate,
            ceiling=ceiling,
            adaptive=adaptive,
            floor=floor,
            decrease_factor=decrease_factor,
            regrowth_seconds=regrowth_seconds,
            doubling_seconds=doubling_seconds,
        )
        self._bucket = TokenBucket(self._control.rate, burst)

    # -- state, for logs and tests ----------------------------------------------------------

    @property
    def rate(self) -> float:
        """The current rate, in requests per second."""
        return self._control.rate

    @property
    def burst(self) -> int:
        """The bucket capacity."""
        return self._bucket.burst

    @property
    def ceiling(self) -> float | None:
        """The highest rate adaptation may reach (``None``: no ceiling)."""
        return self._control.ceiling

    @property
    def w_max(self) -> float | None:
        """The budget estimated at the last cut (``None`` until a 429 came)."""
        return self._control.w_max

    @property
    def throttles(self) -> int:
        """429s reported so far."""
        return self._control.throttles

    @property
    def decreases(self) -> int:
        """Cuts made so far (429s that carried news): the generation of new tickets."""
        return self._control.decreases

    def delivered_rate(self) -> float | None:
        """Requests accepted per second over the last second; ``None`` if too few to say."""
        return self._control.delivered_rate(asyncio.get_running_loop().time())

    # -- RateBudget ---------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether :meth:`acquire` would return at once (a token, and nobody ahead)."""
        return self._bucket.has_capacity()

    async def acquire(self) -> Ticket:
        """Wait until a request may be sent; return its ticket.

        Cancelling the wait takes nothing from the budget.
        """
        if not self._bucket.has_capacity():
            # The rate, not the caller, holds this request back: growth may test it.
            self._control.on_wait(asyncio.get_running_loop().time())
        granted_at = await self._bucket.acquire()
        self._control.on_admit(granted_at)
        return Ticket(generation=self._control.decreases, issued_at=granted_at)

    async def on_success(self, ticket: Ticket) -> None:
        """The request sent under *ticket* was accepted: the rate may grow."""
        self._control.on_success(asyncio.get_running_loop().time())
        self._apply_rate()

    async def on_throttle(self, ticket: Ticket, retry_after_seconds: float | None) -> None:
        """The request sent under *ticket* was answered 429.

        The bucket is emptied to half a token (the server's is empty: this aligns the
        two buckets' phases); the rate is cut if the 429 is news; ``Retry-After``
        pauses every acquirer for that long.
        """
        now = asyncio.get_running_loop().time()
        self._bucket.empty_to(_TOKENS_AFTER_429)
        self._control.on_throttle(
            now,
            generation=ticket.generation,
            issued_at=ticket.issued_at,
            retry_after_seconds=retry_after_seconds,
        )
        self._apply_rate()
        if retry_after_seconds:
            self._bucket.pause(retry_after_seconds)

    async def close(self) -> None:
        """Fail the requests still waiting and refuse new ones; idempotent."""
        self._bucket.close()

    def _apply_rate(self) -> None:
        if self._control.rate != self._bucket.rate:
            self._bucket.set_rate(self._control.rate)

    def __repr__(self) -> str:
        control = self._control
        w_max = "-" if control.w_max is None else f"{control.w_max:.2f}"
        return (
            f"<LocalBudget {self._bucket.describe()} ceiling={control.ceiling} w_max={w_max} "
            f"throttles={control.throttles} decreases={control.decreases}>"
        )
