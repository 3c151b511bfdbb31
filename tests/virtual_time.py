"""An event loop whose clock jumps to the next timer instead of waiting for it.

Rate and backoff logic run in it exactly as in real time, in microseconds of wall
time: ``loop.time()`` is virtual, and whenever the loop would block for a timer
the clock moves forward by the timeout instead (and by a microsecond per turn).
Work handed to a thread and :meth:`VirtualClockLoop.track`-ed takes no virtual time:
while it runs, the loop waits for it in real time instead of jumping ahead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")
#: Real seconds the loop waits for tracked thread work before jumping anyway.
_THREAD_PATIENCE_SECONDS = 5.0


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if self._loop.threads_busy and timeout != 0:
            # Nothing else to run, and a thread's answer is due: wait for it (bounded,
            # should a thread hang).
            events = super().select(_THREAD_PATIENCE_SECONDS)
            if events:
                return events
        # Each turn of the loop costs a microsecond, so a timer that fires a hair
        # early (within the loop's clock resolution) cannot spin forever.
        self._loop.now += max(timeout or 0.0, 1e-6)
        return super().select(0)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time (no real I/O should wait in it)."""

    def __init__(self) -> None:
        self.now = 0.0
        #: Tracked thread work not yet answered on the loop.
        self.threads_busy = 0
        super().__init__(selector=_JumpingSelector(self))

    def track(self, future: concurrent.futures.Future[Any]) -> None:
        """Hold the clock while *future*, just submitted, runs on another thread (it takes
        no virtual time). Its "done" is heard after the waiter's own callback (that of
        ``asyncio.wrap_future``, added right after the submit): by then its result is on
        the loop."""
        self.threads_busy += 1

        def when_done(_: object) -> None:
            self.call_soon_threadsafe(self._thread_done)

        self.call_soon(future.add_done_callback, when_done)

    def _thread_done(self) -> None:
        self.threads_busy -= 1

    def time(self) -> float:
        return self.now


def run_virtual(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run *coro* to completion on a fresh virtual-clock loop."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
