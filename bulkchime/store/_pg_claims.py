"""Runners, claims and leases: who sends what when several processes share one job.

A runner is a row of ``bulkchime_runners``: registered when a store opens for
writing, its lease (``lease_until``, on the database's clock) renewed by the
heartbeat, ``lapsed`` once another runner saw the lease run out, ``left`` once it
closed. A task a runner claimed carries its id in ``owner`` until the outcome is
final or the claim is released. Two runners never hold one task: claims and
take-overs pick their rows ``FOR UPDATE SKIP LOCKED``, and what is about to be sent
is checked, under row locks, to be still this runner's.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from ..errors import LeaseLost
from . import _pg_sql as sql
from ._models import RunnerInfo, TaskOutcome, WorkItem
from ._pg_conn import Conn
from ._pg_ops import Scope, fetch_all, fetch_value, update
from ._rows import dumps, work_item

log = structlog.get_logger("bulkchime")

__all__ = [
    "claim",
    "discard_job",
    "find_job",
    "holder_pid",
    "leave",
    "lock_key",
    "mark_in_flight",
    "others_busy",
    "record",
    "register",
    "rejoin",
    "release",
    "renew_lease",
    "runners",
    "take_over",
]

_REGISTER = """
    INSERT INTO bulkchime_runners
        (id, job_id, host, pid, started, heartbeat, lease_until, state)
    VALUES (%(me)s, %(job)s, %(host)s, %(pid)s, clock_timestamp(), clock_timestamp(),
            clock_timestamp() + make_interval(secs => %(lease)s), 'running')
    ON CONFLICT (id) DO NOTHING
"""
#: Locks this runner's row against being marked lapsed while its sends are marked.
_MY_STATE = "SELECT state FROM bulkchime_runners WHERE id = %(me)s FOR SHARE"
_RENEW = """
    UPDATE bulkchime_runners
    SET heartbeat = clock_timestamp(),
        lease_until = clock_timestamp() + make_interval(secs => %(lease)s),
        items_done = greatest(items_done, %(done)s)
    WHERE id = %(me)s AND state = 'running'
"""
_LEAVE = (
    "UPDATE bulkchime_runners SET state = 'left', lease_until = clock_timestamp() "
    "WHERE id = %(me)s AND state = 'running'"
)
_LAPSE = """
    UPDATE bulkchime_runners SET state = 'lapsed'
    WHERE job_id = %(job)s AND state = 'running' AND lease_until < clock_timestamp()
      AND id <> %(me)s
    RETURNING host, pid
"""
#: A task's owner is gone unless it is a runner still running (a lapsed lease not yet
#: seen by anyone counts as running until :data:`_LAPSE` marks it).
_GONE = (
    "NOT EXISTS (SELECT 1 FROM bulkchime_runners AS r WHERE r.id = t.owner AND r.state = 'running')"
)
_FREE_GONE_PENDING = f"""
    UPDATE bulkchime_tasks AS t SET owner = NULL
    WHERE t.owner IS NOT NULL AND t.owner <> %(me)s AND t.job_id = %(job)s
      AND t.phase = %(phase)s AND t.state = 'pending' AND {_GONE}
"""
_TAKE_GONE_IN_FLIGHT = f"""
    WITH c AS MATERIALIZED (
        SELECT t.job_id, t.item_id, t.phase FROM bulkchime_tasks AS t
        WHERE t.job_id = %(job)s AND t.phase = %(phase)s AND t.state = 'in_flight'
          AND (t.owner IS NULL OR (t.owner <> %(me)s AND {_GONE}))
        ORDER BY t.item_id
        FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE bulkchime_tasks AS t SET owner = %(me)s
    FROM c, bulkchime_items AS i
    WHERE t.job_id = c.job_id AND t.item_id = c.item_id AND t.phase = c.phase
      AND i.job_id = c.job_id AND i.id = c.item_id
    RETURNING {sql.WORK_ITEM_COLUMNS}
"""
_RUNNERS = """
    SELECT id, host, pid,
           CASE WHEN state = 'running' AND lease_until < clock_timestamp() THEN 'lapsed'
                ELSE state END,
           extract(epoch FROM clock_timestamp() - heartbeat)::float8, items_done
    FROM bulkchime_runners WHERE job_id = %(job)s
    ORDER BY started DESC, id
"""
_LIVE_PID = """
    SELECT pid FROM bulkchime_runners
    WHERE job_id = %(job)s AND state = 'running' AND lease_until > clock_timestamp()
    ORDER BY heartbeat DESC LIMIT 1
"""


# -- the job and its runners -----------------------------------------------------------------


async def find_job(conn: Conn, name: str, *, create: bool) -> int | None:
    """The id of the job called *name*, created first if *create*; ``None`` if missing.

    Created in the transaction that registers the runner (see :func:`register`), so
    that a job being discarded is not joined half way."""
    if create:
        await conn.execute(
            "INSERT INTO bulkchime_jobs (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING",
            {"name": name},
        )
    lock = " FOR SHARE" if create else ""
    return await fetch_value(  # type: ignore[no-any-return]
        conn, f"SELECT id FROM bulkchime_jobs WHERE name = %(name)s{lock}", {"name": name}
    )


async def register(conn: Conn, job: str, runner: uuid.UUID, lease_seconds: float) -> int:
    """Create the job if it is new and register *runner* on it; the job's id."""
    async with conn.transaction():
        job_id = await find_job(conn, job, create=True)
        assert job_id is not None
        params = {
            "me": runner,
            "job": job_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "lease": lease_seconds,
        }
        await conn.execute(_REGISTER, params)
    return job_id


async def rejoin(conn: Conn, scope: Scope, runner: uuid.UUID) -> None:
    """Leave as the old runner (its pending claims released) and join as *runner*."""
    async with conn.transaction():
        await conn.execute(sql.RELEASE, scope.params())
        await conn.execute(_LEAVE, scope.params())
        params = scope.params(
            me=runner, host=socket.gethostname(), pid=os.getpid(), lease=scope.lease_seconds
        )
        await conn.execute(_REGISTER, params)


async def leave(conn: Conn, scope: Scope) -> None:
    """Release this runner's pending claims and mark it ``left``, its lease over now, so
    that what it left in flight can be taken over at once."""
    async with conn.transaction():
        await conn.execute(sql.RELEASE, scope.params())
        await conn.execute(_LEAVE, scope.params())


async def discard_job(conn: Conn, scope: Scope) -> bool:
    """Delete the job's rows unless another runner is on it; whether they were."""
    async with conn.transaction():
        await conn.execute(
            "SELECT 1 FROM bulkchime_jobs WHERE id = %(job)s FOR UPDATE", scope.params()
        )
        others = await fetch_value(
            conn,
            "SELECT count(*) FROM bulkchime_runners WHERE job_id = %(job)s "
            "AND state = 'running' AND lease_until > clock_timestamp() "
            "AND id IS DISTINCT FROM %(me)s",
            scope.params(),
        )
        if others:
            return False
        for table in ("tasks", "items", "directory", "info", "runners", "before_images"):
            await conn.execute(
                f"DELETE FROM bulkchime_{table} WHERE job_id = %(job)s", scope.params()
            )
        await conn.execute("DELETE FROM bulkchime_jobs WHERE id = %(job)s", scope.params())
    return True


async def renew_lease(conn: Conn, scope: Scope, items_done: int) -> bool:
    """See :meth:`CheckpointStore.renew_lease`. The count published never goes down: the
    store's own count (of outcomes recorded) may be ahead of the caller's."""
    params = scope.params(lease=scope.lease_seconds, done=items_done)
    return await update(conn, _RENEW, params) > 0


async def runners(conn: Conn, scope: Scope) -> list[RunnerInfo]:
    """See :meth:`CheckpointStore.runners`."""
    return [
        RunnerInfo(str(runner), host, pid, state, max(0.0, age), done)
        for runner, host, pid, state, age, done in await fetch_all(conn, _RUNNERS, scope.params())
    ]


async def holder_pid(conn: Conn, scope: Scope) -> int | None:
    """The pid of the job's most recently heard-of live runner, or ``None``."""
    return await fetch_value(conn, _LIVE_PID, scope.params())  # type: ignore[no-any-return]


def lock_key(job_id: int, name: str) -> int:
    """The advisory lock of the job-wide lock *name* (a signed 64-bit number)."""
    digest = hashlib.blake2b(f"bulkchime\0{job_id}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# -- claims -----------------------------------------------------------------------------------


async def claim(
    conn: Conn, scope: Scope, phase: int, limit: int, account_id: str | None
) -> list[WorkItem]:
    """See :meth:`CheckpointStore.claim`."""
    statement = sql.CLAIM if account_id is None else sql.CLAIM_IN_ACCOUNT
    params = scope.params(phase=phase, limit=limit, account=account_id)
    rows = await fetch_all(conn, statement, params)
    return sorted((work_item(row) for row in rows), key=lambda item: item.item_id)


async def release(conn: Conn, scope: Scope) -> None:
    """See :meth:`CheckpointStore.release`."""
    await conn.execute(sql.RELEASE, scope.params())


async def mark_in_flight(conn: Conn, scope: Scope, items: Sequence[WorkItem]) -> None:
    """See :meth:`CheckpointStore.mark_in_flight`: all of them, or (``LeaseLost``) none.
    A task already final stays so."""
    if not items:
        return
    params = scope.params(
        items=[item.item_id for item in items], phases=[item.phase for item in items]
    )
    async with conn.transaction():
        state = await fetch_value(conn, _MY_STATE, params)
        if state != "running":
            raise LeaseLost(
                f"this runner of job {scope.job!r} is {state or 'gone'}: its lease lapsed "
                "and other runners may have taken over its claims"
            )
        owners = {owner for (owner,) in await fetch_all(conn, sql.OWNERS_OF, params)}
        others = owners - {None, scope.runner}
        if others:
            raise LeaseLost(
                f"{len(others)} other runner(s) of job {scope.job!r} hold some of the "
                f"{len(items)} item(s) about to be sent: this runner's lease lapsed and "
                "they were taken over"
            )
        await conn.execute(sql.MARK_IN_FLIGHT, params)


async def record(
    conn: Conn, scope: Scope, outcomes: Sequence[TaskOutcome], call: uuid.UUID
) -> None:
    """See :meth:`CheckpointStore.record`. *call* names this call: run again, it skips
    the tasks it already wrote."""
    merged = _merge(outcomes)
    if not merged:
        return
    params = scope.params(
        call=call,
        items=[o.item_id for o in merged],
        phases=[o.phase for o in merged],
        states=[o.state.value for o in merged],
        codes=[o.error_code for o in merged],
        messages=[o.message for o in merged],
        results=[dumps(o.result) for o in merged],
        sends=[o.sends for o in merged],
    )
    await conn.execute(sql.RECORD, params)


def _merge(outcomes: Iterable[TaskOutcome]) -> list[TaskOutcome]:
    """One outcome per task, as if each were applied in turn: the last state, error and
    message, the last result given, every send."""
    merged: dict[tuple[int, int], TaskOutcome] = {}
    for outcome in outcomes:
        key = (outcome.item_id, outcome.phase)
        before = merged.get(key)
        if before is not None:
            outcome = TaskOutcome(
                outcome.item_id,
                outcome.phase,
                outcome.state,
                outcome.error_code,
                outcome.message,
                outcome.result if outcome.result is not None else before.result,
                before.sends + outcome.sends,
            )
        merged[key] = outcome
    return list(merged.values())


async def take_over(conn: Conn, scope: Scope, phase: int) -> list[WorkItem]:
    """See :meth:`CheckpointStore.take_over`: lapse the runners whose lease ran out, free
    the pending claims of runners that are gone, take their tasks in flight."""
    params = scope.params(phase=phase)
    async with conn.transaction():
        lapsed: list[Any] = await fetch_all(conn, _LAPSE, params)
        freed = await update(conn, _FREE_GONE_PENDING, params)
        rows: list[Any] = await fetch_all(conn, _TAKE_GONE_IN_FLIGHT, params)
    for host, pid in lapsed:
        log.warning("runner.lapsed", host=host, pid=pid, reason="its lease ran out")
    if freed or rows:
        log.info("runner.took_over", phase=phase, freed_claims=freed, in_flight=len(rows))
    return sorted((work_item(row) for row in rows), key=lambda item: item.item_id)


async def others_busy(conn: Conn, scope: Scope, phase: int) -> bool:
    """See :meth:`CheckpointStore.others_busy`."""
    return bool(await fetch_value(conn, sql.OTHERS_BUSY, scope.params(phase=phase)))
