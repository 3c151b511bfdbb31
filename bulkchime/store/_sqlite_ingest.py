"""Ingest into SQLite: the input in chunks, one transaction each; duplicates at the end.

:data:`INGEST_CHUNK` rows per transaction, so that memory stays flat and a run that
dies mid-way leaves whole chunks (the next ingest clears them and starts again:
``meta.ingested`` is only set, with the duplicates marked, in the last transaction).
What makes a million rows fast:

- rows travel as tuples (:class:`~bulkchime.store._item_rows.ItemRows`), not records;
- items are inserted many to a statement, most of them as five values from which
  SQLite makes the rest of the row (:mod:`~bulkchime.store._sqlite_item_inserts`), and
  the tasks of the items to be sent are made by SQLite itself from them (``INSERT ...
  SELECT``): only rejected, skipped or done items' tasks are rows here, and a new
  ingest holds the rejected and skipped ones to its last transaction, so that the
  pending ones go to the end of the tasks' index
  (:mod:`~bulkchime.store._sqlite_final_tasks`);
- duplicates: only the keys a filter saw before are sorted for each key's first item
  (:class:`~bulkchime.store._sqlite_chunks.SeenKeys`), not the whole input;
- the write-ahead log is checkpointed every :data:`INGEST_WAL_PAGES`, not every 1000;
- the input is read (parsed, checked) on a thread of its own while SQLite makes the
  pending tasks of the chunk before and commits it: two long calls that free the GIL.
  Everything else, the inserts above all, runs on the store's thread while the reader
  waits: an insert takes the GIL back after every statement, and two threads wanting it
  then would pass it to and fro every few milliseconds (tried: slower than no thread,
  and so was a reader that ran in turns the store's thread gave it).

Adding a changed input to a complete one (``adding``) looks each key up in what chunks
stored before, leaves the rows found out, and marks duplicates over every item, as it
always did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice

from . import _sqlite_sql as sql
from ._item_rows import ItemRow, item_row, item_rows
from ._models import ItemRecord
from ._sqlite_chunks import ChunkValues, SeenKeys, new_rows
from ._sqlite_final_tasks import DROP_HELD_TASKS, insert_final_tasks, move_held_tasks
from ._sqlite_item_inserts import ITEMS_PER_GROUP, insert_items
from ._sqlite_ops import _ADDING, _COMPLETE, transaction
from ._sqlite_sql import Connection

__all__ = ["INGEST_CHUNK", "INGEST_WAL_PAGES", "Ingester"]

#: Rows per ingest transaction. Its items are added to a changed input as before: a row
#: whose key an earlier chunk stored is left out; one repeated within a chunk is stored
#: and marked a duplicate.
INGEST_CHUNK = 5_000
#: Pages the write-ahead log may grow to while an ingest writes (64 MiB of 4 KiB pages),
#: checkpointed at that size and at the end, not every 1000 pages (SQLite's default).
INGEST_WAL_PAGES = 16_384
#: The page cache (KiB) while an ingest marks its duplicates: half SQLite's default.
_FINISH_CACHE_KIB = 1024


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
        with _ReadAhead(item_rows(records)) as reader:
            try:
                self._start(db)
                with _fewer_wal_checkpoints(db):
                    count, complete = self._store_all(db, actions, reader, stop)
                if complete:
                    self.finish(db)
            finally:
                # Whatever was stored unfinished, the next ingest starts it again.
                self._started = False
        return count

    def _store_all(
        self, db: Connection, actions: Sequence[str], reader: _ReadAhead, stop: threading.Event
    ) -> tuple[int, bool]:
        """Store the chunks *reader* reads; how many items were stored, and whether the
        input was read to its end (not stopped)."""
        count = 0
        reader.start()
        while True:
            rows = reader.take()
            last = len(rows) < INGEST_CHUNK
            then = None if last else lambda: reader.start(stop)
            count += self._store(db, actions, rows, then)
            if last:
                return count, True
            if not reader.reading:
                return count, False  # stopped

    def chunk(self, db: Connection, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """See :meth:`CheckpointStore.ingest_chunk`."""
        if not self._started:
            self._start(db)
        return self._store(db, actions, [item_row(record) for record in records])

    def finish(self, db: Connection) -> None:
        """See :meth:`CheckpointStore.finish_ingest`."""
        all_seen, self._seen = self._seen is not None, None  # its memory back for the sort
        with _small_cache(db):
            with transaction(db):
                if not all_seen:
                    db.execute(sql.MARK_DUPLICATES)
                else:
                    move_held_tasks(db)
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
                db.execute(DROP_HELD_TASKS)

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
            for at in range(0, len(new), ITEMS_PER_GROUP):
                chunk.add(new[at : at + ITEMS_PER_GROUP])
                insert_items(db, chunk)
            insert_items(db, chunk, rest=True)
            rows.clear()  # their items are in: the reader may have the memory back
            if chunk.maybe:
                db.executemany(sql.ADD_MAYBE_DUPLICATE, chunk.maybe)
            insert_final_tasks(db, actions, chunk.final, now, hold=self._seen is not None)
            if items_stored is not None:
                items_stored()
            if chunk.items:
                last = chunk.first + chunk.items - 1
                done = any(row[8] is not None for _, row in chunk.final)
                pending = sql.INSERT_PENDING_TASKS_AFTER_DONE if done else sql.INSERT_PENDING_TASKS
                for phase, action in enumerate(actions):
                    db.execute(pending, (phase, action, now, chunk.first, last))
        return chunk.items


@contextmanager
def _fewer_wal_checkpoints(db: Connection) -> Iterator[None]:
    """Let the write-ahead log grow to :data:`INGEST_WAL_PAGES` while an ingest writes,
    and then (before its last transaction, which checkpoints it) as it was.

    Checkpointed every few chunks, the same pages would be copied into the database,
    and the database synced, again and again. Nothing a crash can lose changes: the
    log is as safe a place for a committed chunk as the database.
    """
    with _pragma_for_a_while(db, "wal_autocheckpoint", lambda pages: max(pages, INGEST_WAL_PAGES)):
        yield


@contextmanager
def _small_cache(db: Connection) -> Iterator[None]:
    """A page cache of :data:`_FINISH_CACHE_KIB` while duplicates are marked: SQLite sorts
    in as much memory as the cache may take, and the pages are read once anyway."""
    with _pragma_for_a_while(db, "cache_size", lambda _: -_FINISH_CACHE_KIB):
        yield


@contextmanager
def _pragma_for_a_while(db: Connection, name: str, value: Callable[[int], int]) -> Iterator[None]:
    """Set the integer pragma *name* to *value* (given its current value), then back."""
    before = int(db.execute(f"PRAGMA {name}").fetchone()[0])
    db.execute(f"PRAGMA {name} = {value(before)}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA {name} = {before}")


def _max_id(db: Connection) -> int:
    return int(db.execute(sql.MAX_ITEM_ID).fetchone()[0])


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
