"""What the PostgreSQL store does beyond the contract: several runners on one job.

Two stores opened on one job are two runners, as two processes would be. Leases are
made short (``lease_seconds=0.3``) where a test needs one to lapse; a server that
stops answering is a TCP proxy in front of the real one, stopped and started again
(the real server is never touched). Every job a test makes is deleted after it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from structlog.testing import capture_logs

from bulkchime.errors import (
    CheckpointMismatch,
    JobAborted,
    JobError,
    LeaseLost,
    StoreUnavailable,
)
from bulkchime.store import ItemRecord, State, TaskOutcome, WorkItem, open_store
from bulkchime.store._pg_url import parse_postgres_url
from bulkchime.store.postgres import PostgresStore

from .servers import require_postgres, unique_name
from .tcp_proxy import TcpProxy as Proxy

JOB = {"actions": ["suspend"], "input": "users.csv", "input_sha256": "1"}

OpenRunner = Callable[..., Awaitable[PostgresStore]]


def user(key: str, line: int | None = None) -> ItemRecord:
    """An item keyed by user id in account ``acc``."""
    return ItemRecord(line=line, key=key, raw_key=key, account_id="acc", user_id=key)


def reach(url: str, *, port: int | None = None, password: str | None = None) -> str:
    """*url* with another port, or a password."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    auth = parts.username or ""
    if password is not None:
        auth += f":{password}"
    netloc = f"{auth}@{host}:{port or parts.port or 5432}" if auth else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def with_job(url: str, job: str, **settings: str) -> str:
    """*url* naming *job* (and libpq *settings*)."""
    query = "&".join([*(f"{k}={v}" for k, v in settings.items()), f"job={job}"])
    return f"{url}{'&' if '?' in url else '?'}{query}"


async def drop_job(db: psycopg.AsyncConnection[Any], job: str) -> None:
    """Delete every row of *job* (the tables may not exist yet)."""
    cursor = await db.execute("SELECT to_regclass('bulkchime_jobs') IS NOT NULL")
    row = await cursor.fetchone()
    if not (row and row[0]):
        return
    async with db.transaction():
        cursor = await db.execute("SELECT id FROM bulkchime_jobs WHERE name = %s", (job,))
        found = await cursor.fetchone()
        if found is None:
            return
        for table in ("tasks", "items", "directory", "info", "runners"):
            await db.execute(f"DELETE FROM bulkchime_{table} WHERE job_id = %s", found)
        await db.execute("DELETE FROM bulkchime_jobs WHERE id = %s", found)


@pytest.fixture
async def db() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of the test's own to the test database."""
    conn = await psycopg.AsyncConnection.connect(require_postgres(), autocommit=True)
    yield conn
    await conn.close()


@pytest.fixture
async def open_runner(db: psycopg.AsyncConnection[Any]) -> AsyncIterator[OpenRunner]:
    """Opens runners (``open_runner(job, url=..., **options)``); closes them and deletes
    their jobs afterwards."""
    opened: list[PostgresStore] = []
    jobs: set[str] = set()

    async def open_(job: str, *, url: str | None = None, **options: Any) -> PostgresStore:
        jobs.add(job)
        store = await PostgresStore.open(with_job(url or require_postgres(), job), **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()
    for job in jobs:
        await drop_job(db, job)


@pytest.fixture
def job() -> str:
    return unique_name("pg")


async def ingested(store: PostgresStore, keys: list[str]) -> list[WorkItem]:
    """A new job of *keys*; its tasks, claimed and released again."""
    assert await store.check_job(JOB) is True
    await store.ingest(["suspend"], [user(key, n) for n, key in enumerate(keys, 2)])
    items = await store.claim(0, 1000)
    await store.release()
    return items


# -- the schema --------------------------------------------------------------------------------


@pytest.fixture
async def fresh_schema(db: psycopg.AsyncConnection[Any]) -> AsyncIterator[str]:
    """The URL of an empty PostgreSQL schema of the test database (dropped afterwards)."""
    schema = unique_name("bulkchime_test").replace("-", "_")
    await db.execute(f"CREATE SCHEMA {schema}")
    yield f"{require_postgres()}?options=-csearch_path%3D{schema}"
    await db.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_runners_starting_together_create_the_schema_once(
    fresh_schema: str, db: psycopg.AsyncConnection[Any]
) -> None:
    stores = await asyncio.gather(
        *(PostgresStore.open(with_job(fresh_schema, f"j{n}")) for n in range(3))
    )
    for store in stores:
        await store.close()
    schema = fresh_schema.rsplit("%3D", 1)[1]
    cursor = await db.execute(f"SELECT version FROM {schema}.bulkchime_schema")
    assert await cursor.fetchall() == [(2,)]


async def test_a_version_1_schema_is_migrated_in_place_and_keeps_its_jobs(
    fresh_schema: str, db: psycopg.AsyncConnection[Any]
) -> None:
    store = await PostgresStore.open(with_job(fresh_schema, "old"))
    await store.check_job({"actions": ["suspend"], "input": "users.csv"})
    await store.close()
    schema = fresh_schema.rsplit("%3D", 1)[1]
    await db.execute(f"DROP TABLE {schema}.bulkchime_before_images")
    await db.execute(f"UPDATE {schema}.bulkchime_schema SET version = 1")

    store = await PostgresStore.open(with_job(fresh_schema, "old"))
    try:
        assert await store.job_meta() == {"actions": ["suspend"], "input": "users.csv"}
        await store.add_before_images("acc", [("u1", {"LicenseType": "Basic"})])
        assert [i async for i in store.before_images()] == [("acc", "u1", {"LicenseType": "Basic"})]
    finally:
        await store.close()
    cursor = await db.execute(f"SELECT version FROM {schema}.bulkchime_schema")
    assert await cursor.fetchall() == [(2,)]


async def test_a_schema_written_by_a_newer_bulkchime_is_refused_untouched(
    fresh_schema: str, db: psycopg.AsyncConnection[Any]
) -> None:
    await (await PostgresStore.open(with_job(fresh_schema, "a"))).close()
    schema = fresh_schema.rsplit("%3D", 1)[1]
    await db.execute(f"UPDATE {schema}.bulkchime_schema SET version = 99")
    for lock in (True, False):
        with pytest.raises(JobError, match="newer bulkchime.*version 99"):
            await PostgresStore.open(with_job(fresh_schema, "a"), lock=lock)
    cursor = await db.execute(f"SELECT version FROM {schema}.bulkchime_schema")
    assert await cursor.fetchall() == [(99,)]


# -- several runners ---------------------------------------------------------------------------


async def test_two_runners_claim_disjoint_sets_that_cover_every_task(
    open_runner: OpenRunner, job: str
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    await ingested(first, [f"u{n:03}" for n in range(300)])
    assert await second.check_job(JOB) is False

    async def drain(store: PostgresStore) -> list[int]:
        taken: list[int] = []
        while page := await store.claim(0, 7):
            taken += [item.item_id for item in page]
            await asyncio.sleep(0)
        return taken

    a, b = await asyncio.gather(drain(first), drain(second))
    assert a and b and not set(a) & set(b)
    assert sorted(a + b) == list(range(1, 301))
    assert await first.others_busy(0) is True  # the second holds its claims
    await second.release()
    assert await first.others_busy(0) is False  # released claims are nobody's


async def test_a_task_taken_over_is_neither_sent_nor_recorded_by_its_old_runner(
    open_runner: OpenRunner, job: str
) -> None:
    old = await open_runner(job, lease_seconds=0.3)
    new = await open_runner(job)
    a, b, c = await ingested(old, ["a", "b", "c"])
    assert await old.claim(0, 3) == [a, b, c]
    await old.mark_in_flight([a])
    await asyncio.sleep(0.4)  # the old runner's lease lapses: no heartbeat
    assert await new.take_over(0) == [a]  # in flight: the new runner's, to re-send
    assert [item.key for item in await new.claim(0, 10)] == ["b", "c"]  # pending: freed
    with pytest.raises(LeaseLost):
        await old.mark_in_flight([b])
    with pytest.raises(LeaseLost):  # every item, or none: c is still the new runner's
        await old.mark_in_flight([c])
    await old.record([TaskOutcome(a.item_id, 0, State.FAILED, "X", "late")])
    assert await new.phase_counts(0) == {State.IN_FLIGHT: 1, State.PENDING: 2}
    assert await old.renew_lease(1) is False
    await old.rejoin()
    assert await old.renew_lease(1) is True
    await new.record([TaskOutcome(a.item_id, 0, State.DONE)])
    await new.release()
    assert [item.key for item in await old.claim(0, 10)] == ["b", "c"]
    await old.mark_in_flight([b])
    await old.record([TaskOutcome(b.item_id, 0, State.DONE)])
    assert await old.counts() == {"succeeded": 2, "pending": 1}


async def test_record_applies_only_tasks_this_runner_holds_and_counts_them(
    open_runner: OpenRunner, job: str
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    a, b, c = await ingested(first, ["a", "b", "c"])
    await first.claim(0, 1)
    await second.claim(0, 1)
    await second.mark_in_flight([b])
    await first.record(
        [
            TaskOutcome(a.item_id, 0, State.DONE),
            TaskOutcome(b.item_id, 0, State.DONE),  # the second runner's: ignored
            TaskOutcome(c.item_id, 0, State.PENDING, "Throttled", "later", sends=2),
        ]
    )
    assert await first.phase_counts(0) == {
        State.DONE: 1,
        State.IN_FLIGHT: 1,
        State.PENDING: 1,
    }
    done = {r.runner_id: r.items_done for r in await first.runners()}
    assert sorted(done.values()) == [0, 1]
    assert await first.total_attempts() == 3  # a's 1 and c's 2; b's was not recorded


async def test_a_runner_that_closes_hands_its_claims_over_at_once(
    open_runner: OpenRunner, job: str
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    a, b, c, d = await ingested(first, ["a", "b", "c", "d"])
    assert await first.claim(0, 4) == [a, b, c, d]
    await first.mark_in_flight([b, d])
    assert await second.claim(0, 4) == []
    await first.close()  # its lease has 30 s to run: nobody waits for it
    assert await second.take_over(0) == [b, d]
    assert await second.claim(0, 4) == [a, c]
    assert {r.state for r in await second.runners()} == {"left", "running"}


async def test_the_second_runner_waits_for_the_first_runner_s_ingest(
    open_runner: OpenRunner, job: str
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    assert await first.check_job(JOB) is True
    waiting = asyncio.create_task(second.check_job(JOB))
    await first.ingest_chunk(["suspend"], [user("a"), user("b")])
    await asyncio.sleep(0.4)
    assert not waiting.done()
    await first.finish_ingest()
    assert await asyncio.wait_for(waiting, 2) is False
    with pytest.raises(CheckpointMismatch, match="input_sha256"):
        await second.check_job({**JOB, "input_sha256": "2"})


async def test_a_runner_takes_over_the_ingest_of_one_that_died_doing_it(
    open_runner: OpenRunner, job: str
) -> None:
    dead = await open_runner(job, lease_seconds=0.3)
    taker = await open_runner(job)
    assert await dead.check_job(JOB) is True
    await dead.ingest_chunk(["suspend"], [user("a"), user("b")])
    await asyncio.sleep(0.4)  # its lease lapses before it finishes
    assert await asyncio.wait_for(taker.check_job(JOB), 2) is True
    assert await taker.ingest(["suspend"], [user("a"), user("b"), user("c")]) == 3
    assert await taker.counts() == {"pending": 3}  # started again, not added to
    with pytest.raises(JobAborted, match="took over reading the input"):
        await dead.ingest_chunk(["suspend"], [user("d")])
    assert await dead.check_job(JOB) is False


async def test_the_ingest_of_a_runner_that_left_is_taken_over_without_waiting(
    open_runner: OpenRunner, job: str
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    assert await first.check_job(JOB) is True
    await first.close()
    assert await asyncio.wait_for(second.check_job(JOB), 1) is True


async def test_a_job_wide_lock_makes_the_second_holder_wait(
    open_runner: OpenRunner, job: str
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    entered = asyncio.Event()

    async def second_holder() -> None:
        async with second.exclusive("prepare-0"):
            entered.set()

    async with first.exclusive("prepare-0"):
        waiting = asyncio.create_task(second_holder())
        await asyncio.sleep(0.4)
        assert not entered.is_set()
        async with second.exclusive("prepare-1"):  # another lock: free
            pass
    await asyncio.wait_for(waiting, 2)
    assert entered.is_set()


async def test_runners_lists_each_runner_newest_first_with_its_state(
    open_runner: OpenRunner, job: str
) -> None:
    first = await open_runner(job)
    second = await open_runner(job, lease_seconds=0.3)
    third = await open_runner(job)
    await third.close()
    await asyncio.sleep(0.4)
    listed = await first.runners()
    assert [r.state for r in listed] == ["left", "lapsed", "running"]
    assert all(r.pid == os.getpid() and r.host for r in listed)
    assert listed[1].heartbeat_age >= 0.3 and listed[2].heartbeat_age >= 0.3
    assert await first.renew_lease(5) is True
    assert (await first.runners())[2].heartbeat_age < 0.3
    assert await second.take_over(0) == []  # a lapsed runner still takes over, as itself


async def test_discard_keeps_a_job_another_runner_is_on(
    open_runner: OpenRunner, job: str, db: psycopg.AsyncConnection[Any]
) -> None:
    first, second = await open_runner(job), await open_runner(job)
    await ingested(first, ["a"])
    await first.close(discard=True)
    assert await second.counts() == {"pending": 1}
    await second.close(discard=True)
    cursor = await db.execute("SELECT count(*) FROM bulkchime_jobs WHERE name = %s", (job,))
    assert await cursor.fetchone() == (0,)


# -- opening -------------------------------------------------------------------------------


async def test_reading_a_job_that_does_not_exist_is_a_job_error_and_creates_nothing(
    db: psycopg.AsyncConnection[Any], job: str
) -> None:
    url = with_job(require_postgres(), job)
    with pytest.raises(JobError, match=f"no job '{job}' at postgresql://") as raised:
        await open_store(url, lock=False)
    assert url in str(raised.value)
    cursor = await db.execute("SELECT count(*) FROM bulkchime_jobs WHERE name = %s", (job,))
    assert await cursor.fetchone() == (0,)


async def test_a_reader_reads_alongside_the_runners_and_writes_nothing(
    open_runner: OpenRunner, job: str
) -> None:
    runner = await open_runner(job)
    await ingested(runner, ["a"])
    reader = await open_store(runner.location, lock=False)
    try:
        assert await reader.counts() == {"pending": 1}
        assert await reader.holder() == os.getpid()
        assert len(await reader.runners()) == 1
        with pytest.raises(RuntimeError, match="reading only"):
            await reader.claim(0, 1)
    finally:
        await reader.close()
    await runner.close()
    reader = await open_store(runner.location, lock=False)
    try:
        assert await reader.holder() is None
    finally:
        await reader.close()


async def test_the_job_defaults_to_the_caller_s_name_and_the_location_names_it(
    open_runner: OpenRunner, db: psycopg.AsyncConnection[Any]
) -> None:
    name = unique_name("default")
    store = await open_store(require_postgres(), default_job=name)
    try:
        assert isinstance(store, PostgresStore)
        assert store.location == with_job(require_postgres(), name)
        assert store.shared is True
    finally:
        await store.close(discard=True)
    await drop_job(db, name)


async def test_a_password_in_the_url_never_shows(open_runner: OpenRunner, job: str) -> None:
    url = reach(require_postgres(), password="s3cret%21pw")
    assert "s3cret" in url
    store = await open_runner(job, url=url)
    assert "s3cret" not in store.location and "s3cret" not in repr(store)
    assert store.location == with_job(require_postgres(), job)
    refused = reach(url, port=1)
    with pytest.raises(JobError) as raised:
        await open_store(with_job(refused, job))
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "location", "server"),
    [
        (
            "postgresql://bc:pw@db.internal:6543/jobs?job=offboarding&sslmode=require",
            "postgresql://bc@db.internal:6543/jobs?sslmode=require&job=offboarding",
            "db.internal:6543/jobs",
        ),
        (
            "postgres://bc@db/jobs?password=pw",
            "postgres://bc@db/jobs?job=users",
            "db:5432/jobs",
        ),
    ],
)
def test_the_url_names_the_job_and_shows_no_password(url: str, location: str, server: str) -> None:
    address = parse_postgres_url(url, default_job="users")
    assert (address.location, address.server) == (location, server)
    assert "pw" not in repr(address) and "pw" in address.conninfo
    assert "job=" not in address.conninfo and "connect_timeout=10" in address.conninfo
    assert address.scrub("password pw refused") == "password *** refused"
    for bad in ("postgresql://h/db?job=", "postgresql://h/db?job=a&job=b", "postgresql://h:x/db"):
        with pytest.raises(JobError, match="HINT"):
            parse_postgres_url(bad)


async def test_a_server_that_does_not_answer_at_open_is_a_job_error_with_a_hint(job: str) -> None:
    url = with_job(reach(require_postgres(), port=1), job)
    with pytest.raises(JobError, match=r":1/\w+ \(job .*HINT: .*nothing was sent"):
        await open_store(url)


async def test_without_psycopg_a_postgres_url_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in [
        m for m in sys.modules if m.startswith(("bulkchime.store.postgres", "bulkchime.store._pg"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(JobError, match=r"pip install 'bulkchime\[scale\]'"):
        await open_store("postgresql://postgres@127.0.0.1:1/test?job=x")
    store = await open_store(tmp_path / "x.ckpt.sqlite")  # SQLite needs no psycopg
    await store.close()


# -- a server that stops answering ---------------------------------------------------------------


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    parts = urlsplit(require_postgres())
    running = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await running.start()
    yield running
    await running.stop()


def through(proxy: Proxy, password: str | None = None) -> str:
    """The test database's URL, through *proxy*."""
    return reach(require_postgres(), port=proxy.port, password=password)


async def test_a_server_that_stays_unreachable_stops_the_job_resumable(
    open_runner: OpenRunner, job: str, proxy: Proxy
) -> None:
    store = await open_runner(job, url=through(proxy, "hush"), unavailable_after=0.6)
    await ingested(store, ["a"])
    await proxy.stop()
    with capture_logs() as logs:
        started = asyncio.get_running_loop().time()
        with pytest.raises(StoreUnavailable) as raised:
            await store.counts()
        assert 0.5 < asyncio.get_running_loop().time() - started < 2.5
    error = raised.value
    assert isinstance(error, JobAborted)
    message = str(error)
    assert f":{proxy.port}/" in message and job in message
    assert "Run the same command again" in message and "hush" not in message
    assert [e["event"] for e in logs] == ["store.unreachable"]
    with pytest.raises(psycopg.OperationalError):  # the heartbeat raises at once
        await asyncio.wait_for(store.renew_lease(0), 2)


async def test_a_server_that_comes_back_is_reconnected_and_the_call_goes_on(
    open_runner: OpenRunner, job: str, proxy: Proxy
) -> None:
    store = await open_runner(job, url=through(proxy), unavailable_after=10)
    (a,) = await ingested(store, ["a"])
    await proxy.stop()
    with capture_logs() as logs:
        recording = asyncio.create_task(store.record([TaskOutcome(a.item_id, 0, State.DONE)]))
        await asyncio.sleep(0.5)
        assert not recording.done()
        await proxy.start()
        await asyncio.wait_for(recording, 5)
    assert [e["event"] for e in logs] == ["store.unreachable", "store.reconnected"]
    assert await store.counts() == {"succeeded": 1}
    assert await store.total_attempts() == 1
    assert await store.renew_lease(1) is True  # the heartbeat's connection, made again
