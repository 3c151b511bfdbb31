"""The SQLite store's work, synchronous: what runs on the store's own thread.

Each function takes the connection and does one call of the
:class:`~bulkchime.store.CheckpointStore` interface; each one that writes does it in
one transaction. :class:`~bulkchime.store.SQLiteStore` hands them to its thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import CheckpointMismatch
from . import _sqlite_sql as sql
from ._models import REPORT_STATUS, ReportRecord, State, TaskOutcome, WorkItem
from ._sqlite_sql import Connection

__all__ = ["transaction"]

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
