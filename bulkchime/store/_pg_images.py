"""The PostgreSQL store's before-images (see :mod:`bulkchime.store._images`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._images import BeforeImage, image_rows
from ._pg_conn import Conn
from ._pg_ops import Scope, fetch_all
from ._rows import loads

__all__ = ["add_before_images", "before_images_page"]

_ADD = """
    INSERT INTO bulkchime_before_images (job_id, account_id, subject, image)
    SELECT %(job)s, p.account_id, p.subject, p.image
    FROM unnest(%(accounts)s::text[], %(subjects)s::text[], %(images)s::text[])
        AS p(account_id, subject, image)
    ON CONFLICT (job_id, account_id, subject) DO NOTHING
"""
_PAGE = """
    SELECT account_id, subject, image FROM bulkchime_before_images
    WHERE job_id = %(job)s AND (account_id, subject) > (%(account)s, %(subject)s)
    ORDER BY account_id, subject LIMIT %(limit)s
"""


async def add_before_images(
    conn: Conn, scope: Scope, account_id: str, images: Sequence[tuple[str, Mapping[str, Any]]]
) -> None:
    """See :meth:`CheckpointStore.add_before_images` (safe to run again: the first wins)."""
    rows = image_rows(account_id, images)
    if rows:
        accounts, subjects, texts = (list(column) for column in zip(*rows, strict=True))
        params = scope.params(accounts=accounts, subjects=subjects, images=texts)
        await conn.execute(_ADD, params)


async def before_images_page(
    conn: Conn, scope: Scope, after: tuple[str, str], limit: int
) -> tuple[list[BeforeImage], tuple[str, str]]:
    """Up to *limit* images after ``(account id, subject)`` *after*, and where the page ends."""
    params = scope.params(account=after[0], subject=after[1], limit=limit)
    rows = await fetch_all(conn, _PAGE, params)
    page = [(str(a), str(s), loads(i)) for a, s, i in rows]
    return page, ((page[-1][0], page[-1][1]) if page else after)
