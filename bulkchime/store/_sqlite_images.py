"""The SQLite store's before-images (see :mod:`bulkchime.store._images`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._images import BeforeImage, image_rows
from ._rows import loads
from ._sqlite_ops import transaction
from ._sqlite_sql import Connection

__all__ = ["add_before_images", "before_images_page"]

_ADD = "INSERT OR IGNORE INTO before_images (account_id, subject, image) VALUES (?, ?, ?)"
_PAGE = (
    "SELECT account_id, subject, image FROM before_images WHERE (account_id, subject) > (?, ?) "
    "ORDER BY account_id, subject LIMIT ?"
)
_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'before_images'"


def add_before_images(
    db: Connection, account_id: str, images: Sequence[tuple[str, Mapping[str, Any]]]
) -> None:
    """See :meth:`CheckpointStore.add_before_images`."""
    rows = image_rows(account_id, images)
    if not rows:
        return
    with transaction(db):
        db.executemany(_ADD, rows)


def before_images_page(
    db: Connection, after: tuple[str, str], limit: int
) -> tuple[list[BeforeImage], tuple[str, str]]:
    """Up to *limit* images after ``(account id, subject)`` *after*, and where the page
    ends. A checkpoint of an older schema, opened for reading, has none."""
    if db.execute(_EXISTS).fetchone() is None:
        return [], after
    rows = db.execute(_PAGE, (*after, limit)).fetchall()
    page = [(str(a), str(s), loads(i)) for a, s, i in rows]
    return page, ((page[-1][0], page[-1][1]) if page else after)
