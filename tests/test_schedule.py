"""The rate limiter and backoff, in virtual time."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from bulkchime.errors import RetryableError
from bulkchime.schedule import DECREASE_FACTOR, RateLimiter, backoff_seconds, backoff_wait

from .virtual_time import run_virtual


async def _send_times(limiter: RateLimiter, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []
    for _ in range(count):
        async with limiter:
            times.append(loop.time())
    return times


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


def test_a_429_lowers_the_rate_once_per_interval() -> None:
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(20.0, 20, ceiling=20.0, decrease_interval=1.0)
        limiter.on_throttle()
        after_first = limiter.rate
        for _ in range(10):  # the rest of a storm from requests already in flight
            limiter.on_throttle()
        return after_first, limiter.rate

    after_first, after_storm = run_virtual(scenario())
    assert after_first == pytest.approx(20.0 * DECREASE_FACTOR)
    assert after_storm == after_first


def test_rate_recovers_towards_the_ceiling_and_never_passes_it() -> None:
    async def scenario() -> list[float]:
        limiter = RateLimiter(40.0, 10, ceiling=40.0, increase_per_second=2.0)
        rates = []
        loop = asyncio.get_running_loop()
        for _ in range(3):
            limiter.on_throttle()
            await asyncio.sleep(1.1)
        rates.append(limiter.rate)
        start = loop.time()
        while loop.time() - start < 60:
            async with limiter:
                limiter.on_success()
        rates.append(limiter.rate)
        return rates

    low, recovered = run_virtual(scenario())
    assert low == pytest.approx(40.0 * DECREASE_FACTOR**3)
    assert recovered == pytest.approx(40.0)


def test_retry_after_pauses_every_sender() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(100.0, 100, adaptive=False)
        limiter.on_throttle(retry_after_seconds=3.0)
        async with limiter:
            return loop.time()

    assert run_virtual(scenario()) == pytest.approx(3.0, abs=0.02)


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
