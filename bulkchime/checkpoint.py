"""The SQLite checkpoint: the engine's queue, its memory across crashes, and the report's source.

One row per input item (``items``) and one per item and action phase (``tasks``).
A task's intent (``in_flight``, with its batch number) is committed before its
request is sent and its outcome after, so a run killed at any instant can be
resumed: ``done``, ``failed``, ``rejected`` and ``skipped`` tasks are never sent
again, ``pending`` ones are, and ``in_flight`` ones are re-sent (idempotent
actions) or checked against the server first (the others).

The store is synchronous and owned by one thread; the engine calls it through a
single-thread executor so that SQLite never blocks the event loop. WAL mode with
``synchronous=NORMAL`` makes every commit survive the death of the process
(only a power cut can take the last few), at the cost of a write to the WAL,
not an fsync.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointInUse, CheckpointMismatch

__all__ = [
    "Checkpoint",
    "ItemRecord",
    "ReportRecord",
    "State",
    "TaskOutcome",
    "WorkItem",
]

_SCHEMA_VERSION = "1"

_SCHEMA = """
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


class State(enum.StrEnum):
    """Where one task (item x action phase) is in its life."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        """Whether the task will not be sent again."""
        return self not in (State.PENDING, State.IN_FLIGHT)


#: How a task state reads in reports.
REPORT_STATUS: Mapping[State, str] = {
    State.PENDING: "pending",
    State.IN_FLIGHT: "in_flight",
    State.DONE: "succeeded",
    State.FAILED: "failed",
    State.REJECTED: "rejected",
    State.SKIPPED: "skipped",
}


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One input row as it is ingested."""

    line: int | None
    key: str
    raw_key: str
    account_id: str | None = None
    email: str | None = None
    user_id: str | None = None
    fields: Mapping[str, Any] | None = None
    #: Why the row cannot be sent; ``None`` for a valid row.
    rejection: str | None = None
    #: Final outcome known at ingest (export rows are done when read).
    result: Mapping[str, Any] | None = None


@dataclass(slots=True)
class WorkItem:
    """A task the engine is about to send, with what it needs to build the request."""

    item_id: int
    phase: int
    key: str
    account_id: str | None
    email: str | None
    user_id: str | None
    fields: Mapping[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What happened to one task; applied to the checkpoint in bulk."""

    item_id: int
    phase: int
    state: State
    error_code: str | None = None
    message: str | None = None
    result: Mapping[str, Any] | None = None
    #: Sends this outcome adds to the task's attempts.
    sends: int = 1


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One row of the per-item report."""

    line: int | None
    key: str
    action: str
    account_id: str | None
    user_id: str | None
    email: str | None
    status: str
    error_code: str | None
    message: str | None
    attempts: int
    result: Mapping[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """The record as the report's JSON object (``result`` only when present)."""
        record: dict[str, Any] = {
            "line": self.line,
            "key": self.key,
            "action": self.action,
            "account_id": self.account_id,
            "user_id": self.user_id,
            "email": self.email,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "attempts": self.attempts,
        }
        if self.result:
            record["result"] = dict(self.result)
        return record


def _dumps(value: Mapping[str, Any] | None) -> str | None:
    return None if not value else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _loads(value: str | None) -> dict[str, Any]:
    return {} if not value else dict(json.loads(value))


class Checkpoint:
    """A checkpoint file: open it, ingest items, hand out work, record outcomes.

    ``Checkpoint(path)`` opens (or creates) the file and takes its lock; a second
    live process gets :class:`~bulkchime.errors.CheckpointInUse`. A lock left by
    a killed process is released by the kernel with the process, so it never goes
    stale. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._closed = False
        self._adding = False
        self._ingesting = False
        if lock:
            self._take_lock()
        existed = self.path.exists()
        try:
            if not existed:
                # Owner-only from the first byte: the file names users and accounts.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except BaseException:
            self._release_lock()
            raise
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT coalesce(max(batch), 0) FROM tasks").fetchone()
        self._batch_counter = int(row[0])
        #: Delete the files on :meth:`close` (a run that failed before sending anything).
        self.discard_on_close = False

    # -- lifecycle -----------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The file whose ``flock`` marks the run that owns the checkpoint."""
        return self.path.with_name(self.path.name + ".lock")

    def _take_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointInUse(
                f"checkpoint {self.path} is in use by pid {holder}; wait for that run to "
                "finish or stop it (SIGINT) before running again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @staticmethod
    def lock_holder(path: str | os.PathLike[str]) -> int | None:
        """The pid of the live run holding *path*'s lock, or ``None``."""
        lock_path = Path(path).with_name(Path(path).name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 64, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._db.close()
            if self.discard_on_close:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                self.lock_path.unlink(missing_ok=True)
        finally:
            self._release_lock()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Checkpoint {str(self.path)!r} locked={self._lock_fd is not None}>"

    # -- job identity --------------------------------------------------------------

    def job_meta(self) -> dict[str, Any] | None:
        """The job parameters stored when the checkpoint was created, or ``None`` if new."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'job'").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def is_ingested(self) -> bool:
        """Whether the input was read completely into the checkpoint."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'ingested'").fetchone()
        return row is not None and row[0] == "1"

    def check_job(self, job: Mapping[str, Any], *, force: bool = False) -> bool:
        """Compare *job* with the stored job; store it if new. Returns whether to ingest.

        The input must be (re)read when the checkpoint is new, when a run died while
        reading it, or when *force* accepts a changed input. Raises
        :class:`CheckpointMismatch` when the checkpoint was made for another job,
        unless *force*.
        """
        stored = self.job_meta()
        if stored is None:
            self._set_meta(
                {"job": json.dumps(dict(job), sort_keys=True), "schema": _SCHEMA_VERSION}
            )
            return True
        differences = [
            name for name in sorted(set(stored) | set(job)) if stored.get(name) != job.get(name)
        ]
        if differences and not force:
            details = "; ".join(
                f"{name}: checkpoint has {stored.get(name)!r}, this run has {job.get(name)!r}"
                for name in differences
            )
            raise CheckpointMismatch(
                f"checkpoint {self.path} was made for another job ({details}). HINT: use "
                "another --checkpoint, or --force to continue this checkpoint with the new "
                "job (items already done are not sent again)"
            )
        if differences:
            self._set_meta({"job": json.dumps(dict(job), sort_keys=True)})
        input_changed = any(name in ("input", "input_sha256", "query") for name in differences)
        return not self.is_ingested() or input_changed

    def _set_meta(self, values: Mapping[str, str]) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def set_info(self, name: str, value: Any) -> None:
        """Store a run statistic (started, finished, requests…) for ``status``."""
        self._set_meta({f"info.{name}": json.dumps(value)})

    def info(self) -> dict[str, Any]:
        """Every statistic stored with :meth:`set_info`."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'info.%'")
        return {key[5:]: json.loads(value) for key, value in rows}

    # -- ingest --------------------------------------------------------------------

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def __enter__(self) -> None:
            self._db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _transaction(self) -> Checkpoint._Tx:
        return Checkpoint._Tx(self._db)

    def ingest(
        self, actions: Sequence[str], records: Iterable[ItemRecord], chunk: int = 5000
    ) -> int:
        """Store *records* and one task per action phase for each, then mark duplicates.

        Records are written in chunks, each in one transaction, so ingesting a
        million rows keeps memory flat. Returns the number of items stored.
        """
        self._start_ingest()
        count = 0
        buffer: list[ItemRecord] = []
        for record in records:
            buffer.append(record)
            if len(buffer) >= chunk:
                count += self.ingest_chunk(actions, buffer)
                buffer.clear()
        count += self.ingest_chunk(actions, buffer)
        self.finish_ingest()
        return count

    def _start_ingest(self) -> None:
        self._ingesting = True
        if self.is_ingested():
            # --force with a changed input: add only what is new (the index is built only
            # here, so that a first ingest does not pay for it).
            self._adding = True
            self._db.execute("CREATE INDEX IF NOT EXISTS items_by_dedupe ON items (dedupe)")
        else:
            # A run that died while ingesting left part of the input: start it again.
            with self._transaction():
                self._db.execute("DELETE FROM tasks")
                self._db.execute("DELETE FROM items")
            self._adding = False

    def ingest_chunk(self, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """Store one chunk of records in one transaction; returns how many were new."""
        if not self._ingesting:
            self._start_ingest()
        now = time.time()
        items: list[tuple[Any, ...]] = []
        tasks: list[tuple[Any, ...]] = []
        with self._transaction():
            row = self._db.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()
            item_id = int(row[0])
            for record in records:
                dedupe = None if record.rejection else f"{record.account_id or ''}|{record.key}"
                if (
                    dedupe is not None
                    and self._adding
                    and self._db.execute(
                        "SELECT 1 FROM items WHERE dedupe = ? LIMIT 1", (dedupe,)
                    ).fetchone()
                ):
                    continue
                item_id += 1
                items.append(
                    (
                        item_id,
                        record.line,
                        record.key,
                        record.raw_key,
                        record.account_id,
                        record.email,
                        record.user_id,
                        _dumps(record.fields),
                        dedupe,
                    )
                )
                if record.rejection:
                    state, code, message = State.REJECTED, "Rejected", record.rejection
                elif record.result is not None:
                    state, code, message = State.DONE, None, None
                else:
                    state, code, message = State.PENDING, None, None
                result = _dumps(record.result)
                tasks.extend(
                    (item_id, phase, action, state.value, code, message, result, now)
                    for phase, action in enumerate(actions)
                )
            self._db.executemany(
                "INSERT INTO items (id, line, key, raw_key, account_id, email, user_id, "
                "fields, dedupe) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                items,
            )
            self._db.executemany(
                "INSERT INTO tasks (item_id, phase, action, state, error_code, message, "
                "result, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                tasks,
            )
        return len(items)

    def finish_ingest(self) -> None:
        """Mark duplicates and record that the input was read completely."""
        self._mark_duplicates()
        self._set_meta({"ingested": "1"})
        self._adding = False
        self._ingesting = False

    def _mark_duplicates(self) -> None:
        with self._transaction():
            self._db.execute(
                """
                UPDATE tasks SET state = 'skipped', error_code = 'Duplicate',
                       message = 'duplicate of line '
                           || coalesce(d.first_line, '?') || '; sent once'
                FROM (
                    SELECT id, first_line, rank FROM (
                        SELECT id,
                               first_value(line) OVER w AS first_line,
                               row_number() OVER w AS rank
                        FROM items WHERE dedupe IS NOT NULL
                        WINDOW w AS (PARTITION BY dedupe ORDER BY id)
                    ) WHERE rank > 1
                ) AS d
                WHERE tasks.item_id = d.id AND tasks.state = 'pending'
                """
            )

    # -- the work queue ------------------------------------------------------------

    def pending_page(
        self, phase: int, after_item: int, limit: int, account_id: str | None = None
    ) -> list[WorkItem]:
        """Up to *limit* pending tasks of *phase* with item id above *after_item*."""
        sql = (
            "SELECT t.item_id, t.phase, i.key, i.account_id, i.email, i.user_id, i.fields, "
            "t.attempts FROM tasks t JOIN items i ON i.id = t.item_id "
            "WHERE t.phase = ? AND t.state = 'pending' AND t.item_id > ?"
        )
        args: list[Any] = [phase, after_item]
        if account_id is not None:
            sql += " AND i.account_id = ?"
            args.append(account_id)
        sql += " ORDER BY t.item_id LIMIT ?"
        args.append(limit)
        return [
            WorkItem(row[0], row[1], row[2], row[3], row[4], row[5], _loads(row[6]), row[7])
            for row in self._db.execute(sql, args)
        ]

    def tasks_in_state(self, phase: int, state: State) -> Iterator[WorkItem]:
        """Every task of *phase* in *state* (streamed)."""
        after = 0
        while True:
            rows = self._db.execute(
                "SELECT t.item_id, t.phase, i.key, i.account_id, i.email, i.user_id, i.fields, "
                "t.attempts FROM tasks t JOIN items i ON i.id = t.item_id "
                "WHERE t.phase = ? AND t.state = ? AND t.item_id > ? ORDER BY t.item_id LIMIT 1000",
                (phase, state, after),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield WorkItem(
                    row[0], row[1], row[2], row[3], row[4], row[5], _loads(row[6]), row[7]
                )
            after = rows[-1][0]

    def accounts_pending(self, phase: int) -> list[str | None]:
        """Distinct account ids that still have pending tasks in *phase*."""
        rows = self._db.execute(
            "SELECT DISTINCT i.account_id FROM tasks t JOIN items i ON i.id = t.item_id "
            "WHERE t.phase = ? AND t.state IN ('pending', 'in_flight')",
            (phase,),
        )
        return [row[0] for row in rows]

    def mark_in_flight(self, items: Sequence[WorkItem]) -> int:
        """Commit the intent to send *items* as one batch; returns the batch number."""
        self._batch_counter += 1
        batch = self._batch_counter
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "UPDATE tasks SET state = 'in_flight', batch = ?, updated = ? "
                "WHERE item_id = ? AND phase = ?",
                [(batch, now, item.item_id, item.phase) for item in items],
            )
        return batch

    def record(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Commit the outcomes of tasks (one transaction)."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "UPDATE tasks SET state = ?, error_code = ?, message = ?, "
                "result = coalesce(?, result), attempts = attempts + ?, updated = ? "
                "WHERE item_id = ? AND phase = ?",
                [
                    (
                        outcome.state,
                        outcome.error_code,
                        outcome.message,
                        _dumps(outcome.result),
                        outcome.sends,
                        now,
                        outcome.item_id,
                        outcome.phase,
                    )
                    for outcome in outcomes
                ],
            )

    def set_user_ids(self, pairs: Iterable[tuple[int, str, str | None]]) -> None:
        """Record resolved ``(item_id, user_id, account_id)`` for items keyed by email."""
        with self._transaction():
            self._db.executemany(
                "UPDATE items SET user_id = ?, account_id = coalesce(?, account_id) WHERE id = ?",
                [(user_id, account_id, item_id) for item_id, user_id, account_id in pairs],
            )

    def skip_after_failed_phase(self, phase: int) -> int:
        """Skip tasks of *phase* whose item did not finish the previous phase as done."""
        if phase == 0:
            return 0
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE tasks SET state = 'skipped', error_code = 'PreviousPhaseFailed', "
                "message = 'not sent: ' || prev.action || ' ' || prev.state "
                "FROM tasks AS prev WHERE prev.item_id = tasks.item_id "
                "AND prev.phase = tasks.phase - 1 AND tasks.phase = ? "
                "AND tasks.state = 'pending' AND prev.state IN ('failed', 'rejected')",
                (phase,),
            )
            return cursor.rowcount

    def reset_in_flight(self, phase: int) -> int:
        """Return *phase*'s in-flight tasks to pending (for idempotent actions)."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE tasks SET state = 'pending' WHERE phase = ? AND state = 'in_flight'",
                (phase,),
            )
            return cursor.rowcount

    def retry_failed(self) -> int:
        """Re-queue failed tasks (``--retry-failed``), and the later phases they skipped."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE tasks SET state = 'pending', attempts = 0 WHERE state = 'failed'"
            )
            count = cursor.rowcount
            self._db.execute(
                "UPDATE tasks SET state = 'pending', error_code = NULL, message = NULL "
                "WHERE state = 'skipped' AND error_code = 'PreviousPhaseFailed'"
            )
        return count

    # -- resolution ----------------------------------------------------------------

    def add_directory(self, account_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Remember ``(email, user_id)`` pairs scanned from *account_id* (for resolution)."""
        with self._transaction():
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS directory (account_id TEXT NOT NULL, "
                "email TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (account_id, email)) "
                "WITHOUT ROWID"
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO directory (account_id, email, user_id) VALUES (?, ?, ?)",
                [(account_id, email, user_id) for email, user_id in pairs],
            )

    def resolve_from_directory(self, account_id: str, phase: int) -> int:
        """Fill in user ids of *account_id*'s pending email items from the scanned directory."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE items SET user_id = d.user_id FROM directory AS d "
                "WHERE items.user_id IS NULL AND items.account_id = ? "
                "AND d.account_id = items.account_id AND d.email = items.email",
                (account_id,),
            )
            resolved = cursor.rowcount
            self._db.execute("DELETE FROM directory WHERE account_id = ?", (account_id,))
        return resolved

    def unresolved_counts(self, phase: int) -> dict[str | None, int]:
        """Pending tasks of *phase* whose item has no user id yet, per account."""
        rows = self._db.execute(
            "SELECT i.account_id, count(*) FROM tasks t JOIN items i ON i.id = t.item_id "
            "WHERE t.phase = ? AND t.state = 'pending' AND i.user_id IS NULL "
            "GROUP BY i.account_id",
            (phase,),
        )
        return {row[0]: row[1] for row in rows}

    def unresolved_page(
        self, phase: int, account_id: str | None, after_item: int, limit: int
    ) -> list[WorkItem]:
        """Up to *limit* unresolved pending tasks of *phase* in *account_id* (``None``: none)."""
        rows = self._db.execute(
            "SELECT t.item_id, t.phase, i.key, i.account_id, i.email, i.user_id, i.fields, "
            "t.attempts FROM tasks t JOIN items i ON i.id = t.item_id "
            "WHERE t.phase = ? AND t.state = 'pending' AND i.user_id IS NULL "
            "AND i.account_id IS ? AND t.item_id > ? ORDER BY t.item_id LIMIT ?",
            (phase, account_id, after_item, limit),
        )
        return [
            WorkItem(row[0], row[1], row[2], row[3], row[4], row[5], _loads(row[6]), row[7])
            for row in rows
        ]

    def fail_unresolved(self, phase: int) -> int:
        """Fail pending tasks of *phase* whose email matched no user (``NotFound``)."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE tasks SET state = 'failed', error_code = 'NotFound', updated = ?, "
                "message = CASE WHEN i.account_id IS NULL "
                "THEN 'no account has a user with email ' || coalesce(i.email, i.key) "
                "ELSE 'no user with email ' || coalesce(i.email, i.key) || ' in account ' "
                "|| i.account_id END "
                "FROM items AS i WHERE i.id = tasks.item_id AND tasks.phase = ? "
                "AND tasks.state = 'pending' AND i.user_id IS NULL",
                (time.time(), phase),
            )
            return cursor.rowcount

    def fail_account(self, phase: int, account_id: str, code: str, message: str) -> int:
        """Fail every unfinished task of *phase* in *account_id*."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE tasks SET state = 'failed', error_code = ?, message = ?, updated = ? "
                "WHERE phase = ? AND state IN ('pending', 'in_flight') AND item_id IN "
                "(SELECT id FROM items WHERE account_id = ?)",
                (code, message, time.time(), phase, account_id),
            )
            return cursor.rowcount

    def pending_by_account(self, phase: int) -> dict[str | None, int]:
        """Pending tasks of *phase* per account (for plans)."""
        rows = self._db.execute(
            "SELECT i.account_id, count(*) FROM tasks t JOIN items i ON i.id = t.item_id "
            "WHERE t.phase = ? AND t.state IN ('pending', 'in_flight') GROUP BY i.account_id",
            (phase,),
        )
        return {row[0]: row[1] for row in rows}

    def rejected_rows(self) -> list[tuple[int | None, str, str]]:
        """``(line, status, reason)`` of rows that will not be sent, first phase only."""
        rows = self._db.execute(
            "SELECT i.line, t.state, coalesce(t.message, t.error_code, '') FROM tasks t "
            "JOIN items i ON i.id = t.item_id WHERE t.phase = 0 "
            "AND t.state IN ('rejected', 'skipped', 'failed') ORDER BY i.id"
        )
        return [(row[0], REPORT_STATUS[State(row[1])], row[2]) for row in rows]

    # -- reading -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Task counts by report status."""
        rows = self._db.execute("SELECT state, count(*) FROM tasks GROUP BY state")
        return {REPORT_STATUS[State(state)]: count for state, count in rows}

    def error_counts(self) -> dict[str, int]:
        """Failed tasks by error code."""
        rows = self._db.execute(
            "SELECT coalesce(error_code, '?'), count(*) FROM tasks "
            "WHERE state IN ('failed', 'rejected') GROUP BY 1 ORDER BY 2 DESC"
        )
        return dict(rows.fetchall())

    def phase_counts(self, phase: int) -> dict[str, int]:
        """Task counts by state for one phase."""
        rows = self._db.execute(
            "SELECT state, count(*) FROM tasks WHERE phase = ? GROUP BY state", (phase,)
        )
        return dict(rows.fetchall())

    def last_errors(self, limit: int = 5) -> list[tuple[str, str, str]]:
        """The most recent failures: ``(key, error_code, message)``."""
        rows = self._db.execute(
            "SELECT i.key, coalesce(t.error_code, ''), coalesce(t.message, '') FROM tasks t "
            "JOIN items i ON i.id = t.item_id WHERE t.state = 'failed' "
            "ORDER BY t.updated DESC LIMIT ?",
            (limit,),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def total_attempts(self) -> int:
        """Sends made so far, over every task."""
        row = self._db.execute("SELECT coalesce(sum(attempts), 0) FROM tasks").fetchone()
        return int(row[0])

    def report_records(self) -> Iterator[ReportRecord]:
        """Every task, in input order then phase order (streamed)."""
        after = (-1, -1)
        while True:
            rows = self._db.execute(
                "SELECT i.id, t.phase, i.line, i.key, t.action, i.account_id, i.user_id, "
                "i.email, t.state, t.error_code, t.message, t.attempts, t.result "
                "FROM tasks t JOIN items i ON i.id = t.item_id "
                "WHERE (t.item_id, t.phase) > (?, ?) ORDER BY t.item_id, t.phase LIMIT 2000",
                after,
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield ReportRecord(
                    line=row[2],
                    key=row[3],
                    action=row[4],
                    account_id=row[5],
                    user_id=row[6],
                    email=row[7],
                    status=REPORT_STATUS[State(row[8])],
                    error_code=row[9],
                    message=row[10],
                    attempts=row[11],
                    result=_loads(row[12]) or None,
                )
            after = (rows[-1][0], rows[-1][1])
