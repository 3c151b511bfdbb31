"""Items as plain rows: what an ingest of a large input hands a store.

:class:`ItemRows` is an ``Iterable[ItemRecord]``, so any
:class:`~bulkchime.store.CheckpointStore` takes it as it takes a list of records; a
store that knows it reads :meth:`ItemRows.rows` instead, tuples in
:class:`~bulkchime.store.ItemRecord`'s field order (:data:`ItemRow`), and so a
million-row input costs a tuple per row where a record would cost several times more.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._models import ItemRecord
from ._rows import dumps

__all__ = ["ItemRow", "ItemRows", "fields_json", "item_row", "item_rows"]

#: An :class:`ItemRecord`'s fields, in its order: line, key, raw_key, account_id, email,
#: user_id, fields, rejection, result, skip.
ItemRow = tuple[
    int | None,
    str,
    str,
    str | None,
    str | None,
    str | None,
    Mapping[str, Any] | None,
    str | None,
    Mapping[str, Any] | None,
    tuple[str, str] | None,
]


class ItemRows:
    """Items to ingest, read once: as :class:`ItemRecord` objects by iterating, or as
    :data:`ItemRow` tuples by :meth:`rows`."""

    def __init__(self, rows: Iterable[ItemRow]) -> None:
        self._rows = rows

    def rows(self) -> Iterator[ItemRow]:
        """The items as tuples."""
        return iter(self._rows)

    def __iter__(self) -> Iterator[ItemRecord]:
        """The items as records (for a store that does not read tuples)."""
        return (ItemRecord(*row) for row in self._rows)

    def __repr__(self) -> str:
        return f"<ItemRows {self._rows!r}>"


def item_row(record: ItemRecord) -> ItemRow:
    """*record* as a tuple."""
    return (
        record.line,
        record.key,
        record.raw_key,
        record.account_id,
        record.email,
        record.user_id,
        record.fields,
        record.rejection,
        record.result,
        record.skip,
    )


def item_rows(records: Iterable[ItemRecord]) -> Iterator[ItemRow]:
    """*records* as tuples: read as such from :class:`ItemRows`, made from anything else."""
    if isinstance(records, ItemRows):
        return records.rows()
    return map(item_row, records)


#: JSON of the ``fields`` mappings seen, by their items: a file's rows repeat a few
#: (``{"license": "Pro"}``), and encoding each again costs more than the rest of a row.
_FIELDS_JSON: dict[tuple[tuple[str, Any], ...], str | None] = {}
_FIELDS_JSON_MAX = 4096


def fields_json(fields: Mapping[str, Any] | None) -> str | None:
    """:func:`~bulkchime.store._rows.dumps` of an item's *fields*, remembered."""
    if not fields:
        return None
    key = tuple(fields.items())
    # Only text values make keys: 1 and True are equal keys but not the same JSON, and
    # a list is no key at all.
    if not all(type(value) is str for _, value in key):
        return dumps(fields)
    text = _FIELDS_JSON.get(key)
    if text is None:
        if len(_FIELDS_JSON) >= _FIELDS_JSON_MAX:
            _FIELDS_JSON.clear()
        text = _FIELDS_JSON[key] = dumps(fields)
    return text
