"""CSV input: the header, then one :data:`~bulkchime._row_checks.RowValues` per row.

The loop over rows is the hot path of reading a million-row file: the C ``csv`` reader
splits the lines, and each row costs a few string operations and one precompiled match
when it is valid (the common case); only a bad or unusual row takes the general path
that says what is wrong with it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass
from types import MappingProxyType
from typing import Final

from bulkchime._column_hints import missing_column_hint
from bulkchime._row_checks import RowValues, row_values, valid_key, whitespace
from bulkchime.errors import InputError

__all__ = ["csv_rows"]

#: Header names shown in a "no such column" message before it is cut short.
_HEADER_SHOWN: Final = 20
#: The fields of every row of a file with no column but the key (and account): one
#: empty mapping, read-only, not a new one per row.
_NO_FIELDS: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _Header:
    """Where a CSV's columns are."""

    #: Columns the header names.
    width: int
    #: The key's column.
    key_at: int
    #: The ``account_id`` column, if the rows have one (and it is not the key).
    account_at: int | None
    #: ``(index, name)`` of every other named column.
    others: list[tuple[int, str]]


def csv_rows(lines: Iterator[str], key: str, name: str, column: str) -> Iterator[RowValues]:
    """The rows of the CSV text *lines*, keyed by *column* (holding *key*s)."""
    # strict: a stray quote raises instead of silently swallowing the rest of the file.
    reader = csv.reader(lines, strict=True)
    # reader.line_num after the last record read: a record starts on the next line.
    prev = 0
    try:
        for record in reader:
            start, prev = prev + 1, reader.line_num
            if any(value.strip() for value in record):
                break  # the header; blank lines and ",,," rows before it are skipped
        else:
            return
        header_line = start
        header = _columns([value.strip().lower() for value in record], key, column, name, start)
        width, key_at, account_at, others = astuple(header)
        # The common row (as wide as the header, a valid key, a valid account or none)
        # is made here; any other by _row, which says what is wrong with it.
        valid = valid_key(key) or _never
        lower = key == "email"
        key_only = account_at is None and not others  # one column: nothing else to read
        rows = 0
        for record in reader:
            start, prev = prev + 1, reader.line_num
            if len(record) == width and valid(raw := record[key_at].strip()):
                if key_only:
                    rows = 1
                    yield (start, raw.lower() if lower else raw, raw, None, _NO_FIELDS, None)
                    continue
                account = "" if account_at is None else record[account_at].strip()
                if not account or not whitespace(account):
                    fields = _NO_FIELDS
                    if others:
                        fields = {cell: record[at].strip() for at, cell in others}
                    normalized = raw.lower() if lower else raw
                    rows = 1
                    yield (start, normalized, raw, account or None, fields, None)
                    continue
            row = _row(record, start, key, header)
            if row is not None:  # None: a blank row
                rows = 1
                yield row
    except csv.Error as exc:
        start = prev + 1
        end = f" (the record runs to line {reader.line_num})" if reader.line_num > start else ""
        raise InputError(
            name,
            f"is not valid CSV: {exc}{end}. HINT: a value holding a comma, quote or "
            'newline must be quoted, and quotes inside it doubled: "Smith, ""J"""',
            line=start,
        ) from None
    if rows == 0:
        raise InputError(
            name,
            "has a header but no rows. HINT: add one row per user below the header",
            line=header_line,
        )


def _never(raw: str) -> None:
    """The fast check of a key that has none (names: their length is checked)."""
    return None


def _row(record: list[str], line: int, key: str, header: _Header) -> RowValues | None:
    """Any row: ``None`` for a blank one, else its values and what is wrong with it."""
    width = len(record)

    def value(index: int) -> str:
        return record[index].strip() if index < width else ""

    raw = value(header.key_at)
    if not raw and not any(cell.strip() for cell in record):
        return None  # blank lines, and the ",,," rows spreadsheets leave behind
    rejection = None
    # Trailing empty fields (a spreadsheet's stray commas) are harmless; extra data is not.
    if width > header.width and any(extra.strip() for extra in record[header.width :]):
        rejection = (
            f"row has {width} fields, header has {header.width}. "
            "HINT: quote values that contain commas"
        )
    fields = {cell: value(index) for index, cell in header.others}
    account = value(header.account_at) if header.account_at is not None else ""
    return row_values(line, key, raw, account, fields, rejection)


def _columns(header: list[str], key: str, column: str, name: str, line: int) -> _Header:
    """Find the key's column, the account column and the others."""
    seen: set[str] = set()
    for cell in header:
        if cell and cell in seen:
            raise InputError(
                name,
                f"the header names the column {cell!r} twice. HINT: rename or delete one",
                line=line,
                field=cell,
            )
        seen.add(cell)
    if column not in seen:
        shown = ", ".join(cell or "''" for cell in header[:_HEADER_SHOWN])
        if len(header) > _HEADER_SHOWN:
            shown += f", ... ({len(header)} columns)"
        raise InputError(
            name,
            f"no {column!r} column; the header has: {shown}. HINT: "
            + missing_column_hint(header, key, column),
            line=line,
            field=column,
        )
    key_at = header.index(column)
    account_at = (
        header.index("account_id") if key != "account_id" and "account_id" in seen else None
    )
    others = [
        (index, cell)
        for index, cell in enumerate(header)
        if cell and index != key_at and index != account_at
    ]
    return _Header(len(header), key_at, account_at, others)
