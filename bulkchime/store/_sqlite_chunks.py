"""An ingest's rows as the values of SQLite statements: the per-row work, no SQL run.

:class:`ChunkValues` gives each item its id and notes the keys that may repeat: a
Bloom filter of the keys seen (:class:`SeenKeys`, one bit per key) has no false
negatives, so every dedupe key that repeats is among the noted ones, and only those
need the sort that finds each key's first item; a false positive costs a look, never
a wrong mark. :func:`new_rows` is the look-up of a changed input added to a complete
one.

Most items of an input have the same shape: nothing but a key and an account, their
``email`` or ``user_id`` the key itself (:data:`PLAIN_COLUMNS`). Those travel as five
values, and SQLite makes the other columns (the dedupe key included) from them; binding
every column of a million rows would cost more than SQLite's work to store them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from . import _sqlite_sql as sql
from ._item_rows import ItemRow, fields_json
from ._sqlite_sql import Connection

__all__ = ["ITEM_COLUMNS", "PLAIN_COLUMNS", "ChunkValues", "SeenKeys", "new_rows"]

#: Bits of the filter of keys seen (2 MB): about one key in 16 of a million new ones
#: looks like a repeat, and costs a row of a temporary table.
_FILTER_BITS = 1 << 24

#: Values of an item of any shape: every column of ``items``, in its order.
ITEM_COLUMNS: Final = 9
#: Values of a plain item: ``id, line, key, raw_key, account_id``.
PLAIN_COLUMNS: Final = 5


class SeenKeys:
    """The keys an ingest has seen, as a Bloom filter (one hash)."""

    def __init__(self, bits: int | None = None) -> None:
        bits = bits or _FILTER_BITS
        #: The filter; bit ``hash(key) & mask`` is set once *key* is seen.
        self.bits = bytearray(bits // 8)
        #: ``bits - 1``: *bits* is a power of two.
        self.mask = bits - 1

    def __repr__(self) -> str:
        return f"<SeenKeys bits={len(self.bits) * 8}>"


class ChunkValues:
    """The values that insert one chunk's items, made a group of rows at a time."""

    def __init__(self, first: int, seen: SeenKeys | None) -> None:
        #: The id of the chunk's first item.
        self.first = first
        #: The id the next item gets.
        self.next_id = first
        #: ``(id, row)`` of the items whose tasks are not pending (rejected, skipped, done).
        self.final: list[tuple[int, ItemRow]] = []
        #: Dedupe keys the filter has seen before: they may repeat.
        self.maybe: list[tuple[str]] = []
        #: Whether the plain items' ``email``, and their ``user_id``, is their key; set by
        #: the first plain item (a job's rows all name the same kind of key).
        self.shape: tuple[bool, bool] | None = None
        #: :data:`PLAIN_COLUMNS` values per plain item, item after item.
        self.plain: list[Any] = []
        #: :data:`ITEM_COLUMNS` values per item of any other shape, item after item.
        self.others: list[Any] = []
        self._seen = seen

    @property
    def items(self) -> int:
        """Items made so far."""
        return self.next_id - self.first

    def add(self, rows: Sequence[ItemRow]) -> None:
        """Make *rows* the next items: their values in :attr:`plain` or :attr:`others`,
        their keys noted in the filter (when the ingest has one)."""
        if self.shape is None:
            self.shape = _plain_shape(rows)
        by_email, by_user_id = self.shape or (False, False)
        seen = self._seen
        bits, mask = (seen.bits, seen.mask) if seen is not None else (bytearray(1), 0)
        final, maybe, plain, others = self.final, self.maybe, self.plain, self.others
        item_id = self.next_id - 1
        for row in rows:
            line, key, raw_key, account_id, email, user_id, fields, rejection, result, skip = row
            item_id += 1
            if rejection or skip is not None:
                final.append((item_id, row))
                fields_text = fields_json(fields) if fields else None
                others += (item_id, line, key, raw_key, account_id, email, user_id, fields_text)
                others.append(None)
                continue
            if seen is not None:
                # The key alone: equal dedupe keys have equal keys, so none is missed.
                bit = hash(key) & mask
                at, flag = bit >> 3, 1 << (bit & 7)
                if (byte := bits[at]) & flag:
                    maybe.append((f"{account_id or ''}|{key}",))
                else:
                    bits[at] = byte | flag
            if (
                fields is None
                and result is None
                and email is (key if by_email else None)
                and user_id is (key if by_user_id else None)
            ):
                plain += (item_id, line, key, raw_key, account_id)
                continue
            if result is not None:
                final.append((item_id, row))
            fields_text = fields_json(fields) if fields else None
            others += (item_id, line, key, raw_key, account_id, email, user_id, fields_text)
            others.append(f"{account_id or ''}|{key}")
        self.next_id = item_id + 1

    def __repr__(self) -> str:
        return f"<ChunkValues first={self.first} items={self.items}>"


def _plain_shape(rows: Sequence[ItemRow]) -> tuple[bool, bool] | None:
    """``(email is the key, user_id is the key)`` of the first row that may be plain."""
    for row in rows:
        key, email, user_id = row[1], row[4], row[5]
        if row[6] is None and not row[7] and row[8] is None and row[9] is None:
            if email in (key, None) and user_id in (key, None):
                return email is not None, user_id is not None
    return None


def new_rows(db: Connection, rows: list[ItemRow]) -> list[ItemRow]:
    """*rows* less those whose dedupe key a chunk stored before has (adding a changed
    input to a complete one); rows of this chunk do not count, as they are not stored
    yet: they are duplicates, marked as such at the end."""
    new: list[ItemRow] = []
    for row in rows:
        key, account_id, rejection, skip = row[1], row[3], row[7], row[9]
        if not rejection and skip is None:
            dedupe = f"{account_id or ''}|{key}"
            if db.execute(sql.DEDUPE_SEEN, (dedupe,)).fetchone():
                continue
        new.append(row)
    return new
