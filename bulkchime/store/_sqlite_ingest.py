"""Ingest into SQLite: the input in chunks, one transaction each; duplicates at the end.

:data:`INGEST_CHUNK` rows per transaction, so that memory stays flat and a run that
dies mid-way leaves whole chunks (the next ingest clears them and starts again:
``meta.ingested`` is only set, with the duplicates marked, in the last transaction).
What makes a million rows fast:

- rows travel as tuples (:class:`~bulkchime.store._item_rows.ItemRows`), not records;
- items are inserted :data:`~bulkchime.store._sqlite_sql.ITEMS_PER_INSERT` to a
  statement (:class:`~bulkchime.store._sqlite_chunks.ChunkValues`), and the tasks of
  the items to be sent are made by SQLite itself from them (``INSERT ... SELECT``):
  only rejected, skipped or done items' tasks are rows here;
- duplicates: only the keys a filter saw before are sorted for each key's first item
  (:class:`~bulkchime.store._sqlite_chunks.SeenKeys`), not the whole input;
- the input is read (parsed, checked) on a thread of its own while SQLite makes the
  pending tasks of the chunk before and commits it: two long calls that free the GIL.
  Everything else, the inserts above all, runs on the store's thread while the reader
  waits: an insert takes the GIL back after every statement, and two threads wanting it
  then would pass it to and fro every few milliseconds (tried: slower than no thread).

Adding a changed input to a complete one (``adding``) looks each key up in what chunks
stored before, leaves the rows found out, and marks duplicates over every item, as it
always did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any

from . import _sqlite_sql as sql
from ._item_rows import ItemRow, item_row, item_rows
from ._models import ItemRecord, State
from ._sqlite_chunks import ChunkValues, SeenKeys, new_rows
from ._sqlite_ops import _ADDING, _COMPLETE, transaction
from ._sqlite_sql import Connection

__all__ = ["INGEST_CHUNK", "Ingester"]

#: Rows per ingest transaction. Its items are added to a changed input as before: a row
#: whose key an earlier chunk stored is left out; one repeated within a chunk is stored
#: and marked a duplicate.
INGEST_CHUNK = 5_000


class Ingester:
    """One ingest, from its first chunk to :meth:`finish` (the store keeps one)."""

    def __init__(self) -> None:
        self._started = False
        #: Adding a changed input to a complete one: rows already stored are left out.
        self._adding = False
        #: The dedupe keys seen, while every stored item's has been (a new ingest).
        self._seen: SeenKeys | None = None

    def ingest(
        self,
        db: Connection,
        actions: Sequence[str],
        records: Iterable[ItemRecord],
        stop: threading.Event,
    ) -> int:
        """See :meth:`CheckpointStore.ingest`. *records* is read a chunk at a time, the
        next on the reader's thread while this one is committed (the module docstring);
        *stop* (the caller was cancelled) ends it unfinished before the next chunk."""
        count = 0
        with _ReadAhead(item_rows(records)) as reader:
            try:
                self._start(db)
                reader.start()
                while True:
                    rows = reader.take()
                    last = len(rows) < INGEST_CHUNK
                    then = None if last else lambda: reader.start(stop)
                    count += self._store(db, actions, rows, then)
                    if last:
                        self.finish(db)
                        return count
                    if not reader.reading:
                        break  # stopped
            except BaseException:
                # Whatever was stored stays unfinished: the next ingest starts it again.
                self._started = False
                raise
        self._started = False
        return count

    def chunk(self, db: Connection, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """See :meth:`CheckpointStore.ingest_chunk`."""
        if not self._started:
            self._start(db)
        return self._store(db, actions, [item_row(record) for record in records])

    def finish(self, db: Connection) -> None:
        """See :meth:`CheckpointStore.finish_ingest`."""
        all_seen, self._seen = self._seen is not None, None  # its memory back for the sort
        with transaction(db):
            if not all_seen:
                db.execute(sql.MARK_DUPLICATES)
            else:
                db.execute(sql.MAYBE_DUPLICATES_TABLE)
                db.execute(sql.MARK_MAYBE_DUPLICATES)
                db.execute(sql.DROP_MAYBE_DUPLICATES)
            db.execute(sql.META_SET, ("ingested", _COMPLETE))
        db.execute(sql.SHRINK_MEMORY)
        self._started = False
        self._adding = False

    def _start(self, db: Connection) -> None:
        self._started = True
        row = db.execute(sql.META_GET, ("ingested",)).fetchone()
        if row is not None and row[0] in (_COMPLETE, _ADDING):
            self._adding = True
            self._seen = None
            with transaction(db):
                db.execute(sql.DEDUPE_INDEX)
                db.execute(sql.META_SET, ("ingested", _ADDING))
        else:
            # A run that died while ingesting left part of the input: start it again.
            self._adding = False
            self._seen = SeenKeys()
            db.execute(sql.TEMP_CACHE_SIZE)
            with transaction(db):
                db.execute("DELETE FROM tasks")
                db.execute("DELETE FROM items")
                db.execute(sql.DROP_MAYBE_DUPLICATES)
                db.execute(sql.MAYBE_DUPLICATES_TABLE)

    def _store(
        self,
        db: Connection,
        actions: Sequence[str],
        rows: list[ItemRow],
        items_stored: Callable[[], None] | None = None,
    ) -> int:
        """Store *rows* in one transaction; how many items were new. Once all but the
        pending tasks are in, it calls *items_stored*: what is left, making those and
        committing, is SQLite's alone, two long calls that free the GIL."""
        now = time.time()
        with transaction(db):
            chunk = ChunkValues(_max_id(db) + 1, self._seen)
            new = new_rows(db, rows) if self._adding else rows
            for at in range(0, len(new), sql.ITEMS_PER_INSERT):
                _insert_items(db, chunk.values(new[at : at + sql.ITEMS_PER_INSERT]))
            if chunk.maybe:
                db.executemany(sql.ADD_MAYBE_DUPLICATE, chunk.maybe)
            rows.clear()  # their items are in: the reader may have the memory back
            _insert_final_tasks(db, actions, chunk.final, now)
            if items_stored is not None:
                items_stored()
            if chunk.items:
                last = chunk.first + chunk.items - 1
                done = any(row[8] is not None for _, row in chunk.final)
                pending = sql.INSERT_PENDING_TASKS_AFTER_DONE if done else sql.INSERT_PENDING_TASKS
                for phase, action in enumerate(actions):
                    db.execute(pending, (phase, action, now, chunk.first, last))
        return chunk.items


def _max_id(db: Connection) -> int:
    return int(db.execute(sql.MAX_ITEM_ID).fetchone()[0])


def _insert_items(db: Connection, values: list[Any]) -> None:
    """Insert the items whose columns *values* holds, row after row (at most a group)."""
    if len(values) == 9 * sql.ITEMS_PER_INSERT:
        db.execute(sql.INSERT_ITEMS, values)
    else:
        db.executemany(sql.INSERT_ITEM, [values[at : at + 9] for at in range(0, len(values), 9)])


def _insert_final_tasks(
    db: Connection, actions: Sequence[str], final: list[tuple[int, ItemRow]], now: float
) -> None:
    """The tasks of the *final* items (rejected, skipped or done), one per action phase."""
    tasks: list[tuple[Any, ...]] = []
    for item_id, row in final:
        rejection, result, skip = row[7], row[8], row[9]
        if rejection:
            state, code, message = State.REJECTED, "Rejected", rejection
        elif skip is not None:
            state, (code, message) = State.SKIPPED, skip
        else:
            state, code, message = State.DONE, None, None
        result_text = sql.dumps(result)
        for phase, action in enumerate(actions):
            tasks.append((item_id, phase, action, state.value, code, message, result_text, now))
    db.executemany(sql.INSERT_TASK, tasks)


class _ReadAhead:
    """Reads :data:`INGEST_CHUNK` rows at a time on a thread of its own, one chunk
    ahead at most; leaving it waits for a read under way."""

    def __init__(self, rows: Iterator[ItemRow]) -> None:
        self._rows = rows
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="bulkchime-ingest-read")
        self._next: Future[list[ItemRow]] | None = None

    @property
    def reading(self) -> bool:
        """Whether a read was started and its chunk is not taken yet."""
        return self._next is not None

    def start(self, stop: threading.Event | None = None) -> None:
        """Start reading the next chunk, unless *stop* is set."""
        if stop is None or not stop.is_set():
            self._next = self._thread.submit(self._read)

    def take(self) -> list[ItemRow]:
        """The chunk read last, when it is (or the error reading it raised)."""
        assert self._next is not None
        future, self._next = self._next, None
        return future.result()

    def _read(self) -> list[ItemRow]:
        return list(islice(self._rows, INGEST_CHUNK))

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.shutdown(wait=True)
