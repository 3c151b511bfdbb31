"""The PostgreSQL checkpoint store: one job shared by several runner processes.

``postgresql://USER@HOST:PORT/DB?job=NAME`` names a database and a job in it; every
process that opens the same one for writing is a *runner* of that job. The first
ingests the input (``COPY``, :mod:`._pg_ingest`) while the others wait; then each
claims the pending tasks it sends (``FOR UPDATE SKIP LOCKED``), under a lease it
renews by a heartbeat, and takes over what runners that are gone left
(:mod:`._pg_claims`). Outcomes, counts and the report are the job's, whoever sent
what (:mod:`._pg_ops`). Tables, versions and migration: :mod:`._pg_schema`;
connections, and retrying while the server is unreachable: :mod:`._pg_conn`.

This module and its private ones are the only ones that import :mod:`psycopg`;
:func:`~bulkchime.store.open_store` imports them only for a PostgreSQL URL.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

import structlog

from ..errors import JobError
from . import _pg_claims as claims
from . import _pg_images as images
from . import _pg_ops as ops
from ._images import BeforeImage, ImagePairs, paged_images
from ._models import ItemRecord, ReportRecord, RunnerInfo, State, TaskOutcome, WorkItem
from ._pg_conn import (
    CONNECTION_ERRORS,
    UNAVAILABLE_AFTER_SECONDS,
    Conn,
    Connections,
    close_quietly,
)
from ._pg_ingest import PgIngester
from ._pg_schema import prepare
from ._pg_url import PgAddress, parse_postgres_url

__all__ = ["EXCLUSIVE_POLL_SECONDS", "INGEST_POLL_SECONDS", "PostgresStore"]

log = structlog.get_logger("bulkchime")

_P = ParamSpec("_P")
_T = TypeVar("_T")
#: A store operation: ``fn(connection, scope, ...)`` (:mod:`._pg_ops`, :mod:`._pg_claims`).
_Op: TypeAlias = Callable[Concatenate[Conn, ops.Scope, _P], Awaitable[_T]]

#: Seconds between looks at a job another live runner is ingesting.
INGEST_POLL_SECONDS = 0.25
#: Seconds between asks for a job-wide lock another runner holds.
EXCLUSIVE_POLL_SECONDS = 0.2
#: Seconds closing waits for the server before it closes anyway.
CLOSE_TIMEOUT_SECONDS = 5.0
#: Report records read per query.
REPORT_PAGE_SIZE = 2000

_HINT = (
    "HINT: check that PostgreSQL runs there and that the URL's host, port, user and "
    "database are right; nothing was sent"
)


class PostgresStore:
    """A job's checkpoint in PostgreSQL; implements :class:`~bulkchime.store.CheckpointStore`.

    Open it with ``await PostgresStore.open(url)`` (or :func:`~bulkchime.store.open_store`)
    and :meth:`close` it, or use ``async with await PostgresStore.open(url) as store``.
    """

    #: Several runners may work on the job at once.
    shared = True

    def __init__(self, address: PgAddress, conns: Connections, scope: ops.Scope) -> None:
        """Wrap an opened job; use :meth:`open` instead."""
        #: The URL as given, without its password, naming the job.
        self.location = address.location
        self._address = address
        self._conns = conns
        self._scope = scope
        self._ingester = PgIngester()
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        lock: bool = True,
        lease_seconds: float = 30.0,
        default_job: str | None = None,
        unavailable_after: float = UNAVAILABLE_AFTER_SECONDS,
    ) -> PostgresStore:
        """Open the job *url* names (*default_job* when it names none).

        With *lock*, create the schema or migrate it if needed, create the job if it is
        new, and register this process as one of its runners, under a lease of
        *lease_seconds*. Without, open it for reading only: the job must exist. A server
        that does not answer, a schema of a newer bulkchime or a missing job is a
        :class:`~bulkchime.errors.JobError`. Later, a call keeps trying for up to
        *unavailable_after* seconds while the server is unreachable.
        """
        address = parse_postgres_url(url, default_job)
        conns = Connections(address, unavailable_after=unavailable_after)
        scope = await _open(conns, lock, lease_seconds)
        return cls(address, conns, scope)

    @property
    def read_only(self) -> bool:
        """Whether the store was opened with ``lock=False`` (reads only)."""
        return self._scope.runner is None

    def __repr__(self) -> str:
        runner = self._scope.runner
        state = "closed" if self._closed else "read-only" if runner is None else "running"
        who = "" if runner is None else f" runner={str(runner)[:8]}"
        return f"<PostgresStore {self.location!r}{who} {state}>"

    async def __aenter__(self) -> PostgresStore:
        """The store itself (``async with``)."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`close` it."""
        await self.close()

    async def _read(self, fn: _Op[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(connection, scope, ...)``, retried while the server is unreachable."""
        self._check_open()
        return await self._conns.run(fn, self._scope, *args, **kwargs)

    async def _write(self, fn: _Op[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Like :meth:`_read`, for a call that writes: only a runner may."""
        self._check_writable()
        return await self._read(fn, *args, **kwargs)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"checkpoint store {self.location} is closed")

    def _check_writable(self) -> None:
        if self._scope.runner is None:
            raise RuntimeError(f"checkpoint store {self.location} was opened for reading only")

    # -- lifecycle and the job -------------------------------------------------------------

    async def close(self, *, discard: bool = False) -> None:
        """Leave the job (idempotent): pending claims go back to the pool and this runner
        is marked ``left``, so that what it left in flight is taken over at once. With
        *discard*, delete the job's rows instead, unless another runner is on it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._scope.runner is not None:
                await asyncio.wait_for(
                    self._conns.once(_leave, self._scope, discard), CLOSE_TIMEOUT_SECONDS
                )
        except (*CONNECTION_ERRORS, TimeoutError) as error:
            # Its lease lapses by itself: the other runners take over after it.
            log.warning("store.close_failed", store=self.location, error=repr(error))
        finally:
            await self._conns.close()

    async def holder(self) -> int | None:
        """This process's pid if it is a runner of the job, else a live runner's, or ``None``."""
        if self._scope.runner is not None and not self._closed:
            return os.getpid()
        return await self._read(claims.holder_pid)

    async def check_job(self, identity: Mapping[str, Any], *, force: bool = False) -> bool:
        """Store or compare the job identity; whether to ingest. While another live runner
        ingests, wait for it; if it died doing so, take its ingest over."""
        changed = False
        waiting = False
        while True:
            verdict, changed = await self._write(ops.check_job, identity, force, changed)
            if verdict is not None:
                return verdict
            if not waiting:
                waiting = True
                log.info(
                    "ingest.waiting", job=self._address.job, reason="another runner is ingesting"
                )
            await asyncio.sleep(INGEST_POLL_SECONDS)

    async def job_meta(self) -> dict[str, Any] | None:
        """The stored job identity, or ``None``."""
        return await self._read(ops.job_meta)

    async def set_info(self, name: str, value: Any) -> None:
        """Store a run statistic for ``status``."""
        await self._write(ops.set_info, name, value)

    async def info(self) -> dict[str, Any]:
        """Every stored run statistic."""
        return await self._read(ops.info)

    # -- ingest ----------------------------------------------------------------------------

    async def ingest(self, actions: Sequence[str], records: Iterable[ItemRecord]) -> int:
        """Store *records* (read on a worker thread, a chunk at a time); how many."""
        self._check_writable()
        return await self._ingester.ingest(self._conns, self._scope, actions, records)

    async def ingest_chunk(self, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """Store one chunk; how many items were new."""
        self._check_writable()
        return await self._ingester.chunk(self._conns, self._scope, actions, records)

    async def finish_ingest(self) -> None:
        """Mark duplicates and record the input as read."""
        self._check_writable()
        await self._ingester.finish(self._conns, self._scope)

    # -- the work queue --------------------------------------------------------------------

    async def accounts_pending(self, phase: int) -> list[str | None]:
        """Accounts with tasks of *phase* pending or in flight."""
        return await self._read(ops.accounts_pending, phase)

    async def mark_in_flight(self, items: Sequence[WorkItem]) -> None:
        """Commit the intent to send *items*; ``LeaseLost`` if any is another runner's."""
        await self._write(claims.mark_in_flight, list(items))

    async def record(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Commit the outcomes of tasks no other runner holds."""
        await self._write(claims.record, list(outcomes), uuid.uuid4())

    async def skip_after_failed_phase(self, phase: int) -> int:
        """Skip tasks of *phase* after a failed or rejected previous phase; how many."""
        return await self._write(ops.skip_after_failed_phase, phase)

    async def retry_failed(self) -> int:
        """Re-queue failed tasks (and the phases they skipped); how many failed ones."""
        return await self._write(ops.retry_failed)

    async def fail_account(self, phase: int, account_id: str, code: str, message: str) -> int:
        """Fail every unfinished task of *phase* in *account_id*; how many."""
        return await self._write(ops.fail_account, phase, account_id, code, message)

    # -- claims ----------------------------------------------------------------------------

    async def claim(self, phase: int, limit: int, account_id: str | None = None) -> list[WorkItem]:
        """Take up to *limit* pending tasks of *phase* (of *account_id*) nobody holds."""
        return await self._write(claims.claim, phase, limit, account_id)

    async def take_over(self, phase: int) -> list[WorkItem]:
        """Free what gone runners claimed in *phase*; take (and return) their in-flight tasks."""
        return await self._write(claims.take_over, phase)

    async def release(self) -> None:
        """Return this runner's pending claims to the pool."""
        await self._write(claims.release)

    async def others_busy(self, phase: int) -> bool:
        """Whether another runner (live, or gone and not yet taken over) holds tasks of
        *phase* that are not final."""
        return await self._read(claims.others_busy, phase)

    async def renew_lease(self, items_done: int) -> bool:
        """Renew the lease on the heartbeat's own connection; ``False`` once lapsed."""
        self._check_open()
        if self._scope.runner is None:
            return True
        return await self._conns.beat(claims.renew_lease, self._scope, items_done)

    async def rejoin(self) -> None:
        """Leave as the old runner (releasing its pending claims) and join as a new one."""
        runner = uuid.uuid4()
        await self._write(claims.rejoin, runner)
        self._scope.runner = runner

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Hold the job-wide lock *name* (an advisory lock on a connection of its own)."""
        self._check_open()
        key = claims.lock_key(self._scope.job_id, name)
        conn = await self._conns.locked(key, EXCLUSIVE_POLL_SECONDS)
        try:
            yield
        finally:
            await close_quietly(conn)

    async def runners(self) -> list[RunnerInfo]:
        """The job's runners, newest first."""
        return await self._read(claims.runners)

    # -- resolution ------------------------------------------------------------------------

    async def unresolved_counts(self, phase: int) -> dict[str | None, int]:
        """Pending tasks of *phase* without a user id, per account."""
        return await self._read(ops.unresolved_counts, phase)

    async def unresolved_page(
        self, phase: int, account_id: str | None, after_item: int, limit: int
    ) -> list[WorkItem]:
        """A page of unresolved pending tasks of *phase* in *account_id*."""
        return await self._read(ops.unresolved_page, phase, account_id, after_item, limit)

    async def set_user_ids(self, found: Iterable[tuple[int, str, str | None]]) -> None:
        """Record resolved ``(item_id, user_id, account_id)`` triples."""
        await self._write(ops.set_user_ids, list(found))

    async def add_directory(self, account_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Remember ``(email, user_id)`` pairs scanned from *account_id*."""
        await self._write(ops.add_directory, account_id, list(pairs))

    async def resolve_from_directory(self, account_id: str, phase: int) -> int:
        """Resolve *account_id*'s items from its directory, then forget it; how many."""
        return await self._write(ops.resolve_from_directory, account_id, phase)

    async def add_before_images(self, account_id: str, pairs: ImagePairs) -> None:
        """Remember ``(subject, image)`` pairs of *account_id*; the first of a subject wins."""
        await self._write(images.add_before_images, account_id, list(pairs))

    def before_images(self) -> AsyncIterator[BeforeImage]:
        """Every before-image, in (account, subject) order, read in pages."""
        return paged_images(self._read, images.before_images_page)

    async def fail_unresolved(self, phase: int) -> int:
        """Fail (``NotFound``) pending tasks of *phase* without a user id; how many."""
        return await self._write(ops.fail_unresolved, phase)

    # -- reading ---------------------------------------------------------------------------

    async def phase_counts(self, phase: int) -> dict[State, int]:
        """Task counts by state for *phase*."""
        return await self._read(ops.phase_counts, phase)

    async def pending_by_account(self, phase: int) -> dict[str | None, int]:
        """Tasks of *phase* pending or in flight, per account."""
        return await self._read(ops.pending_by_account, phase)

    async def rejected_rows(self) -> list[tuple[int | None, str, str]]:
        """``(line, report status, reason)`` of first-phase tasks that will not be sent."""
        return await self._read(ops.rejected_rows)

    async def counts(self) -> dict[str, int]:
        """Task counts by report status."""
        return await self._read(ops.counts)

    async def error_counts(self) -> dict[str, int]:
        """Failed and rejected tasks by error code, most frequent first."""
        return await self._read(ops.error_counts)

    async def last_errors(self, limit: int = 5) -> list[tuple[str, str, str]]:
        """The most recent failures: ``(key, error_code, message)``."""
        return await self._read(ops.last_errors, limit)

    async def total_attempts(self) -> int:
        """Sends made so far, over every task."""
        return await self._read(ops.total_attempts)

    async def report_records(self) -> AsyncIterator[ReportRecord]:
        """Every task, in input order then phase order, read in pages."""
        after = (-1, -1)
        while True:
            page, after = await self._read(ops.report_page, after, REPORT_PAGE_SIZE)
            if not page:
                return
            for report_record in page:
                yield report_record


# -- opening and leaving -----------------------------------------------------------------------


async def _open(conns: Connections, lock: bool, lease_seconds: float) -> ops.Scope:
    """:func:`_open_job` on a first connection; a server that does not answer is a
    :class:`~bulkchime.errors.JobError` (nothing was sent). Closes *conns* on failure."""
    address = conns.address
    try:
        return await conns.once(_open_job, address, lock, lease_seconds)
    except CONNECTION_ERRORS as error:
        await conns.close()
        reason = address.scrub(str(error).strip().splitlines()[0] if str(error) else "")
        raise JobError(
            f"cannot open the PostgreSQL checkpoint at {address.server} (job "
            f"{address.job!r}): {reason or type(error).__name__}. {_HINT}"
        ) from None
    except BaseException:
        await conns.close()
        raise


async def _open_job(conn: Conn, address: PgAddress, lock: bool, lease_seconds: float) -> ops.Scope:
    """Check (and as a runner, create or migrate) the schema; find the job, or as a runner
    create it and register."""
    exists = await prepare(conn, address.location, writable=lock)
    if not lock:
        job_id = await claims.find_job(conn, address.job, create=False) if exists else None
        if job_id is None:
            raise JobError(
                f"there is no job {address.job!r} at {address.location}. HINT: give the "
                "URL (with ?job=NAME) that the run printed as its checkpoint"
            )
        return ops.Scope(job_id, address.job, address.location, None, lease_seconds)
    runner = uuid.uuid4()
    job_id = await claims.register(conn, address.job, runner, lease_seconds)
    return ops.Scope(job_id, address.job, address.location, runner, lease_seconds)


async def _leave(conn: Conn, scope: ops.Scope, discard: bool) -> None:
    if not (discard and await claims.discard_job(conn, scope)):
        await claims.leave(conn, scope)
