"""The shared budget's one Lua script, and a typed way to call it.

Every step a :class:`~bulkchime.budget.RedisBudget` takes on the shared state is one
run of this script, atomic on the Redis server and timed by its ``TIME``: try to take
a token (``acquire``), report an accepted request (``success``) or a 429
(``throttle``), give back a token a cancelled ``acquire`` did not use (``give_back``),
read the state (``state``), leave (``leave``).

The script (its source: :mod:`._redis_lua`) is a line-by-line port of
:class:`~bulkchime.budget._adaptive.AdaptiveRate` (the control law) and
:class:`~bulkchime.budget._bucket.TokenBucket` (GCRA), with the same names where it
can: the Python modules explain the *why* of each line. The constants the law shares
with :class:`~bulkchime.budget.LocalBudget` are written into the source from the
Python ones, so that the two cannot drift apart.

Keys, under ``bulkchime:budget:{NAME}:`` (the braces make NAME a Redis Cluster hash
tag, so that the four keys live in one slot):

- ``state``: a hash: ``rate``, ``tat`` and ``paused_until`` (the bucket); ``generation``,
  ``throttles``, ``w_max``, ``grace``, ``last_cut``, ``episode_start``, ``epoch``,
  ``last_update``, ``last_wait``, ``window_start``, ``hold`` (seconds the rate stays at
  the estimate before probing), ``burst_cut_rate`` (the rate a first cut that the
  server's burst misled halved to; 0: none) and ``accepted`` (requests accepted since
  the last cut) (the control law);
- ``delivered``: a list of the times of the requests accepted in the last second;
- ``ceilings`` and ``leases``: sorted sets, runner -> its ceiling, and runner -> when
  that ceiling lapses unless the runner calls again.

Every key expires after :data:`IDLE_SECONDS` without a call: the next run starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._adaptive import _MIN_DELIVERIES, _MIN_WINDOW_SECONDS, DELIVERY_WINDOW_SECONDS, AdaptiveRate
from ._redis_lua import SERVER_CLOCK, SOURCE
from .local import _TOKENS_AFTER_429

if TYPE_CHECKING:  # at run time, only ._redis_client imports redis-py
    from redis.asyncio import Redis

__all__ = [
    "IDLE_SECONDS",
    "LEASE_SECONDS",
    "SERVER_CLOCK",
    "BudgetScript",
    "Reply",
    "Settings",
    "key_prefix",
    "script_source",
]

#: Seconds without a call after which Redis forgets a budget (rate, bucket, ceilings).
IDLE_SECONDS = 3600
#: Seconds a runner's ceiling holds after its last call (a crashed runner's lapses).
LEASE_SECONDS = 60.0


def script_source(clock: str = SERVER_CLOCK) -> str:
    """The script's Lua source, with *clock* as its ``clock()`` function.

    Production uses :data:`SERVER_CLOCK`; a test may pass a clock that reads the time
    from the last argument, to replay a scenario against the Python control law.
    """
    return SOURCE.substitute(
        window=repr(DELIVERY_WINDOW_SECONDS),
        min_window=repr(_MIN_WINDOW_SECONDS),
        min_deliveries=repr(_MIN_DELIVERIES),
        tokens_after_429=repr(_TOKENS_AFTER_429),
        lease=repr(LEASE_SECONDS),
        idle_ms=repr(IDLE_SECONDS * 1000),
        clock=clock,
    )


#: The source every budget runs: timed by the Redis server's clock.
_PRODUCTION_SOURCE = script_source()


def key_prefix(name: str) -> str:
    """The prefix of every Redis key of the budget named *name*."""
    return f"bulkchime:budget:{{{name}}}:"


@dataclass(frozen=True, slots=True)
class Settings:
    """One runner's side of the budget: what it passes with every step."""

    #: The rate a budget starts at when this runner is the first to use it.
    start_rate: float
    #: Its bucket capacity (a runner's own; the shared rate bounds them all).
    burst: int
    #: Its ceiling; the lowest ceiling of the runners around caps the shared rate.
    ceiling: float | None
    #: Lowest rate its 429s may cut the shared rate to.
    floor: float
    #: Whether its answers move the shared rate.
    adaptive: bool
    decrease_factor: float
    regrowth_seconds: float
    doubling_seconds: float

    @classmethod
    def checked(
        cls,
        rate: float,
        burst: int,
        ceiling: float | None,
        *,
        adaptive: bool,
        floor: float,
        decrease_factor: float,
        regrowth_seconds: float,
        doubling_seconds: float,
    ) -> Settings:
        """A runner's settings, checked (and clamped) as :class:`LocalBudget` does:
        :class:`ValueError` for bad numbers."""
        if burst < 1:
            raise ValueError("burst must be >= 1 (a whole number of requests)")
        law = AdaptiveRate(
            rate,
            ceiling=ceiling,
            adaptive=adaptive,
            floor=floor,
            decrease_factor=decrease_factor,
            regrowth_seconds=regrowth_seconds,
            doubling_seconds=doubling_seconds,
        )
        return cls(
            start_rate=law.rate,
            burst=burst,
            ceiling=law.ceiling,
            floor=law.floor,
            adaptive=adaptive,
            decrease_factor=decrease_factor,
            regrowth_seconds=regrowth_seconds,
            doubling_seconds=doubling_seconds,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """What every step answers: its outcome and the shared state after it."""

    #: ``acquire`` only: whether a token was taken.
    granted: bool
    #: ``acquire``: when the token was taken (Redis time), or seconds until one is free.
    value: float
    rate: float
    generation: int
    throttles: int
    w_max: float | None
    #: The lowest ceiling of the runners around (``None``: no ceiling).
    ceiling: float | None
    #: Seconds until a ``Retry-After`` pause ends (0: not paused).
    paused_for: float

    @classmethod
    def parse(cls, raw: Any) -> Reply:
        """Read the script's list of strings."""
        granted, value, rate, generation, throttles, w_max, ceiling, paused_for = raw
        return cls(
            granted=float(granted) == 1,
            value=float(value),
            rate=float(rate),
            generation=int(float(generation)),
            throttles=int(float(throttles)),
            w_max=float(w_max) if w_max else None,
            ceiling=float(ceiling) if ceiling else None,
            paused_for=float(paused_for),
        )


class BudgetScript:
    """The script bound to one budget name and one runner: one method per step.

    :param redis: the client (with ``decode_responses=False``).
    :param name: the budget's name (the ``key`` of its URL).
    :param runner: this runner's id, unique among the processes sharing the name.
    :param settings: this runner's settings.
    :param source: the Lua source (a test may pass one with another clock).
    """

    __slots__ = ("_head", "_keys", "_script")

    def __init__(
        self,
        redis: Redis,
        name: str,
        runner: str,
        settings: Settings,
        *,
        source: str | None = None,
    ) -> None:
        self._script = redis.register_script(source or _PRODUCTION_SOURCE)
        prefix = key_prefix(name)
        self._keys = [prefix + part for part in ("state", "delivered", "ceilings", "leases")]
        self._head: list[str | float] = [
            runner,
            "" if settings.ceiling is None else settings.ceiling,
            settings.burst,
            settings.floor,
            "1" if settings.adaptive else "0",
            settings.decrease_factor,
            settings.regrowth_seconds,
            settings.doubling_seconds,
            settings.start_rate,
        ]

    @property
    def keys(self) -> list[str]:
        """The Redis keys the budget uses."""
        return list(self._keys)

    async def run(self, step: str, *args: str | float) -> Reply:
        """Run *step* with its arguments; raise :class:`redis.exceptions.RedisError`."""
        raw = await self._script(keys=self._keys, args=[step, *self._head, *args])
        return Reply.parse(raw)

    async def state(self) -> Reply:
        """The shared state, changing nothing (but this runner's ceiling lease)."""
        return await self.run("state")

    async def acquire(self) -> Reply:
        """Take a token if one is free now; else say how long until one is."""
        return await self.run("acquire")

    async def success(self) -> Reply:
        """A request was accepted."""
        return await self.run("success")

    async def throttle(
        self, generation: int, issued_at: float, retry_after_seconds: float | None
    ) -> Reply:
        """A request let through at *issued_at* after *generation* cuts met a 429."""
        retry_after = "" if retry_after_seconds is None else retry_after_seconds
        return await self.run("throttle", generation, issued_at, retry_after)

    async def give_back(self) -> Reply:
        """Return one token (taken for an ``acquire`` that was cancelled meanwhile)."""
        return await self.run("give_back")

    async def leave(self) -> Reply:
        """Withdraw this runner's ceiling."""
        return await self.run("leave")
