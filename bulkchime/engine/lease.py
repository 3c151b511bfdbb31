"""The lease: this runner's right to send what it claimed, kept alive by a heartbeat.

Several runners share a job through a shared store (PostgreSQL). Each holds its
claims under a lease of ``--lease`` seconds that a heartbeat renews every third of
it. The lease is *fenced* locally: a request goes out only while the last renewal
that succeeded, counted from when it was asked for, is younger than the lease less
a margin, so that when another runner may take the claims over (the lease lapsed on
the store's clock), this one has already stopped sending them. A renewal the store
refuses means the claims were taken over: the runner drops them (:attr:`lost`) and
joins again as a new runner. A store one process holds (SQLite) has no lease: it is
always valid.

A runner frozen mid-request (SIGSTOP) can still send the request it was in the
middle of when it wakes; the margin covers the time between the check and the
request leaving, not a freeze in between. That request is one the taker-over also
sends (idempotent) or verifies first (the others), as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from ..errors import JobAborted, LeaseLost
from ..store import CheckpointStore

__all__ = ["DEFAULT_LEASE_SECONDS", "Lease"]

log = structlog.get_logger("bulkchime")

#: ``--lease``: seconds a runner's claims stay its own without a heartbeat.
DEFAULT_LEASE_SECONDS = 30.0
#: Heartbeats per lease: two may fail in a row before the lease is in danger.
_BEATS_PER_LEASE = 3


class Lease:
    """The runner's lease on its claims (see the module docstring).

    :param store: the job's store (its :meth:`~bulkchime.store.CheckpointStore.renew_lease`).
    :param seconds: the lease length.
    :param items_done: what this runner has finished, published with each heartbeat.
    :param fail_job: called when the store stays unreachable past the lease (the job
        stops, resumable).
    """

    def __init__(
        self,
        store: CheckpointStore,
        seconds: float,
        items_done: Callable[[], int],
        fail_job: Callable[[JobAborted], None],
    ) -> None:
        self.store = store
        self.seconds = seconds
        self._items_done = items_done
        self._fail_job = fail_job
        #: Set when the store refused a renewal: the claims are no longer this runner's.
        self.lost = asyncio.Event()
        self._valid_until = time.monotonic() + self._usable
        self._renewed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def _usable(self) -> float:
        """Seconds of a renewal that may be used: the lease less a margin for the
        request in hand and the clocks' drift."""
        return self.seconds - min(2.0, self.seconds / 5)

    def valid(self) -> bool:
        """Whether requests for this runner's claims may go out now."""
        if not self.store.shared:
            return True
        return not self.lost.is_set() and time.monotonic() < self._valid_until

    async def wait_valid(self) -> None:
        """Return once requests may go out, or the lease is lost (check :attr:`lost`)."""
        while not self.valid() and not self.lost.is_set():
            self._renewed.clear()
            lost = asyncio.ensure_future(self.lost.wait())
            try:
                await asyncio.wait(
                    [lost, asyncio.ensure_future(self._renewed.wait())],
                    timeout=self.seconds / _BEATS_PER_LEASE,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                lost.cancel()

    def lose(self, why: LeaseLost | str) -> None:
        """The claims were taken over (the store said so): drop them."""
        if not self.lost.is_set():
            log.warning("lease.lost", reason=str(why))
        self.lost.set()

    async def rejoin(self) -> None:
        """After a lost lease: join the job again as a new runner, with a fresh lease."""
        await self.store.rejoin()
        self._valid_until = time.monotonic() + self._usable
        self.lost.clear()
        log.info("lease.rejoined")

    def start(self) -> None:
        """Start the heartbeat (a shared store's only)."""
        if self.store.shared and self._task is None:
            self._task = asyncio.create_task(self._beat())

    async def stop(self) -> None:
        """Stop the heartbeat."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _beat(self) -> None:
        interval = self.seconds / _BEATS_PER_LEASE
        unreachable_since: float | None = None
        while True:
            asked = time.monotonic()
            try:
                renewed = await asyncio.wait_for(
                    self.store.renew_lease(self._items_done()), timeout=interval
                )
            except Exception as error:  # the store unreachable or slow
                unreachable_since = unreachable_since or asked
                self._unreachable(error, time.monotonic() - unreachable_since)
            else:
                if unreachable_since is not None:
                    log.info("lease.renewed_again", after=round(asked - unreachable_since, 1))
                unreachable_since = None
                if renewed:
                    self._valid_until = asked + self._usable
                    self._renewed.set()
                else:
                    self.lose("the store refused the heartbeat: the lease lapsed")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - asked)))

    def _unreachable(self, error: BaseException, for_seconds: float) -> None:
        """A heartbeat failed: sending pauses once the lease runs out; after a few
        leases' worth of trying, the run stops (resumable)."""
        log.warning("lease.heartbeat_failed", error=repr(error), for_seconds=round(for_seconds, 1))
        if isinstance(error, JobAborted):
            self._fail_job(error)
        elif for_seconds > max(60.0, 2 * self.seconds):
            self._fail_job(
                JobAborted(
                    f"the checkpoint's store did not answer the heartbeat for "
                    f"{for_seconds:.0f} s: {error!r}. HINT: run the same command again "
                    "once it answers; nothing is lost"
                )
            )
