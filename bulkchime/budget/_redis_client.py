"""The one module that imports redis-py: the client a shared budget talks through, and
what a failed first call means.

redis-py comes with the ``bulkchime[scale]`` extra. Without it this module still
imports (``bulkchime.budget.RedisBudget`` is named by the runner before it is used), and
:func:`make_client` raises a :class:`~bulkchime.errors.JobError` that says what to
install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import JobError
from ._redis_scripts import key_prefix
from ._redis_url import RedisAddress

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import AuthenticationError, RedisError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:
    _HAVE_REDIS = False
    if not TYPE_CHECKING:

        class RedisError(Exception):
            """A stand-in that nothing raises: without redis-py, no budget has a client."""

else:
    _HAVE_REDIS = True

__all__ = ["RedisError", "join_error", "make_client"]

#: Socket timeouts (lowered to ``unavailable_after`` if that is shorter).
_CONNECT_TIMEOUT_SECONDS = 2.0
_COMMAND_TIMEOUT_SECONDS = 5.0


def make_client(address: RedisAddress, unavailable_after: float) -> Redis:
    """A client that fails fast and never retries by itself: the budget does that.

    Raises :class:`~bulkchime.errors.JobError` when redis-py is not installed.
    """
    if not _HAVE_REDIS:
        raise JobError(
            "cannot share the rate budget through Redis: the Redis budget needs the redis "
            "package: pip install 'bulkchime[scale]'"
        )
    return Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        username=address.username,
        password=address.password,
        ssl=address.tls,
        socket_connect_timeout=min(_CONNECT_TIMEOUT_SECONDS, unavailable_after),
        socket_timeout=min(_COMMAND_TIMEOUT_SECONDS, unavailable_after),
        retry=Retry(NoBackoff(), 0),
    )


def join_error(address: RedisAddress, error: RedisError) -> JobError:
    """What the failure of a budget's first call to Redis means, and how to fix it."""
    if isinstance(error, AuthenticationError):
        return JobError(
            f"the rate budget's Redis server at {address} refused the credentials "
            f"({error}). HINT: put the right user and password in the budget URL, "
            "redis://USER:PASSWORD@HOST:PORT/DB?key=NAME"
        )
    if isinstance(error, (RedisConnectionError, RedisTimeoutError)):
        return JobError(
            f"cannot reach the rate budget's Redis server at {address} ({error}); "
            "nothing was sent. HINT: start Redis there (redis-server), or fix the host, "
            "port or database in the budget URL"
        )
    return JobError(
        f"the rate budget's Redis server at {address} refused its script "
        f"({type(error).__name__}: {error}); nothing was sent. HINT: the budget needs "
        "Redis 5 or later with Lua scripting (EVALSHA) allowed, and keys "
        f"{key_prefix(address.key)}* that nothing else writes"
    )
