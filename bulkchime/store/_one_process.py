"""What a store that one process holds alone answers about runners: nobody else is there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._models import RunnerInfo

__all__ = ["OneProcess"]


class OneProcess:
    """The runner side of :class:`~bulkchime.store.CheckpointStore` for a store one
    process holds (a locked file): no lease to lose, nobody to wait for or take over from."""

    #: Nobody else claims or takes over: the store's lock keeps other processes out.
    shared = False

    async def others_busy(self, phase: int) -> bool:
        """Never: nobody else works on this checkpoint."""
        return False

    async def renew_lease(self, items_done: int) -> bool:
        """Always: the lock, not a lease, keeps this run's claims its own."""
        return True

    async def rejoin(self) -> None:
        """Nothing to do: the lease is never lost."""

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Nobody to wait for."""
        yield

    async def runners(self) -> list[RunnerInfo]:
        """None: ``holder`` names the one process."""
        return []
