"""The PostgreSQL checkpoint's tables, versioned, created and migrated on first use.

Every table is prefixed ``bulkchime_`` and holds any number of jobs, told apart by
``job_id`` (``bulkchime_jobs.id``, looked up by the job's name). ``bulkchime_schema``
holds one row, the schema version:

=========  ===========================================================================
version    what the database holds
=========  ===========================================================================
none       no bulkchime tables: a runner creates them (a reader finds no job)
1          the first release's: migrated in place (``bulkchime_before_images`` added)
2          the current schema
above 2    written by a newer bulkchime: refused, untouched
=========  ===========================================================================

Creation and migration run in one transaction under an advisory lock, and look again
once they hold it, so that runners starting together do not race to create tables
(a lost connection releases the lock with its session).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from ..errors import JobError

__all__ = ["MIGRATIONS", "SCHEMA", "SCHEMA_LOCK_KEY", "SCHEMA_VERSION", "prepare"]

#: The version of the schema this code writes.
SCHEMA_VERSION = 2

#: The advisory lock that creation and migration hold ("bkch" + "schm").
SCHEMA_LOCK_KEY = 0x626B6368_7363686D

#: Version 2: what each user or account was before the job changed it (undo, verify).
_BEFORE_IMAGES = """CREATE TABLE bulkchime_before_images (
        job_id     integer NOT NULL,
        account_id text NOT NULL,
        subject    text NOT NULL,
        image      text NOT NULL,
        PRIMARY KEY (job_id, account_id, subject)
    )"""

#: The current schema, created whole in an empty database.
SCHEMA: tuple[str, ...] = (
    "CREATE TABLE bulkchime_schema (version integer NOT NULL)",
    """CREATE TABLE bulkchime_jobs (
        id        serial PRIMARY KEY,
        name      text NOT NULL UNIQUE,
        identity  jsonb,
        -- NULL: the input is not read yet (or a run died reading it); 'adding': a
        -- changed input is being added to a complete one; 'complete'
        ingested  text,
        -- the runner reading the input, while it does
        ingester  uuid,
        created   timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE bulkchime_items (
        job_id     integer NOT NULL,
        id         bigint NOT NULL,
        line       bigint,
        key        text NOT NULL,
        raw_key    text NOT NULL,
        account_id text,
        email      text,
        user_id    text,
        fields     text,
        dedupe     text,
        PRIMARY KEY (job_id, id)
    )""",
    """CREATE TABLE bulkchime_tasks (
        job_id     integer NOT NULL,
        item_id    bigint NOT NULL,
        phase      integer NOT NULL,
        action     text NOT NULL,
        state      text NOT NULL,
        -- the item's account, kept here too so that claims per account use an index
        account_id text,
        -- the runner that claimed the task, until its outcome is final or released
        owner      uuid,
        attempts   integer NOT NULL DEFAULT 0,
        error_code text,
        message    text,
        result     text,
        updated    timestamptz,
        -- the record() call that last wrote the outcome: a retried call skips it
        call_id    uuid,
        PRIMARY KEY (job_id, item_id, phase)
    )""",
    # Claims per account, and every count of a phase's pending or in-flight tasks.
    "CREATE INDEX bulkchime_tasks_claim ON bulkchime_tasks "
    "(job_id, phase, state, owner, account_id, item_id)",
    # Claims over every account, in item order.
    "CREATE INDEX bulkchime_tasks_claimable ON bulkchime_tasks (job_id, phase, item_id) "
    "WHERE state = 'pending' AND owner IS NULL",
    # A runner's claims (release, take-over): few rows at any time.
    "CREATE INDEX bulkchime_tasks_owned ON bulkchime_tasks (owner) WHERE owner IS NOT NULL",
    """CREATE TABLE bulkchime_runners (
        id          uuid PRIMARY KEY,
        job_id      integer NOT NULL,
        host        text NOT NULL,
        pid         integer NOT NULL,
        started     timestamptz NOT NULL,
        heartbeat   timestamptz NOT NULL,
        lease_until timestamptz NOT NULL,
        -- 'running', 'lapsed' (its lease ran out; its claims were taken over), 'left'
        state       text NOT NULL,
        items_done  bigint NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX bulkchime_runners_by_job ON bulkchime_runners (job_id, started)",
    """CREATE TABLE bulkchime_directory (
        job_id     integer NOT NULL,
        account_id text NOT NULL,
        email      text NOT NULL,
        user_id    text NOT NULL,
        PRIMARY KEY (job_id, account_id, email)
    )""",
    """CREATE TABLE bulkchime_info (
        job_id integer NOT NULL,
        name   text NOT NULL,
        value  text NOT NULL,
        PRIMARY KEY (job_id, name)
    )""",
    _BEFORE_IMAGES,
)

#: Statements that bring version N to N + 1, by N.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: (_BEFORE_IMAGES,)}


async def prepare(conn: AsyncConnection[Any], location: str, *, writable: bool) -> bool:
    """Check the schema's version and, if *writable*, create or migrate it; whether the
    tables exist (a reader of an empty database finds none). Raises
    :class:`~bulkchime.errors.JobError` for a schema of a newer bulkchime."""
    version = await _version(conn, location)
    if version == SCHEMA_VERSION or not writable:
        return version is not None
    # The lock first, then a transaction of its own: one that began before the wait
    # could still see the catalog as it was, without the tables the first runner made.
    await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
    try:
        async with conn.transaction():
            version = await _version(conn, location)  # another runner may have been first
            if version is None:
                for statement in SCHEMA:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO bulkchime_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        await conn.execute(statement)
                await conn.execute("UPDATE bulkchime_schema SET version = %s", (SCHEMA_VERSION,))
    finally:
        # A connection left mid-statement (cancelled) is dropped: its session lock goes.
        if not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
    return True


async def _version(conn: AsyncConnection[Any], location: str) -> int | None:
    """The schema's version, ``None`` without bulkchime tables; refuses a newer one."""
    cursor = await conn.execute("SELECT to_regclass('bulkchime_schema') IS NOT NULL")
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return None
    cursor = await conn.execute("SELECT max(version) FROM bulkchime_schema")
    row = await cursor.fetchone()
    version = None if row is None or row[0] is None else int(row[0])
    if version is not None and version > SCHEMA_VERSION:
        raise JobError(
            f"checkpoint {location} was written by a newer bulkchime (schema version "
            f"{version}; this one reads up to {SCHEMA_VERSION}). HINT: run the bulkchime "
            "release that wrote it, or give this run another database or --checkpoint"
        )
    return version
