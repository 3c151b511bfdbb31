"""The SQLite store's SQL text and row mapping, and the connection type it runs on.

Kept apart from :mod:`bulkchime.store.sqlite` so that the statements can be read
together, and typed with :class:`Connection` (a protocol ``sqlite3.Connection``
satisfies) so that only that module imports :mod:`sqlite3`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from ._rows import dumps, loads, report_record, work_item

__all__ = [
    "APPLICATION_ID",
    "KNOWN_TABLES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Connection",
    "Cursor",
    "dumps",
    "loads",
    "report_record",
    "work_item",
]

#: ``PRAGMA user_version`` of the schema this code writes. Version 1 (the first
#: release) left ``user_version`` at 0 and wrote ``meta.schema = "1"``.
SCHEMA_VERSION = 3

#: ``PRAGMA application_id`` of a checkpoint ("BkCh"), so that another program's SQLite
#: file is never taken for one (nor written to).
APPLICATION_ID = 0x426B4368

#: The tables (and index) of a version 3 checkpoint. ``IF NOT EXISTS`` because the
#: migration from version 1 runs the same statements over the tables it has.
SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS items (
        id         INTEGER PRIMARY KEY,
        line       INTEGER,
        key        TEXT NOT NULL,
        raw_key    TEXT NOT NULL,
        account_id TEXT,
        email      TEXT,
        user_id    TEXT,
        fields     TEXT,
        dedupe     TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS tasks (
        item_id    INTEGER NOT NULL,
        phase      INTEGER NOT NULL,
        action     TEXT NOT NULL,
        state      TEXT NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        error_code TEXT,
        message    TEXT,
        result     TEXT,
        updated    REAL,
        PRIMARY KEY (item_id, phase)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (phase, state, item_id)",
    """CREATE TABLE IF NOT EXISTS directory (
        account_id TEXT NOT NULL,
        email      TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        PRIMARY KEY (account_id, email)
    ) WITHOUT ROWID""",
    # Version 3: what each user or account was before the job changed it (undo, verify).
    """CREATE TABLE IF NOT EXISTS before_images (
        account_id TEXT NOT NULL,
        subject    TEXT NOT NULL,
        image      TEXT NOT NULL,
        PRIMARY KEY (account_id, subject)
    ) WITHOUT ROWID""",
)

#: Every table a checkpoint of version 1, 2 or 3 may hold (version 1 made ``directory``
#: only when it first resolved emails).
KNOWN_TABLES = frozenset({"meta", "items", "tasks", "directory", "before_images"})

# -- job meta ------------------------------------------------------------------------

META_GET = "SELECT value FROM meta WHERE key = ?"
META_SET = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)
INFO_ALL = "SELECT key, value FROM meta WHERE key LIKE 'info.%'"

# -- ingest --------------------------------------------------------------------------

#: Built only when a forced re-ingest adds to a complete input: a first ingest does
#: not pay for an index it never reads.
DEDUPE_INDEX = "CREATE INDEX IF NOT EXISTS items_by_dedupe ON items (dedupe)"
DEDUPE_SEEN = "SELECT 1 FROM items WHERE dedupe = ? LIMIT 1"
MAX_ITEM_ID = "SELECT coalesce(max(id), 0) FROM items"
INSERT_ITEM = (
    "INSERT INTO items (id, line, key, raw_key, account_id, email, user_id, fields, dedupe) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_TASK = (
    "INSERT INTO tasks (item_id, phase, action, state, error_code, message, result, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _mark_duplicates(among: str) -> str:
    """Skip every item but the first of each dedupe key, among the items *among* selects."""
    return f"""
    UPDATE tasks SET state = 'skipped', error_code = 'Duplicate',
           message = 'duplicate of line ' || coalesce(d.first_line, '?') || '; sent once'
    FROM (
        SELECT id, first_line FROM (
            SELECT id,
                   first_value(line) OVER w AS first_line,
                   row_number() OVER w AS rank
            FROM items WHERE {among}
            WINDOW w AS (PARTITION BY dedupe ORDER BY id)
        ) WHERE rank > 1
    ) AS d
    WHERE tasks.item_id = d.id AND tasks.state = 'pending'
"""


MARK_DUPLICATES = _mark_duplicates("dedupe IS NOT NULL")

#: Item rows per ``INSERT`` of an ingest: nine values each, under the 999 variables of
#: the oldest SQLite; one statement per row would cost more than the row itself.
ITEMS_PER_INSERT = 50
INSERT_ITEMS = (
    "INSERT INTO items (id, line, key, raw_key, account_id, email, user_id, fields, dedupe) "
    "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * ITEMS_PER_INSERT)
)
#: One phase's tasks of the items ``id`` ?4..?5 to be sent (they have a dedupe key),
#: pending; made by SQLite itself, not a row at a time.
INSERT_PENDING_TASKS = (
    "INSERT INTO tasks (item_id, phase, action, state, updated) "
    "SELECT id, ?, ?, 'pending', ? FROM items WHERE id BETWEEN ? AND ? AND dedupe IS NOT NULL"
)
#: The same, past the tasks of items done at ingest (stored with their results first).
INSERT_PENDING_TASKS_AFTER_DONE = INSERT_PENDING_TASKS.replace("INSERT", "INSERT OR IGNORE", 1)

#: Dedupe keys that may repeat (a filter saw them before): the only ones an ingest that
#: saw every key needs to look at for duplicates (the connection's own temporary table).
MAYBE_DUPLICATES_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS bulkchime_maybe_duplicates "
    "(dedupe TEXT PRIMARY KEY) WITHOUT ROWID"
)
ADD_MAYBE_DUPLICATE = "INSERT OR IGNORE INTO temp.bulkchime_maybe_duplicates (dedupe) VALUES (?)"
MARK_MAYBE_DUPLICATES = _mark_duplicates(
    "dedupe IN (SELECT dedupe FROM temp.bulkchime_maybe_duplicates)"
)
DROP_MAYBE_DUPLICATES = "DROP TABLE IF EXISTS temp.bulkchime_maybe_duplicates"
#: The temporary table's page cache (KiB): small, so that the rest of the run does not
#: keep the memory it took (it spills to a temporary file, in the OS's cache).
TEMP_CACHE_SIZE = "PRAGMA temp.cache_size = -256"
#: Give back the page caches' memory an ingest took, for the phases after it.
SHRINK_MEMORY = "PRAGMA shrink_memory"

# -- the work queue --------------------------------------------------------------------

#: The one SELECT of a :class:`WorkItem`; every query of work appends its ``WHERE``.
WORK_ITEM_SELECT = (
    "SELECT t.item_id, t.phase, i.key, i.account_id, i.email, i.user_id, i.fields, "
    "t.attempts FROM tasks t JOIN items i ON i.id = t.item_id "
)
PENDING_PAGE = WORK_ITEM_SELECT + (
    "WHERE t.phase = ? AND t.state = 'pending' AND t.item_id > ? "
    "AND (? IS NULL OR i.account_id = ?) ORDER BY t.item_id LIMIT ?"
)
IN_FLIGHT = WORK_ITEM_SELECT + ("WHERE t.phase = ? AND t.state = 'in_flight' ORDER BY t.item_id")
UNRESOLVED_PAGE = WORK_ITEM_SELECT + (
    "WHERE t.phase = ? AND t.state = 'pending' AND i.user_id IS NULL "
    "AND i.account_id IS ? AND t.item_id > ? ORDER BY t.item_id LIMIT ?"
)
ACCOUNTS_PENDING = (
    "SELECT DISTINCT i.account_id FROM tasks t JOIN items i ON i.id = t.item_id "
    "WHERE t.phase = ? AND t.state IN ('pending', 'in_flight')"
)
MARK_IN_FLIGHT = "UPDATE tasks SET state = 'in_flight', updated = ? WHERE item_id = ? AND phase = ?"
RECORD = (
    "UPDATE tasks SET state = ?, error_code = ?, message = ?, "
    "result = coalesce(?, result), attempts = attempts + ?, updated = ? "
    "WHERE item_id = ? AND phase = ?"
)
SKIP_AFTER_FAILED_PHASE = (
    "UPDATE tasks SET state = 'skipped', error_code = 'PreviousPhaseFailed', "
    "message = 'not sent: ' || prev.action || ' ' || prev.state "
    "FROM tasks AS prev WHERE prev.item_id = tasks.item_id "
    "AND prev.phase = tasks.phase - 1 AND tasks.phase = ? "
    "AND tasks.state = 'pending' AND prev.state IN ('failed', 'rejected')"
)
RETRY_FAILED = "UPDATE tasks SET state = 'pending', attempts = 0 WHERE state = 'failed'"
UNSKIP_AFTER_FAILED = (
    "UPDATE tasks SET state = 'pending', error_code = NULL, message = NULL "
    "WHERE state = 'skipped' AND error_code = 'PreviousPhaseFailed'"
)
FAIL_ACCOUNT = (
    "UPDATE tasks SET state = 'failed', error_code = ?, message = ?, updated = ? "
    "WHERE phase = ? AND state IN ('pending', 'in_flight') AND item_id IN "
    "(SELECT id FROM items WHERE account_id = ?)"
)

# -- resolution ----------------------------------------------------------------------

SET_USER_ID = "UPDATE items SET user_id = ?, account_id = coalesce(?, account_id) WHERE id = ?"
ADD_DIRECTORY = "INSERT OR REPLACE INTO directory (account_id, email, user_id) VALUES (?, ?, ?)"
RESOLVE_FROM_DIRECTORY = (
    "UPDATE items SET user_id = d.user_id FROM directory AS d "
    "WHERE items.user_id IS NULL AND items.account_id = ? "
    "AND d.account_id = items.account_id AND d.email = items.email"
)
FORGET_DIRECTORY = "DELETE FROM directory WHERE account_id = ?"
UNRESOLVED_COUNTS = (
    "SELECT i.account_id, count(*) FROM tasks t JOIN items i ON i.id = t.item_id "
    "WHERE t.phase = ? AND t.state = 'pending' AND i.user_id IS NULL GROUP BY i.account_id"
)
FAIL_UNRESOLVED = (
    "UPDATE tasks SET state = 'failed', error_code = 'NotFound', updated = ?, "
    "message = CASE WHEN i.account_id IS NULL "
    "THEN 'no account has a user with email ' || coalesce(i.email, i.key) "
    "ELSE 'no user with email ' || coalesce(i.email, i.key) || ' in account ' "
    "|| i.account_id END "
    "FROM items AS i WHERE i.id = tasks.item_id AND tasks.phase = ? "
    "AND tasks.state = 'pending' AND i.user_id IS NULL"
)

# -- reading -------------------------------------------------------------------------

PHASE_COUNTS = "SELECT state, count(*) FROM tasks WHERE phase = ? GROUP BY state"
PENDING_BY_ACCOUNT = (
    "SELECT i.account_id, count(*) FROM tasks t JOIN items i ON i.id = t.item_id "
    "WHERE t.phase = ? AND t.state IN ('pending', 'in_flight') GROUP BY i.account_id"
)
REJECTED_ROWS = (
    "SELECT i.line, t.state, coalesce(t.message, t.error_code, '') FROM tasks t "
    "JOIN items i ON i.id = t.item_id WHERE t.phase = 0 "
    "AND t.state IN ('rejected', 'skipped', 'failed') ORDER BY i.id"
)
COUNTS = "SELECT state, count(*) FROM tasks GROUP BY state"
ERROR_COUNTS = (
    "SELECT coalesce(error_code, '?'), count(*) FROM tasks "
    "WHERE state IN ('failed', 'rejected') GROUP BY 1 ORDER BY 2 DESC, 1"
)
LAST_ERRORS = (
    "SELECT i.key, coalesce(t.error_code, ''), coalesce(t.message, '') FROM tasks t "
    "JOIN items i ON i.id = t.item_id WHERE t.state = 'failed' "
    "ORDER BY t.updated DESC, t.item_id DESC, t.phase DESC LIMIT ?"
)
TOTAL_ATTEMPTS = "SELECT coalesce(sum(attempts), 0) FROM tasks"
#: One page of the report after ``(item_id, phase)``: keyset paging, so that a page
#: costs the same at the end of a million rows as at the start.
REPORT_PAGE = (
    "SELECT i.id, t.phase, i.line, i.key, t.action, i.account_id, i.user_id, "
    "i.email, t.state, t.error_code, t.message, t.attempts, t.result "
    "FROM tasks t JOIN items i ON i.id = t.item_id "
    "WHERE (t.item_id, t.phase) > (?, ?) ORDER BY t.item_id, t.phase LIMIT ?"
)


# -- the connection ------------------------------------------------------------------


class Cursor(Protocol):
    """What the store reads from a ``sqlite3.Cursor``."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    def fetchone(self) -> Any:
        """The next row, or ``None``."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store uses of a ``sqlite3.Connection`` (opened in autocommit mode)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor:
        """Run one statement."""
        ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        """Run one statement for each parameter row."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (SQLite ends one itself on a full disk)."""
        ...


# -- values and rows -------------------------------------------------------------------
