"""Rows as both SQL stores select them, made into the models: one column order, one mapper.

The SQLite and PostgreSQL stores select work items and report records with the same
columns in the same order, and keep mappings (fields, results) as compact JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._models import REPORT_STATUS, ReportRecord, State, WorkItem

__all__ = ["dumps", "loads", "report_record", "work_item"]


def dumps(value: Mapping[str, Any] | None) -> str | None:
    """A mapping as compact JSON; ``None`` for nothing (and for an empty mapping)."""
    return None if not value else json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(value: str | None) -> dict[str, Any]:
    """The mapping stored by :func:`dumps` (empty for ``NULL``)."""
    return {} if not value else dict(json.loads(value))


def work_item(row: Sequence[Any]) -> WorkItem:
    """A row of :data:`WORK_ITEM_SELECT` as a :class:`WorkItem`."""
    item_id, phase, key, account_id, email, user_id, fields, attempts = row
    return WorkItem(item_id, phase, key, account_id, email, user_id, loads(fields), attempts)


def report_record(row: Sequence[Any]) -> ReportRecord:
    """A row of :data:`REPORT_PAGE` as a :class:`ReportRecord`."""
    return ReportRecord(
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
        result=loads(row[12]) or None,
    )
