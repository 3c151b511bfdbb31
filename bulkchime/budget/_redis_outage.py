"""How a :class:`~bulkchime.budget.RedisBudget` waits on Redis: for a token, and out of
an outage.

- **Waiting for a token.** :func:`nap_until_free` sleeps until the script said a token
  would be free, plus up to 2 ms of jitter (so that processes waiting for one token do
  not ask at once), and at most a second at a time (so that a rate raised or a pause
  set elsewhere is seen).
- **Redis unreachable: never unlimited.** Every call to the script goes through an
  :class:`OutageGuard`. A question for a token (:meth:`~OutageGuard.ask`) is tried
  again, 50 ms doubling to 1 s apart (jittered), until Redis answers or
  ``unavailable_after`` seconds into the outage, when it raises
  :class:`~bulkchime.errors.BudgetUnavailable`. A success or a 429 reported meanwhile
  (:meth:`~OutageGuard.report`) is dropped and counted; a ``Retry-After`` among them
  still pauses this process. ``budget.unreachable`` is logged once per outage, and
  ``budget.reconnected`` (with the events dropped) at its end.

Every sleep ends early when the budget is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from ..errors import BudgetUnavailable
from ._redis_client import RedisError
from ._redis_scripts import Reply
from ._redis_url import RedisAddress

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["OutageGuard", "nap_until_free"]

log = structlog.get_logger("bulkchime")

#: Longest sleep between two questions to Redis while waiting for a token.
_MAX_NAP_SECONDS = 1.0
#: Added to each such sleep, so that processes waiting for one token do not ask at once.
_JITTER_SECONDS = 0.002
#: Backoff between tries while Redis does not answer: first, and longest.
_RETRY_FIRST_SECONDS = 0.05
_RETRY_MAX_SECONDS = 1.0


async def nap_until_free(seconds: float, closing: asyncio.Event) -> None:
    """Sleep until a token should be free, *seconds* from now (at most a second, and
    jittered), or until *closing* is set; then the caller asks Redis again."""
    await _nap(min(seconds, _MAX_NAP_SECONDS) + random.uniform(0.0, _JITTER_SECONDS), closing)


class OutageGuard:
    """The calls of one budget to Redis, and the outage they are in, if any.

    :param redis: the budget's client (its idle connections are dropped when an
        outage starts).
    :param address: where the budget lives (for the log lines and the error).
    :param unavailable_after: seconds an outage may last before :meth:`ask` raises
        :class:`~bulkchime.errors.BudgetUnavailable`.
    :param closing: set when the budget closes: it ends every sleep; after it,
        :meth:`ask` raises :class:`RuntimeError` and :meth:`report` drops its event.
    """

    __slots__ = (
        "_address",
        "_closing",
        "_dropped",
        "_gave_up",
        "_local_pause_until",
        "_reason",
        "_redis",
        "_since",
        "_unavailable_after",
    )

    def __init__(
        self, redis: Redis, address: RedisAddress, unavailable_after: float, closing: asyncio.Event
    ) -> None:
        self._redis = redis
        self._address = address
        self._unavailable_after = unavailable_after
        self._closing = closing
        #: Loop time of the first failure of the current outage (``None``: no outage).
        self._since: float | None = None
        self._reason = ""
        self._gave_up = False
        #: Successes and 429s not reported during the current outage.
        self._dropped = 0
        #: A ``Retry-After`` that could not be shared still pauses this process.
        self._local_pause_until = -math.inf

    @property
    def in_outage(self) -> bool:
        """Whether Redis failed the last call (and has not answered since)."""
        return self._since is not None

    def check_open(self) -> None:
        """Raise :class:`RuntimeError` once the budget is closed."""
        if self._closing.is_set():
            raise RuntimeError("the rate budget is closed; make a new one to send more requests")

    async def ask(self, step: Callable[[], Awaitable[Reply]]) -> Reply:
        """One answer to *step*, trying again while Redis does not answer, up to
        ``unavailable_after`` seconds into the outage; once that has passed, every later
        call raises :class:`~bulkchime.errors.BudgetUnavailable` at once."""
        failures = 0
        while True:
            self.check_open()
            await _nap(self._local_pause_until - asyncio.get_running_loop().time(), self._closing)
            self.check_open()
            if self._gave_up:
                raise self._unavailable()
            try:
                reply = await step()
            except RedisError as error:
                await self._failed(error)
                await self._back_off(failures, error)
            else:
                self._answered()
                return reply
            failures += 1

    async def report(
        self, step: Callable[[], Awaitable[Reply]], *, event: bool = True
    ) -> Reply | None:
        """Send an event (or, with ``event=False``, a question) to Redis; ``None`` if it
        was dropped (Redis down, or the budget closed)."""
        if self._closing.is_set() or self.in_outage:
            # Redis is known to be down: ask() is the one that watches for its return.
            self._dropped += event
            return None
        try:
            reply = await step()
        except RedisError as error:
            await self._failed(error)
            self._dropped += event
            return None
        self._answered()
        return reply

    def pause_locally(self, seconds: float) -> None:
        """Pause this process *seconds* from now (a ``Retry-After`` Redis did not get)."""
        until = asyncio.get_running_loop().time() + seconds
        self._local_pause_until = max(self._local_pause_until, until)

    def _answered(self) -> None:
        """Redis answered: the end of the outage, if there was one."""
        if self._since is None:
            return
        log.info(
            "budget.reconnected",
            redis=str(self._address),
            key=self._address.key,
            outage_seconds=round(asyncio.get_running_loop().time() - self._since, 3),
            events_dropped=self._dropped,
        )
        self._since = None
        self._dropped = 0

    async def _failed(self, error: RedisError) -> None:
        """A call failed: the start of an outage (logged once), or more of it."""
        if self._closing.is_set():  # the connections were closed under a call still running
            return
        self._reason = f"{type(error).__name__}: {error}"
        if self._since is not None:
            return
        self._since = asyncio.get_running_loop().time()
        log.warning(
            "budget.unreachable",
            redis=str(self._address),
            key=self._address.key,
            error=self._reason,
            gives_up_after_seconds=self._unavailable_after,
        )
        # The idle connections died with the server (or its network): reused after it
        # is back, each would fail once more and start an outage of its own.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.connection_pool.disconnect(inuse_connections=False)

    async def _back_off(self, failures: int, error: RedisError) -> None:
        """Sleep before the next try, or give up once the outage has lasted
        ``unavailable_after`` seconds."""
        left = self._seconds_left()
        if left <= 0:
            self._gave_up = True
            raise self._unavailable() from error
        await _nap(min(left, _retry_delay(failures)), self._closing)

    def _seconds_left(self) -> float:
        if self._since is None:
            return self._unavailable_after
        elapsed = asyncio.get_running_loop().time() - self._since
        return self._unavailable_after - elapsed

    def _unavailable(self) -> BudgetUnavailable:
        return BudgetUnavailable(str(self._address), self._unavailable_after, self._reason)


async def _nap(seconds: float, closing: asyncio.Event) -> None:
    """Sleep *seconds* (nothing if <= 0), or until *closing* is set."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await closing.wait()


def _retry_delay(failures: int) -> float:
    """Backoff after *failures* failed tries: 50 ms doubling to 1 s, jittered by half."""
    ceiling = min(_RETRY_MAX_SECONDS, _RETRY_FIRST_SECONDS * 2.0 ** min(failures, 16))
    return random.uniform(ceiling / 2, ceiling)
