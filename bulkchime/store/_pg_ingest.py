"""Ingest into PostgreSQL: chunks of rows by ``COPY``, duplicates marked in one statement.

The input is read a chunk at a time (:data:`INGEST_CHUNK` items, as tuples:
:class:`~bulkchime.store._item_rows.ItemRows`) on a worker thread, where each item
also becomes the row to store, so that neither a huge file nor its parsing blocks the
event loop; the next chunk is read while the last ones are stored,
:data:`CHUNKS_AT_ONCE` at a time on connections of their own (the server's work, its
indexes, is what takes long). Each chunk is one transaction: ``COPY`` of its items,
then of the tasks of those rejected, skipped or done, and the server makes the
pending tasks of the others from the items (one per action phase, ``INSERT ...
SELECT``: no row of them goes over the wire). Item ids are given in input
order before a chunk is stored, so that chunks may commit in any order, and a chunk
run again after its reply was lost sees it was stored and stores nothing twice.

Only the job's ingester (``bulkchime_jobs.ingester``) writes: each chunk checks it
still is, so that a runner whose ingest was taken over (its lease lapsed) stops; it
holds the job's row against a take-over until it commits, but not against the other
chunks being stored (``FOR SHARE``). A
new or restarted ingest clears what a dead one left, as SQLite's does; a changed
input forced onto a complete one is added: its chunks are copied into a temporary
staging table, and one ``INSERT ... SELECT`` leaves out the rows stored before it
began (by their dedupe key) and makes the others' items and tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from ..errors import JobAborted
from . import _pg_sql as sql
from ._item_rows import ItemRow, fields_json, item_row, item_rows
from ._models import ItemRecord, State
from ._pg_conn import Conn, Connections
from ._pg_ops import Scope, fetch_value, runner_live
from ._rows import dumps

__all__ = ["ANALYZE_AFTER", "CHUNKS_AT_ONCE", "INGEST_CHUNK", "PgIngester", "stage_row"]

_PENDING, _DONE = State.PENDING.value, State.DONE.value
_REJECTED, _SKIPPED = State.REJECTED.value, State.SKIPPED.value

#: Records per chunk (one transaction): large enough that a commit costs nothing, small
#: enough that memory stays flat over a million-row file (the chunks stored and the
#: one read are in memory at once: 20,000 cost 13 MB more, and no time).
INGEST_CHUNK = 10_000
#: Chunks stored at once, each on a connection of its own.
CHUNKS_AT_ONCE = 2
#: Items stored by one ingest from which the tables' statistics are refreshed, so that
#: counts and claims are planned for the rows that are there. (The statements that
#: join do not depend on them: they find rows by primary key.)
ANALYZE_AFTER = 10_000

_CREATE_STAGE = """
    CREATE TEMPORARY TABLE bulkchime_stage (
        id bigint, line bigint, key text, raw_key text, account_id text, email text,
        user_id text, fields text, dedupe text, state text, error_code text, message text,
        result text
    ) ON COMMIT DROP
"""
_COPY_STAGE = "COPY bulkchime_stage FROM STDIN"
_COPY_ITEMS = (
    "COPY bulkchime_items (job_id, id, line, key, raw_key, account_id, email, user_id, "
    "fields, dedupe) FROM STDIN"
)
_COPY_TASKS = (
    "COPY bulkchime_tasks (job_id, item_id, phase, action, state, account_id, error_code, "
    "message, result) FROM STDIN"
)
#: The pending tasks of the items ``first`` .. ``last`` but the ``final`` ones, per action
#: phase, from the items the chunk has just copied.
_INSERT_PENDING_TASKS = """
    INSERT INTO bulkchime_tasks (job_id, item_id, phase, action, state, account_id)
    SELECT i.job_id, i.id, a.phase - 1, a.action, 'pending', i.account_id
    FROM bulkchime_items AS i
    CROSS JOIN unnest(%(actions)s::text[]) WITH ORDINALITY AS a(action, phase)
    WHERE i.job_id = %(job)s AND i.id BETWEEN %(first)s AND %(last)s
      AND NOT (i.id = ANY(%(final)s::bigint[]))
    ORDER BY i.id, a.phase
"""
_INSERT_STAGED = """
    WITH new AS (
        INSERT INTO bulkchime_items
            (job_id, id, line, key, raw_key, account_id, email, user_id, fields, dedupe)
        SELECT %(job)s, s.id, s.line, s.key, s.raw_key, s.account_id, s.email, s.user_id,
               s.fields, s.dedupe
        FROM bulkchime_stage AS s
        WHERE %(adding_from)s::bigint IS NULL OR s.dedupe IS NULL OR NOT EXISTS (
            SELECT 1 FROM bulkchime_items AS o
            WHERE o.job_id = %(job)s AND o.id <= %(adding_from)s AND o.dedupe = s.dedupe
        )
        ORDER BY s.id
        RETURNING id
    ), tasks AS (
        INSERT INTO bulkchime_tasks
            (job_id, item_id, phase, action, state, account_id, error_code, message, result)
        SELECT %(job)s, s.id, a.phase - 1, a.action, s.state, s.account_id, s.error_code,
               s.message, s.result
        FROM new JOIN bulkchime_stage AS s ON s.id = new.id
        CROSS JOIN unnest(%(actions)s::text[]) WITH ORDINALITY AS a(action, phase)
        ORDER BY s.id, a.phase
    )
    SELECT count(*) FROM new
"""


class PgIngester:
    """One ingest, from its first chunk to :meth:`finish` (the store keeps one)."""

    def __init__(self) -> None:
        self._started = False
        #: Adding a changed input to a complete one: the last item id stored before.
        self._adding_from: int | None = None
        self._last_id = 0
        self._stored = 0

    async def ingest(
        self,
        conns: Connections,
        scope: Scope,
        actions: Sequence[str],
        records: Iterable[ItemRecord],
    ) -> int:
        """See :meth:`CheckpointStore.ingest`."""
        rows = item_rows(records)
        count = 0
        # The next chunk is read while the last ones are stored (the module docstring).
        reading = asyncio.ensure_future(asyncio.to_thread(_read_chunk, rows, INGEST_CHUNK))
        storing: list[asyncio.Task[int]] = []
        try:
            await self._start(conns, scope)
            while True:
                chunk = await reading
                last = len(chunk) < INGEST_CHUNK
                if not last:
                    reading = asyncio.ensure_future(
                        asyncio.to_thread(_read_chunk, rows, INGEST_CHUNK)
                    )
                first = self._take_ids(len(chunk))
                storing.append(
                    asyncio.create_task(self._store(conns, scope, actions, chunk, first))
                )
                while storing and (last or len(storing) >= CHUNKS_AT_ONCE):
                    count += await storing.pop(0)
                if last:
                    await self.finish(conns, scope)
                    return count
        except BaseException:
            # What was stored stays unfinished: the next ingest starts it again.
            self._started = False
            raise
        finally:
            _abandon(reading)
            for task in storing:
                task.cancel()
            await asyncio.gather(*storing, return_exceptions=True)

    async def chunk(
        self,
        conns: Connections,
        scope: Scope,
        actions: Sequence[str],
        records: Sequence[ItemRecord],
    ) -> int:
        """See :meth:`CheckpointStore.ingest_chunk`."""
        if not self._started:
            await self._start(conns, scope)
        if not records:
            return 0
        first = self._take_ids(len(records))
        staged = [stage_row(item_row(record)) for record in records]
        return await self._store(conns, scope, actions, staged, first)

    async def finish(self, conns: Connections, scope: Scope) -> None:
        """See :meth:`CheckpointStore.finish_ingest`."""
        await conns.run(_finish, scope)
        if self._stored >= ANALYZE_AFTER:
            await conns.run(_analyze)
        self._started = False
        self._adding_from = None
        self._stored = 0

    async def _start(self, conns: Connections, scope: Scope) -> None:
        self._adding_from, self._last_id = await conns.run(_start, scope)
        self._stored = 0
        self._started = True

    def _take_ids(self, count: int) -> int:
        """The first of *count* new item ids, in input order."""
        first = self._last_id + 1
        self._last_id += count
        return first

    async def _store(
        self,
        conns: Connections,
        scope: Scope,
        actions: Sequence[str],
        rows: list[tuple[Any, ...]],
        first: int,
    ) -> int:
        stored: int = await conns.run(_copy_chunk, scope, actions, rows, first, self._adding_from)
        self._stored += stored
        return stored


def _abandon(reading: asyncio.Future[list[tuple[Any, ...]]]) -> None:
    """Drop a read the ingest no longer waits for (its error, if any, was raised or is
    moot: the ingest failed before it)."""
    if not reading.done():
        reading.cancel()
    elif not reading.cancelled():
        reading.exception()


def _read_chunk(rows: Iterator[ItemRow], size: int) -> list[tuple[Any, ...]]:
    """The next *size* rows as staged rows (on a worker thread)."""
    return [stage_row(row) for row in islice(rows, size)]


def stage_row(row: ItemRow) -> tuple[Any, ...]:
    """An item (an :data:`~bulkchime.store._item_rows.ItemRow`) as a row of the staging
    table, less its id."""
    line, key, raw_key, account_id, email, user_id, fields, rejection, result, skip = row
    code: str | None = None
    message: str | None = None
    dedupe: str | None = None
    if rejection:
        state, code, message = _REJECTED, "Rejected", rejection
    elif skip is not None:
        state, (code, message) = _SKIPPED, skip
    else:
        state = _PENDING if result is None else _DONE
        dedupe = f"{account_id or ''}|{key}"
    return (
        line,
        key,
        raw_key,
        account_id,
        email,
        user_id,
        fields_json(fields) if fields else None,
        dedupe,
        state,
        code,
        message,
        dumps(result),
    )


# -- on a connection ----------------------------------------------------------------------


async def _ingesting(conn: Conn, scope: Scope, *, share: bool = False) -> tuple[str | None, Any]:
    """The job's ``ingested`` and ``ingester``, the job's row locked until commit: for
    update, or (*share*: a chunk, which only reads them) against updates only, so that
    the chunks stored at once are not stored one after the other."""
    lock = "SHARE" if share else "UPDATE"
    cursor = await conn.execute(
        f"SELECT ingested, ingester FROM bulkchime_jobs WHERE id = %(job)s FOR {lock}",
        scope.params(),
    )
    row = await cursor.fetchone()
    return (None, None) if row is None else (row[0], row[1])


def _taken_over(scope: Scope) -> JobAborted:
    return JobAborted(
        f"another runner of job {scope.job!r} took over reading the input while this one "
        "could not renew its lease. HINT: run the same command again: it joins the job "
        "as a new runner"
    )


async def _start(conn: Conn, scope: Scope) -> tuple[int | None, int]:
    """Take the ingest and clear a dead one's rows, or, adding to a complete input, note
    where it ended; ``(adding_from, last item id)``."""
    async with conn.transaction():
        ingested, ingester = await _ingesting(conn, scope)
        if ingester not in (None, scope.runner) and await runner_live(conn, ingester):
            raise _taken_over(scope)
        params = scope.params()
        if ingested in ("complete", "adding"):
            await conn.execute(
                "UPDATE bulkchime_jobs SET ingester = %(me)s, ingested = 'adding' "
                "WHERE id = %(job)s",
                params,
            )
            top = int(
                await fetch_value(
                    conn,
                    "SELECT coalesce(max(id), 0) FROM bulkchime_items WHERE job_id = %(job)s",
                    params,
                )
            )
            return top, top
        await conn.execute("UPDATE bulkchime_jobs SET ingester = %(me)s WHERE id = %(job)s", params)
        # A run that died while ingesting left part of the input: start it again.
        await conn.execute("DELETE FROM bulkchime_tasks WHERE job_id = %(job)s", params)
        await conn.execute("DELETE FROM bulkchime_items WHERE job_id = %(job)s", params)
        return None, 0


async def _copy_chunk(
    conn: Conn,
    scope: Scope,
    actions: Sequence[str],
    rows: list[tuple[Any, ...]],
    first: int,
    adding_from: int | None,
) -> int:
    """Store one chunk whose items take the ids from *first*; how many were stored."""
    params = scope.params(
        first=first, last=first + len(rows) - 1, adding_from=adding_from, actions=list(actions)
    )
    async with conn.transaction():
        _, ingester = await _ingesting(conn, scope, share=True)
        if ingester != scope.runner:
            raise _taken_over(scope)
        stored = await fetch_value(
            conn,
            "SELECT count(*) FROM bulkchime_items "
            "WHERE job_id = %(job)s AND id BETWEEN %(first)s AND %(last)s",
            params,
        )
        if stored:  # this chunk was committed, but the reply was lost with the connection
            return int(stored)
        if adding_from is None:
            await _copy_rows(conn, scope, actions, rows, first)
            return len(rows)
        await conn.execute(_CREATE_STAGE, prepare=False)
        async with conn.cursor() as cursor, cursor.copy(_COPY_STAGE) as copy:
            for item_id, row in enumerate(rows, first):
                await copy.write_row((item_id, *row))
        # Without statistics, the planner takes the staged rows for a handful and joins
        # them by nested loops: quadratic in the chunk.
        await conn.execute("ANALYZE bulkchime_stage", prepare=False)
        return int(await fetch_value_unprepared(conn, _INSERT_STAGED, params))


async def _copy_rows(
    conn: Conn, scope: Scope, actions: Sequence[str], rows: list[tuple[Any, ...]], first: int
) -> None:
    """``COPY`` every row into the items (a new input keeps every row: duplicates are
    marked, not dropped), and make a task per action phase of each: the server makes
    the pending ones from the items it has, the others are copied."""
    job = scope.job_id
    final: list[int] = []
    async with conn.cursor() as cursor:
        async with cursor.copy(_COPY_ITEMS) as copy:
            for item_id, row in enumerate(rows, first):
                await copy.write_row((job, item_id, *row[:8]))
                if row[8] != _PENDING:
                    final.append(item_id)
        if final:
            async with cursor.copy(_COPY_TASKS) as copy:
                for item_id in final:
                    row = rows[item_id - first]
                    account_id, (state, code, message, result) = row[3], row[8:]
                    for phase, action in enumerate(actions):
                        await copy.write_row(
                            (job, item_id, phase, action, state, account_id, code, message, result)
                        )
        await cursor.execute(
            _INSERT_PENDING_TASKS,
            scope.params(
                first=first, last=first + len(rows) - 1, final=final, actions=list(actions)
            ),
        )


async def fetch_value_unprepared(conn: Conn, statement: str, params: dict[str, Any]) -> Any:
    """Like :func:`fetch_value`, never as a prepared statement (the staging table is new
    in each transaction)."""
    cursor = await conn.execute(statement, params, prepare=False)
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def _finish(conn: Conn, scope: Scope) -> None:
    """Mark duplicates and the input as read; a finish already committed is not redone."""
    params = scope.params()
    async with conn.transaction():
        ingested, ingester = await _ingesting(conn, scope)
        if ingested == "complete" and ingester is None:
            return
        if ingester != scope.runner:
            raise _taken_over(scope)
        # The dedupe window sorts every item of the job: in memory, not on disk.
        await conn.execute("SET LOCAL work_mem = '128MB'")
        await conn.execute(sql.MARK_DUPLICATES, params)
        await conn.execute(
            "UPDATE bulkchime_jobs SET ingested = 'complete', ingester = NULL WHERE id = %(job)s",
            params,
        )


async def _analyze(conn: Conn) -> None:
    """Refresh the statistics after a large ingest (see :data:`ANALYZE_AFTER`)."""
    await conn.execute("ANALYZE bulkchime_items")
    await conn.execute("ANALYZE bulkchime_tasks")
