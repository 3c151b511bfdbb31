"""Input rows, streamed from CSV or JSONL files or stdin, normalized and checked one by one.

:func:`read_source` is a generator: it holds one row (and one read chunk) in memory at a
time, so a file of a million users costs no more memory than a file of ten. It raises
:class:`~bulkchime.errors.InputError` for problems with the input as a whole (unreadable,
empty, not UTF-8, no key column, broken CSV quoting, invalid JSON) and yields every row
it can parse, with :attr:`SourceRow.rejection` set when that one row cannot be sent.

It does not drop duplicates: :attr:`SourceRow.key` is the normalized dedupe key (emails
trimmed and lower-cased), and the checkpoint dedupes on it.

:func:`read_rows` is the same stream as plain tuples (:data:`RowValues`), for the ingest
of a large input, where an object per row would cost more than reading it. The CSV
reader is :mod:`bulkchime._csv_rows`; the key checks both formats share are
:mod:`bulkchime._row_checks`.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import sys
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from bulkchime._column_hints import KEY_WORDS, KEYS
from bulkchime._csv_rows import csv_rows
from bulkchime._row_checks import RowValues, row_values
from bulkchime._utf8 import Utf8Checked
from bulkchime.errors import InputError

__all__ = ["KEYS", "RowValues", "SourceRow", "file_fingerprint", "read_rows", "read_source"]

_STDIN_NAME = "<stdin>"
_CSV_SUFFIXES = (".csv",)
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One input row: the user (or account) it names and the other values it carries."""

    #: 1-based line of the file where the row starts (a CSV header is line 1).
    line: int
    #: The normalized key and dedupe key: emails trimmed and lower-cased, others trimmed.
    key: str
    #: The key as written in the file, trimmed of surrounding whitespace.
    raw_key: str
    #: The row's own ``account_id`` when it has a non-empty one (unless that is the key).
    account_id: str | None
    #: Every other column or field: names trimmed and lower-cased, values trimmed.
    fields: Mapping[str, str]
    #: Why this row cannot be sent, naming the field; ``None`` for a good row.
    rejection: str | None


def read_source(
    path: str | os.PathLike[str],
    key: str,
    *,
    stdin: BinaryIO | None = None,
    display_name: str | None = None,
    column: str | None = None,
) -> Generator[SourceRow, None, None]:
    """Stream the rows of the input at *path*, keyed by the column or field *key*.

    *key* is one of :data:`KEYS`: what each row names; *column* is the column or field
    holding it when not named after it (``mail`` holding emails). A *path* of ``"-"``
    reads *stdin* (by default ``sys.stdin.buffer``, which is left open). Files ending in
    ``.csv`` are CSV, in ``.jsonl`` or ``.ndjson`` JSON Lines; anything else, and stdin,
    is sniffed: JSONL when the first non-blank character is ``{``, else CSV.

    Errors name the input by *display_name*, by default the path as given (``<stdin>``
    for ``"-"``). An unknown *key* raises at once; every other
    :class:`~bulkchime.errors.InputError` is raised while iterating, since the reader
    opens the file only on the first ``next()``. It is a generator: ``close()`` it to
    release the file before the end.
    """
    rows = read_rows(path, key, stdin=stdin, display_name=display_name, column=column)
    return (SourceRow(*values[:4], dict(values[4]), values[5]) for values in rows)


def read_rows(
    path: str | os.PathLike[str],
    key: str,
    *,
    stdin: BinaryIO | None = None,
    display_name: str | None = None,
    column: str | None = None,
) -> Generator[RowValues, None, None]:
    """:func:`read_source`'s rows as plain tuples of a :class:`SourceRow`'s fields, in
    its order: what an ingest of a million rows reads, without an object per row."""
    name = display_name if display_name is not None else _display(path)
    if key not in KEYS:
        raise InputError(
            name,
            f"unknown key {key!r}. HINT: use one of {', '.join(KEYS)}",
            field="key",
        )
    return _read(path, key, stdin, name, (column or key).strip().lower())


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """Return ``"sha256:<hex>"`` of the file's bytes, read in chunks.

    Raises :class:`~bulkchime.errors.InputError` when the file cannot be read and
    ``ValueError`` for ``"-"``: stdin cannot be read twice, so it has no fingerprint
    to compare on resume.
    """
    if os.fspath(path) == "-":
        raise ValueError("stdin has no fingerprint. HINT: fingerprint a file, not '-'")
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256")
    except OSError as exc:
        raise InputError(_display(path), _cannot_read(exc)) from exc
    return f"sha256:{digest.hexdigest()}"


# --- reading ------------------------------------------------------------------------------


def _display(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    return _STDIN_NAME if text == "-" else text


def _cannot_read(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot read: {reason}. HINT: check the path and its permissions"


def _read(
    path: str | os.PathLike[str], key: str, stdin: BinaryIO | None, name: str, column: str
) -> Generator[RowValues, None, None]:
    text_path = os.fspath(path)
    raw: BinaryIO
    if text_path == "-":
        raw, owned = (stdin if stdin is not None else sys.stdin.buffer), False
    else:
        try:
            raw, owned = open(text_path, "rb"), True
        except OSError as exc:
            raise InputError(name, _cannot_read(exc)) from exc
    text = io.TextIOWrapper(
        Utf8Checked(raw, owned=owned, name=name), encoding="utf-8-sig", newline=""
    )
    try:
        first, blanks, lines = _peek(text)
        if first is None:
            raise InputError(
                name, "is empty. HINT: the input has no rows; check that it was fully written"
            )
        suffix = os.path.splitext(text_path)[1].lower() if text_path != "-" else ""
        if suffix in _CSV_SUFFIXES:
            yield from csv_rows(lines, key, name, column)
        elif suffix in _JSONL_SUFFIXES or first == "{":
            yield from _jsonl_rows(lines, key, name, column)
        elif first == "[":
            raise InputError(
                name,
                "looks like a JSON array, which is not read. HINT: write one JSON object "
                "per line (JSON Lines, .jsonl), e.g. with: jq -c '.[]'",
                line=blanks + 1,
            )
        else:
            yield from csv_rows(lines, key, name, column)
    except OSError as exc:
        raise InputError(name, _cannot_read(exc)) from exc
    finally:
        text.close()


def _peek(text: Iterable[str]) -> tuple[str | None, int, Iterator[str]]:
    """Return the first non-blank character, the blank lines before it, and all lines.

    Leading blank lines are counted, not kept, so the peek holds one line at most.
    """
    lines = iter(text)
    blanks = 0
    for line in lines:
        stripped = line.strip()
        if stripped:
            lines = itertools.chain(itertools.repeat("\n", blanks), [line], lines)
            return stripped[0], blanks, lines
        blanks += 1
    return None, blanks, iter(())


# --- JSONL --------------------------------------------------------------------------------


def _jsonl_rows(lines: Iterator[str], key: str, name: str, column: str) -> Iterator[RowValues]:
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = "HINT: each line must be one complete JSON object"
            if not text.endswith(("\n", "\r")):
                hint = "HINT: the last line has no newline, so the file looks cut short"
            raise InputError(
                name, f"invalid JSON: {exc.msg} (column {exc.colno}). {hint}", line=number
            ) from None
        except (ValueError, RecursionError) as exc:
            raise InputError(name, f"invalid JSON: {exc}", line=number) from None
        if not isinstance(value, dict):
            raise InputError(
                name,
                f"the line holds a JSON {_json_kind(value)}, not an object. HINT: write one "
                f'object per line, e.g. {{"{key}": "..."}}',
                line=number,
            )
        yield _jsonl_row(number, value, key, column)


def _jsonl_row(line: int, obj: dict[str, object], key: str, column: str) -> RowValues:
    rejection = None
    values: dict[str, str] = {}
    written: dict[str, str] = {}
    for field, raw in obj.items():
        name = field.strip().lower()
        if name in written:
            rejection = rejection or (
                f"fields {written[name]!r} and {field!r} are the same field; keep one"
            )
            continue
        written[name] = field
        if isinstance(raw, dict | list):
            rejection = rejection or (
                f"{name} is a JSON {_json_kind(raw)}; values must be strings or numbers"
            )
            continue
        values[name] = _scalar(raw)
    raw_key = values.pop(column, None)
    if raw_key is None and rejection is None and column not in written:
        rejection = (
            f"no {column!r} field. HINT: give each object a {column!r} field, or name the "
            f"field that holds the {KEY_WORDS[key]} with --key-column (input.column)"
        )
    account = values.pop("account_id", "") if key != "account_id" else ""
    return row_values(line, key, raw_key or "", account, values, rejection)


def _scalar(value: object) -> str:
    """A JSON scalar as the text a CSV cell would hold (JSON spelling for booleans)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
