"""The control law: what rate to send at, given the service's answers.

CUBIC-like growth, a cut sized by the measured delivery rate, one cut per signal with
a grace period, slow start before the first 429 and a deep first cut, a longer hold at
a budget that cut after cut finds the same, growth only while requests wait for
tokens, and Retry-After as a cap on the budget. The reasoning and the measurements
are in ``docs/retries-and-rate-limits.md``; this module holds no clock and no bucket:
it is told the time and the events, and says what the rate is.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = [
    "DECREASE_FACTOR",
    "DELIVERY_WINDOW_SECONDS",
    "DOUBLING_SECONDS",
    "FIRST_DECREASE_FACTOR",
    "MAX_HOLD_SECONDS",
    "REGROWTH_SECONDS",
    "SAME_ESTIMATE_TOLERANCE",
    "AdaptiveRate",
]

#: Share of the estimated budget the rate is set to after a 429 (CUBIC's beta).
DECREASE_FACTOR = 0.9
#: The same share at the first cut sized by a delivery rate, which the server's burst inflates.
FIRST_DECREASE_FACTOR = 0.5
#: Two cuts whose budget estimates differ by at most this share found the same budget.
SAME_ESTIMATE_TOLERANCE = 0.05
#: Longest hold at ``w_max`` before probing above it (doubled at each cut that finds it again).
MAX_HOLD_SECONDS = 16.0
#: Seconds CUBIC's curve takes to grow back to the rate where the last 429 came (its K).
REGROWTH_SECONDS = 4.0
#: Before any 429, the rate doubles this often (slow start), up to the ceiling.
DOUBLING_SECONDS = 1.0
#: Seconds of accepted requests behind the delivery-rate estimate.
DELIVERY_WINDOW_SECONDS = 1.0
#: A delivery window shorter than this, or with fewer requests, says too little to size a cut.
_MIN_WINDOW_SECONDS = 0.25
_MIN_DELIVERIES = 4
#: The average since the last cut needs this many requests to resolve the tolerance.
_MIN_AVERAGED = round(1.0 / SAME_ESTIMATE_TOLERANCE)
#: A probe this far above w_max with no 429 has found a grown budget: a probe ends
#: once it has drained what the server stored while the rate was under its budget,
#: about +13% above w_max, and up to +56% for a full bucket of a second's requests.
_GROWN = 0.5


class AdaptiveRate:
    """Decides the rate from successes, 429s and whether requests wait for tokens.

    Every method takes ``now``, in seconds on the budget's clock; the caller applies
    :attr:`rate` to its bucket after each event.

    :param rate: the starting rate (lowered to *ceiling* if above it).
    :param ceiling: highest rate growth may reach; ``None`` for none.
    :param adaptive: whether answers move the rate at all.
    :param floor: lowest rate a storm of 429s can push it to (lowered to *rate* if above).
    :param decrease_factor: share of the estimated budget kept after a 429.
    :param regrowth_seconds: seconds to grow back to ``w_max`` after a cut.
    :param doubling_seconds: seconds per doubling before the first 429.
    """

    __slots__ = (
        "adaptive",
        "ceiling",
        "decrease_factor",
        "decreases",
        "doubling_seconds",
        "floor",
        "regrowth_seconds",
        "throttles",
        "w_max",
        "_accepted_since_cut",
        "_burst_cut_rate",
        "_delivered",
        "_episode_start",
        "_epoch",
        "_grace",
        "_hold",
        "_last_decrease",
        "_last_update",
        "_last_wait",
        "_rate",
        "_window_start",
    )

    def __init__(
        self,
        rate: float,
        *,
        ceiling: float | None = None,
        adaptive: bool = True,
        floor: float = 0.2,
        decrease_factor: float = DECREASE_FACTOR,
        regrowth_seconds: float = REGROWTH_SECONDS,
        doubling_seconds: float = DOUBLING_SECONDS,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0 requests per second")
        if ceiling is not None and not ceiling > 0:
            raise ValueError("ceiling must be > 0 requests per second, or None for no ceiling")
        if not floor > 0:
            raise ValueError("floor must be > 0 requests per second (0.2 is the default)")
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1 (0.9 keeps 90%)")
        if not regrowth_seconds > 0 or not doubling_seconds > 0:
            raise ValueError("regrowth_seconds and doubling_seconds must be > 0")
        if ceiling is not None:
            rate = min(rate, ceiling)
        self._rate = float(rate)
        #: Highest rate that growth may reach (``None``: unbounded).
        self.ceiling = ceiling
        #: Whether 429s and successes change the rate.
        self.adaptive = adaptive
        #: Lowest rate a storm of 429s can push it to.
        self.floor = min(floor, self._rate)
        #: Share of the estimated budget kept after a 429 (CUBIC's beta).
        self.decrease_factor = decrease_factor
        #: Seconds for the rate to grow back to ``w_max`` after a cut (CUBIC's K).
        self.regrowth_seconds = regrowth_seconds
        #: Seconds per doubling before the first 429.
        self.doubling_seconds = doubling_seconds
        #: The budget estimated at the last cut (``None`` until a 429 came).
        self.w_max: float | None = None
        #: 429s seen.
        self.throttles = 0
        #: Cuts made (429s that carried news); a ticket's generation.
        self.decreases = 0
        self._last_decrease = -math.inf
        self._grace = 0.0
        self._episode_start = -math.inf
        self._epoch = 0.0
        self._last_update: float | None = None
        self._last_wait = -math.inf
        self._delivered: deque[float] = deque()
        self._window_start: float | None = None
        # Requests accepted since the last cut (None: no cut yet; or a pause, a stretch
        # that tested no rate or a grown budget since, which it would understate).
        self._accepted_since_cut: int | None = None
        # Seconds the rate holds at w_max before probing above it.
        self._hold = 0.0
        # The rate the first cut halved to, when the server's burst inflated its estimate
        # (None otherwise, and after the next cut).
        self._burst_cut_rate: float | None = None

    @property
    def rate(self) -> float:
        """The rate to send at now, in requests per second."""
        return self._rate

    @property
    def hold_seconds(self) -> float:
        """Seconds the rate stays at ``w_max`` before probing above it (0 until two cuts
        in a row find the same budget)."""
        return self._hold

    # -- events ----------------------------------------------------------------------------

    def on_wait(self, now: float) -> None:
        """A request found no token and has to wait: the rate is what holds work back."""
        self._last_wait = now

    def on_admit(self, now: float) -> None:
        """A request got its token (the delivery window starts with the first)."""
        if self._window_start is None:
            self._window_start = now

    def on_success(self, now: float) -> None:
        """A request was accepted: count it, and grow the rate if the rate is in use."""
        self._delivered.append(now)
        self._forget_deliveries(now)
        if self._accepted_since_cut is not None:
            self._accepted_since_cut += 1
        if self.adaptive:
            self._grow(now)

    def on_throttle(
        self,
        now: float,
        *,
        generation: int,
        issued_at: float,
        retry_after_seconds: float | None = None,
    ) -> bool:
        """A 429 came for a request let through at *issued_at* after *generation* cuts.

        Cut the rate if the 429 is news, and, with ``Retry-After``, note the pause (see
        :meth:`on_pause`). It is not news when the request was let through before the
        last cut (sent at the old rate), nor during the grace after the cut, while the
        server's bucket is still refilling its first token. Return whether it cut.
        """
        self.throttles += 1
        news = generation >= self.decreases and issued_at > self._last_decrease + self._grace
        cut = self.adaptive and news
        if cut:
            self._decrease(now, retry_after_seconds)
        if retry_after_seconds:
            self.on_pause(now, retry_after_seconds)
        return cut

    def on_pause(self, now: float, seconds: float) -> None:
        """Nothing is sent for *seconds*: a lull the delivery estimate must not count."""
        self._delivered.clear()
        self._window_start = now + seconds
        self._accepted_since_cut = None

    def delivered_rate(self, now: float, since: float | None = None) -> float | None:
        """Requests accepted per second over the last second (or since *since*, if later).

        ``None`` when the window is too short or holds too few requests to say.
        """
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

    # -- the control law ---------------------------------------------------------------------

    def _set_rate(self, rate: float) -> None:
        if self.ceiling is not None:
            rate = min(rate, self.ceiling)
        self._rate = max(rate, self.floor)

    def _decrease(self, now: float, retry_after_seconds: float | None) -> None:
        previous = self.w_max
        new_episode = now - self._last_decrease > DELIVERY_WINDOW_SECONDS + self._grace
        delivered = self._budget_estimate(now, new_episode)
        w_max = self._rate if delivered is None else min(self._rate, delivered)
        if retry_after_seconds:
            # The server's next token is that far away: a faster rate would only
            # meet another 429 right after the pause.
            w_max = min(w_max, 1.0 / retry_after_seconds)
        self.w_max = max(w_max, self.floor)
        if _same(self.w_max, previous):
            # Found where the last cut found it: hold there longer before probing.
            if new_episode:
                self._hold = min(max(2.0 * self._hold, self.regrowth_seconds), MAX_HOLD_SECONDS)
        elif new_episode and delivered is not None and _same(self.w_max, self._burst_cut_rate):
            # The first cut, sized by a delivery rate the server's burst inflated, halved
            # to this budget, and the next one, measured with the server's bucket empty,
            # found the same: two measures that agree, held as after cuts that found the
            # same budget again and again (the first probe above it is not due at once).
            self._hold = min(2.0 * self.regrowth_seconds, MAX_HOLD_SECONDS)
        else:
            self._hold = 0.0
        if new_episode:
            self._burst_cut_rate = None
        beta, measure = self.decrease_factor, 0.0
        first = previous is None and not retry_after_seconds
        if first and delivered is not None and delivered >= 0.5 * self._rate:
            # The first cut, after the server took most of what was sent: its burst, not
            # its rate, carried the rate, so the estimate may be up to twice the budget.
            # As TCP leaving slow start, halve; hold a second there, to measure.
            beta, measure = min(beta, FIRST_DECREASE_FACTOR), DELIVERY_WINDOW_SECONDS
            self._burst_cut_rate = max(beta * self.w_max, self.floor)
        # The server's bucket was empty at the cut and refills at about
        # (budget - new rate) = (1 - beta) * w_max tokens/s: until it holds one, 429s
        # are expected even if the cut was right, so they are not news. (Bounded, so
        # that at a rate of a few per minute the grace does not outlast the regrowth.)
        self._grace = min(1.0 / ((1.0 - beta) * self.w_max), self.regrowth_seconds / 2)
        self.decreases += 1
        self._last_decrease = now
        self._accepted_since_cut = 0
        # CUBIC's curve through the new rate: a deeper cut starts further back on it.
        depth = (1.0 - beta) / (1.0 - self.decrease_factor)
        self._epoch = now + measure + self.regrowth_seconds * (depth ** (1.0 / 3.0) - 1.0)
        self._last_update = now
        self._set_rate(beta * self.w_max)

    def _budget_estimate(self, now: float, new_episode: bool) -> float | None:
        """What the server accepts per second, from what it accepted (``None``: unknown)."""
        if not new_episode:
            # Still overloaded since the episode began, with the server's bucket empty
            # all along: what it accepted since then is its rate, burst excluded.
            return self.delivered_rate(now, since=self._episode_start)
        self._episode_start = now
        # The last second's deliveries include whatever burst the server's bucket held,
        # so this estimate may be high...
        delivered = self.delivered_rate(now)
        # ...but that bucket was empty at the last cut as it is now: what the server
        # accepted in between is its rate, less what overflowed while the rate was
        # under it (so, once cuts agree on the budget, it refines the estimate down
        # to theirs, less the tolerance, and no further).
        count, last = self._accepted_since_cut, self.w_max
        if count is not None and count >= _MIN_AVERAGED and last is not None:
            average = count / (now - self._last_decrease)
            if self._hold:
                average = max(average, (1.0 - SAME_ESTIMATE_TOLERANCE) * last)
            if delivered is None or average < delivered:
                return average
        return delivered

    def _grow(self, now: float) -> None:
        last, self._last_update = self._last_update, now
        if last is None:
            return
        elapsed = now - last
        if now - self._last_wait > max(1.0, 2.0 / self._rate):
            # Not held back by the bucket: the rate is not being tested, so hold it
            # (and CUBIC's clock with it).
            self._epoch += elapsed
            self._accepted_since_cut = None
            return
        if self.w_max is None:
            if self.ceiling is not None and self._rate >= self.ceiling:
                return
            target = self._rate * 2.0 ** (elapsed / self.doubling_seconds)
        else:
            k = self.regrowth_seconds
            t = now - self._epoch
            if t > k:
                # Back at w_max: stay there for the hold before probing above it.
                t = max(k, t - self._hold)
            rise = (1.0 - self.decrease_factor) * ((t - k) / k) ** 3
            if rise > _GROWN:
                # The count since the cut, made mostly under the grown budget, would
                # understate it.
                self._accepted_since_cut = None
            target = self.w_max * (1.0 + rise)
        if target > self._rate:
            self._set_rate(target)

    def _forget_deliveries(self, now: float) -> None:
        horizon = now - DELIVERY_WINDOW_SECONDS
        delivered = self._delivered
        while delivered and delivered[0] <= horizon:
            delivered.popleft()

    def __repr__(self) -> str:
        w_max = "-" if self.w_max is None else f"{self.w_max:.2f}"
        return (
            f"<AdaptiveRate rate={self._rate:.2f}/s ceiling={self.ceiling} w_max={w_max} "
            f"hold={self._hold:g}s throttles={self.throttles} decreases={self.decreases}>"
        )


def _same(estimate: float, earlier: float | None) -> bool:
    """Whether two budget estimates agree, within :data:`SAME_ESTIMATE_TOLERANCE`."""
    return earlier is not None and abs(estimate - earlier) <= SAME_ESTIMATE_TOLERANCE * earlier
