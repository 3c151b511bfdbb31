"""The budget shared through Redis: what several processes on one key see together.

Two :class:`RedisBudget` instances on one key stand for two processes (each has its
own connections and runner id, as a process would). A small TCP proxy in front of
the test server stands for the network: stopping it is Redis going away, starting
it again on the same port is Redis coming back, and its latency lets a test cancel
an ``acquire`` whose answer is on the way. The contract every budget keeps is in
``tests/test_budget_contract.py``; these are the tests only a shared budget needs.
"""

from __future__ import annotations

import asyncio
import heapq
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from bulkchime.budget import DECREASE_FACTOR, DOUBLING_SECONDS, REGROWTH_SECONDS, RedisBudget
from bulkchime.budget._adaptive import FIRST_DECREASE_FACTOR, SAME_ESTIMATE_TOLERANCE, AdaptiveRate
from bulkchime.budget._redis_scripts import BudgetScript, Settings, script_source
from bulkchime.budget.redis import RedisAddress, parse_budget_url
from bulkchime.errors import BudgetUnavailable, JobAborted, JobError

from .servers import require_redis, unique_name
from .tcp_proxy import TcpProxy
from .test_budget_contract import _assert_bucket_bound

SLACK = 0.05


def _now() -> float:
    return asyncio.get_running_loop().time()


def _url(key: str, server: str | None = None) -> str:
    return f"{server or require_redis()}?key={key}"


#: ``connect(url, rate, burst, ceiling=..., **options)``: a budget, closed after the test.
Connect = Callable[..., Awaitable[RedisBudget]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    made: list[RedisBudget] = []

    async def make(
        url: str, rate: float, burst: int, *, ceiling: float | None = None, **options: Any
    ) -> RedisBudget:
        budget = await RedisBudget.connect(url, rate=rate, burst=burst, ceiling=ceiling, **options)
        made.append(budget)
        return budget

    yield make
    for budget in made:
        await budget.close()


class RedisProxy(TcpProxy):
    """A :class:`TcpProxy` to the test Redis server, with the URL that reaches it."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        super().__init__(parts.hostname or "127.0.0.1", parts.port or 6379)
        self._db = parts.path or "/0"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self._db}"


@pytest.fixture
async def proxy() -> AsyncIterator[RedisProxy]:
    running = RedisProxy(require_redis())
    await running.start()
    yield running
    await running.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- several processes, one budget -----------------------------------------------------------


async def _grant_times(budget: RedisBudget, seconds: float, start: float) -> list[float]:
    times = []
    while _now() - start < seconds:
        ticket = await budget.acquire()
        times.append(_now() - start)
        await budget.on_success(ticket)
    return times


async def test_two_processes_on_one_key_stay_within_its_rate(connect: Connect) -> None:
    key = unique_name("shared")
    first = await connect(_url(key), 20.0, 2, ceiling=20.0)
    second = await connect(_url(key), 20.0, 2, ceiling=20.0)
    start = _now()
    per_task = await asyncio.gather(
        *(_grant_times(budget, 1.5, start) for budget in (first, second, first, second))
    )
    times = sorted(t for task in per_task for t in task)
    # Together, not each: a burst of 2, then 20/s (a budget each would be twice that).
    assert len(times) <= 2 + 20 * (times[-1] + SLACK)
    assert len(times) >= 20 * 1.5 * 0.85
    _assert_bucket_bound(times, 20.0, 2)
    assert min(len(task) for task in per_task) >= 5  # each process got its share


async def test_429s_of_one_generation_from_two_processes_cut_once(connect: Connect) -> None:
    key = unique_name("cut")
    first = await connect(_url(key), 40.0, 5, ceiling=40.0)
    second = await connect(_url(key), 40.0, 5, ceiling=40.0)
    senders = [first, second, first, second]
    tickets = [await budget.acquire() for budget in senders]
    assert {ticket.generation for ticket in tickets} == {0}
    # Both processes hear 429s for requests sent at the old rate, at the same moment.
    await asyncio.gather(
        *(budget.on_throttle(ticket, None) for budget, ticket in zip(senders, tickets, strict=True))
    )
    for budget in (first, second):
        await budget.refresh()
        assert budget.decreases == 1
        assert budget.throttles == 4
        assert budget.rate == pytest.approx(DECREASE_FACTOR * 40.0)
    # A request let through after the cut and its grace (0.25 s at 40/s) is news,
    # whichever process sent it.
    await asyncio.sleep(0.3)
    await second.on_throttle(await second.acquire(), None)
    await first.refresh()
    assert first.decreases == 2
    assert first.rate < DECREASE_FACTOR * 40.0


async def test_retry_after_from_one_process_pauses_the_other(connect: Connect) -> None:
    key = unique_name("pause")
    first = await connect(_url(key), 50.0, 5, ceiling=50.0)
    second = await connect(_url(key), 50.0, 5, ceiling=50.0)
    start = _now()
    await first.on_throttle(await first.acquire(), 0.3)
    await second.acquire()
    assert _now() - start == pytest.approx(0.3, abs=SLACK)
    assert _now() - start >= 0.3 - 0.005


async def test_the_lowest_ceiling_of_the_processes_around_caps_the_rate(connect: Connect) -> None:
    key = unique_name("ceiling")
    careful = await connect(_url(key), 10.0, 2, ceiling=10.0)
    eager = await connect(_url(key), 30.0, 2, ceiling=30.0)
    unbounded = await connect(_url(key), 50.0, 2)
    for budget in (careful, eager, unbounded):
        await budget.refresh()
        assert budget.rate == pytest.approx(10.0)
        assert budget.ceiling == pytest.approx(10.0)
    await careful.close()  # its ceiling goes with it; the rate stays until it grows
    await unbounded.refresh()
    assert unbounded.ceiling == pytest.approx(30.0)
    assert unbounded.rate == pytest.approx(10.0)


async def test_a_cancelled_acquire_gives_back_a_token_granted_on_the_way(
    connect: Connect, proxy: RedisProxy
) -> None:
    key = unique_name("cancel")
    slow = await connect(_url(key, proxy.url), 2.0, 1, ceiling=2.0)
    near = await connect(_url(key), 2.0, 1, ceiling=2.0)
    proxy.latency = 0.1
    # Redis grants the only token at once; the answer is 0.1 s away when the caller gives up.
    start = _now()
    waiting = asyncio.create_task(slow.acquire())
    await asyncio.sleep(0.03)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.12)  # the answer arrives; the token goes back
    await near.acquire()
    # Kept, the token would have held the next one back until 1/2 s after the first.
    assert _now() - start < 0.25


# -- Redis going away ----------------------------------------------------------------------


async def test_redis_gone_mid_run_stops_the_job_after_the_bound_and_never_grants(
    connect: Connect, proxy: RedisProxy
) -> None:
    budget = await connect(_url(unique_name("gone"), proxy.url), 50.0, 5, unavailable_after=0.5)
    ticket = await budget.acquire()
    await proxy.stop()
    with capture_logs() as logs:
        start = _now()
        await budget.on_success(ticket)  # dropped, not raised
        await budget.on_throttle(ticket, None)
        outcomes = await asyncio.gather(
            *(budget.acquire() for _ in range(3)), return_exceptions=True
        )
        elapsed = _now() - start
    assert all(isinstance(outcome, BudgetUnavailable) for outcome in outcomes), outcomes
    assert 0.5 - SLACK <= elapsed < 1.0
    error = outcomes[0]
    assert isinstance(error, JobAborted)  # the engine's exit 3, checkpoint resumable
    assert f"127.0.0.1:{proxy.port}/0" in str(error)
    assert "Run the same command again" in str(error)
    events = [entry["event"] for entry in logs]
    assert events.count("budget.unreachable") == 1
    assert "budget.reconnected" not in events


async def test_redis_back_within_the_bound_resumes_granting(
    connect: Connect, proxy: RedisProxy
) -> None:
    budget = await connect(_url(unique_name("blip"), proxy.url), 50.0, 5, unavailable_after=2.0)
    ticket = await budget.acquire()
    await proxy.stop()
    with capture_logs() as logs:
        await budget.on_success(ticket)
        waiting = asyncio.create_task(budget.acquire())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # no ticket while Redis is away
        await proxy.start()  # the same port
        await asyncio.wait_for(waiting, timeout=1.5)
    unreachable = [entry for entry in logs if entry["event"] == "budget.unreachable"]
    reconnected = [entry for entry in logs if entry["event"] == "budget.reconnected"]
    assert len(unreachable) == 1 and unreachable[0]["log_level"] == "warning"
    assert len(reconnected) == 1 and reconnected[0]["events_dropped"] == 1


async def test_a_retry_after_heard_while_redis_is_away_still_pauses_this_process(
    connect: Connect, proxy: RedisProxy
) -> None:
    budget = await connect(_url(unique_name("away"), proxy.url), 50.0, 5, unavailable_after=2.0)
    ticket = await budget.acquire()
    await proxy.stop()
    await proxy.start()  # back at once, but the pooled connection was cut
    start = _now()
    with capture_logs():
        await budget.on_throttle(ticket, 0.3)  # fails on the cut connection: not shared
        await budget.acquire()
    assert _now() - start >= 0.3 - 0.005


async def test_connect_fails_with_a_job_error_when_redis_does_not_answer() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0?key=nobody"
    with pytest.raises(JobError, match="HINT") as raised:
        await RedisBudget.connect(url, rate=10.0, burst=2, ceiling=None)
    assert not isinstance(raised.value, JobAborted)


# -- the URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:6379/0", "scheme must be redis://"),
        ("127.0.0.1:6379", "scheme must be redis://"),
        ("redis://:6379/0", "names no host"),
        ("redis://127.0.0.1:port/0", "cannot be read"),
        ("redis://127.0.0.1:99999/0", "cannot be read"),
        ("redis://127.0.0.1:6379/zero", "database must be a number"),
        ("redis://127.0.0.1:6379/0?name=jobs", "unknown parameter 'name'"),
        ("redis://127.0.0.1:6379/0?key=", "must be 1 to 100 letters"),
        ("redis://127.0.0.1:6379/0?key=a%20b", "must be 1 to 100 letters"),
        ("redis://127.0.0.1:6379/0?key=a&key=b", "more than once"),
        ("redis://127.0.0.1:6379/0#key", "fragment"),
    ],
)
def test_a_malformed_url_is_a_job_error_with_a_hint(url: str, why: str) -> None:
    with pytest.raises(JobError, match="HINT: write redis://HOST:PORT/DB") as raised:
        parse_budget_url(url)
    assert why in str(raised.value)


def test_a_url_names_server_database_and_key_and_messages_hide_the_password() -> None:
    address = parse_budget_url("redis://ops:s%40cret@10.0.0.7:7000/3?key=chime-prod")
    assert address == RedisAddress(
        "10.0.0.7", 7000, 3, key="chime-prod", username="ops", password="s@cret"
    )
    assert str(address) == "10.0.0.7:7000/3"
    assert "cret" not in repr(address)
    assert parse_budget_url("redis://localhost") == RedisAddress("localhost", 6379, 0)
    assert parse_budget_url("rediss://h/1").tls
    with pytest.raises(JobError) as raised:
        parse_budget_url("redis://:hunter2@/0")
    assert "hunter2" not in str(raised.value)


# -- the script keeps the Python control law ------------------------------------------------

#: The script's clock replaced by the last argument, to replay a run in virtual time.
_REPLAY_CLOCK = "local function clock() return tonumber(ARGV[#ARGV]) end"


class _ServerBucket:
    """The service's throttle: a bucket of *rate* per second, *burst* deep."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, 0.0

    def accepts(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _close_to(value: float) -> object:
    return pytest.approx(value, rel=1e-9)


@dataclass
class _Replay:
    """What a replay saw: the law at the end, and the law's state after each cut."""

    law: AdaptiveRate
    #: ``(seconds since the start, w_max, rate, hold seconds)`` after each cut.
    cuts: list[tuple[float, float, float, float]] = field(default_factory=list)


async def _replay(
    seconds: float,
    *,
    server_burst: float,
    budget_changes: dict[float, float] | None = None,
    idle: tuple[float, float] | None = None,
    retry_after: tuple[int, float] | None = None,
    ceiling: float | None = None,
) -> _Replay:
    """Replay a run against a server bucket of 20/s, from a start at twice that, through
    the script and :class:`AdaptiveRate` (driven as :class:`LocalBudget` drives it), and
    check that they agree after every event.

    *budget_changes* maps a second to the server's new rate; nothing is sent during the
    *idle* seconds (a stretch that tests no rate); *retry_after* is ``(n, seconds)``:
    the n-th 429 carries a Retry-After of that many seconds; *ceiling* is the
    configured rate (``--rate``), if any.
    """
    client = Redis.from_url(require_redis())
    settings = Settings(
        start_rate=40.0,
        burst=3,
        ceiling=ceiling,
        floor=0.2,
        adaptive=True,
        decrease_factor=DECREASE_FACTOR,
        regrowth_seconds=REGROWTH_SECONDS,
        doubling_seconds=DOUBLING_SECONDS,
    )
    script = BudgetScript(
        client, unique_name("law"), "replay", settings, source=script_source(_REPLAY_CLOCK)
    )
    state_key = script.keys[0]
    law = AdaptiveRate(40.0, ceiling=ceiling)
    replay = _Replay(law)
    server = _ServerBucket(20.0, server_burst)
    changes = sorted((budget_changes or {}).items())
    base = 1_700_000_000.0  # a Redis clock's magnitude, for its rounding
    now, latency, throttles = base, 0.05, 0
    answers: list[tuple[float, int, float, bool]] = []  # (arrives, generation, issued, ok)
    try:
        while now < base + seconds:
            while answers and answers[0][0] <= now:
                arrives, generation, issued, ok = heapq.heappop(answers)
                if ok:
                    reply = await script.run("success", arrives)
                    law.on_success(arrives)
                else:
                    throttles += 1
                    pause = retry_after[1] if retry_after and throttles == retry_after[0] else None
                    reply = await script.run("throttle", generation, issued, pause or "", arrives)
                    law.on_throttle(
                        arrives, generation=generation, issued_at=issued, retry_after_seconds=pause
                    )
                assert reply.rate == _close_to(law.rate)
                assert reply.generation == law.decreases
                assert reply.throttles == law.throttles
                assert reply.w_max == (None if law.w_max is None else _close_to(law.w_max))
                if not ok and law.decreases > len(replay.cuts):
                    assert law.w_max is not None
                    hold = float(await client.hget(state_key, "hold") or 0)
                    assert hold == _close_to(law.hold_seconds)
                    replay.cuts.append((arrives - base, law.w_max, law.rate, law.hold_seconds))
            while changes and base + changes[0][0] <= now:
                server.rate = changes.pop(0)[1]
            if idle and base + idle[0] <= now < base + idle[1]:
                now = min(base + idle[1], answers[0][0]) if answers else base + idle[1]
                continue
            reply = await script.run("acquire", now)
            if reply.granted:
                law.on_admit(now)
                ok = server.accepts(now + latency / 2)
                heapq.heappush(answers, (now + latency, reply.generation, reply.value, ok))
                assert reply.value == now
                continue
            law.on_wait(now)
            next_answer = answers[0][0] if answers else now + reply.value
            now = min(now + reply.value, next_answer)
    finally:
        await client.delete(*script.keys)
        await client.aclose()
    return replay


async def test_the_script_makes_the_same_decisions_as_the_python_control_law() -> None:
    """Seven seconds: 429s, cuts, echoes, a Retry-After, regrowth."""
    replay = await _replay(7.0, server_burst=5.0, retry_after=(3, 0.4))
    law = replay.law
    assert law.decreases >= 2 and law.throttles > law.decreases  # cuts, and echoes
    assert 15.0 < law.rate < 25.0  # found the server's rate


async def test_the_script_holds_and_follows_the_budget_as_the_python_control_law() -> None:
    """Ninety seconds: the same budget found cut after cut (the hold doubles), an idle
    stretch, a Retry-After, the budget halved (the hold resets) and raised again."""
    replay = await _replay(
        90.0,
        server_burst=20.0,
        budget_changes={50.0: 10.0, 65.0: 25.0},
        idle=(30.0, 32.0),
        retry_after=(8, 0.05),
    )
    # The server's burst let everything through at first: a deep cut.
    assert replay.cuts[0][2] == pytest.approx(FIRST_DECREASE_FACTOR * replay.cuts[0][1])
    holds = [hold for t, _, _, hold in replay.cuts if t < 50.0]
    assert max(holds) >= 2 * REGROWTH_SECONDS  # the hold grew...
    after_drop = [(w_max, hold) for t, w_max, _, hold in replay.cuts if 50.0 <= t < 52.0]
    assert after_drop[-1][0] == pytest.approx(10.0, rel=0.1)
    assert after_drop[-1][1] == 0.0  # ...and went at a budget clearly different
    assert replay.law.w_max == pytest.approx(25.0, rel=0.1)


async def test_the_script_confirms_the_first_halving_as_the_python_control_law() -> None:
    """``--rate 40`` against 20/s with a burst of 20: the first cut halves to about the
    budget, the next one measures the same, and both hold there (no probe in 16 s)."""
    replay = await _replay(16.0, server_burst=20.0, ceiling=40.0)
    (first_t, first_w_max, halved, _), (_, w_max, _, hold) = replay.cuts
    assert first_t < 1.0 and halved == pytest.approx(FIRST_DECREASE_FACTOR * first_w_max)
    assert w_max == pytest.approx(halved, rel=SAME_ESTIMATE_TOLERANCE)
    assert hold == 2 * REGROWTH_SECONDS
