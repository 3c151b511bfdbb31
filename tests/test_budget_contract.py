"""The contract every :class:`~bulkchime.budget.RateBudget` keeps, in real time.

Each test takes its budgets from the ``make_budget`` fixture, parametrized over the
implementations: a new backend adds its name to ``BACKENDS`` and a branch to
``_new_budget``, and must pass the same tests. They run on the real clock (a shared
budget may keep time elsewhere, e.g. on a Redis server), so rates are small, counts
are few, each test takes well under two seconds, and the timing bounds leave room
for a scheduler's jitter. They assert what a caller can see: when ``acquire``
returns, and the ``rate`` property.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from bulkchime.budget import LocalBudget, RateBudget

from .servers import require_redis, unique_name

#: The implementations under test.
BACKENDS = ["local", "redis"]

#: ``make(rate, burst, ceiling=...)``: a fresh budget, closed after the test.
MakeBudget = Callable[..., Awaitable[RateBudget]]

#: Slack for late timers and busy machines, in seconds.
SLACK = 0.05


async def _new_budget(backend: str, rate: float, burst: int, ceiling: float | None) -> RateBudget:
    if backend == "local":
        return LocalBudget(rate, burst, ceiling=ceiling)
    if backend == "redis":
        from bulkchime.budget import RedisBudget

        url = require_redis()
        key = unique_name("contract")
        return await RedisBudget.connect(
            f"{url}{'&' if '?' in url else '?'}key={key}", rate=rate, burst=burst, ceiling=ceiling
        )
    raise AssertionError(f"no such backend: {backend}")


@pytest.fixture(params=BACKENDS)
async def make_budget(request: pytest.FixtureRequest) -> AsyncIterator[MakeBudget]:
    backend: str = request.param
    made: list[RateBudget] = []

    async def make(rate: float, burst: int, *, ceiling: float | None = None) -> RateBudget:
        budget = await _new_budget(backend, rate, burst, ceiling)
        made.append(budget)
        return budget

    yield make
    for budget in made:
        await budget.close()


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _grant_times(budget: RateBudget, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await budget.acquire()
        times.append(_now())
    return times


def _assert_bucket_bound(times: Sequence[float], rate: float, burst: int) -> None:
    """No window of any length saw more grants than a token bucket allows."""
    times = sorted(times)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = burst + rate * (times[j] - start + SLACK)
            assert j - i + 1 <= allowed, f"{j - i + 1} grants in {times[j] - start:.3f} s"


async def test_it_is_a_rate_budget(make_budget: MakeBudget) -> None:
    budget = await make_budget(10.0, 2)
    assert isinstance(budget, RateBudget)
    assert budget.rate == pytest.approx(10.0)


async def test_it_paces_at_its_rate_after_its_burst(make_budget: MakeBudget) -> None:
    budget = await make_budget(20.0, 3, ceiling=20.0)
    start = _now()
    times = [t - start for t in await _grant_times(budget, 13)]
    # The burst goes at once, then one request every 1/20 s: 10 more take 0.5 s.
    assert times[2] < SLACK
    assert times[-1] == pytest.approx(0.5, abs=2 * SLACK)
    _assert_bucket_bound(times, 20.0, 3)


async def test_ready_is_never_true_when_acquire_would_wait(make_budget: MakeBudget) -> None:
    budget = await make_budget(5.0, 2)
    for _ in range(2):  # a full bucket: ready() may say so (or not know)
        ready, started = budget.ready(), _now()
        await budget.acquire()
        assert not ready or _now() - started < SLACK
    assert not budget.ready()  # the burst is spent: the next one waits
    started = _now()
    await budget.acquire()
    assert _now() - started >= 1 / 5.0 - SLACK


async def test_concurrent_acquirers_share_one_budget(make_budget: MakeBudget) -> None:
    budget = await make_budget(20.0, 2, ceiling=20.0)
    start = _now()
    per_task = await asyncio.gather(*(_grant_times(budget, 4) for _ in range(4)))
    times = sorted(t - start for task in per_task for t in task)
    # 16 grants from one bucket: 2 at once, 14 more at 20/s.
    assert len(times) == 16
    assert times[-1] == pytest.approx(14 / 20, abs=2 * SLACK)
    _assert_bucket_bound(times, 20.0, 2)


async def test_a_cancelled_acquire_takes_nothing(make_budget: MakeBudget) -> None:
    budget = await make_budget(10.0, 1, ceiling=10.0)
    start = _now()
    await budget.acquire()  # the only token: the next one is 0.1 s away
    waiting = [asyncio.create_task(budget.acquire()) for _ in range(3)]
    await asyncio.sleep(0.02)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert all(task.cancelled() for task in waiting)
    # The three that gave up took nothing: the next token is the one 0.1 s after the first.
    await budget.acquire()
    assert _now() - start == pytest.approx(0.1, abs=SLACK)


async def test_news_cuts_the_rate_and_echoes_of_earlier_tickets_do_not(
    make_budget: MakeBudget,
) -> None:
    budget = await make_budget(40.0, 5, ceiling=40.0)
    in_flight = [await budget.acquire() for _ in range(5)]
    await budget.on_throttle(in_flight[0], None)
    after_cut = budget.rate
    assert after_cut < 40.0
    # The other requests were sent before the cut, at the old rate: their 429s say nothing new.
    for ticket in in_flight[1:]:
        await budget.on_throttle(ticket, None)
    assert budget.rate == after_cut
    # A request let through well after the cut (past its grace: 1 / (0.1 * 40) = 0.25 s)
    # still met a 429: the new rate is still too fast.
    await asyncio.sleep(0.3)
    await budget.on_throttle(await budget.acquire(), None)
    assert budget.rate < after_cut


async def test_the_first_cut_after_a_second_of_accepted_requests_halves_the_rate(
    make_budget: MakeBudget,
) -> None:
    budget = await make_budget(20.0, 2, ceiling=20.0)
    start = _now()
    while _now() - start < 1.1:  # every request accepted, as fast as the budget lets
        await budget.on_success(await budget.acquire())
    # The server's burst, not its rate, took all that: the rate may be twice its rate.
    await budget.on_throttle(await budget.acquire(), None)
    assert budget.rate == pytest.approx(0.5 * 20.0, rel=0.1)


async def test_retry_after_pauses_every_acquirer_for_that_long(make_budget: MakeBudget) -> None:
    budget = await make_budget(50.0, 5, ceiling=50.0)
    ticket = await budget.acquire()
    start = _now()
    await budget.on_throttle(ticket, 0.3)
    waiting = [asyncio.create_task(budget.acquire()) for _ in range(3)]
    done, pending = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    # Nobody went before the pause ended, and the first went when it ended.
    assert _now() - start == pytest.approx(0.3, abs=SLACK)
    assert _now() - start >= 0.3 - 0.005
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def test_the_rate_never_exceeds_the_ceiling(make_budget: MakeBudget) -> None:
    above = await make_budget(30.0, 2, ceiling=15.0)
    assert above.rate <= 15.0
    budget = await make_budget(10.0, 2, ceiling=15.0)
    rates = [budget.rate]
    start = _now()
    times = []
    while _now() - start < 0.8:  # every request accepted, as fast as the budget lets
        ticket = await budget.acquire()
        times.append(_now())
        await budget.on_success(ticket)
        rates.append(budget.rate)
    assert 10.0 < max(rates) <= 15.0  # it grew, and stopped at the ceiling
    _assert_bucket_bound(times, 15.0, 2)


async def test_close_is_idempotent(make_budget: MakeBudget) -> None:
    budget = await make_budget(10.0, 2)
    await budget.on_success(await budget.acquire())
    await budget.close()
    await budget.close()
