"""An ingest's rows as the values of SQLite statements: the per-row work, no SQL run.

:class:`ChunkValues` gives each item its id and dedupe key and notes the keys that may
repeat: a Bloom filter of the keys seen (:class:`SeenKeys`, one bit per key) has no
false negatives, so every key that repeats is among the noted ones, and only those
need the sort that finds each key's first item; a false positive costs a look, never
a wrong mark. :func:`new_rows` is the look-up of a changed input added to a complete
one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import _sqlite_sql as sql
from ._item_rows import ItemRow, fields_json
from ._sqlite_sql import Connection

__all__ = ["ChunkValues", "SeenKeys", "new_rows"]

#: Bits of the filter of dedupe keys seen (2 MB): about one key in 16 of a million new
#: ones looks like a repeat, and costs a row of a temporary table.
_FILTER_BITS = 1 << 24


class SeenKeys:
    """The dedupe keys an ingest has seen, as a Bloom filter (one hash)."""

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
        self._seen = seen

    @property
    def items(self) -> int:
        """Items made so far."""
        return self.next_id - self.first

    def values(self, rows: Iterable[ItemRow]) -> list[Any]:
        """The columns of *rows* as the next items, row after row; their dedupe keys
        noted in the filter (when the ingest has one)."""
        seen = self._seen
        bits, mask = (seen.bits, seen.mask) if seen is not None else (bytearray(1), 0)
        final, maybe = self.final, self.maybe
        item_id = self.next_id - 1
        values: list[Any] = []
        for row in rows:
            line, key, raw_key, account_id, email, user_id, fields, rejection, result, skip = row
            item_id += 1
            if rejection or skip is not None:
                dedupe = None
                final.append((item_id, row))
            else:
                dedupe = f"{account_id or ''}|{key}"
                if seen is not None:
                    bit = hash(dedupe) & mask
                    if bits[bit >> 3] & (1 << (bit & 7)):
                        maybe.append((dedupe,))
                    else:
                        bits[bit >> 3] |= 1 << (bit & 7)
                if result is not None:
                    final.append((item_id, row))
            fields_text = fields_json(fields) if fields else None
            values += (item_id, line, key, raw_key, account_id, email, user_id, fields_text)
            values.append(dedupe)
        self.next_id = item_id + 1
        return values

    def __repr__(self) -> str:
        return f"<ChunkValues first={self.first} items={self.items}>"


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
