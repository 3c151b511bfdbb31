"""An event loop whose clock jumps to the next timer instead of waiting for it.

Rate and backoff logic run in it exactly as in real time, in microseconds of wall
time: ``loop.time()`` is virtual, and whenever the loop would block for a timer
the clock moves forward by the timeout instead (and by a microsecond per turn).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        # Each turn of the loop costs a microsecond, so a timer that fires a hair
        # early (within the loop's clock resolution) cannot spin forever.
        self._loop.now += max(timeout or 0.0, 1e-6)
        return super().select(0)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time (no real I/O should wait in it)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run *coro* to completion on a fresh virtual-clock loop."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
