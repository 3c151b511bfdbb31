"""Run a coroutine per item, at most *limit* at once, results in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["map_bounded"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


async def map_bounded(
    fn: Callable[[_In], Awaitable[_Out]], items: Iterable[_In], limit: int
) -> list[_Out]:
    """``[await fn(item) for item in items]``, with up to *limit* running at once."""
    semaphore = asyncio.Semaphore(max(limit, 1))

    async def one(item: _In) -> _Out:
        async with semaphore:
            return await fn(item)

    return list(await asyncio.gather(*(one(item) for item in items)))
