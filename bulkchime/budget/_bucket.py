"""A token bucket whose rate can change and that can be paused, in GCRA form.

The bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second;
each request takes one. Its state is one time, the GCRA's *theoretical arrival time*
(``tat``): when the bucket would be full again had nothing more been taken (plus the
end of a pause, if any). A token is free when ``tat - (burst - 1) / rate <= now``, and
taking it adds ``1 / rate`` to ``tat``. A budget shared through Redis can keep the
same two numbers there and run the same arithmetic in a script.

aiolimiter's ``AsyncLimiter`` is the same bucket, but it has no public way to change
the rate or to pause; this one adds those and keeps aiolimiter's manners otherwise:
FIFO waiters, one timer, and a cancelled wait takes nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

__all__ = ["TokenBucket"]

#: Seconds below which a delay is float rounding, not a wait.
_ROUNDING = 1e-9


class TokenBucket:
    """An asyncio token bucket: *burst* tokens, refilled at *rate* per second.

    Times are the running loop's clock (``loop.time()``), so that the bucket runs as
    well on a loop whose clock jumps (the tests' virtual time) as in real time.

    :param rate: tokens per second, > 0.
    :param burst: capacity: how many requests may go at once after a quiet spell, >= 1.
    """

    __slots__ = (
        "_burst",
        "_closed",
        "_loop",
        "_paused_until",
        "_queue",
        "_rate",
        "_tat",
        "_timer",
    )

    def __init__(self, rate: float, burst: int) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0 requests per second")
        if burst < 1:
            raise ValueError("burst must be >= 1 (a whole number of requests)")
        self._rate = float(rate)
        self._burst = burst
        #: GCRA's theoretical arrival time: -inf is a full bucket.
        self._tat = -math.inf
        #: No token is handed out before this time (Retry-After).
        self._paused_until = -math.inf
        self._queue: deque[asyncio.Future[float]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        #: The loop of the last call (for ``__repr__``, which may run outside it).
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The capacity, in tokens."""
        return self._burst

    def level(self) -> float:
        """Tokens in the bucket now (0 while paused or owed, *burst* when full)."""
        return self._level_at(self._clock())

    def has_capacity(self) -> bool:
        """Whether :meth:`acquire` would return at once (a token, and nobody ahead)."""
        return not self._queue and self._delay(self._clock()) <= 0

    async def acquire(self) -> float:
        """Wait for a token, in FIFO order; return the loop time it was taken.

        A cancelled wait takes nothing: the place in the queue is given up, and a token
        granted in the instant of the cancellation goes back to the bucket.
        """
        if self._closed:
            raise RuntimeError("the rate budget is closed; make a new one to send more requests")
        now = self._clock()
        loop = asyncio.get_running_loop()
        if not self._queue and self._delay(now) <= 0:
            self._take(now)
            return now
        waiter: asyncio.Future[float] = loop.create_future()
        self._queue.append(waiter)
        self._wake()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted, but cancelled before the task could run: a token is 1/rate of
                # tat at whatever rate is current, so this gives back exactly one.
                self._tat -= 1.0 / self._rate
            elif waiter in self._queue:
                self._queue.remove(waiter)
            self._wake()
            raise

    def set_rate(self, rate: float) -> None:
        """Refill at *rate* from now on: what was taken so far stays taken.

        The tokens owed are kept and now refill at the new rate; waiters are looked at
        again at once (a higher rate may serve one now).
        """
        if not rate > 0:
            raise ValueError("rate must be > 0 requests per second")
        # Measured at the end of a pause, so that a rate change during it leaves both
        # the pause and the single token after it as they were.
        ref = max(self._clock(), self._paused_until)
        owed = max(0.0, self._tat - ref) * self._rate
        self._rate = float(rate)
        self._tat = ref + owed / self._rate
        self._wake()

    def empty_to(self, tokens: float) -> None:
        """Take away what the bucket holds above *tokens* (a fraction is allowed)."""
        now = self._clock()
        self._tat = max(self._tat, now + (self._burst - tokens) / self._rate)
        self._wake()

    def pause(self, seconds: float) -> None:
        """Hand out no token for *seconds*; after that, one token, then the rate.

        Pauses do not add up: the later end wins.
        """
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        # Empty at the end of the pause, but for the one token it ends with: a burst
        # stored during the pause would meet a server bucket just as empty.
        self._tat = max(self._tat, self._paused_until + (self._burst - 1) / self._rate)
        self._wake()

    def close(self) -> None:
        """Stop the timer and fail the waiters (no one would wake them); idempotent."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the rate budget was closed while waiting"))

    def _clock(self) -> float:
        self._loop = asyncio.get_running_loop()
        return self._loop.time()

    # -- GCRA ----------------------------------------------------------------------------

    def _delay(self, now: float) -> float:
        """Seconds from *now* until a token is free (<= 0: free now)."""
        free_at = max(self._tat - (self._burst - 1) / self._rate, self._paused_until)
        delay = free_at - now
        # Sums of 1/rate leave rounding of a few ulps: that is not a wait.
        return delay if delay > _ROUNDING else 0.0

    def _take(self, now: float) -> None:
        self._tat = max(self._tat, now) + 1.0 / self._rate

    def _level_at(self, now: float) -> float:
        owed = max(0.0, self._tat - now) * self._rate
        return min(float(self._burst), max(0.0, self._burst - owed))

    def _wake(self) -> None:
        """Serve the waiters at the head of the queue that may go now; time the next."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed or not self._queue:
            return
        loop = self._queue[0].get_loop()
        now = loop.time()
        while self._queue:
            if self._queue[0].done():  # cancelled; its task has not run to say so yet
                self._queue.popleft()
                continue
            delay = self._delay(now)
            if delay > 0:
                self._timer = loop.call_at(now + delay, self._wake)
                return
            self._take(now)
            self._queue.popleft().set_result(now)

    def describe(self) -> str:
        """The live state, as ``rate=20.00/s burst=5 level=3.20`` (plus pause, waiters)."""
        text = f"rate={self._rate:.2f}/s burst={self._burst}"
        if self._loop is None:  # never used: full
            return f"{text} level={self._burst:.2f}"
        # Also outside the loop (a log line at exit): its clock still reads.
        now = self._loop.time()
        text += f" level={self._level_at(now):.2f}"
        if self._paused_until > now:
            text += f" paused={self._paused_until - now:.2f}s"
        if self._queue:
            text += f" waiters={len(self._queue)}"
        return text + (" closed" if self._closed else "")

    def __repr__(self) -> str:
        return f"<TokenBucket {self.describe()}>"
