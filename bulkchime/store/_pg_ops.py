"""The PostgreSQL store's work on one job: the job itself, the queue, resolution, reading.

Each function takes a connection (autocommit: a function that writes more than one
statement opens its transaction) and the store's :class:`Scope`, and does one call
of the :class:`~bulkchime.store.CheckpointStore` interface. Each is safe to run
again after its connection failed at any point (the store does, while the server
is unreachable): it sets values rather than adding to them, or, for
:func:`~bulkchime.store._pg_claims.record`, skips what the same call already wrote.
Claims and runners are in :mod:`bulkchime.store._pg_claims`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CheckpointMismatch, JobError
from . import _pg_sql as sql
from ._models import REPORT_STATUS, ReportRecord, State, WorkItem
from ._pg_conn import Conn
from ._rows import report_record, work_item

__all__ = [
    "INPUT_FIELDS",
    "Scope",
    "accounts_pending",
    "add_directory",
    "check_job",
    "counts",
    "error_counts",
    "fail_account",
    "fail_unresolved",
    "fetch_all",
    "fetch_value",
    "info",
    "job_meta",
    "last_errors",
    "pending_by_account",
    "phase_counts",
    "rejected_rows",
    "report_page",
    "resolve_from_directory",
    "retry_failed",
    "runner_live",
    "set_info",
    "set_user_ids",
    "skip_after_failed_phase",
    "total_attempts",
    "unresolved_counts",
    "unresolved_page",
    "update",
]

#: Job fields whose change means the input must be read again.
INPUT_FIELDS = ("input", "input_sha256", "query")


@dataclass(slots=True)
class Scope:
    """Which job a store works on, and as which runner."""

    #: ``bulkchime_jobs.id``.
    job_id: int
    #: The job's name, and the checkpoint's location (no password), for messages.
    job: str
    location: str
    #: This store's runner (``bulkchime_runners.id``); ``None`` for a reader.
    runner: uuid.UUID | None
    lease_seconds: float

    def params(self, **values: Any) -> dict[str, Any]:
        """Statement parameters: the job, the runner, and *values*."""
        return {"job": self.job_id, "me": self.runner, **values}


async def fetch_all(conn: Conn, statement: str, params: Mapping[str, Any]) -> list[Any]:
    """Every row of *statement*."""
    cursor = await conn.execute(statement, params)
    return await cursor.fetchall()


async def fetch_value(conn: Conn, statement: str, params: Mapping[str, Any]) -> Any:
    """The first column of the first row of *statement* (``None`` without rows)."""
    cursor = await conn.execute(statement, params)
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def update(conn: Conn, statement: str, params: Mapping[str, Any]) -> int:
    """Run one writing statement; the rows it changed."""
    cursor = await conn.execute(statement, params)
    return max(cursor.rowcount, 0)


# -- the job ---------------------------------------------------------------------------------


async def job_meta(conn: Conn, scope: Scope) -> dict[str, Any] | None:
    """See :meth:`CheckpointStore.job_meta`."""
    value = await fetch_value(
        conn, "SELECT identity FROM bulkchime_jobs WHERE id = %(job)s", scope.params()
    )
    return None if value is None else dict(value)


async def check_job(
    conn: Conn, scope: Scope, identity: Mapping[str, Any], force: bool, input_changed: bool
) -> tuple[bool | None, bool]:
    """One look at the job for :meth:`CheckpointStore.check_job`: whether to ingest
    (``None``: wait, a live runner is reading the input), and whether a forced change of
    the input was seen (by this look or, *input_changed*, an earlier one)."""
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT identity, ingested, ingester FROM bulkchime_jobs WHERE id = %(job)s FOR UPDATE",
            scope.params(),
        )
        row = await cursor.fetchone()
        if row is None:
            raise JobError(
                f"job {scope.job!r} was deleted from {scope.location} while this run "
                "opened it. HINT: run the same command again"
            )
        stored, ingested, ingester = row
        if stored is None:
            await _take_ingest(conn, scope, _json(identity))
            return True, False
        differences = [
            name
            for name in sorted(set(stored) | set(identity))
            if stored.get(name) != identity.get(name)
        ]
        if differences and not force:
            raise _mismatch(scope, stored, identity, differences)
        input_changed = input_changed or any(name in INPUT_FIELDS for name in differences)
        if ingested == "complete" and not input_changed:
            if differences:
                await _set_identity(conn, scope, _json(identity))
            return False, input_changed
        if ingester not in (None, scope.runner) and await runner_live(conn, ingester):
            if differences:
                await _set_identity(conn, scope, _json(identity))
            return None, input_changed
        await _take_ingest(conn, scope, _json(identity))
        return True, input_changed


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True)


async def _set_identity(conn: Conn, scope: Scope, identity: str) -> None:
    await conn.execute(
        "UPDATE bulkchime_jobs SET identity = %(identity)s::jsonb WHERE id = %(job)s",
        scope.params(identity=identity),
    )


async def _take_ingest(conn: Conn, scope: Scope, identity: str) -> None:
    """Make this runner the job's ingester; a complete input is added to, not read anew."""
    await conn.execute(
        "UPDATE bulkchime_jobs SET identity = %(identity)s::jsonb, ingester = %(me)s, "
        "ingested = CASE WHEN ingested IS NULL THEN NULL ELSE 'adding' END "
        "WHERE id = %(job)s",
        scope.params(identity=identity),
    )


async def runner_live(conn: Conn, runner: uuid.UUID) -> bool:
    """Whether *runner* is running with its lease not lapsed (the database's clock)."""
    return bool(
        await fetch_value(
            conn,
            "SELECT EXISTS (SELECT 1 FROM bulkchime_runners WHERE id = %(runner)s "
            "AND state = 'running' AND lease_until > clock_timestamp())",
            {"runner": runner},
        )
    )


def _mismatch(
    scope: Scope, stored: Mapping[str, Any], identity: Mapping[str, Any], differences: list[str]
) -> CheckpointMismatch:
    details = "; ".join(
        f"{name}: checkpoint has {stored.get(name)!r}, this run has {identity.get(name)!r}"
        for name in differences
    )
    return CheckpointMismatch(
        f"checkpoint {scope.location} was made for another job ({details}). HINT: use "
        "another job name (?job=) or --checkpoint, or --force to continue this checkpoint "
        "with the new job (items already done are not sent again)"
    )


async def set_info(conn: Conn, scope: Scope, name: str, value: Any) -> None:
    """See :meth:`CheckpointStore.set_info`."""
    await conn.execute(
        "INSERT INTO bulkchime_info (job_id, name, value) VALUES (%(job)s, %(name)s, %(value)s) "
        "ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value",
        scope.params(name=name, value=json.dumps(value)),
    )


async def info(conn: Conn, scope: Scope) -> dict[str, Any]:
    """See :meth:`CheckpointStore.info`."""
    rows = await fetch_all(
        conn, "SELECT name, value FROM bulkchime_info WHERE job_id = %(job)s", scope.params()
    )
    return {name: json.loads(value) for name, value in rows}


# -- the work queue ----------------------------------------------------------------------


async def accounts_pending(conn: Conn, scope: Scope, phase: int) -> list[str | None]:
    """See :meth:`CheckpointStore.accounts_pending`."""
    rows = await fetch_all(conn, sql.ACCOUNTS_PENDING, scope.params(phase=phase))
    return [row[0] for row in rows]


async def skip_after_failed_phase(conn: Conn, scope: Scope, phase: int) -> int:
    """See :meth:`CheckpointStore.skip_after_failed_phase`."""
    if phase == 0:
        return 0
    return await update(conn, sql.SKIP_AFTER_FAILED_PHASE, scope.params(phase=phase))


async def retry_failed(conn: Conn, scope: Scope) -> int:
    """See :meth:`CheckpointStore.retry_failed`."""
    async with conn.transaction():
        count = await update(conn, sql.RETRY_FAILED, scope.params())
        await conn.execute(sql.UNSKIP_AFTER_FAILED, scope.params())
    return count


async def fail_account(
    conn: Conn, scope: Scope, phase: int, account_id: str, code: str, message: str
) -> int:
    """See :meth:`CheckpointStore.fail_account`."""
    params = scope.params(phase=phase, account=account_id, code=code, message=message)
    return await update(conn, sql.FAIL_ACCOUNT, params)


# -- resolution --------------------------------------------------------------------------


async def unresolved_counts(conn: Conn, scope: Scope, phase: int) -> dict[str | None, int]:
    """See :meth:`CheckpointStore.unresolved_counts`."""
    rows = await fetch_all(conn, sql.UNRESOLVED_COUNTS, scope.params(phase=phase))
    return {account: n for account, n in rows}


async def unresolved_page(
    conn: Conn, scope: Scope, phase: int, account_id: str | None, after_item: int, limit: int
) -> list[WorkItem]:
    """See :meth:`CheckpointStore.unresolved_page`."""
    params = scope.params(phase=phase, account=account_id, after=after_item, limit=limit)
    return [work_item(row) for row in await fetch_all(conn, sql.UNRESOLVED_PAGE, params)]


async def set_user_ids(
    conn: Conn, scope: Scope, found: Sequence[tuple[int, str, str | None]]
) -> None:
    """See :meth:`CheckpointStore.set_user_ids` (the last triple of an item wins, as if
    each were written in turn). The tasks keep their item's account."""
    latest = {item_id: (user_id, account_id) for item_id, user_id, account_id in found}
    if not latest:
        return
    params = scope.params(
        items=list(latest),
        users=[user_id for user_id, _ in latest.values()],
        accounts=[account_id for _, account_id in latest.values()],
    )
    async with conn.transaction():
        await conn.execute(sql.SET_USER_IDS, params)
        await conn.execute(sql.SET_USER_ID_TASKS, params)


async def add_directory(
    conn: Conn, scope: Scope, account_id: str, pairs: Sequence[tuple[str, str]]
) -> None:
    """See :meth:`CheckpointStore.add_directory` (the last pair of an email wins)."""
    latest = dict(pairs)
    if latest:
        params = scope.params(account=account_id, emails=list(latest), users=list(latest.values()))
        await conn.execute(sql.ADD_DIRECTORY, params)


async def resolve_from_directory(conn: Conn, scope: Scope, account_id: str, phase: int) -> int:
    """See :meth:`CheckpointStore.resolve_from_directory` (*phase* is not needed: user ids
    belong to the item, whatever its phase)."""
    params = scope.params(account=account_id)
    async with conn.transaction():
        resolved = await update(conn, sql.RESOLVE_FROM_DIRECTORY, params)
        await conn.execute(sql.FORGET_DIRECTORY, params)
    return resolved


async def fail_unresolved(conn: Conn, scope: Scope, phase: int) -> int:
    """See :meth:`CheckpointStore.fail_unresolved`."""
    return await update(conn, sql.FAIL_UNRESOLVED, scope.params(phase=phase))


# -- reading -----------------------------------------------------------------------------


async def phase_counts(conn: Conn, scope: Scope, phase: int) -> dict[State, int]:
    """See :meth:`CheckpointStore.phase_counts`."""
    rows = await fetch_all(conn, sql.PHASE_COUNTS, scope.params(phase=phase))
    return {State(state): n for state, n in rows}


async def pending_by_account(conn: Conn, scope: Scope, phase: int) -> dict[str | None, int]:
    """See :meth:`CheckpointStore.pending_by_account`."""
    rows = await fetch_all(conn, sql.PENDING_BY_ACCOUNT, scope.params(phase=phase))
    return {account: n for account, n in rows}


async def rejected_rows(conn: Conn, scope: Scope) -> list[tuple[int | None, str, str]]:
    """See :meth:`CheckpointStore.rejected_rows`."""
    rows = await fetch_all(conn, sql.REJECTED_ROWS, scope.params())
    return [(line, REPORT_STATUS[State(state)], reason) for line, state, reason in rows]


async def counts(conn: Conn, scope: Scope) -> dict[str, int]:
    """See :meth:`CheckpointStore.counts`."""
    rows = await fetch_all(conn, sql.COUNTS, scope.params())
    return {REPORT_STATUS[State(state)]: n for state, n in rows}


async def error_counts(conn: Conn, scope: Scope) -> dict[str, int]:
    """See :meth:`CheckpointStore.error_counts`."""
    return {code: n for code, n in await fetch_all(conn, sql.ERROR_COUNTS, scope.params())}


async def last_errors(conn: Conn, scope: Scope, limit: int) -> list[tuple[str, str, str]]:
    """See :meth:`CheckpointStore.last_errors`."""
    rows = await fetch_all(conn, sql.LAST_ERRORS, scope.params(limit=limit))
    return [(key, code, message) for key, code, message in rows]


async def total_attempts(conn: Conn, scope: Scope) -> int:
    """See :meth:`CheckpointStore.total_attempts`."""
    return int(await fetch_value(conn, sql.TOTAL_ATTEMPTS, scope.params()) or 0)


async def report_page(
    conn: Conn, scope: Scope, after: tuple[int, int], limit: int
) -> tuple[list[ReportRecord], tuple[int, int]]:
    """Up to *limit* report records after ``(item_id, phase)`` *after*, and where the page
    ends (*after* again when there are no more)."""
    params = scope.params(item=after[0], phase=after[1], limit=limit)
    rows = await fetch_all(conn, sql.REPORT_PAGE, params)
    end = (int(rows[-1][0]), int(rows[-1][1])) if rows else after
    return [report_record(row) for row in rows], end
