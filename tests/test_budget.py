"""The in-process rate budget, its bucket and backoff, in virtual time.

The last tests run the budget against a model of the service's throttle (a token
bucket of R requests/s, as the emulator and AWS keep) with latency, concurrency and
the engine's retry policy: storms of 429s, recovery, Retry-After. Virtual time makes
a minute of traffic take a fraction of a second, and exact.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)
from tenacity.wait import wait_random_exponential

from bulkchime.backoff import backoff_seconds, backoff_wait
from bulkchime.budget import (
    DECREASE_FACTOR,
    REGROWTH_SECONDS,
    LocalBudget,
    RateBudget,
    Ticket,
    client_burst,
)
from bulkchime.budget._adaptive import MAX_HOLD_SECONDS
from bulkchime.budget._bucket import TokenBucket
from bulkchime.errors import RetryableError

from .virtual_time import run_virtual


async def _send_times(budget: LocalBudget, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []
    for _ in range(count):
        await budget.acquire()
        times.append(loop.time())
    return times


async def _saturate(budget: LocalBudget, seconds: float) -> int:
    """Send (and succeed) as fast as the budget lets, for *seconds*; return how many."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    sent = 0
    while loop.time() < end:
        ticket = await budget.acquire()
        await budget.on_success(ticket)
        sent += 1
    return sent


async def _throttle_news(budget: LocalBudget, retry_after: float | None = None) -> None:
    """A 429 for a request sent well after the last cut and its grace: news."""
    await asyncio.sleep(REGROWTH_SECONDS)  # the grace is at most REGROWTH_SECONDS / 2
    await budget.on_throttle(await budget.acquire(), retry_after)


# -- the bucket ----------------------------------------------------------------------------


def test_budget_holds_the_configured_rate_after_the_burst() -> None:
    async def scenario() -> list[float]:
        budget = LocalBudget(20.0, 5, adaptive=False)
        return await _send_times(budget, 105)

    times = run_virtual(scenario())
    # The first 5 go at once (the burst), then one every 1/20 s.
    assert times[4] == pytest.approx(0.0, abs=1e-3)
    assert times[5] == pytest.approx(1 / 20, abs=1e-3)
    assert times[-1] - times[5] == pytest.approx(99 / 20, rel=0.01)


def test_ready_is_true_exactly_while_a_token_waits_in_the_bucket() -> None:
    async def scenario() -> list[bool]:
        budget = LocalBudget(10.0, 2, adaptive=False)
        seen = [budget.ready()]
        await budget.acquire()
        seen.append(budget.ready())
        await budget.acquire()
        seen.append(budget.ready())  # spent
        await asyncio.sleep(0.1)
        seen.append(budget.ready())  # one token back after 1/rate
        return seen

    assert run_virtual(scenario()) == [True, True, False, True]


def test_concurrent_senders_share_one_bucket() -> None:
    async def scenario() -> list[float]:
        budget = LocalBudget(10.0, 1, adaptive=False)
        results = await asyncio.gather(*(_send_times(budget, 10) for _ in range(5)))
        return sorted(t for times in results for t in times)

    times = run_virtual(scenario())
    assert len(times) == 50
    assert times[-1] == pytest.approx(4.9, rel=0.02)


def test_waiters_are_served_in_order_and_a_cancelled_one_takes_nothing() -> None:
    async def scenario() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(10.0, 1)
        await bucket.acquire()
        served: list[int] = []

        async def waiter(n: int) -> None:
            await bucket.acquire()
            served.append(n)

        tasks = [asyncio.create_task(waiter(n)) for n in range(4)]
        await asyncio.sleep(0.05)
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return served, loop.time()

    served, end = run_virtual(scenario())
    assert served == [0, 2, 3]
    assert end == pytest.approx(0.3, abs=1e-3)  # three tokens after the first, not four


def test_a_token_granted_in_the_instant_its_waiter_is_cancelled_goes_back() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(10.0, 1)
        await bucket.acquire()
        waiter = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(0)  # it queues; the bucket's timer will serve it at 0.1 s
        timer = bucket._timer  # (white box: the only way to hit that instant)
        assert timer is not None
        loop.call_at(timer.when(), waiter.cancel)  # runs after the grant, before the task
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await bucket.acquire()
        return loop.time()

    # The token handed to the cancelled waiter came back: the next is not 0.1 s later.
    assert run_virtual(scenario()) == pytest.approx(0.1, abs=1e-3)


def test_set_rate_keeps_what_drained_and_serves_waiters_at_once() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(1.0, 1)
        await bucket.acquire()
        waiting = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(0.5)  # half the token has come back at 1/s
        bucket.set_rate(10.0)  # the other half takes 0.05 s at 10/s
        await waiting
        return loop.time()

    assert run_virtual(scenario()) == pytest.approx(0.55, abs=1e-3)


def test_a_pause_keeps_its_end_and_its_single_token_when_the_rate_changes() -> None:
    async def scenario() -> list[float]:
        bucket = TokenBucket(10.0, 5)
        bucket.pause(2.0)
        bucket.set_rate(20.0)
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(3):
            await bucket.acquire()
            times.append(loop.time())
        return times

    assert run_virtual(scenario()) == pytest.approx([2.0, 2.05, 2.1], abs=1e-3)


def test_bucket_repr_and_empty_to_show_the_level() -> None:
    async def scenario() -> tuple[str, str, bool]:
        bucket = TokenBucket(20.0, 5)
        await bucket.acquire()
        await asyncio.sleep(0.01)
        full_ish = repr(bucket)
        bucket.empty_to(0.5)
        return full_ish, repr(bucket), bucket.has_capacity()

    full_ish, emptied, capacity = run_virtual(scenario())
    assert full_ish == "<TokenBucket rate=20.00/s burst=5 level=4.20>"
    assert emptied == "<TokenBucket rate=20.00/s burst=5 level=0.50>"
    assert not capacity
    assert repr(TokenBucket(2.0, 3)) == "<TokenBucket rate=2.00/s burst=3 level=3.00>"


def test_closing_fails_the_waiters_and_refuses_new_acquirers() -> None:
    async def scenario() -> None:
        budget = LocalBudget(1.0, 1)
        await budget.acquire()
        waiting = asyncio.create_task(budget.acquire())
        await asyncio.sleep(0.1)
        await budget.close()
        await budget.close()
        with pytest.raises(RuntimeError, match="closed"):
            await waiting
        with pytest.raises(RuntimeError, match="closed"):
            await budget.acquire()

    run_virtual(scenario())


def test_client_burst_is_a_quarter_second_and_never_below_two() -> None:
    assert client_burst(20) == 5
    assert client_burst(1) == 2
    assert client_burst(1000) == 250


def test_bad_settings_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        LocalBudget(0, 1)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        LocalBudget(1, 0)
    with pytest.raises(ValueError, match="decrease_factor must be between 0 and 1"):
        LocalBudget(1, 1, decrease_factor=1.0)
    with pytest.raises(ValueError, match="ceiling must be > 0"):
        LocalBudget(1, 1, ceiling=0)
    with pytest.raises(ValueError, match="floor must be > 0"):
        LocalBudget(1, 1, floor=0)


def test_repr_shows_live_state() -> None:
    async def scenario() -> str:
        budget = LocalBudget(20.0, 5, ceiling=20.0)
        await budget.on_throttle(await budget.acquire(), None)
        return repr(budget)

    text = run_virtual(scenario())
    assert text.startswith("<LocalBudget rate=18.00/s burst=5 level=0.50 ")
    assert "throttles=1" in text and "w_max=20.00" in text and "decreases=1" in text


def test_local_budget_is_a_rate_budget() -> None:
    assert isinstance(LocalBudget(1.0, 1), RateBudget)


# -- decrease ------------------------------------------------------------------------------


def test_a_429_cuts_once_per_signal_not_once_per_429() -> None:
    """429s for requests let through before the cut (or just after it) carry no news."""

    async def scenario() -> tuple[float, float, float, float, list[int]]:
        budget = LocalBudget(20.0, 20, ceiling=20.0)
        in_flight = [await budget.acquire() for _ in range(10)]
        await budget.on_throttle(in_flight[0], None)
        after_first = budget.rate
        for ticket in in_flight[1:]:  # the rest of the storm, already in flight
            await budget.on_throttle(ticket, None)
        after_storm = budget.rate
        # The server's bucket, empty at the cut, needs 1 / ((1 - beta) * 20) = 0.5 s to
        # hold a token again at the new rate: 429s for requests sent before are expected.
        await asyncio.sleep(0.4)
        in_grace = await budget.acquire()
        await budget.on_throttle(in_grace, None)
        after_grace = budget.rate
        await asyncio.sleep(0.2)
        late = await budget.acquire()
        await budget.on_throttle(late, None)  # sent after it: still too fast
        generations = [in_flight[0].generation, in_grace.generation, late.generation]
        return after_first, after_storm, after_grace, budget.rate, generations

    after_first, after_storm, after_grace, after_news, generations = run_virtual(scenario())
    assert after_first == pytest.approx(20.0 * DECREASE_FACTOR)
    assert after_storm == after_first
    assert after_grace == after_first
    assert after_news == pytest.approx(20.0 * DECREASE_FACTOR**2)
    assert generations == [0, 1, 1]


def test_late_echoes_of_tickets_from_before_a_cut_never_cut_again() -> None:
    """However long the 429s of requests in flight take to come back, they are old news."""

    async def scenario() -> tuple[float, float, float]:
        budget = LocalBudget(20.0, 20, ceiling=20.0)
        in_flight = [await budget.acquire() for _ in range(10)]
        await budget.on_throttle(in_flight[0], None)
        storm = budget.rate
        await asyncio.sleep(1.0)
        for ticket in in_flight[1:]:
            await budget.on_throttle(ticket, None)
        echoes = budget.rate
        await budget.on_throttle(await budget.acquire(), None)
        return storm, echoes, budget.rate

    storm, echoes, later = run_virtual(scenario())
    assert storm == pytest.approx(20.0 * DECREASE_FACTOR)
    assert echoes == storm
    assert later == pytest.approx(20.0 * DECREASE_FACTOR**2)


def test_the_cut_is_sized_by_what_the_server_accepted() -> None:
    """Ten times too fast is one cut, not twenty: the delivery rate estimates the budget."""

    async def scenario() -> tuple[float, float | None]:
        loop = asyncio.get_running_loop()
        budget = LocalBudget(200.0, 10, ceiling=200.0)
        # The server accepts 20/s of the 200/s sent (the rest would be 429s).
        start = loop.time()
        accepted = 0
        ticket: Ticket | None = None
        while loop.time() - start < 2.0:
            ticket = await budget.acquire()
            if accepted < 20 * (loop.time() - start):
                await budget.on_success(ticket)
                accepted += 1
        estimate = budget.delivered_rate()
        assert ticket is not None
        await budget.on_throttle(ticket, None)  # one sent just now
        return budget.rate, estimate

    rate, estimate = run_virtual(scenario())
    assert estimate == pytest.approx(20.0, rel=0.1)
    assert rate == pytest.approx(DECREASE_FACTOR * 20.0, rel=0.1)


def test_a_429_empties_the_bucket_so_no_stored_burst_follows() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        budget = LocalBudget(10.0, 10, adaptive=False)
        # The server's bucket is empty: ours is too now (9 tokens were left).
        await budget.on_throttle(await budget.acquire(), None)
        await budget.acquire()
        return loop.time()

    # The next token comes half a token's time later (the server's next one, on average).
    assert run_virtual(scenario()) == pytest.approx(0.05, abs=0.005)


def test_a_storm_cannot_push_the_rate_below_the_floor() -> None:
    async def scenario() -> tuple[float, int]:
        budget = LocalBudget(20.0, 5, floor=1.0)
        for _ in range(50):
            await _throttle_news(budget)
        return budget.rate, budget.decreases

    rate, decreases = run_virtual(scenario())
    assert rate == pytest.approx(1.0)
    assert decreases == 50


def test_a_budget_that_is_not_adaptive_keeps_its_rate() -> None:
    async def scenario() -> tuple[float, int]:
        budget = LocalBudget(20.0, 5, adaptive=False)
        await _throttle_news(budget)
        await _saturate(budget, 5)
        return budget.rate, budget.throttles

    assert run_virtual(scenario()) == (20.0, 1)


def test_the_first_cut_halves_unless_retry_after_said_what_the_budget_is() -> None:
    """A second in which the server took everything: its burst may have carried twice its
    rate, so the first cut halves; a Retry-After's cap is the server's own word."""

    async def scenario(retry_after: float | None) -> float:
        budget = LocalBudget(20.0, 2, ceiling=20.0)
        await _saturate(budget, 1.1)
        await budget.on_throttle(await budget.acquire(), retry_after)
        return budget.rate

    assert run_virtual(scenario(None)) == pytest.approx(0.5 * 20.0, rel=0.05)
    assert run_virtual(scenario(0.1)) == pytest.approx(DECREASE_FACTOR * 10.0)


# -- growth --------------------------------------------------------------------------------


def test_after_a_cut_the_rate_regrows_to_the_budget_in_k_seconds_and_dwells_there() -> None:
    async def scenario() -> list[float]:
        budget = LocalBudget(20.0, 2, ceiling=40.0)
        await budget.on_throttle(await budget.acquire(), None)  # w_max = 20 (none delivered)
        rates = [budget.rate]
        for _ in range(4):
            await _saturate(budget, REGROWTH_SECONDS / 2)
            rates.append(budget.rate)
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
        budget = LocalBudget(20.0, 5, ceiling=20.0)
        await _throttle_news(budget)
        await _saturate(budget, 60)
        return budget.rate

    assert run_virtual(scenario()) == pytest.approx(20.0)


def test_with_no_ceiling_the_rate_doubles_until_the_first_429() -> None:
    async def scenario() -> float:
        budget = LocalBudget(10.0, 2)
        await _saturate(budget, 3.0)
        return budget.rate

    assert run_virtual(scenario()) == pytest.approx(80.0, rel=0.1)


def test_the_rate_does_not_grow_when_the_bucket_is_not_what_holds_requests_back() -> None:
    """A run paced by something else (one request in flight, slow answers) tests no rate."""

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        budget = LocalBudget(10.0, 5)
        start = loop.time()
        while loop.time() - start < 30:
            ticket = await budget.acquire()
            await asyncio.sleep(0.5)  # a slow answer: 2/s, far below the budget's 10/s
            await budget.on_success(ticket)
        return budget.rate

    assert run_virtual(scenario()) == pytest.approx(10.0)


# -- Retry-After ---------------------------------------------------------------------------


def test_retry_after_pauses_every_sender() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        budget = LocalBudget(100.0, 100, adaptive=False)
        await budget.on_throttle(await budget.acquire(), 3.0)

        async def one() -> float:
            await budget.acquire()
            return loop.time()

        return sorted(await asyncio.gather(*(one() for _ in range(5))))

    times = run_virtual(scenario())
    # One request when the pause ends, then the rate: no burst stored during the pause.
    assert times == pytest.approx([3.0, 3.01, 3.02, 3.03, 3.04], abs=0.002)


def test_retry_after_caps_the_rate_at_one_request_per_pause() -> None:
    async def scenario() -> float:
        budget = LocalBudget(5.0, 1, ceiling=5.0)
        await budget.on_throttle(await budget.acquire(), 2.0)
        return budget.rate

    # The server's next token is 2 s away: 0.5/s is all it can take, and the cut applies.
    assert run_virtual(scenario()) == pytest.approx(0.5 * DECREASE_FACTOR)


# -- backoff -------------------------------------------------------------------------------


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
    assert max(samples) > 0.9 * 0.25 * 2**3
    assert max(backoff_seconds(30) for _ in range(200)) <= 20.0
    assert 0 <= backoff_seconds(100_000) <= 20.0  # no overflow
    assert backoff_seconds(-1) <= 0.25


def test_backoff_wait_draws_what_tenacity_full_jitter_drew() -> None:
    """The request-level waits are tenacity's ``wait_random_exponential(0.25, max=20)``."""
    state = RetryCallState(Retrying(), None, (), {})
    tenacity_wait = wait_random_exponential(multiplier=0.25, max=20.0)
    for attempt_number in range(1, 12):
        state.attempt_number = attempt_number
        random.seed(attempt_number)
        expected = tenacity_wait(state)
        random.seed(attempt_number)
        assert backoff_wait(state) == expected


# -- against a model of the service's throttle ---------------------------------------------


class ServerBucket:
    """The service's throttle: a token bucket of *rate* requests/s holding *burst*."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._level = float(burst)
        self._stamp: float | None = None
        #: Times of accepted requests, and of 429s.
        self.accepted: list[float] = []
        self.throttled_at: list[float] = []

    def take(self, now: float) -> float:
        """0.0 when admitted, else the seconds until a token (the 429's wait)."""
        if self._stamp is not None:
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._level >= 1.0:
            self._level -= 1.0
            self.accepted.append(now)
            return 0.0
        self.throttled_at.append(now)
        return (1.0 - self._level) / self.rate

    @property
    def throttled(self) -> int:
        return len(self.throttled_at)

    @property
    def throttled_share(self) -> float:
        return self.throttled / max(1, self.throttled + len(self.accepted))

    def served_between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.accepted)


@dataclass
class Run:
    server: ServerBucket
    budget: LocalBudget
    seconds: float
    lost: int
    #: ``(time, budget rate)`` after every accepted request.
    rates: list[tuple[float, float]] = field(default_factory=list)


@contextmanager
def _global_random(seed: int) -> Iterator[None]:
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


async def _bulk_run(
    server: ServerBucket,
    budget: LocalBudget,
    *,
    requests: int,
    concurrency: int = 8,
    seed: int = 7,
    events: dict[float, float] | None = None,
) -> Run:
    """The engine's send loop in miniature: workers, retries with backoff, the budget.

    *events* maps a time to a new server rate (the budget changes during the run).
    Retry-After is sent as the emulator sends it: whole seconds, when the wait is >= 1 s.
    *seed* sets the latencies and the backoff's jitter, so that a run is the same
    whatever ran before it.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    start = loop.time()
    remaining = requests
    lost = 0
    run = Run(server, budget, 0.0, 0)

    async def change_budget(at: float, rate: float) -> None:
        await asyncio.sleep(at)
        server.rate = rate

    changes = [asyncio.create_task(change_budget(at, r)) for at, r in (events or {}).items()]

    async def call() -> None:
        ticket = await budget.acquire()
        await asyncio.sleep(rng.uniform(0.001, 0.010))  # to the server
        wait = server.take(loop.time())
        await asyncio.sleep(rng.uniform(0.001, 0.005))  # back
        if wait:
            retry_after = float(math.ceil(wait)) if wait >= 1 else None
            await budget.on_throttle(ticket, retry_after)
            raise RetryableError(
                "Throttled", "Rate exceeded", status=429, retry_after_seconds=retry_after
            )
        await budget.on_success(ticket)
        run.rates.append((loop.time() - start, budget.rate))

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

    with _global_random(seed):  # the backoff's jitter comes from the global generator
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    for task in changes:
        task.cancel()
    run.seconds = loop.time() - start
    run.lost = lost
    await budget.close()
    return run


R = 20.0


def _throughput(run: Run) -> float:
    """Accepted per second, as a share of R, leaving out the server's initial burst."""
    return (len(run.server.accepted) - run.server.burst) / run.seconds / R


def test_configured_at_the_budget_it_uses_it_all_without_a_429() -> None:
    async def scenario() -> Run:
        budget = LocalBudget(R, client_burst(R), ceiling=R)
        return await _bulk_run(ServerBucket(R, 20), budget, requests=600)

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
        budget = LocalBudget(R, int(R), ceiling=R)
        return await _bulk_run(server, budget, requests=600)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert run.budget.decreases <= 2
    assert run.server.throttled <= 12  # the requests in flight when the first 429 came
    assert len(run.server.accepted) / run.seconds / R >= 0.95


@pytest.mark.parametrize("factor", [2.0, 10.0])
def test_configured_too_fast_it_settles_near_the_budget(factor: float) -> None:
    async def scenario() -> Run:
        rate = factor * R
        budget = LocalBudget(rate, client_burst(rate), ceiling=rate)
        return await _bulk_run(ServerBucket(R, 20), budget, requests=900)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert _throughput(run) >= 0.95
    assert run.server.throttled / (len(run.server.accepted) + run.server.throttled) <= 0.08
    late = [rate for t, rate in run.rates if t > 10]
    # A probe, after holding just under the budget while the server's bucket refilled,
    # rises up to a quarter above it for about a second before its 429.
    assert 0.85 * R <= min(late) and max(late) <= 1.3 * R
    assert 0.9 * R <= statistics.median(late) <= 1.05 * R


def test_with_no_rate_given_it_finds_the_budget_from_below() -> None:
    async def scenario() -> Run:
        budget = LocalBudget(10.0, 10)  # the engine's default start, no ceiling
        return await _bulk_run(ServerBucket(R, 20), budget, requests=900)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert _throughput(run) >= 0.95
    assert run.server.throttled <= 30


def test_it_follows_the_budget_down_and_back_up() -> None:
    """Another pipeline takes half the budget for 20 s, then leaves."""

    async def scenario() -> Run:
        budget = LocalBudget(2 * R, client_burst(2 * R), ceiling=2 * R)
        return await _bulk_run(
            ServerBucket(R, 20), budget, requests=1100, events={15.0: R / 2, 35.0: R}
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


# -- probing for a bigger budget, and what it costs ---------------------------------------


def _at_twice_the_budget() -> LocalBudget:
    return LocalBudget(2 * R, client_burst(2 * R), ceiling=2 * R)


@pytest.mark.parametrize("rate", [2 * R, None])
def test_it_settles_at_the_start_with_a_few_429s(rate: float | None) -> None:
    """The issue's 15 s run: configured at twice the budget, or no rate and slow start.

    The server's burst hides by how much the start is over the budget; the first cut
    halves the rate instead of trimming 10%, so it does not keep overrunning the
    server's emptied bucket while the next 429 is awaited.
    """

    async def scenario() -> Run:
        budget = _at_twice_the_budget() if rate else LocalBudget(10.0, 10)
        return await _bulk_run(ServerBucket(R, 20), budget, requests=300)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert sum(t < 5.0 for t in run.server.throttled_at) <= 3  # was 5 to 7
    if rate:
        # The cut after the first confirms the budget the first one halved to: the rate
        # holds there, and the first probe above it comes after the run (was 3 429s).
        assert len(run.server.throttled_at) <= 2
        assert run.server.throttled_share <= 0.01
    assert run.server.throttled_share <= 0.015
    assert _throughput(run) >= 0.97


def test_once_the_budget_is_known_it_probes_less_often() -> None:
    """Twice the budget for 200 s: each cut that finds the budget where the last one did
    doubles the hold at it before the next probe, up to MAX_HOLD_SECONDS."""

    async def scenario() -> Run:
        return await _bulk_run(ServerBucket(R, 20), _at_twice_the_budget(), requests=4000)

    run = run_virtual(scenario())
    assert run.lost == 0
    assert run.server.throttled_share <= 0.01  # was 1.1-1.2%, a probe every ~10 s
    assert _throughput(run) >= 0.97
    times = run.server.throttled_at
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps[-4:] == pytest.approx([gaps[-1]] * 4, abs=0.5)  # one 429 per probe
    assert min(gaps[-4:]) >= MAX_HOLD_SECONDS + 2 * REGROWTH_SECONDS


def test_a_known_budget_that_halves_is_found_at_once() -> None:
    async def scenario() -> Run:
        budget = _at_twice_the_budget()
        return await _bulk_run(
            ServerBucket(R, 20), budget, requests=int(60 * R + 40 * R / 2), events={60.0: R / 2}
        )

    run = run_virtual(scenario())
    assert run.lost == 0
    assert sum(60.0 <= t < 80.0 for t in run.server.throttled_at) <= 10
    assert max(rate for t, rate in run.rates if 62.0 <= t < 80.0) <= 1.3 * R / 2  # a probe
    assert statistics.median(rate for t, rate in run.rates if 62.0 <= t < 80.0) <= R / 2


@pytest.mark.parametrize("at", [60.0, 64.0])
def test_a_known_budget_that_grows_is_found_within_the_hold(at: float) -> None:
    """The probes are rarer, not blind: a budget grown by half is found within the hold
    and the probe after it (64 s: just after a probe, the longest wait)."""
    grown = 1.5 * R

    async def scenario() -> Run:
        budget = _at_twice_the_budget()
        return await _bulk_run(
            ServerBucket(R, 20), budget, requests=int(at * R + 60 * grown), events={at: grown}
        )

    run = run_virtual(scenario())
    assert run.lost == 0
    found = min(t for t, rate in run.rates if t > at and rate > 1.1 * R)
    assert found - at <= MAX_HOLD_SECONDS + 3 * REGROWTH_SECONDS
    assert run.server.served_between(at + 30.0, at + 50.0) / 20.0 >= 0.95 * grown


def test_retry_after_storm_far_below_the_configured_rate() -> None:
    """A budget of 0.5/s against a limiter at 5/s: the server's Retry-After sets the pace."""

    async def scenario(adaptive: bool, seed: int) -> Run:
        budget = LocalBudget(5.0, 1, ceiling=5.0, adaptive=adaptive)
        return await _bulk_run(ServerBucket(0.5, 1), budget, requests=15, concurrency=4, seed=seed)

    # A handful of seeds: a single run's 429 count moves by one or two with the jitter.
    seeds = range(5)
    adaptive = [run_virtual(scenario(True, seed)) for seed in seeds]
    fixed = [run_virtual(scenario(False, seed)) for seed in seeds]
    assert all(run.lost == 0 for run in adaptive + fixed)
    for run in adaptive:
        # The first 429's Retry-After (2 s) pauses everyone and sets the budget estimate...
        assert run.budget.w_max == pytest.approx(0.5, rel=0.05)
        # 15 requests at 0.5/s from a full bucket of 1: 28 s at best. A bucket of one token
        # leaves no room for jitter: the budget runs a little below the server's rate, and
        # each 429 still costs a token's time.
        assert run.seconds <= 28.0 * 1.6
    # ...so that far fewer requests meet a 429 than when only the pauses are honoured.
    assert sum(run.server.throttled for run in adaptive) * 2 <= sum(
        run.server.throttled for run in fixed
    )
