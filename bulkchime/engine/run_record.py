"""The run record: what this run finished and over how long, kept in the checkpoint.

``bulkchime status`` reads it to give a speed that is the run's own: the items this run
finished (not those of earlier runs of a resumed job) over this run's time. It is written
every few seconds while items finish, and once more at the end with the summary's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from ..store import CheckpointStore
from .health import Health

__all__ = ["RUN_INFO", "RunRecord"]

#: The name of the record in the store's :meth:`~bulkchime.store.CheckpointStore.info`.
RUN_INFO = "run"
#: Seconds between writes while the run goes on.
_INTERVAL = 5.0


class RunRecord:
    """Keeps ``info["run"]`` of *store* up to date with what *health* counted.

    The record is ``{"started", "at", "seconds", "items", "ended"}``: wall-clock start and
    time of writing, seconds and items finished so far, and whether the run reached its end.
    It is first written once an item finished (so a run refused before it could send,
    on a checkpoint made for another job, leaves that checkpoint's record alone).
    """

    def __init__(self, store: CheckpointStore, health: Health, started: float) -> None:
        self.store = store
        self.health = health
        #: ``time.monotonic()`` when the run started.
        self.started = started
        self._wall_started = time.time() - (time.monotonic() - started)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RunRecord items={self.health.finished_this_run} stopped={self._stop.is_set()}>"

    def start(self) -> None:
        """Write the record every few seconds from now on, once items finish."""
        self._task = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        """Stop writing (a write under way completes)."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def finish(self, seconds: float) -> None:
        """Write the run's final figures: *seconds* is the summary's elapsed time."""
        await self.stop()
        await self._write(seconds, ended=True)

    async def _keep(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), _INTERVAL)
            if not self._stop.is_set() and self.health.finished_this_run:
                # Best effort: a store that cannot take it now has the run's own to do.
                with contextlib.suppress(Exception):
                    await self._write(time.monotonic() - self.started, ended=False)

    async def _write(self, seconds: float, *, ended: bool) -> None:
        await self.store.set_info(
            RUN_INFO,
            {
                "started": self._wall_started,
                "at": time.time(),
                "seconds": round(seconds, 6),
                "items": self.health.finished_this_run,
                "ended": ended,
            },
        )
