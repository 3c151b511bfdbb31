"""The ``INSERT`` statements of an ingest's items, many rows to a statement.

A plain item (:data:`~bulkchime.store._sqlite_chunks.PLAIN_COLUMNS`) binds five values,
and SQLite makes its other columns as the row-at-a-time ``INSERT`` of any item would
store them: ``email`` and ``user_id`` the key or ``NULL`` (by the statement's ``?1``
and ``?2``, the chunk's shape), no ``fields``, and the dedupe key ``account|key``. Any
other item binds its nine columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from . import _sqlite_sql as sql
from ._sqlite_chunks import ITEM_COLUMNS, PLAIN_COLUMNS, ChunkValues
from ._sqlite_sql import Connection

__all__ = ["ITEMS_PER_GROUP", "insert_items"]

#: Plain items per ``INSERT``: five values each and the statement's two, under the 999
#: variables of the oldest SQLite.
_PLAIN_PER_INSERT: Final = 100


def _plain_insert(items: int) -> str:
    """``INSERT`` of *items* plain items; ``?1`` and ``?2``: whether their email, and
    their user id, is their key."""
    groups = []
    for item in range(items):
        at = 3 + PLAIN_COLUMNS * item  # id, line, key, raw_key, account_id
        key, account = f"?{at + 2}", f"?{at + 4}"
        groups.append(
            f"(?{at}, ?{at + 1}, {key}, ?{at + 3}, {account}, CASE WHEN ?1 THEN {key} END, "
            f"CASE WHEN ?2 THEN {key} END, NULL, coalesce({account}, '') || '|' || {key})"
        )
    return sql.INSERT_ITEM.split(" VALUES ")[0] + " VALUES " + ", ".join(groups)


@dataclass(frozen=True, slots=True)
class _Kind:
    """How items of one shape are inserted."""

    #: Values per item.
    columns: int
    #: Items per ``insert_many``.
    per_insert: int
    insert_many: str
    insert_one: str


_PLAIN: Final = _Kind(
    PLAIN_COLUMNS, _PLAIN_PER_INSERT, _plain_insert(_PLAIN_PER_INSERT), _plain_insert(1)
)
_ANY: Final = _Kind(ITEM_COLUMNS, sql.ITEMS_PER_INSERT, sql.INSERT_ITEMS, sql.INSERT_ITEM)

#: Rows whose values an ingest makes at a time (and inserts the whole statements of):
#: a few statements' worth, so that a chunk's values are never all in memory at once.
ITEMS_PER_GROUP: Final = 2 * _PLAIN_PER_INSERT


def insert_items(db: Connection, chunk: ChunkValues, *, rest: bool = False) -> None:
    """Insert the items *chunk* made, as many as fill whole ``INSERT`` statements (and,
    with *rest*, the others one by one); their values are let go as they are."""
    shape = chunk.shape or (False, False)
    chunk.plain = _insert(db, chunk.plain, _PLAIN, shape, rest=rest)
    chunk.others = _insert(db, chunk.others, _ANY, (), rest=rest)


def _insert(
    db: Connection, values: list[Any], kind: _Kind, shared: tuple[Any, ...], *, rest: bool
) -> list[Any]:
    """Insert the items whose values *values* holds, *kind* of them, a whole statement at
    a time (and the rest one by one, with *rest*); the values left. *shared* are each
    statement's first values."""
    step = kind.columns * kind.per_insert
    whole = len(values) - len(values) % step
    for at in range(0, whole, step):
        db.execute(kind.insert_many, (*shared, *values[at : at + step]))
    if not rest:
        return values[whole:] if whole else values
    if whole < len(values):
        one = kind.columns
        rows = [(*shared, *values[at : at + one]) for at in range(whole, len(values), one)]
        db.executemany(kind.insert_one, rows)
    return []
