"""The rate limiter and backoff, in virtual time.

The last tests run the limiter against a model of the service's throttle (a token
bucket of R requests/s, as the emulator and AWS keep) with latency, concurrency and
the engine's retry policy: storms of 429s, recovery, Retry-After. Virtual time makes
a minute of traffic take a fraction of a second, and exact.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from bulkchime.errors import RetryableError
from bulkchime.schedule import (
    DECREASE_FACTOR,
    REGROWTH_SECONDS,
    RateLimiter,
    backoff_seconds,
    backoff_wait,
    client_burst,
)

from .virtual_time import run_virtual


async def _send_times(limiter: RateLimiter, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []
    for _ in range(count):
        async with limiter:
            times.append(loop.time())
    return times


async def _saturate(limiter: RateLimiter, seconds: float) -> int:
    """Send (and succeed) as fast as the limiter lets, for *seconds*; return how many."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    sent = 0
    while loop.time() < end:
        sent_at = await limiter.admit()
        limiter.on_success(sent_at)
        sent += 1
    return sent


# -- the bucket ----------------------------------------------------------------------------


def test_limiter_holds_the_configured_rate_after_the_burst() -> None:
    async def scenario() -> list[float]:
        limiter = RateLimiter(20.0, 5, adaptive=False)
        return await _send_times(limiter, 105)

    times = run_virtual(scenario())
    # The first 5 go at once (the burst), then one every 1/20 s.
    assert times[4] == pytest.approx(0.0, abs=1e-3)
    assert times[-1] - times[5] == pytest.approx(99 / 20, rel=0.01)


def test_concurrent_senders_share_one_bucket() -> None:
    async def scenario() -> list[float]:
        limiter = RateLimiter(10.0, 1, adaptive=False)
        results = await asyncio.gather(*(_send_times(limiter, 10) for _ in range(5)))
        return sorted(t for times in results for t in times)

    times = run_virtual(scenario())
    assert len(times) == 50
    assert times[-1] == pytest.approx(4.9, rel=0.02)


def test_client_burst_is_a_quarter_second_and_never_below_two() -> None:
    assert client_burst(20) == 5
    assert client_burst(1) == 2
    assert client_burst(1000) == 250


def test_bad_settings_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        RateLimiter(0, 1)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        RateLimiter(1, 0)


def test_repr_shows_live_state() -> None:
    async def scenario() -> str:
        limiter = RateLimiter(20.0, 5, ceiling=20.0)
        limiter.on_throttle()
        return repr(limiter)

    text = run_virtual(scenario())
    assert "rate=18.00/s" in text and "throttles=1" in text and "w_max=20.00" in text


# -- decrease ------------------------------------------------------------------------------


def test_a_429_cuts_once_per_signal_not_once_per_429() -> None:
    """429s for requests admitted before the cut (or just after it) carry no news."""

    async def scenario() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(20.0, 20, ceiling=20.0)
        in_flight = [await limiter.admit() for _ in range(10)]
        limiter.on_throttle(sent_at=in_flight[0])
        after_first = limiter.rate
        for sent_at in in_flight[1:]:  # the rest of the storm, already in flight
            limiter.on_throttle(sent_at=sent_at)
        after_storm = limiter.rate
        # The server's bucket, empty at the cut, needs 1 / ((1 - beta) * 20) = 0.5 s to
        # hold a token again at the new rate: 429s for requests sent before are expected.
        await asyncio.sleep(0.4)
        limiter.on_throttle(sent_at=loop.time())
        after_grace = limiter.rate
        await asyncio.sleep(0.2)
        limiter.on_throttle(sent_at=loop.time())  # sent after it: still too fast
        return after_first, after_storm, after_grace, limiter.rate

    after_first, after_storm, after_grace, after_news = run_virtual(scenario())
    assert after_first == pytest.approx(20.0 * DECREASE_FACTOR)
    assert after_storm == after_first
    assert after_grace == after_first
    assert after_news == pytest.approx(20.0 * DECREASE_FACTOR**2)


def test_without_admission_times_cuts_are_spaced_by_the_interval() -> None:
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(20.0, 20, ceiling=20.0, decrease_interval=1.0)
        for _ in range(10):
            limiter.on_throttle()
        storm = limiter.rate
        await asyncio.sleep(1.0)
        limiter.on_throttle()
        return storm, limiter.rate

    storm, later = run_virtual(scenario())
    assert storm == pytest.approx(20.0 * DECREASE_FACTOR)
    assert later == pytest.approx(20.0 * DECREASE_FACTOR**2)


def test_the_cut_is_sized_by_what_the_server_accepted() -> None:
    """Ten times too fast is one cut, not twenty: the delivery rate estimates the budget."""

    async def scenario() -> tuple[float, float | None]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(200.0, 10, ceiling=200.0)
        # The server accepts 20/s of the 200/s sent (the rest would be 429s).
        start = loop.time()
        accepted = 0
        while loop.time() - start < 2.0:
            sent_at = await limiter.admit()
            if accepted < 20 * (loop.time() - start):
                limiter.on_success(sent_at)
                accepted += 1
        estimate = limiter.delivered_rate()
        limiter.on_throttle(sent_at=loop.time())
        return limiter.rate, estimate

    rate, estimate = run_virtual(scenario())
    assert estimate == pytest.approx(20.0, rel=0.1)
    assert rate == pytest.approx(DECREASE_FACTOR * 20.0, rel=0.1)


def test_a_429_empties_the_bucket_so_no_stored_burst_follows() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(10.0, 10, adaptive=False)
        limiter.on_throttle()  # the server's bucket is empty: ours is too now
        await limiter.admit()
        return loop.time()

    # The next token comes half a token's time later (the server's next one, on average).
    assert run_virtual(scenario()) == pytest.approx(0.05, abs=0.005)


def test_a_storm_cannot_push_the_rate_below_the_floor() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(20.0, 5, floor=1.0)
        for _ in range(50):
            limiter.on_throttle(sent_at=math.inf)
        return limiter.rate

    assert run_virtual(scenario()) == pytest.approx(1.0)


def test_a_limiter_that_is_not_adaptive_keeps_its_rate() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(20.0, 5, adaptive=False)
        limiter.on_throttle(sent_at=math.inf)
        await _saturate(limiter, 5)
        return limiter.rate

    assert run_virtual(scenario()) == 20.0


# -- growth --------------------------------------------------------------------------------


def test_after_a_cut_the_rate_regrows_to_the_budget_in_k_seconds_and_dwells_there() -> None:
    async def scenario() -> list[float]:
        limiter = RateLimiter(20.0, 2, ceiling=40.0)
        limiter.on_throttle(sent_at=math.inf)  # w_max = 20 (nothing delivered yet)
        rates = [limiter.rate]
        for _ in range(4):
            await _saturate(limiter, REGROWTH_SECONDS / 2)
            rates.append(limiter.rate)
        return rates

    cut, half, regrown, later, probing = run_virtual(scenario())
    assert cut == pytest.approx(20.0 * DECREASE_FACTOR)
    # Concave: most of the way back in the first half of K...
    assert 19.5 < half < 20.0
    # ...back at w_max after K, flat around it for a while (that is where the budget was)...
    assert regrown == pytest.approx(20.0, abs=0.1)
    assert later == pytest.approx(20.0, abs=0.3)
    # ...then probing above it, convex, for a budget that may have grown.
    assert probing == pytest.approx(20.0 * (2 - DECREASE_FACTOR), abs=0.3)


def test_growth_never_passes_the_ceiling() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(20.0, 5, ceiling=20.0)
        limiter.on_throttle(sent_at=math.inf)
        await _saturate(limiter, 60)
        return limiter.rate

    assert run_virtual(scenario()) == pytest.approx(20.0)


def test_with_no_ceiling_the_rate_doubles_until_the_first_429() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(10.0, 2)
        await _saturate(limiter, 3.0)
        return limiter.rate

    assert run_virtual(scenario()) == pytest.approx(80.0, rel=0.1)


def test_the_rate_does_not_grow_when_the_bucket_is_not_what_holds_requests_back() -> None:
    """A run paced by something else (one request in flight, slow answers) tests no rate."""

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(10.0, 5)
        start = loop.time()
        while loop.time() - start < 30:
            sent_at = await limiter.admit()
            await asyncio.sleep(0.5)  # a slow answer: 2/s, far below the limiter's 10/s
            limiter.on_success(sent_at)
        return limiter.rate

    assert run_virtual(scenario()) == pytest.approx(10.0)


# -- Retry-After ---------------------------------------------------------------------------


def test_retry_after_pauses_every_sender() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(100.0, 100, adaptive=False)
        limiter.on_throttle(retry_after_seconds=3.0)

        async def one() -> float:
            await limiter.admit()
            return loop.time()

        return list(await asyncio.gather(*(one() for _ in range(5))))

    times = run_virtual(scenario())
    assert min(times) == pytest.approx(3.0, abs=0.02)


def test_retry_after_caps_the_rate_at_one_request_per_pause() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(5.0, 1, ceiling=5.0)
        limiter.on_throttle(retry_after_seconds=2.0, sent_at=math.inf)
        return limiter.rate

    # The server's next token is 2 s away: 0.5/s is all it can take, and the cut applies.
    assert run_virtual(scenario()) == pytest.approx(0.5 * DECREASE_FACTOR)


def test_backoff_honours_retry_after_and_grows_with_jitter() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        starts: list[float] = []
        with pytest.raises(RetryableError):
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(4),
                wait=backoff_wait,
                retry=retry_if_exception_type(RetryableError),
                reraise=True,
            ):
                with attempt:
                    starts.append(loop.time())
                    raise RetryableError(
                        "Throttled", "slow down", status=429, retry_after_seconds=2.0
                    )
        return starts

    starts = run_virtual(scenario())
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 4
    assert all(gap >= 2.0 for gap in gaps)


def test_backoff_seconds_is_full_jitter_capped() -> None:
    samples = [backoff_seconds(3) for _ in range(2000)]
    assert 0 <= min(samples) < 0.2
    assert max(samples) <= 0.25 * 2**3
    assert max(backoff_seconds(30) for _ in range(200)) <= 20.0


# -- against a model of the service's throttle ---------------------------------------------


class ServerBucket:
    """The service's throttle: a token bucket of *rate* requests/s holding *burst*."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._level = float(burst)
        self._stamp: float | None = None
        #: Times of accepted requests, and the count of 429s.
        self.accepted: list[float] = []
        self.throttled = 0

    def take(self, now: float) -> float:
        """0.0 when admitted, else the seconds until a token (the 429's wait)."""
        if self._stamp is not None:
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._level >= 1.0:
            self._level -= 1.0
            self.accepted.append(now)
            return 0.0
        self.throttled += 1
        return (1.0 - self._level) / self.rate

    def served_between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.accepted)


@dataclass
class Run:
    server: ServerBucket
    limiter: RateLimiter
    seconds: float
    lost: int
    #: ``(time, limiter rate)`` after every accepted request.
    rates: list[tuple[float, float]] = field(default_factory=list)


async def _bulk_run(
    server: ServerBucket,
    limiter: RateLimiter,
    *,
    requests: int,
    concurrency: int = 8,
    seed: int = 7,
    events: dict[float, float] | None = None,
) -> Run:
    """The engine's send loop in miniature: workers, retries with backoff, the limiter.

    *events* maps a time to a new server rate (the budget changes during the run).
    Retry-After is sent as the emulator sends it: whole seconds, when the wait is >= 1 s.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    start = loop.time()
    remaining = requests
    lost = 0
    run = Run(server, limiter, 0.0, 0)

    async def change_budget(at: float, rate: float) -> None:
        await asyncio.sleep(at)
        server.rate = rate

    changes = [asyncio.create_task(change_budget(at, r)) for at, r in (events or {}).items()]

    async def call() -> None:
        sent_at = await limiter.admit()
        await asyncio.sleep(rng.uniform(0.001, 0.010))  # to the server
        wait = server.take(loop.time())
        await asyncio.sleep(rng.uniform(0.001, 0.005))  # back
        if wait:
            retry_after = float(math.ceil(wait)) if wait >= 1 else None
            limiter.on_throttle(retry_after, sent_at=sent_at)
            raise RetryableError(
                "Throttled", "Rate exceeded", status=429, retry_after_seconds=retry_after
            )
        limiter.on_success(sent_at)
        run.rates.append((loop.time() - start, limiter.rate))

    async def worker() -> None:
        nonlocal remaining, lost
        while remaining > 0:
            remaining -= 1
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(8),
                    wait=backoff_wait,
                    retry=retry_if_exception_type(RetryableError),
                    reraise=True,
                ):
                    with attempt:
                        await call()
            except RetryableError:
                lost += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    for task in changes:
        task.cancel()
    run.seconds = loop.time() - start
    run.lost = lost
    return run


R = 20.0


def _throughput(run: Run) -> float:
    """Accepted per second, as a share of R, leaving out the server's initial burst."""
    return (len(run.server.accepted) - run.server.burst) / run.seconds / R


def test_configured_at_the_budget_it_uses_it_all_without_a_429() -> None:
    async def scenario() -> Run:
        limiter = RateLimiter(R, client_burst(R), ceiling=R)
        return await _bulk_run(ServerBucket(R, 20), limiter, requests=600)

    run = run_virtual(scenario())
    assert run.server.throttled == 0
    assert run.lost == 0
    assert _throughput(run) >= 0.97


def test_a_full_client_bucket_meeting_a_spent_server_bucket_recovers_at_once() -> None:
    """A fresh run on an account whose budget someone else just spent."""

    async def scenario() -> Run:
        server = ServerBucket(R, 20)
        for _ in range(18):
            server.take(0.0)  # another tool got there first
        server.accepted.clear()
        limiter = RateLimiter(R, int(R), ceiling=R)
        return await _bulk_run(server, limiter, requests=600)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert run.limiter.decreases <= 2
    assert run.server.throttled <= 12  # the requests in flight when the first 429 came
    assert len(run.server.accepted) / run.seconds / R >= 0.95


@pytest.mark.parametrize("factor", [2.0, 10.0])
def test_configured_too_fast_it_settles_near_the_budget(factor: float) -> None:
    async def scenario() -> Run:
        rate = factor * R
        limiter = RateLimiter(rate, client_burst(rate), ceiling=rate)
        return await _bulk_run(ServerBucket(R, 20), limiter, requests=900)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert _throughput(run) >= 0.95
    assert run.server.throttled / (len(run.server.accepted) + run.server.throttled) <= 0.08
    late = [rate for t, rate in run.rates if t > 10]
    assert 0.85 * R <= min(late) and max(late) <= 1.2 * R


def test_with_no_rate_given_it_finds_the_budget_from_below() -> None:
    async def scenario() -> Run:
        limiter = RateLimiter(10.0, 10)  # the engine's default start, no ceiling
        return await _bulk_run(ServerBucket(R, 20), limiter, requests=900)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert _throughput(run) >= 0.95
    assert run.server.throttled <= 30


def test_it_follows_the_budget_down_and_back_up() -> None:
    """Another pipeline takes half the budget for 20 s, then leaves."""

    async def scenario() -> Run:
        limiter = RateLimiter(2 * R, client_burst(2 * R), ceiling=2 * R)
        return await _bulk_run(
            ServerBucket(R, 20), limiter, requests=1100, events={15.0: R / 2, 35.0: R}
        )

    run = run_virtual(scenario())
    server = run.server
    assert run.lost == 0
    assert server.served_between(20.0, 35.0) / 15.0 >= 0.9 * (R / 2)
    # Back up within about two regrowth periods of the budget's return.
    assert (
        server.served_between(35.0 + 2 * REGROWTH_SECONDS, run.seconds)
        / (run.seconds - 35.0 - 2 * REGROWTH_SECONDS)
        >= 0.9 * R
    )


def test_retry_after_storm_far_below_the_configured_rate() -> None:
    """A budget of 0.5/s against a limiter at 5/s: the server's Retry-After sets the pace."""

    async def scenario(adaptive: bool) -> Run:
        limiter = RateLimiter(5.0, 1, ceiling=5.0, adaptive=adaptive)
        return await _bulk_run(ServerBucket(0.5, 1), limiter, requests=15, concurrency=4)

    adaptive = run_virtual(scenario(True))
    fixed = run_virtual(scenario(False))
    assert adaptive.lost == fixed.lost == 0
    # The first 429's Retry-After (2 s) pauses everyone and sets the budget estimate...
    assert adaptive.limiter.w_max == pytest.approx(0.5, rel=0.05)
    # ...so that far fewer requests meet a 429 than when only the pauses are honoured.
    assert adaptive.server.throttled * 2 <= fixed.server.throttled
    # 15 requests at 0.5/s from a full bucket of 1: 28 s at best. A bucket of one token
    # leaves no room for jitter: the limiter runs a little below the budget, and each 429
    # still costs a token's time.
    assert adaptive.seconds <= 28.0 * 1.6
