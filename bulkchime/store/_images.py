"""Before-images: what a job's subjects (users, accounts) were before it changed them.

Both stores keep them the same way: one JSON object per ``(account id, subject)``,
the subject a user id or the account id itself, and the first image of a subject
wins, so that a look-up made again on resume (after the change) cannot overwrite
the state from before it. ``bulkchime undo`` and ``bulkchime verify`` read them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

from ._rows import dumps

__all__ = ["IMAGE_PAGE_SIZE", "BeforeImage", "ImagePairs", "image_rows", "paged_images"]

#: Before-images read per page.
IMAGE_PAGE_SIZE = 2000

#: ``(account id, subject, image)``.
BeforeImage: TypeAlias = tuple[str, str, dict[str, Any]]

#: ``(subject, image)`` pairs of one account, as a store is given them.
ImagePairs: TypeAlias = Sequence[tuple[str, Mapping[str, Any]]]

#: A page of images and where it ends.
_Page: TypeAlias = tuple[list[BeforeImage], tuple[str, str]]


async def paged_images(
    read: Callable[..., Awaitable[_Page]], read_page: Callable[..., Any]
) -> AsyncIterator[BeforeImage]:
    """Every image: ``read(read_page, after, size)`` (a store's ``_read`` of its page
    function) in pages of :data:`IMAGE_PAGE_SIZE`."""
    after = ("", "")
    while True:
        page, after = await read(read_page, after, IMAGE_PAGE_SIZE)
        if not page:
            return
        for image in page:
            yield image


def image_rows(
    account_id: str, images: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[tuple[str, str, str]]:
    """``(account id, subject, JSON text)`` rows, the first of each subject only."""
    rows: dict[str, tuple[str, str, str]] = {}
    for subject, image in images:
        rows.setdefault(subject, (account_id, subject, dumps(image) or "{}"))
    return list(rows.values())
