"""A rate budget shared through Redis by every process that names the same key.

Usage::

    budget = await RedisBudget.connect(
        "redis://127.0.0.1:6379/0?key=chime-prod", rate=20.0, burst=5, ceiling=20.0
    )
    try:
        ticket = await budget.acquire()
        ...  # send, then budget.on_success(ticket) or budget.on_throttle(ticket, retry_after)
    finally:
        await budget.close()

How it works (``docs/retries-and-rate-limits.md``, "A budget shared through Redis",
has the reasons at more length):

- **One bucket, one rate, one clock.** The GCRA bucket (``tat``, ``paused_until``) and
  the whole state of the control law (rate, ``w_max``, generation, time of the last
  cut, grace, the last second's acceptances...) live in Redis, and every step is one
  run of a short Lua script (:mod:`._redis_scripts`): atomic, and timed by the
  server's ``TIME``. A ticket's ``issued_at`` is Redis time, so a cut made by one
  process dates the requests of every process: a 429 on a ticket issued before the
  last cut (or within its grace) is an echo wherever it was sent from, and the
  shared rate is cut once per episode, not once per runner.
- **The law is ported, not re-run.** :class:`~._adaptive.AdaptiveRate` is ported line
  by line into the script rather than run here on state read from Redis: a cut must
  read the rate, the generation and the last cut, decide, and write them back in one
  atomic step, and the delivery estimate must count the successes of every process.
  From Python that would take a WATCH/MULTI transaction per request, retried under
  contention; in the script it is one round trip. Constants come from the Python
  module, and ``tests/test_budget_redis.py`` replays one scenario through both.
- **Ceilings: the lowest wins.** Each runner registers its ceiling (the job's
  ``--rate``) with a lease renewed by its every call; the shared rate never goes above
  the lowest ceiling of the runners around. A runner's ceiling goes when it closes,
  or :data:`~._redis_scripts.LEASE_SECONDS` after its last call if it died. A runner
  without a ceiling adds none. The first runner sets the starting rate; the others
  join the rate they find.
- **Waiting** (:mod:`._redis_outage`). The script grants a token or says how long
  until one is free; the process sleeps that long (plus up to 2 ms of jitter, and at
  most a second at a time, so that a rate raised or a pause set elsewhere is seen) and
  asks again. Within a process, waiters queue behind one lock (first come, first
  served), so that one of them at a time asks Redis; while nobody waits, requests ask
  at once, in parallel.
- **Redis unreachable: never unlimited** (:mod:`._redis_outage`). No ticket without a
  grant from the script. :meth:`RedisBudget.acquire` retries with backoff, logs
  ``budget.unreachable`` once per outage and ``budget.reconnected`` at its end, and
  after ``unavailable_after`` seconds raises
  :class:`~bulkchime.errors.BudgetUnavailable` (a :class:`~bulkchime.errors.JobAborted`:
  exit 3, the checkpoint resumes). Successes and 429s reported meanwhile are dropped,
  not raised; a ``Retry-After`` among them still pauses this process.
- **redis-py is optional** (:mod:`._redis_client`, the one module that imports it): it
  comes with ``bulkchime[scale]``, and without it :meth:`RedisBudget.connect` raises a
  :class:`~bulkchime.errors.JobError` that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._adaptive import DECREASE_FACTOR, DOUBLING_SECONDS, REGROWTH_SECONDS
from ._protocol import Ticket
from ._redis_client import RedisError, join_error, make_client
from ._redis_outage import OutageGuard, nap_until_free
from ._redis_scripts import BudgetScript, Reply, Settings
from ._redis_url import DEFAULT_KEY, RedisAddress, parse_budget_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_KEY",
    "UNAVAILABLE_AFTER_SECONDS",
    "RedisAddress",
    "RedisBudget",
    "parse_budget_url",
]

#: Seconds Redis may stay unreachable before :meth:`RedisBudget.acquire` gives up.
UNAVAILABLE_AFTER_SECONDS = 60.0

#: How long :meth:`RedisBudget.close` waits for Redis before closing anyway.
_CLOSE_TIMEOUT_SECONDS = 1.0


class RedisBudget:
    """A :class:`~bulkchime.budget.RateBudget` shared by every process on one Redis key.

    Make one with :meth:`connect`; close it with :meth:`close`. The properties show the
    shared state as this process last saw it (every call to Redis refreshes them;
    :meth:`refresh` asks on purpose).

    :param redis: an open client, owned by the budget from now on (closed by
        :meth:`close`); it must not retry on its own (``retry=Retry(NoBackoff(), 0)``).
    :param address: where the budget lives (for its name and messages).
    :param settings: this runner's rate, burst, ceiling and control-law settings.
    :param unavailable_after: seconds Redis may stay unreachable before
        :meth:`acquire` raises :class:`~bulkchime.errors.BudgetUnavailable`.
    """

    __slots__ = (
        "_address",
        "_background",
        "_closed",
        "_closing",
        "_guard",
        "_last",
        "_redis",
        "_script",
        "_settings",
        "_turn",
    )

    def __init__(
        self,
        redis: Redis,
        address: RedisAddress,
        settings: Settings,
        *,
        unavailable_after: float = UNAVAILABLE_AFTER_SECONDS,
    ) -> None:
        if not unavailable_after > 0:
            raise ValueError("unavailable_after must be > 0 seconds (60 is the default)")
        self._redis = redis
        self._address = address
        self._settings = settings
        self._script = BudgetScript(redis, address.key, uuid.uuid4().hex, settings)
        #: Held by the waiter that asks Redis; the others queue behind it.
        self._turn = asyncio.Lock()
        self._closing = asyncio.Event()
        self._closed = False
        #: Every call to Redis goes through it: it rides out outages.
        self._guard = OutageGuard(redis, address, unavailable_after, self._closing)
        #: The shared state as last seen.
        self._last: Reply | None = None
        #: Give-backs of tokens granted to cancelled acquires, still running.
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        rate: float,
        burst: int,
        ceiling: float | None,
        adaptive: bool = True,
        floor: float = 0.2,
        decrease_factor: float = DECREASE_FACTOR,
        regrowth_seconds: float = REGROWTH_SECONDS,
        doubling_seconds: float = DOUBLING_SECONDS,
        unavailable_after: float = UNAVAILABLE_AFTER_SECONDS,
    ) -> RedisBudget:
        """Join (or start) the budget at *url*, ``redis://HOST:PORT/DB?key=NAME``.

        :param rate: the starting rate, if this process is the first on the key
            (lowered to *ceiling*); a later process joins the rate it finds.
        :param burst: this process's bucket capacity (e.g. ``client_burst(rate)``).
        :param ceiling: the highest rate this process allows (the job's ``--rate``);
            the lowest ceiling of the processes on the key caps the shared rate.
        :param unavailable_after: seconds Redis may stay unreachable mid-run before
            :meth:`acquire` raises :class:`~bulkchime.errors.BudgetUnavailable`.

        The other parameters are :class:`~bulkchime.budget.LocalBudget`'s. Raises
        :class:`~bulkchime.errors.JobError` for a malformed URL, a missing ``redis``
        package or a Redis server that does not answer (nothing has been sent),
        :class:`ValueError` for bad numbers.
        """
        address = parse_budget_url(url)
        settings = Settings.checked(
            rate,
            burst,
            ceiling,
            adaptive=adaptive,
            floor=floor,
            decrease_factor=decrease_factor,
            regrowth_seconds=regrowth_seconds,
            doubling_seconds=doubling_seconds,
        )
        redis = make_client(address, unavailable_after)
        try:
            budget = cls(redis, address, settings, unavailable_after=unavailable_after)
            await budget._join()
        except BaseException:
            await redis.aclose()
            raise
        return budget

    async def _join(self) -> None:
        """Register with the shared budget (starting it if new): a first round trip."""
        try:
            self._last = await self._script.state()
        except RedisError as error:
            raise join_error(self._address, error) from None

    # -- state, for logs and tests ---------------------------------------------------------

    @property
    def rate(self) -> float:
        """The shared rate, in requests per second, as last seen."""
        return self._settings.start_rate if self._last is None else self._last.rate

    @property
    def burst(self) -> int:
        """This process's bucket capacity."""
        return self._settings.burst

    @property
    def ceiling(self) -> float | None:
        """The lowest ceiling of the processes on the key, as last seen (``None``: none)."""
        return self._settings.ceiling if self._last is None else self._last.ceiling

    @property
    def w_max(self) -> float | None:
        """The budget estimated at the last cut, by any process (``None`` until one)."""
        return None if self._last is None else self._last.w_max

    @property
    def throttles(self) -> int:
        """429s reported by every process so far."""
        return 0 if self._last is None else self._last.throttles

    @property
    def decreases(self) -> int:
        """Cuts made so far, by every process: the generation of new tickets."""
        return 0 if self._last is None else self._last.generation

    @property
    def paused_for(self) -> float:
        """Seconds the shared ``Retry-After`` pause had left when last seen (0: none)."""
        return 0.0 if self._last is None else self._last.paused_for

    @property
    def address(self) -> RedisAddress:
        """Where the budget lives."""
        return self._address

    async def refresh(self) -> None:
        """Read the shared state now; if Redis does not answer, keep the last seen."""
        await self._report(self._script.state, event=False)

    # -- RateBudget ------------------------------------------------------------------------

    def ready(self) -> bool:
        """Always ``False``: only Redis knows whether a token is free, and another
        process may take it first. The caller races the wait instead (never wrong)."""
        return False

    async def acquire(self) -> Ticket:
        """Wait until the shared budget grants a request; return its ticket.

        Cancelling the wait takes nothing from the budget (a token granted in the
        instant of the cancellation is given back). Raises
        :class:`~bulkchime.errors.BudgetUnavailable` when Redis has not answered for
        ``unavailable_after`` seconds, and from then on at once: the job stops, and
        its next run makes a new budget.
        """
        self._guard.check_open()
        if not self._turn.locked():  # nobody waits: ask at once, in parallel
            reply = await self._guard.ask(self._acquire_step)
            if reply.granted:
                return Ticket(generation=reply.generation, issued_at=reply.value)
        async with self._turn:
            while True:
                reply = await self._guard.ask(self._acquire_step)
                if reply.granted:
                    return Ticket(generation=reply.generation, issued_at=reply.value)
                await nap_until_free(reply.value, self._closing)

    async def on_success(self, ticket: Ticket) -> None:
        """The request sent under *ticket* was accepted: the shared rate may grow.

        Never raises: while Redis does not answer, the event is dropped (and counted).
        """
        await self._report(self._script.success)

    async def on_throttle(self, ticket: Ticket, retry_after_seconds: float | None) -> None:
        """The request sent under *ticket* was answered 429.

        In one atomic step on Redis: the shared bucket is emptied to half a token, the
        shared rate cut if the 429 is news (no process has cut since *ticket* was
        issued, nor within the grace after the last cut), and ``Retry-After`` pauses
        every process on the key. Never raises: while Redis does not answer, the event
        is dropped, but a ``Retry-After`` still pauses this process.
        """

        def step() -> Awaitable[Reply]:
            return self._script.throttle(ticket.generation, ticket.issued_at, retry_after_seconds)

        shared = await self._report(step)
        if not shared and retry_after_seconds and retry_after_seconds > 0:
            self._guard.pause_locally(retry_after_seconds)

    async def close(self) -> None:
        """Withdraw this process's ceiling and close the connections; idempotent.

        Waiters still in :meth:`acquire` fail with :class:`RuntimeError`.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._background:
            _, late = await asyncio.wait(self._background, timeout=_CLOSE_TIMEOUT_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._settings.ceiling is not None and not self._guard.in_outage:
            with contextlib.suppress(RedisError, TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT_SECONDS):
                    await self._script.leave()
        await self._redis.aclose()

    # -- asking Redis ----------------------------------------------------------------------

    async def _acquire_step(self) -> Reply:
        """Run ``acquire`` once; if the caller is cancelled meanwhile, let the step end
        and give back the token it may have taken."""
        step = asyncio.ensure_future(self._script.acquire())
        try:
            reply = await asyncio.shield(step)
        except asyncio.CancelledError:
            task = asyncio.ensure_future(self._give_back_if_granted(step))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            raise
        self._last = reply
        return reply

    async def _give_back_if_granted(self, step: asyncio.Future[Reply]) -> None:
        try:
            reply = await step
            if reply.granted:
                await self._script.give_back()
        except RedisError:
            # Whether the step took a token is unknown: at worst one is lost, never gained.
            pass

    async def _report(self, step: Callable[[], Awaitable[Reply]], *, event: bool = True) -> bool:
        """Send an event (or, with ``event=False``, a question) to Redis; ``False`` if it
        was dropped (Redis down, or the budget closed)."""
        reply = await self._guard.report(step, event=event)
        if reply is None:
            return False
        self._last = reply
        return True

    def __repr__(self) -> str:
        w_max = "-" if self.w_max is None else f"{self.w_max:.2f}"
        text = (
            f"<RedisBudget redis={self._address} key={self._address.key} "
            f"rate={self.rate:.2f}/s burst={self.burst} ceiling={self.ceiling} w_max={w_max} "
            f"throttles={self.throttles} decreases={self.decreases}"
        )
        if self._guard.in_outage:
            text += " unreachable"
        return text + (" closed>" if self._closed else ">")
