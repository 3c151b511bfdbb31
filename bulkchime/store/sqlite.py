"""The SQLite checkpoint store: one file beside the job, the default backend.

One connection, owned by one thread of the store's own: every call is handed to it,
so SQLite never blocks the event loop, and calls are applied one at a time in the
order they were made. WAL mode with ``synchronous=NORMAL`` makes every commit survive
the death of the process (only a power cut can take the last few), at the cost of a
write to the WAL, not an fsync.

The file names users and accounts, so it is owner-only from its first byte. It is
locked with ``flock`` on ``<file>.lock`` by the run that owns it
(:mod:`bulkchime.store._lock`), versioned with ``PRAGMA user_version`` and migrated
on open (:mod:`bulkchime.store._sqlite_schema`). This is the only module of
bulkchime that imports :mod:`sqlite3`.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..errors import DiskFull, JobError
from . import _sqlite_images as images
from . import _sqlite_ops as ops
from ._images import BeforeImage, ImagePairs, paged_images
from ._lock import LockFile, lock_holder, lock_path
from ._models import ItemRecord, ReportRecord, State, TaskOutcome, WorkItem
from ._one_process import OneProcess
from ._sqlite_ingest import Ingester
from ._sqlite_schema import NOT_A_CHECKPOINT_HINT, check_header, not_a_checkpoint, prepare
from ._sqlite_sql import Connection

__all__ = ["SQLiteStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: How long a write waits for another connection's before failing. WAL readers never
#: block the run's writes; only a reader creating a new file's tables can, briefly.
BUSY_TIMEOUT_MS = 5000
#: Report records read per trip to the store's thread.
REPORT_PAGE_SIZE = 2000


class SQLiteStore(OneProcess):
    """A checkpoint in an SQLite file; implements :class:`~bulkchime.store.CheckpointStore`.

    Open it with ``await SQLiteStore.open(path)`` (or :func:`~bulkchime.store.open_store`)
    and :meth:`close` it, or use ``async with await SQLiteStore.open(path) as store``.
    """

    def __init__(
        self, location: str, db: Connection, executor: ThreadPoolExecutor, lock: LockFile | None
    ) -> None:
        """Wrap an opened connection; use :meth:`open` instead."""
        #: The checkpoint's path as the caller gave it, for messages.
        self.location = location
        self._db = db
        self._executor = executor
        self._lock = lock
        self._ingester = Ingester()
        #: Per (phase, account): the last item id :meth:`claim` handed out this sweep.
        self._claimed_up_to: dict[tuple[int, str | None], int] = {}
        self._taken_over: set[int] = set()
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, lock: bool = True) -> SQLiteStore:
        """Open (or create) the checkpoint at *path*.

        With *lock*, take its lock (:class:`~bulkchime.errors.CheckpointInUse` when
        another live process holds it) and migrate an older checkpoint to this
        release's schema. Without, open it for reading only, alongside the run that
        holds it (``bulkchime status`` and ``report``); it must exist then. A file
        that is not a checkpoint, or one written by a newer bulkchime, is a
        :class:`~bulkchime.errors.JobError`, and is left untouched.
        """
        location = os.fspath(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulkchime-store")
        future = executor.submit(_open, Path(location), location, lock)
        try:
            db, held = await asyncio.wrap_future(future)
        except BaseException:
            # A failed open has undone itself; a cancelled one may still finish on the
            # thread, so undo it there, after it.
            executor.submit(_abandon, future)
            executor.shutdown(wait=future.done())
            raise
        return cls(location, db, executor, held)

    @staticmethod
    def lock_holder(path: str | os.PathLike[str]) -> int | None:
        """The pid of the live run holding the checkpoint at *path* (``-1`` if unknown),
        or ``None``; asks the lock file only, without opening the checkpoint."""
        return lock_holder(path)

    @property
    def path(self) -> Path:
        """The checkpoint file."""
        return Path(self.location)

    @property
    def lock_path(self) -> Path:
        """The file whose ``flock`` marks the run that owns the checkpoint."""
        return lock_path(self.location)

    @property
    def read_only(self) -> bool:
        """Whether the store was opened with ``lock=False`` (reads only)."""
        return self._lock is None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "read-only" if self.read_only else "locked"
        return f"<SQLiteStore {self.location!r} {state}>"

    async def __aenter__(self) -> SQLiteStore:
        """The store itself (``async with``)."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`close` it."""
        await self.close()

    async def _read(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run ``fn(connection, ...)`` on the store's thread."""
        if self._closed:
            raise RuntimeError(f"checkpoint store {self.location} is closed")
        call = functools.partial(fn, self._db, *args, **kwargs)
        return await asyncio.wrap_future(
            self._executor.submit(_guarded, self.location, self._db, call)
        )

    async def _write(
        self, fn: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Like :meth:`_read`, for a call that writes: only the lock holder may."""
        if self._lock is None:
            # Writing without the lock would break the one-run-per-checkpoint promise.
            raise RuntimeError(f"checkpoint store {self.location} was opened for reading only")
        return await self._read(fn, *args, **kwargs)

    # -- lifecycle and the job -------------------------------------------------------------

    async def close(self, *, discard: bool = False) -> None:
        """Close the database and release the lock (idempotent); *discard* deletes the
        checkpoint's files (database, ``-wal``, ``-shm``; the lock file if held)."""
        if self._closed:
            return
        self._closed = True
        future = self._executor.submit(self._close, discard)
        try:
            await asyncio.wrap_future(future)
        finally:
            # Cancelled, the close still runs on the thread; the thread then ends.
            self._executor.shutdown(wait=future.done())

    def _close(self, discard: bool) -> None:
        try:
            self._db.close()
            if discard:
                for suffix in ("", "-wal", "-shm"):
                    Path(self.location + suffix).unlink(missing_ok=True)
        finally:
            if self._lock is not None:
                self._lock.release(unlink=discard)

    async def holder(self) -> int | None:
        """The pid of the live run holding the checkpoint (this process's own if this store
        holds it; ``-1`` if unknown), or ``None``."""
        if self._lock is not None and self._lock.held:
            return os.getpid()
        return lock_holder(self.location)

    async def check_job(self, identity: Mapping[str, Any], *, force: bool = False) -> bool:
        """Store or compare the job identity; whether the input must be (re)read."""
        return await self._write(ops.check_job, self.location, identity, force)

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
        """Store *records* (read on the store's thread, in chunks of
        :data:`~bulkchime.store._sqlite_ingest.INGEST_CHUNK`); how many items were stored.

        Cancelled, it stops before the next chunk and the input stays unread.
        """
        stop = threading.Event()
        try:
            return await self._write(self._ingester.ingest, actions, records, stop)
        except asyncio.CancelledError:
            stop.set()
            raise

    async def ingest_chunk(self, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """Store one chunk; how many items were new."""
        return await self._write(self._ingester.chunk, actions, records)

    async def finish_ingest(self) -> None:
        """Mark duplicates and record the input as read."""
        await self._write(self._ingester.finish)

    # -- the work queue --------------------------------------------------------------------

    async def accounts_pending(self, phase: int) -> list[str | None]:
        """Accounts with tasks of *phase* pending or in flight."""
        return await self._read(ops.accounts_pending, phase)

    async def mark_in_flight(self, items: Sequence[WorkItem]) -> None:
        """Commit the intent to send *items*."""
        await self._write(ops.mark_in_flight, items)

    async def record(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Commit outcomes."""
        await self._write(ops.record, outcomes)

    async def skip_after_failed_phase(self, phase: int) -> int:
        """Skip tasks of *phase* after a failed or rejected previous phase; how many."""
        return await self._write(ops.skip_after_failed_phase, phase)

    async def retry_failed(self) -> int:
        """Re-queue failed tasks (and the phases they skipped); how many failed ones."""
        return await self._write(ops.retry_failed)

    async def fail_account(self, phase: int, account_id: str, code: str, message: str) -> int:
        """Fail every unfinished task of *phase* in *account_id*; how many."""
        return await self._write(ops.fail_account, phase, account_id, code, message)

    # -- claims: one process holds the file, so they are a cursor ---------------------------

    async def claim(self, phase: int, limit: int, account_id: str | None = None) -> list[WorkItem]:
        """The next *limit* pending tasks of *phase* (of *account_id*) this sweep has not
        handed out; an empty answer ends the sweep, and the next claim starts over."""
        cursor = (phase, account_id)
        after = self._claimed_up_to.get(cursor, 0)
        page = await self._read(ops.pending_page, phase, after, limit, account_id)
        if page:
            self._claimed_up_to[cursor] = page[-1].item_id
        else:
            self._claimed_up_to.pop(cursor, None)
        return page

    async def take_over(self, phase: int) -> list[WorkItem]:
        """What a killed run left in flight in *phase*: on the first call per phase only
        (later, tasks in flight are this run's own)."""
        if phase in self._taken_over:
            return []
        self._taken_over.add(phase)
        return await self._read(ops.in_flight, phase)

    async def release(self) -> None:
        """Start every sweep over: pending tasks are handed out again."""
        self._claimed_up_to.clear()

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
        await self._write(ops.set_user_ids, found)

    async def add_directory(self, account_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Remember ``(email, user_id)`` pairs scanned from *account_id*."""
        await self._write(ops.add_directory, account_id, pairs)

    async def resolve_from_directory(self, account_id: str, phase: int) -> int:
        """Resolve *account_id*'s items from its directory, then forget it; how many."""
        return await self._write(ops.resolve_from_directory, account_id, phase)

    async def fail_unresolved(self, phase: int) -> int:
        """Fail (``NotFound``) pending tasks of *phase* without a user id; how many."""
        return await self._write(ops.fail_unresolved, phase)

    # -- before-images -----------------------------------------------------------------------

    async def add_before_images(self, account_id: str, pairs: ImagePairs) -> None:
        """Remember ``(subject, image)`` pairs of *account_id*; the first of a subject wins."""
        await self._write(images.add_before_images, account_id, list(pairs))

    def before_images(self) -> AsyncIterator[BeforeImage]:
        """Every before-image, in (account, subject) order, read in pages."""
        return paged_images(self._read, images.before_images_page)

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


# -- opening, on the store's thread ----------------------------------------------------------


def _guarded(location: str, db: Connection, call: Callable[[], _T]) -> _T:
    """*call* on *db*, with a full disk turned into :class:`~bulkchime.errors.DiskFull`
    (its transaction rolled back: what was committed before stays)."""
    try:
        return call()
    except sqlite3.OperationalError as error:
        if not _disk_full(error):
            raise
        if db.in_transaction:  # SQLite may have ended it
            db.execute("ROLLBACK")
        raise DiskFull(location, str(error)) from None


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def _open(path: Path, location: str, lock: bool) -> tuple[Connection, LockFile | None]:
    """Check, lock, connect and migrate; a full disk is :class:`~bulkchime.errors.DiskFull`."""
    try:
        return _open_checked(path, location, lock)
    except (OSError, sqlite3.Error) as error:
        if _disk_full(error):
            raise DiskFull(location, str(error)) from None
        raise


def _open_checked(path: Path, location: str, lock: bool) -> tuple[Connection, LockFile | None]:
    """Check, lock, connect and migrate; on any failure undo what was done."""
    check_header(path, location)
    if not lock and not path.exists():
        raise JobError(f"there is no checkpoint at {location}. {NOT_A_CHECKPOINT_HINT}")
    held = LockFile.acquire(path, location) if lock else None
    try:
        return _connect(path, location, writable=lock), held
    except BaseException:
        if held is not None:
            # A refused file keeps no lock file beside it unless it had one already.
            held.release(unlink=held.created)
        raise


def _connect(path: Path, location: str, *, writable: bool) -> Connection:
    if not path.exists():
        # Owner-only from the first byte: the file names users and accounts. SQLite
        # gives the -wal and -shm files the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Before anything writes (even the journal mode): refuses what is not ours.
        prepare(db, location, writable=writable)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as error:
        db.close()
        if _disk_full(error):
            raise
        if type(error) is sqlite3.DatabaseError:  # not a database, or a damaged one
            raise not_a_checkpoint(location, str(error)) from None
        raise JobError(f"cannot open checkpoint {location}: {error}") from None
    except BaseException:
        db.close()
        raise
    return db


def _abandon(future: Future[tuple[Connection, LockFile | None]]) -> None:
    """Close what an open whose caller went away opened (on the store's thread)."""
    if future.cancelled() or future.exception() is not None:
        return
    db, held = future.result()
    try:
        db.close()
    finally:
        if held is not None:
            held.release()
