"""SIGINT and SIGTERM for the whole of a run: the first stops it, the second exits at once.

Installed with :func:`signal.signal` before the event loop starts and restored
after it has closed, so that no instant of a run (ingest, wrap-up, the loop's own
shutdown) leaves a signal to the default handler and a ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import structlog

from ..constants import EXIT_INTERRUPTED
from .health import Health

__all__ = ["Interrupts"]

log = structlog.get_logger("bulkchime")


class Interrupts:
    """Use as ``with Interrupts() as interrupts:`` around the run; :meth:`attach` its health."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        #: Signals received.
        self.count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._health: Health | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        for sig in self._SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, health: Health) -> None:
        """Stop the run of *health* on the first signal (at once if it already came)."""
        self._loop, self._health = asyncio.get_running_loop(), health
        if self.count:
            self._stop(health)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count > 1:
            # Every commit is atomic and reports are written by rename, so the
            # checkpoint is consistent at any instant; tasks left in flight are
            # resolved (or verified) when the job resumes.
            try:
                log.warning("interrupted.again", hint="exiting now; run the same command to resume")
            finally:
                os._exit(EXIT_INTERRUPTED)
        loop, health = self._loop, self._health
        if loop is not None and health is not None and not loop.is_closed():
            # Signal handlers run between bytecodes: hand the work to the loop.
            loop.call_soon_threadsafe(self._stop, health)

    @staticmethod
    def _stop(health: Health) -> None:
        log.warning("interrupted", hint="finishing in-flight requests; send again to quit now")
        health.stop()
