"""How fast requests go out: a shared, adaptive token bucket and the retry policy.

Every request of a job, look-ups included, takes a token from one
:class:`RateLimiter` before it is sent. The bucket is aiolimiter's leaky bucket
(capacity = burst, drained at the current rate); on top of it this module adds
rate adaptation and pauses.

The problem
-----------
The real limit of a bulk run is the service's rate budget, a token bucket per AWS
account whose rate the Chime API does not publish. Two things make it hard to use
that budget fully without provoking 429s:

* The server's bucket hides overload. A client a little above the rate gets no
  429 until the server's burst is spent (at 5% over a 20/s budget, 20 s later),
  and by then nothing says by how much it is over.
* The client's bucket and the server's do not share a phase. A fresh process
  starts with a full bucket while the server's may be half spent (a run just
  killed, another tool on the same account); variable latency shifts them a
  little more. A client burst as deep as the server's can overrun it at once;
  :func:`client_burst` keeps it to a quarter of a second.

The scheme: CUBIC-like growth, a cut sized by the measured delivery rate
--------------------------------------------------------------------------
Plain AIMD (multiply by 0.7 on a 429, add a little per success) spends its time
on a sawtooth between 0.7 and 1.0 of the limit, about 85% on average, and comes
back slowly (the engine's first limiter did: 95% of R after one stray 429 at R,
79% of R with no rate given). TCP moved from it to CUBIC for the same reason. Here:

* **Decrease.** A 429 means the server's bucket is empty and the rate is above
  the budget. The budget is estimated as ``w_max = min(rate, delivered)``, where
  ``delivered`` is what the server accepted per second over the last
  :data:`DELIVERY_WINDOW_SECONDS`; the rate becomes ``DECREASE_FACTOR * w_max``
  (0.9: a mild cut, because ``w_max`` is a measurement, not a guess; below the
  budget the server's bucket refills and the 429s stop). Within one episode of
  429s the estimate counts only what was accepted since the episode began, when
  the server's bucket was already empty: that is its rate, burst excluded, so ten
  times too fast takes a few cuts, not twenty.
* **One cut per signal.** Only a 429 for a request admitted *after* the last cut
  and its grace period cuts again (TCP's once-per-window rule): requests already
  in flight were sent at the old rate, and for ``1 / ((1 - beta) * w_max)``
  seconds after a cut (0.5 s at 20/s) the server's bucket is still refilling its
  first token, so 429s then are expected even after a right cut. Callers that
  cannot say when a request was admitted fall back to at most one cut per
  ``decrease_interval``.
* **Phase alignment.** Every 429 also empties the client's bucket (to half a
  token): the server's is empty, and a burst still stored on this side would
  only meet more 429s.
* **Growth.** After a cut the rate follows CUBIC's curve
  ``w_max * (1 + (1 - beta) * ((t - K) / K) ** 3)``: concave back to ``w_max``
  in :data:`REGROWTH_SECONDS` (``K`` = 4 s), flat near it (where the budget was
  found, so that is where the time goes), then convex, probing for a budget that
  has grown (+10% after 2K). Before the first 429 with no configured ceiling the
  rate doubles every :data:`DOUBLING_SECONDS` (slow start). K trades 429s for
  recovery: a longer K probes less often but dwells longer on an estimate made
  while another client held part of the budget (tuned in virtual time against
  the emulator's bucket: tests/test_schedule.py).
* **Only when used.** The rate grows only while requests actually wait for
  tokens. A run held back by something else (concurrency, the checkpoint, a
  long backoff) does not inflate a rate it never tested.
* **Retry-After** from the server pauses every sender (the bucket is filled so
  that the next token appears when the server asked), and caps the budget
  estimate at one request per Retry-After: the server's next token is that far.
* The configured rate, when there is one, is a ceiling and the starting point,
  never a promise; ``floor`` bounds a storm's cuts.

Measured by :mod:`benchmarks.rate` against the emulator's bucket of R = 20/s
(burst 20), 600 batch requests each: configured at R, 100% of R in steady state
and no 429; configured at 2R or with no rate, settled within 1-3 s, 99.8% of R in
steady state, 1.5-2% of requests answered 429 (one probe every ~10 s), no user lost.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

from aiolimiter import AsyncLimiter
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

from .errors import ApiError

__all__ = [
    "DECREASE_FACTOR",
    "DELIVERY_WINDOW_SECONDS",
    "DOUBLING_SECONDS",
    "REGROWTH_SECONDS",
    "RateLimiter",
    "backoff_seconds",
    "backoff_wait",
    "client_burst",
]

#: Share of the estimated budget the rate is set to after a 429 (CUBIC's beta).
DECREASE_FACTOR = 0.9
#: Seconds CUBIC's curve takes to grow back to the rate where the last 429 came (its K).
REGROWTH_SECONDS = 4.0
#: Before any 429 and with no ceiling, the rate doubles this often (slow start).
DOUBLING_SECONDS = 1.0
#: Seconds of accepted requests behind the delivery-rate estimate.
DELIVERY_WINDOW_SECONDS = 1.0
#: A delivery window shorter than this, or with fewer requests, says too little to size a cut.
_MIN_WINDOW_SECONDS = 0.25
_MIN_DELIVERIES = 4


def client_burst(rate: float) -> int:
    """The bucket depth to use against a server bucket of unknown phase: 1/4 s of *rate*.

    Two tokens at least, so that a late timer does not waste capacity; far below a
    server burst of one second's worth, so that a fresh bucket cannot overrun a
    server bucket someone else has half spent.
    """
    return max(2, math.ceil(rate / 4))


class RateLimiter(AsyncLimiter):
    """A token bucket whose rate adapts to 429s. One token per request.

    Use ``sent_at = await limiter.admit()`` before a request, then
    ``limiter.on_success(sent_at)`` or ``limiter.on_throttle(retry_after, sent_at=sent_at)``;
    ``async with limiter:`` works too (without the once-per-signal precision).

    :param rate: starting requests per second.
    :param burst: bucket capacity (requests that may go out at once after a quiet spell).
    :param ceiling: highest rate adaptation may reach; ``None`` for no ceiling.
    :param adaptive: whether 429s and successes move the rate at all.
    :param floor: lowest rate a storm of 429s can push it to.
    :param decrease_interval: without ``sent_at``, the least time between two cuts.
    """

    __slots__ = (
        "adaptive",
        "ceiling",
        "decrease_factor",
        "decrease_interval",
        "decreases",
        "doubling_seconds",
        "floor",
        "regrowth_seconds",
        "throttles",
        "w_max",
        "_delivered",
        "_episode_start",
        "_epoch",
        "_grace",
        "_last_decrease",
        "_last_update",
        "_last_wait",
        "_window_start",
    )

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
        decrease_interval: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests per second")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        if ceiling is not None:
            rate = min(rate, ceiling)
        super().__init__(max_rate=burst, time_period=burst / rate)
        #: Highest rate that adaptation may reach (``None``: unbounded).
        self.ceiling = ceiling
        #: Whether 429s and successes change the rate.
        self.adaptive = adaptive
        #: Lowest rate a storm of 429s can push it to.
        self.floor = min(floor, rate)
        #: Share of the estimated budget kept after a 429.
        self.decrease_factor = decrease_factor
        #: Seconds for the rate to grow back to ``w_max`` after a cut.
        self.regrowth_seconds = regrowth_seconds
        #: Seconds per doubling before the first 429 (when there is no ceiling).
        self.doubling_seconds = doubling_seconds
        #: Without an admission time, the least seconds between two cuts.
        self.decrease_interval = decrease_interval
        #: The budget estimated at the last cut (``None`` until a 429 came).
        self.w_max: float | None = None
        #: 429s seen.
        self.throttles = 0
        #: Cuts made (429s that carried news).
        self.decreases = 0
        self._last_decrease = -math.inf
        self._grace = 0.0
        self._episode_start = -math.inf
        self._epoch = 0.0
        self._last_update: float | None = None
        self._last_wait = -math.inf
        self._delivered: deque[float] = deque()
        self._window_start: float | None = None

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

    async def acquire(self, amount: float = 1) -> None:
        """Wait for *amount* tokens (noting that the rate, not the caller, held it back)."""
        if not self.has_capacity(amount):
            self._last_wait = self._loop.time()
        await super().acquire(amount)

    async def admit(self) -> float:
        """Wait for a token; return the admission time (for on_success / on_throttle)."""
        await self.acquire()
        now = self._loop.time()
        if self._window_start is None:
            self._window_start = now
        return now

    # -- feedback --------------------------------------------------------------------

    def on_success(self, sent_at: float | None = None) -> None:
        """Note a request the server accepted: count it, and grow the rate if it is in use."""
        now = self._loop.time()
        self._delivered.append(now)
        self._forget_deliveries(now)
        if self.adaptive:
            self._grow(now)

    def on_throttle(
        self, retry_after_seconds: float | None = None, *, sent_at: float | None = None
    ) -> None:
        """Note a 429: cut the rate if it carries news, and honour ``Retry-After``."""
        self.throttles += 1
        now = self._loop.time()
        # The server's bucket is empty: so is ours from now on, or the burst it still
        # holds would follow straight into more 429s (this aligns the two buckets'
        # phases). The server's next token is on average half a token away.
        self._leak()
        self._level = max(self._level, self.max_rate - 0.5)
        if sent_at is not None:
            news = sent_at > self._last_decrease + self._grace
        else:
            news = now - self._last_decrease >= self.decrease_interval
        if self.adaptive and news:
            self._decrease(now, retry_after_seconds)
        if retry_after_seconds:
            self.pause(retry_after_seconds)
        else:
            self._wake_next()

    def delivered_rate(self, since: float | None = None) -> float | None:
        """Requests accepted per second over the last second (or *since*, if later).

        ``None`` when the window is too short or holds too few requests to say.
        """
        now = self._loop.time()
        self._forget_deliveries(now)
        if self._window_start is None:
            return None
        earliest = -math.inf if since is None else since
        start = max(self._window_start, now - DELIVERY_WINDOW_SECONDS, earliest)
        window = now - start
        count = 0
        for accepted_at in reversed(self._delivered):
            if accepted_at <= start:
                break
            count += 1
        if window < _MIN_WINDOW_SECONDS or count < _MIN_DELIVERIES:
            return None
        return count / window

    def pause(self, seconds: float) -> None:
        """Let no request through for *seconds* (bucket filled past capacity)."""
        self._leak()
        blocked_level = self.max_rate - 1 + seconds * self._rate_per_sec
        self._level = max(self._level, blocked_level)
        # The pause is not a lack of demand: the delivery estimate restarts after it.
        now = self._loop.time()
        self._delivered.clear()
        self._window_start = now + seconds
        self._wake_next()

    # -- the control law -----------------------------------------------------------------

    def _decrease(self, now: float, retry_after_seconds: float | None) -> None:
        if now - self._last_decrease > DELIVERY_WINDOW_SECONDS + self._grace:
            # A new episode: the last second's deliveries include whatever burst the
            # server's bucket held, so this first estimate may be high.
            self._episode_start = now
            delivered = self.delivered_rate()
        else:
            # Still overloaded since the episode began, with the server's bucket empty
            # all along: what it accepted since then is its rate, burst excluded.
            delivered = self.delivered_rate(since=self._episode_start)
        w_max = self.rate if delivered is None else min(self.rate, delivered)
        if retry_after_seconds:
            # The server's next token is that far away: a faster rate would only
            # meet another 429 right after the pause.
            w_max = min(w_max, 1.0 / retry_after_seconds)
        self.w_max = max(w_max, self.floor)
        # The server's bucket was empty at the cut and refills at about
        # (budget - new rate) = (1 - beta) * w_max tokens/s: until it holds one, 429s
        # are expected even if the cut was right, so they are not news. (Bounded, so
        # that at a rate of a few per minute the grace does not outlast the regrowth.)
        self._grace = min(
            1.0 / ((1.0 - self.decrease_factor) * self.w_max), self.regrowth_seconds / 2
        )
        self.decreases += 1
        self._last_decrease = now
        self._epoch = now
        self._last_update = now
        self.set_rate(self.decrease_factor * self.w_max)

    def _grow(self, now: float) -> None:
        last, self._last_update = self._last_update, now
        if last is None:
            return
        elapsed = now - last
        if now - self._last_wait > max(1.0, 2.0 / self.rate):
            # Not held back by the bucket: the rate is not being tested, so hold it
            # (and CUBIC's clock with it).
            self._epoch += elapsed
            return
        if self.w_max is None:
            if self.ceiling is not None and self.rate >= self.ceiling:
                return
            target = self.rate * 2.0 ** (elapsed / self.doubling_seconds)
        else:
            k = self.regrowth_seconds
            t = now - self._epoch
            target = self.w_max * (1.0 + (1.0 - self.decrease_factor) * ((t - k) / k) ** 3)
        if target > self.rate:
            self.set_rate(target)

    def _forget_deliveries(self, now: float) -> None:
        horizon = now - DELIVERY_WINDOW_SECONDS
        delivered = self._delivered
        while delivered and delivered[0] <= horizon:
            delivered.popleft()

    def __repr__(self) -> str:
        w_max = "-" if self.w_max is None else f"{self.w_max:.2f}"
        return (
            f"<RateLimiter rate={self.rate:.2f}/s burst={self.burst} "
            f"level={self._level:.2f} ceiling={self.ceiling} w_max={w_max} "
            f"throttles={self.throttles} decreases={self.decreases}>"
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
