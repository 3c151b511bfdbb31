"""The PostgreSQL store's connections, and what it does when the server stops answering.

- **A few connections for the store's calls**, made on demand (at most
  :data:`POOL_SIZE`), each call holding one for its transaction: calls from the
  engine's workers run side by side, and none waits behind a long ingest.
- **One for the heartbeat**, so that renewing the lease never queues behind them.
- **One per** :meth:`~bulkchime.store.CheckpointStore.exclusive` **block**, which holds
  a session's advisory lock for as long as the block runs (closing it releases the
  lock, also when the process dies).

**The server unreachable.** A call that fails with a connection-level error
(:class:`psycopg.OperationalError`, :class:`psycopg.InterfaceError`) drops its
connection (and the idle ones: they are as stale) and runs again on a new one, with
a backoff from :data:`RETRY_FIRST_SECONDS` to :data:`RETRY_MAX_SECONDS`, for up to
``unavailable_after`` seconds; then it raises
:class:`~bulkchime.errors.StoreUnavailable` (exit 3, resumable). ``store.unreachable``
is logged once per outage, ``store.reconnected`` at its end. Every call is a whole
transaction, written so that running it again is harmless (see each operation).
A deadlock or serialization failure is retried the same way, without the log lines:
the server is there. The heartbeat does not wait: it raises at once, and the lease
retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from ..errors import DiskFull, StoreUnavailable
from ._pg_url import PgAddress

__all__ = [
    "CONNECTION_ERRORS",
    "POOL_SIZE",
    "RETRY_FIRST_SECONDS",
    "RETRY_MAX_SECONDS",
    "UNAVAILABLE_AFTER_SECONDS",
    "Conn",
    "Connections",
]

log = structlog.get_logger("bulkchime")

Conn: TypeAlias = AsyncConnection[tuple[Any, ...]]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Connections for the store's calls (the heartbeat's and ``exclusive``'s are apart).
POOL_SIZE = 4
#: Seconds the server may stay unreachable before a call gives up (``StoreUnavailable``).
UNAVAILABLE_AFTER_SECONDS = 60.0
#: Backoff between tries while the server does not answer: first, and longest.
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 2.0

#: What means the connection, not the statement, failed: drop it and try again.
CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


async def connect(address: PgAddress) -> Conn:
    """A new connection in autocommit mode (each call opens its own transaction)."""
    return await AsyncConnection.connect(address.conninfo, autocommit=True)


async def close_quietly(conn: Conn) -> None:
    """Close *conn*, whatever state it (or the server) is in."""
    with contextlib.suppress(Exception):
        await conn.close()


def _reusable(conn: Conn) -> bool:
    return (
        not conn.closed
        and not conn.broken
        and conn.info.transaction_status == TransactionStatus.IDLE
    )


class Connections:
    """The store's connections (see the module docstring).

    :param address: the database (its password stays here).
    :param unavailable_after: seconds a call keeps trying while the server is unreachable.
    """

    def __init__(
        self,
        address: PgAddress,
        *,
        unavailable_after: float = UNAVAILABLE_AFTER_SECONDS,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.address = address
        self.unavailable_after = unavailable_after
        self._idle: list[Conn] = []
        self._slots = asyncio.Semaphore(pool_size)
        self._beat_conn: Conn | None = None
        self._beat_lock = asyncio.Lock()
        self._closed = False
        #: When the current outage began (``None`` while the server answers).
        self._unreachable_since: float | None = None

    def __repr__(self) -> str:
        return f"<Connections {self.address.server} idle={len(self._idle)}>"

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection of the pool for one call; dropped afterwards unless it is idle
        and sound (a cancelled call's may be mid-statement)."""
        if self._closed:
            raise RuntimeError(f"checkpoint store {self.address.location} is closed")
        async with self._slots:
            conn = self._idle.pop() if self._idle else await connect(self.address)
            try:
                yield conn
            finally:
                if _reusable(conn) and not self._closed:
                    self._idle.append(conn)
                else:
                    await close_quietly(conn)

    async def run(
        self,
        fn: Callable[Concatenate[Conn, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``await fn(connection, ...)`` on a pooled connection, again on a new one while
        the server is unreachable (see the module docstring)."""

        async def attempt() -> _T:
            async with self.connection() as conn:
                return await fn(conn, *args, **kwargs)

        return await self.retrying(attempt)

    async def retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run *attempt* until it does not fail for want of the server, or the bound."""
        delay = RETRY_FIRST_SECONDS
        first_failure: float | None = None
        while True:
            try:
                result = await attempt()
            except psycopg.errors.DiskFull as error:  # waiting would not free the server's disk
                raise DiskFull(self.address.location, self.address.scrub(_reason(error))) from None
            except CONNECTION_ERRORS as error:
                now = time.monotonic()
                first_failure = first_failure or now
                if not isinstance(error, psycopg.errors.TransactionRollback):
                    # Not a deadlock (the server is fine, the transaction runs again):
                    # the server went, and the idle connections with it.
                    await self._drop_idle()
                    self._note_unreachable(error)
                waited = now - first_failure
                if waited >= self.unavailable_after:
                    raise StoreUnavailable(
                        self.address.server,
                        self.address.job,
                        round(waited, 1),
                        self.address.scrub(_reason(error)),
                    ) from None
                await asyncio.sleep(min(delay, self.unavailable_after - waited))
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            self._note_reachable()
            return result

    async def beat(
        self,
        fn: Callable[Concatenate[Conn, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``await fn(connection, ...)`` on the heartbeat's own connection: once, and once
        more on a new connection if the old one was broken; raises when the server does
        not answer (the caller retries at its own pace)."""
        async with self._beat_lock:
            for last in (False, True):
                conn = self._beat_conn
                fresh = conn is None
                try:
                    if conn is None:
                        conn = self._beat_conn = await connect(self.address)
                    result = await fn(conn, *args, **kwargs)
                except CONNECTION_ERRORS:
                    await self._drop_beat()
                    if last or fresh:
                        raise
                    continue
                except BaseException:
                    if conn is not None and not _reusable(conn):
                        await self._drop_beat()
                    raise
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def once(
        self,
        fn: Callable[Concatenate[Conn, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``await fn(connection, ...)`` on a pooled connection, once: a connection-level
        error is raised as it is (opening and closing the store do not wait)."""
        async with self.connection() as conn:
            return await fn(conn, *args, **kwargs)

    async def locked(self, key: int, poll_seconds: float) -> Conn:
        """A connection of its own holding the session advisory lock *key* (asked for
        every *poll_seconds* until it is free), under the retry policy. Closing the
        connection releases the lock."""

        async def attempt() -> Conn:
            conn = await connect(self.address)
            try:
                while True:
                    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                    row = await cursor.fetchone()
                    if row is not None and row[0]:
                        return conn
                    await asyncio.sleep(poll_seconds)
            except BaseException:
                await close_quietly(conn)
                raise

        return await self.retrying(attempt)

    async def close(self) -> None:
        """Close every connection (idempotent); calls made afterwards fail."""
        self._closed = True
        await self._drop_idle()
        # Not under the heartbeat's lock: a heartbeat stuck on a silent server must not
        # hold the close up (it fails instead, its connection closed under it).
        await self._drop_beat()

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await close_quietly(conn)

    async def _drop_beat(self) -> None:
        conn, self._beat_conn = self._beat_conn, None
        if conn is not None:
            await close_quietly(conn)

    def _note_unreachable(self, error: BaseException) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.warning(
                "store.unreachable",
                store=self.address.server,
                job=self.address.job,
                error=self.address.scrub(_reason(error)),
            )

    def _note_reachable(self) -> None:
        if self._unreachable_since is not None:
            after = time.monotonic() - self._unreachable_since
            self._unreachable_since = None
            log.warning(
                "store.reconnected",
                store=self.address.server,
                job=self.address.job,
                after_seconds=round(after, 1),
            )


def _reason(error: BaseException) -> str:
    """The first line of a driver error, or its type when it says nothing."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
