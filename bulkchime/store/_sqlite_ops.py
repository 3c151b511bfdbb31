"""The SQLite store's work, synchronous: what runs on the store's own thread.

Each function takes the connection and does one call of the
:class:`~bulkchime.store.CheckpointStore` interface; each one that writes does it in
one transaction. :class:`~bulkchime.store.SQLiteStore` hands them to its thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from ..errors import CheckpointMismatch
from . import _sqlite_sql as sql
from ._models import REPORT_STATUS, ItemRecord, ReportRecord, State, TaskOutcome, WorkItem
from ._sqlite_sql import Connection

__all__ = ["INGEST_CHUNK", "Ingester", "transaction"]

#: Records per ingest transaction: large enough to amortise a commit, small enough to
#: keep memory flat over a million-row file.
INGEST_CHUNK = 5000

#: ``meta.ingested``: the input was read completely.
_COMPLETE = "1"
#: ``meta.ingested`` while a forced re-ingest adds a changed input's new rows: a run
#: that dies meanwhile must add the rest on resume, not start the checkpoint afresh.
_ADDING = "adding"

#: Job fields whose change means the input must be read again.
_INPUT_FIELDS = ("input", "input_sha256", "query")


@contextmanager
def transaction(db: Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception (unless SQLite
    rolled back already, as it does when the disk is full)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# -- the job ---------------------------------------------------------------------------


def _meta(db: Connection, key: str) -> str | None:
    row = db.execute(sql.META_GET, (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(db: Connection, values: Mapping[str, str]) -> None:
    """Store *values* in ``meta`` (one transaction)."""
    with transaction(db):
        db.executemany(sql.META_SET, list(values.items()))


def job_meta(db: Connection) -> dict[str, Any] | None:
    """See :meth:`CheckpointStore.job_meta`."""
    value = _meta(db, "job")
    return None if value is None else dict(json.loads(value))


def check_job(db: Connection, location: str, identity: Mapping[str, Any], force: bool) -> bool:
    """See :meth:`CheckpointStore.check_job`; *location* names the checkpoint in errors."""
    stored = job_meta(db)
    if stored is None:
        set_meta(db, {"job": json.dumps(dict(identity), sort_keys=True)})
        return True
    differences = [
        name
        for name in sorted(set(stored) | set(identity))
        if stored.get(name) != identity.get(name)
    ]
    if differences and not force:
        details = "; ".join(
            f"{name}: checkpoint has {stored.get(name)!r}, this run has {identity.get(name)!r}"
            for name in differences
        )
        raise CheckpointMismatch(
            f"checkpoint {location} was made for another job ({details}). HINT: use "
            "another --checkpoint, or --force to continue this checkpoint with the new "
            "job (items already done are not sent again)"
        )
    if differences:
        set_meta(db, {"job": json.dumps(dict(identity), sort_keys=True)})
    input_changed = any(name in _INPUT_FIELDS for name in differences)
    return _meta(db, "ingested") != _COMPLETE or input_changed


def set_info(db: Connection, name: str, value: Any) -> None:
    """See :meth:`CheckpointStore.set_info`."""
    set_meta(db, {f"info.{name}": json.dumps(value)})


def info(db: Connection) -> dict[str, Any]:
    """See :meth:`CheckpointStore.info`."""
    return {key[len("info.") :]: json.loads(value) for key, value in db.execute(sql.INFO_ALL)}


# -- ingest ----------------------------------------------------------------------------


class Ingester:
    """One ingest, from its first chunk to :meth:`finish` (the store keeps one)."""

    def __init__(self) -> None:
        self._started = False
        #: Adding a changed input to a complete one: rows already stored are skipped.
        self._adding = False

    def ingest(
        self,
        db: Connection,
        actions: Sequence[str],
        records: Iterable[ItemRecord],
        stop: threading.Event,
    ) -> int:
        """See :meth:`CheckpointStore.ingest`. *records* is read here, a chunk at a time;
        *stop* (the caller was cancelled) ends it unfinished before the next chunk."""
        count = 0
        rows = iter(records)
        try:
            self._start(db)
            while not stop.is_set():
                chunk = list(islice(rows, INGEST_CHUNK))
                count += self.chunk(db, actions, chunk)
                if len(chunk) < INGEST_CHUNK:
                    self.finish(db)
                    return count
        except BaseException:
            # Whatever was stored stays unfinished: the next ingest starts it again.
            self._started = False
            raise
        self._started = False
        return count

    def _start(self, db: Connection) -> None:
        self._started = True
        if _meta(db, "ingested") in (_COMPLETE, _ADDING):
            self._adding = True
            with transaction(db):
                db.execute(sql.DEDUPE_INDEX)
                db.execute(sql.META_SET, ("ingested", _ADDING))
        else:
            # A run that died while ingesting left part of the input: start it again.
            self._adding = False
            with transaction(db):
                db.execute("DELETE FROM tasks")
                db.execute("DELETE FROM items")

    def chunk(self, db: Connection, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """See :meth:`CheckpointStore.ingest_chunk`."""
        if not self._started:
            self._start(db)
        if not records:
            return 0
        now = time.time()
        items: list[tuple[Any, ...]] = []
        tasks: list[tuple[Any, ...]] = []
        with transaction(db):
            item_id = int(db.execute(sql.MAX_ITEM_ID).fetchone()[0])
            for record in records:
                final = record.rejection or record.skip
                dedupe = None if final else f"{record.account_id or ''}|{record.key}"
                if dedupe is not None and self._adding:
                    if db.execute(sql.DEDUPE_SEEN, (dedupe,)).fetchone():
                        continue
                item_id += 1
                items.append(_item_row(item_id, record, dedupe))
                tasks.extend(_task_rows(item_id, record, actions, now))
            db.executemany(sql.INSERT_ITEM, items)
            db.executemany(sql.INSERT_TASK, tasks)
        return len(items)

    def finish(self, db: Connection) -> None:
        """See :meth:`CheckpointStore.finish_ingest`."""
        with transaction(db):
            db.execute(sql.MARK_DUPLICATES)
            db.execute(sql.META_SET, ("ingested", _COMPLETE))
        self._started = False
        self._adding = False


def _item_row(item_id: int, record: ItemRecord, dedupe: str | None) -> tuple[Any, ...]:
    return (
        item_id,
        record.line,
        record.key,
        record.raw_key,
        record.account_id,
        record.email,
        record.user_id,
        sql.dumps(record.fields),
        dedupe,
    )


def _task_rows(
    item_id: int, record: ItemRecord, actions: Sequence[str], now: float
) -> Iterator[tuple[Any, ...]]:
    if record.rejection:
        state, code, message = State.REJECTED, "Rejected", record.rejection
    elif record.skip is not None:
        state, (code, message) = State.SKIPPED, record.skip
    elif record.result is not None:
        state, code, message = State.DONE, None, None
    else:
        state, code, message = State.PENDING, None, None
    result = sql.dumps(record.result)
    for phase, action in enumerate(actions):
        yield (item_id, phase, action, state.value, code, message, result, now)


# -- the work queue ----------------------------------------------------------------------


def _update(db: Connection, statement: str, *args: Any) -> int:
    with transaction(db):
        return db.execute(statement, args).rowcount


def accounts_pending(db: Connection, phase: int) -> list[str | None]:
    """See :meth:`CheckpointStore.accounts_pending`."""
    return [row[0] for row in db.execute(sql.ACCOUNTS_PENDING, (phase,))]


def pending_page(
    db: Connection, phase: int, after_item: int, limit: int, account_id: str | None
) -> list[WorkItem]:
    """Pending tasks of *phase* after *after_item* (see :meth:`CheckpointStore.claim`)."""
    args = (phase, after_item, account_id, account_id, limit)
    return [sql.work_item(row) for row in db.execute(sql.PENDING_PAGE, args)]


def in_flight(db: Connection, phase: int) -> list[WorkItem]:
    """Tasks of *phase* in flight (see :meth:`CheckpointStore.take_over`)."""
    return [sql.work_item(row) for row in db.execute(sql.IN_FLIGHT, (phase,))]


def mark_in_flight(db: Connection, items: Sequence[WorkItem]) -> None:
    """See :meth:`CheckpointStore.mark_in_flight`."""
    now = time.time()
    with transaction(db):
        db.executemany(sql.MARK_IN_FLIGHT, [(now, item.item_id, item.phase) for item in items])


def record(db: Connection, outcomes: Iterable[TaskOutcome]) -> None:
    """See :meth:`CheckpointStore.record`."""
    now = time.time()
    rows = [
        (
            outcome.state.value,
            outcome.error_code,
            outcome.message,
            sql.dumps(outcome.result),
            outcome.sends,
            now,
            outcome.item_id,
            outcome.phase,
        )
        for outcome in outcomes
    ]
    with transaction(db):
        db.executemany(sql.RECORD, rows)


def skip_after_failed_phase(db: Connection, phase: int) -> int:
    """See :meth:`CheckpointStore.skip_after_failed_phase`."""
    return 0 if phase == 0 else _update(db, sql.SKIP_AFTER_FAILED_PHASE, phase)


def retry_failed(db: Connection) -> int:
    """See :meth:`CheckpointStore.retry_failed`."""
    with transaction(db):
        count = db.execute(sql.RETRY_FAILED).rowcount
        db.execute(sql.UNSKIP_AFTER_FAILED)
    return count


def fail_account(db: Connection, phase: int, account_id: str, code: str, message: str) -> int:
    """See :meth:`CheckpointStore.fail_account`."""
    return _update(db, sql.FAIL_ACCOUNT, code, message, time.time(), phase, account_id)


# -- resolution ------------------------------------------------------------------------


def unresolved_counts(db: Connection, phase: int) -> dict[str | None, int]:
    """See :meth:`CheckpointStore.unresolved_counts`."""
    return {row[0]: row[1] for row in db.execute(sql.UNRESOLVED_COUNTS, (phase,))}


def unresolved_page(
    db: Connection, phase: int, account_id: str | None, after_item: int, limit: int
) -> list[WorkItem]:
    """See :meth:`CheckpointStore.unresolved_page`."""
    args = (phase, account_id, after_item, limit)
    return [sql.work_item(row) for row in db.execute(sql.UNRESOLVED_PAGE, args)]


def set_user_ids(db: Connection, found: Iterable[tuple[int, str, str | None]]) -> None:
    """See :meth:`CheckpointStore.set_user_ids`."""
    rows = [(user_id, account_id, item_id) for item_id, user_id, account_id in found]
    with transaction(db):
        db.executemany(sql.SET_USER_ID, rows)


def add_directory(db: Connection, account_id: str, pairs: Sequence[tuple[str, str]]) -> None:
    """See :meth:`CheckpointStore.add_directory`."""
    with transaction(db):
        db.executemany(sql.ADD_DIRECTORY, [(account_id, email, uid) for email, uid in pairs])


def resolve_from_directory(db: Connection, account_id: str, phase: int) -> int:
    """See :meth:`CheckpointStore.resolve_from_directory` (*phase* is not needed here:
    user ids belong to the item, whatever its phase)."""
    with transaction(db):
        resolved = db.execute(sql.RESOLVE_FROM_DIRECTORY, (account_id,)).rowcount
        db.execute(sql.FORGET_DIRECTORY, (account_id,))
    return resolved


def fail_unresolved(db: Connection, phase: int) -> int:
    """See :meth:`CheckpointStore.fail_unresolved`."""
    return _update(db, sql.FAIL_UNRESOLVED, time.time(), phase)


# -- reading ---------------------------------------------------------------------------


def phase_counts(db: Connection, phase: int) -> dict[State, int]:
    """See :meth:`CheckpointStore.phase_counts`."""
    return {State(state): n for state, n in db.execute(sql.PHASE_COUNTS, (phase,))}


def pending_by_account(db: Connection, phase: int) -> dict[str | None, int]:
    """See :meth:`CheckpointStore.pending_by_account`."""
    return {row[0]: row[1] for row in db.execute(sql.PENDING_BY_ACCOUNT, (phase,))}


def rejected_rows(db: Connection) -> list[tuple[int | None, str, str]]:
    """See :meth:`CheckpointStore.rejected_rows`."""
    rows = db.execute(sql.REJECTED_ROWS)
    return [(line, REPORT_STATUS[State(state)], reason) for line, state, reason in rows]


def counts(db: Connection) -> dict[str, int]:
    """See :meth:`CheckpointStore.counts`."""
    return {REPORT_STATUS[State(state)]: n for state, n in db.execute(sql.COUNTS)}


def error_counts(db: Connection) -> dict[str, int]:
    """See :meth:`CheckpointStore.error_counts`."""
    return {code: n for code, n in db.execute(sql.ERROR_COUNTS)}


def last_errors(db: Connection, limit: int) -> list[tuple[str, str, str]]:
    """See :meth:`CheckpointStore.last_errors`."""
    return [(key, code, message) for key, code, message in db.execute(sql.LAST_ERRORS, (limit,))]


def total_attempts(db: Connection) -> int:
    """See :meth:`CheckpointStore.total_attempts`."""
    return int(db.execute(sql.TOTAL_ATTEMPTS).fetchone()[0])


def report_page(
    db: Connection, after: tuple[int, int], limit: int
) -> tuple[list[ReportRecord], tuple[int, int]]:
    """Up to *limit* report records after ``(item_id, phase)`` *after*, and where the page
    ends (*after* again when there are no more)."""
    rows = db.execute(sql.REPORT_PAGE, (*after, limit)).fetchall()
    end = (int(rows[-1][0]), int(rows[-1][1])) if rows else after
    return [sql.report_record(row) for row in rows], end
