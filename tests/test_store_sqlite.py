"""What the SQLite store does beyond the contract: its file, its lock, its thread, its schema."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulkchime.errors import CheckpointInUse, JobError
from bulkchime.store import ItemRecord, SQLiteStore, State, TaskOutcome, open_store

JOB = {"actions": ["suspend"], "input": "users.csv", "input_sha256": "1"}

#: The first release's schema, exactly as its bulkchime/checkpoint.py wrote it.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id         INTEGER PRIMARY KEY,
    line       INTEGER,
    key        TEXT NOT NULL,
    raw_key    TEXT NOT NULL,
    account_id TEXT,
    email      TEXT,
    user_id    TEXT,
    fields     TEXT,
    dedupe     TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    item_id    INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    action     TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    message    TEXT,
    result     TEXT,
    batch      INTEGER,
    updated    REAL,
    PRIMARY KEY (item_id, phase)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (phase, state, item_id);
"""


def user(key: str, line: int | None = None) -> ItemRecord:
    """An item keyed by user id in account ``acc``."""
    return ItemRecord(line=line, key=key, raw_key=key, account_id="acc", user_id=key)


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of *sql* on the file at *path*, read with a connection of the test's own."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def pragma(path: Path, name: str) -> int:
    """``PRAGMA name`` of the file at *path*."""
    return int(query(path, f"PRAGMA {name}")[0][0])


def columns(path: Path, table: str) -> list[str]:
    """The columns of *table* in the file at *path*."""
    return [row[1] for row in query(path, f"PRAGMA table_info({table})")]


def fingerprint(path: Path) -> tuple[str, int, int]:
    """What would show that a file was written to: its bytes, mode and mtime."""
    info = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mode, info.st_mtime_ns


def store_threads() -> list[threading.Thread]:
    """The live threads of SQLite stores."""
    return [t for t in threading.enumerate() if t.name.startswith("bulkchime-store")]


# -- the lock --------------------------------------------------------------------------------


async def test_a_second_opener_is_refused_naming_the_holder_and_readers_are_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.ckpt.sqlite"
    first = await open_store(path)
    try:
        await first.check_job(JOB)
        await first.ingest(["suspend"], [user("a"), user("b")])
        with pytest.raises(CheckpointInUse, match=f"in use by pid {os.getpid()}; wait for"):
            await open_store(path)
        assert SQLiteStore.lock_holder(path) == os.getpid()
        reader = await open_store(path, lock=False)
        try:
            assert await reader.holder() == os.getpid()
            assert await reader.counts() == {"pending": 2}
            assert len([r async for r in reader.report_records()]) == 2
            with pytest.raises(RuntimeError, match="for reading only"):
                await reader.set_info("started", 1.0)
        finally:
            await reader.close()
        assert await first.holder() == os.getpid()
    finally:
        await first.close()
    assert SQLiteStore.lock_holder(path) is None
    reader = await open_store(path, lock=False)
    try:
        assert await reader.holder() is None
    finally:
        await reader.close()
    again = await open_store(path)
    await again.close()


async def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt.sqlite"
    code = (
        "import asyncio, time\n"
        "from bulkchime.store import open_store\n"
        f"asyncio.run(open_store({str(path)!r}))\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            assert await asyncio.to_thread(child.stdout.readline) == "locked\n"
            assert SQLiteStore.lock_holder(path) == child.pid
            with pytest.raises(CheckpointInUse, match=f"in use by pid {child.pid}"):
                await open_store(path)
        finally:
            child.kill()
    assert SQLiteStore.lock_holder(path) is None
    await (await open_store(path)).close()


async def test_a_reader_needs_an_existing_checkpoint_and_creates_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(JobError, match="no checkpoint at"):
        await open_store(tmp_path / "missing.ckpt.sqlite", lock=False)
    assert list(tmp_path.iterdir()) == []


# -- the files --------------------------------------------------------------------------------


async def test_files_are_private_to_the_owner_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        store = await open_store(tmp_path / "c.sqlite")
    finally:
        os.umask(previous)
    try:
        await store.check_job(JOB)
        await store.ingest(["suspend"], [user("a")])
        reader = await open_store(tmp_path / "c.sqlite", lock=False)
        await reader.counts()
        await reader.close()
        names = {p.name for p in tmp_path.iterdir()}
        assert {"c.sqlite", "c.sqlite-wal", "c.sqlite-shm", "c.sqlite.lock"} <= names
        for name in names:
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode & 0o077 == 0, (name, oct(mode))
    finally:
        await store.close()


async def test_discard_removes_every_file_of_the_checkpoint(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "c.ckpt.sqlite")
    await store.check_job(JOB)
    await store.ingest(["suspend"], [user("a")])
    assert (tmp_path / "c.ckpt.sqlite-wal").exists()
    await store.close(discard=True)
    assert list(tmp_path.iterdir()) == []
    assert SQLiteStore.lock_holder(tmp_path / "c.ckpt.sqlite") is None


async def test_outcomes_and_in_flight_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = await open_store(path)
    await store.check_job(JOB)
    await store.ingest(["suspend"], [user(k) for k in "abc"])
    page = await store.claim(0, 10)
    await store.mark_in_flight(page[:2])
    await store.record([TaskOutcome(page[0].item_id, 0, State.DONE)])
    await store.close()
    store = await open_store(path)
    try:
        assert await store.counts() == {"succeeded": 1, "in_flight": 1, "pending": 1}
        assert [item.key for item in await store.take_over(0)] == ["b"]
        assert [item.key for item in await store.claim(0, 10)] == ["c"]
        assert await store.total_attempts() == 1
    finally:
        await store.close()


# -- the thread ---------------------------------------------------------------------------------


async def test_the_store_thread_ends_with_the_store_and_a_closed_store_refuses_calls(
    tmp_path: Path,
) -> None:
    before = len(store_threads())
    store = await open_store(tmp_path / "c.ckpt.sqlite")
    await store.counts()
    assert len(store_threads()) == before + 1
    await store.close()
    assert len(store_threads()) == before
    with pytest.raises(RuntimeError, match="is closed"):
        await store.counts()


async def test_ingest_commits_chunks_of_5000_while_it_reads(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt.sqlite"
    seen_at: dict[int, int] = {}

    def rows() -> Iterator[ItemRecord]:
        for n in range(16_000):
            if n in (5000, 10_000, 15_000):
                seen_at[n] = query(path, "SELECT count(*) FROM items")[0][0]
            yield user(f"u{n}", n + 2)

    store = await open_store(path)
    try:
        await store.check_job(JOB)
        assert await store.ingest(["suspend"], rows()) == 16_000
    finally:
        await store.close()
    # A chunk is read while the one before it is being committed: whole chunks are in,
    # that one or not yet, and every one before it.
    assert all(seen_at[n] in (n - 5000, n) for n in seen_at), seen_at


async def test_a_cancelled_ingest_stops_reading_at_the_next_chunk(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()
    read = 0

    def rows() -> Iterator[ItemRecord]:
        nonlocal read
        for n in range(50_000):
            if n == 5000:
                loop.call_soon_threadsafe(task.cancel)
                assert cancelled.wait(10)
            read += 1
            yield user(f"u{n}", n + 2)

    store = await open_store(tmp_path / "c.ckpt.sqlite")
    try:
        await store.check_job(JOB)
        task = asyncio.ensure_future(store.ingest(["suspend"], rows()))
        task.add_done_callback(lambda _: cancelled.set())
        with pytest.raises(asyncio.CancelledError):
            await task
        # Queued behind the rest of the chunk being read, which is the last one read.
        assert await store.check_job(JOB) is True
        assert read == 10_000
        assert await store.ingest(["suspend"], [user("a")]) == 1
        assert await store.counts() == {"pending": 1}
    finally:
        await store.close()


# -- schema versions ------------------------------------------------------------------------------


def _write_v1(path: Path) -> None:
    """A checkpoint of the first release, mid-run: done, in flight, pending and failed
    tasks, two phases, as its Checkpoint class wrote them."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(V1_SCHEMA)
    job = {**JOB, "actions": ["logout", "suspend"]}
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("job", json.dumps(job, sort_keys=True)),
            ("schema", "1"),
            ("ingested", "1"),
            ("info.started", "1700000000.0"),
        ],
    )
    db.executemany(
        "INSERT INTO items (id, line, key, raw_key, account_id, email, user_id, fields, "
        "dedupe) VALUES (?, ?, ?, ?, 'acc', NULL, ?, ?, ?)",
        [
            (1, 2, "a", "A", "a", '{"license":"Pro"}', "acc|a"),
            (2, 3, "b", "B", "b", None, "acc|b"),
            (3, 4, "c", "C", "c", None, "acc|c"),
            (4, 5, "d", "D", "d", None, "acc|d"),
        ],
    )
    db.executemany(
        "INSERT INTO tasks (item_id, phase, action, state, attempts, error_code, message, "
        "result, batch, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, 0, "logout", "done", 1, None, None, '{"ok":true}', 1, 10.0),
            (1, 1, "suspend", "in_flight", 0, None, None, None, 3, 12.0),
            (2, 0, "logout", "in_flight", 2, None, None, None, 2, 11.0),
            (2, 1, "suspend", "pending", 0, None, None, None, None, 1.0),
            (3, 0, "logout", "failed", 4, "Throttled", "gave up", None, 1, 10.5),
            (3, 1, "suspend", "skipped", 0, "PreviousPhaseFailed", "not sent", None, None, 1.0),
            (4, 0, "logout", "pending", 0, None, None, None, None, 1.0),
            (4, 1, "suspend", "pending", 0, None, None, None, None, 1.0),
        ],
    )
    db.close()


async def test_a_first_release_checkpoint_is_migrated_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "old.ckpt.sqlite"
    _write_v1(path)
    assert pragma(path, "user_version") == 0
    store = await open_store(path)
    try:
        assert pragma(path, "user_version") == 3
        assert "batch" not in columns(path, "tasks")
        assert columns(path, "directory") == ["account_id", "email", "user_id"]
        job = {**JOB, "actions": ["logout", "suspend"]}
        assert await store.job_meta() == job
        assert await store.check_job(job) is False  # resumes: the input is not read again
        assert await store.info() == {"started": 1700000000.0}
        assert await store.counts() == {
            "succeeded": 1,
            "in_flight": 2,
            "pending": 3,
            "failed": 1,
            "skipped": 1,
        }
        (b,) = await store.take_over(0)
        assert (b.key, b.attempts) == ("b", 2)
        (a,) = await store.take_over(1)
        assert (a.key, a.fields) == ("a", {"license": "Pro"})
        assert [item.key for item in await store.claim(0, 10)] == ["d"]
        await store.mark_in_flight([b])
        await store.record([TaskOutcome(b.item_id, 0, State.DONE, sends=1)])
        assert await store.retry_failed() == 1
        report = [r.as_dict() async for r in store.report_records()]
        assert [(r["key"], r["action"], r["status"]) for r in report] == [
            ("a", "logout", "succeeded"),
            ("a", "suspend", "in_flight"),
            ("b", "logout", "succeeded"),
            ("b", "suspend", "pending"),
            ("c", "logout", "pending"),
            ("c", "suspend", "pending"),
            ("d", "logout", "pending"),
            ("d", "suspend", "pending"),
        ]
        assert report[0]["result"] == {"ok": True} and report[2]["attempts"] == 3
        await store.add_directory("acc", [("x@y", "u")])
    finally:
        await store.close()
    assert query(path, "SELECT value FROM meta WHERE key = 'schema'") == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_reader_reads_a_first_release_checkpoint_without_migrating_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.ckpt.sqlite"
    _write_v1(path)
    reader = await open_store(path, lock=False)
    try:
        assert (await reader.counts())["in_flight"] == 2
        assert len([r async for r in reader.report_records()]) == 8
        assert await reader.last_errors() == [("c", "Throttled", "gave up")]
    finally:
        await reader.close()
    assert pragma(path, "user_version") == 0
    assert "batch" in columns(path, "tasks")


async def test_new_and_empty_files_are_created_at_version_3(tmp_path: Path) -> None:
    (tmp_path / "empty.ckpt.sqlite").touch(mode=0o600)
    for name in ("new.ckpt.sqlite", "empty.ckpt.sqlite"):
        store = await open_store(tmp_path / name)
        await store.close()
        assert pragma(tmp_path / name, "user_version") == 3
        assert "batch" not in columns(tmp_path / name, "tasks")


async def test_a_version_2_checkpoint_is_migrated_by_a_writer_not_by_a_reader(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.ckpt.sqlite"
    store = await open_store(path)
    await store.check_job(JOB)
    await store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE before_images")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()

    reader = await open_store(path, lock=False)  # status, while an older release runs it
    try:
        assert [i async for i in reader.before_images()] == []
    finally:
        await reader.close()
    assert pragma(path, "user_version") == 2

    store = await open_store(path)
    try:
        assert pragma(path, "user_version") == 3
        assert await store.job_meta() == JOB
        await store.add_before_images("acc", [("u1", {"LicenseType": "Basic"})])
        assert [i async for i in store.before_images()] == [("acc", "u1", {"LicenseType": "Basic"})]
    finally:
        await store.close()


async def test_a_checkpoint_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.ckpt.sqlite"
    store = await open_store(path)
    await store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 4")
    db.close()
    before = fingerprint(path)
    for lock in (True, False):
        with pytest.raises(JobError, match="written by a newer bulkchime.*HINT"):
            await open_store(path, lock=lock)
    assert fingerprint(path) == before
    assert SQLiteStore.lock_holder(path) is None


@pytest.mark.parametrize("content", [b"email\nA@example.com\n", b"\x00" * 4096])
async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(content)
    before = fingerprint(path)
    for lock in (True, False):
        with pytest.raises(JobError, match=r"is not a bulkchime checkpoint.*\.ckpt\.sqlite"):
            await open_store(path, lock=lock)
    assert fingerprint(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["users.csv"]


async def test_another_program_s_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE songs (title TEXT)")
    db.commit()
    db.close()
    before = fingerprint(path)
    for lock in (True, False):
        with pytest.raises(JobError, match="another program.*HINT"):
            await open_store(path, lock=lock)
    assert fingerprint(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["other.sqlite"]


async def test_a_directory_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="is a directory"):
        await open_store(tmp_path)


async def test_a_postgres_url_is_not_taken_for_a_file() -> None:
    with pytest.raises(JobError, match="cannot open the PostgreSQL checkpoint at 127.0.0.1:1/"):
        await open_store("postgresql://bulkchime@127.0.0.1:1/checkpoints")
