"""Dispatch: one phase's pending items, batched per account, sent by a pool of workers.

A producer claims pending items from the store a page at a time, cuts them into
batches of the action's size and queues them; ``concurrency`` workers take batches
and send them (:mod:`.attempt`). It first takes over what a killed run (or a runner
whose lease lapsed) left in flight, recovered (:mod:`.recovery`). Items to retry
come back after their backoff and ride in the producer's next full batches instead
of costing a request of their own, queued ahead of the batches of fresh items. On a
stop, queued batches stay pending, and requests in flight get a bounded time to
finish and be recorded.

On a shared store, when nothing is left to claim, the producer keeps watching the
phase until no other runner holds any of it, taking over the claims of runners that
are gone; a phase ends for every runner together.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Mapping

import structlog

from ..actions import ActionSpec
from ..errors import AuthError, JobAborted, LeaseLost
from ..plan import Batch, batches
from ..store import State, WorkItem
from ._context import RunContext
from .attempt import send_batch
from .in_flight import InFlight
from .progress_events import report_progress
from .recovery import recover
from .resolve import PAGE_SIZE

__all__ = ["GATHER_SECONDS", "POLL_SECONDS", "SHUTDOWN_GRACE_SECONDS", "send_phase"]

log = structlog.get_logger("bulkchime")

#: Seconds in-flight requests get to finish after SIGINT/SIGTERM before they are cut off.
SHUTDOWN_GRACE_SECONDS = 30.0
#: Seconds between looks at a shared phase that other runners still hold.
POLL_SECONDS = 0.5
#: Seconds ahead the last items of a phase look for other backoffs ending: those that
#: end within it are waited for, so that their items go out in one request, not one each.
#: (The widest first backoff: longer, and a user throttled again in that request would
#: start its own backoff late, after the phase's last full batch.)
GATHER_SECONDS = 0.25
#: A queued batch's rank: what comes back from a backoff goes before fresh items (so
#: that retried users are done while fresh ones still fill the budget, not after them),
#: and the workers' stop marks go last.
_RETRIED, _FRESH, _STOP = 0, 1, 2


async def send_phase(ctx: RunContext, phase: int, action: ActionSpec) -> None:
    """Send every pending item of *phase*; raise the job's abort, if it aborted.

    On a shared store, until every task of the phase is final: a runner whose lease
    was lost joins again and goes on; claims a pass left pending (sends the lease
    held back) go back to the pool and are claimed again.
    """
    store = ctx.store
    while True:
        await _Dispatcher(ctx, phase, action).run()
        await store.release()
        if ctx.health.abort is not None:
            raise ctx.health.abort
        if ctx.health.stopping or not store.shared:
            return
        if ctx.lease.lost.is_set():
            await ctx.lease.rejoin()
        elif not _unfinished(await store.phase_counts(phase)):
            return


def _unfinished(counts: Mapping[State, int]) -> bool:
    return bool(counts.get(State.PENDING) or counts.get(State.IN_FLIGHT))


class _Dispatcher:
    """The queue, the producer, the workers and the retries of one phase."""

    def __init__(self, ctx: RunContext, phase: int, action: ActionSpec) -> None:
        self.ctx = ctx
        self.phase = phase
        self.action = action
        self.concurrency = ctx.job.limits.concurrency
        self.queue: asyncio.PriorityQueue[tuple[int, int, Batch | None]] = asyncio.PriorityQueue(
            maxsize=self.concurrency * 2
        )
        self._order = itertools.count()  # first in, first out within a rank
        self.in_flight = InFlight(self.concurrency, lambda: ctx.budget.rate, ctx.stats)
        #: Batches queued, being sent, or waiting out a backoff.
        self.outstanding = 0
        self.producing = True
        self.all_done = asyncio.Event()
        self.background: set[asyncio.Task[None]] = set()
        #: Items waiting to ride in full batches: back from a backoff (a retry batch of
        #: the one or two users the service throttled inside a 200 would otherwise cost a
        #: whole request of the rate budget), or the end of a page that did not fill one.
        self.retry_pool: dict[str | None, list[WorkItem]] = {}
        #: When the backoffs under way end, on the loop's clock.
        self.due: list[float] = []
        #: Batches of fresh items queued (or being queued): while there are some, a part
        #: batch of pooled items would take a request from them, so it waits for the last.
        self.fresh_queued = 0
        #: Batches the workers hold: their answers may bring more items to pool.
        self.sending = 0

    @property
    def stopping(self) -> bool:
        """The job stops, or this runner lost its claims."""
        return self.ctx.health.stopping or self.ctx.lease.lost.is_set()

    def _settle(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and not self.producing:
            self.all_done.set()

    async def _put(self, batch: Batch, rank: int = _FRESH) -> None:
        self.outstanding += 1
        self.fresh_queued += rank == _FRESH
        await self._enqueue(batch, rank)

    async def _take(self) -> Batch | None:
        """The next batch to send (``None``: stop)."""
        rank, _, batch = await self.queue.get()
        self.fresh_queued -= rank == _FRESH
        self.sending += batch is not None
        return batch

    def _sent(self) -> None:
        """A batch's answers are recorded: once none is left to answer, what the pool
        holds at the end of a phase goes out (see :meth:`_flush_pool`)."""
        self.sending -= 1
        if not self.sending and not self.producing and self.retry_pool:
            self.outstanding += 1
            self._spawn(self._flush_then_settle())

    async def _flush_then_settle(self) -> None:
        try:
            await self._flush_pool(final=True)
        finally:
            self._settle()

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _enqueue(self, batch: Batch | None, rank: int) -> None:
        await self.queue.put((rank, next(self._order), batch))

    def requeue(self, batch: Batch, delay: float) -> None:
        """Send *batch* again after *delay* seconds (its items pooled, to ride in full batches)."""
        self.outstanding += 1
        due = asyncio.get_running_loop().time() + delay
        self.due.append(due)
        self._spawn(self._later(batch, delay, due))

    async def _later(self, batch: Batch, delay: float, due: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            self.due.remove(due)
            if self.stopping:
                self._settle()
                return
            if batch.bisected or len(batch) >= self.action.items_per_request:
                await self._enqueue(batch, _RETRIED)  # it keeps the count requeue gave it
                return
            self.retry_pool.setdefault(batch.account_id, []).extend(batch.items)
            await self._flush_pool(final=not self.producing)
            self._settle()
        except asyncio.CancelledError:
            if due in self.due:
                self.due.remove(due)
            self._settle()
            raise

    async def _flush_pool(self, *, final: bool) -> None:
        """Send the pooled items that fill whole batches. With *final* (nothing more will
        be claimed), send the rest too, once no fresh batch waits and no answer that may
        add to them is due, nor a backoff ending within :data:`GATHER_SECONDS`: these
        items go out with theirs, in one request."""
        size = self.action.items_per_request
        now = asyncio.get_running_loop().time()
        gather_more = (
            self.fresh_queued > 0
            or self.sending > 0
            or any(due <= now + GATHER_SECONDS for due in self.due)
        )
        for account_id in list(self.retry_pool):
            items = self.retry_pool.pop(account_id, [])
            cut = len(items) if final and not gather_more else len(items) - len(items) % size
            if cut < len(items):
                self.retry_pool.setdefault(account_id, []).extend(items[cut:])
            await self._put_batches(account_id, items[:cut], _RETRIED)

    async def _produce(self) -> None:
        try:
            await self._take_over()
            while not self.stopping:
                for account_id in await self.ctx.store.accounts_pending(self.phase):
                    await self._produce_account(account_id)
                    if self.stopping:
                        break
                await self._flush_pool(final=True)
                if not self.ctx.store.shared or not await self._others_busy():
                    break
            # From here on, items back from a backoff flush the pool themselves.
            self.producing = False
            await self._flush_pool(final=True)
        finally:
            self.producing = False
            if self.outstanding == 0:
                self.all_done.set()

    async def _produce_account(self, account_id: str | None) -> None:
        """Claim the account's pending items a page at a time and queue them in full
        batches; what does not fill one waits in the pool for the next page, the items
        coming back from a backoff, or the end."""
        size = self.action.items_per_request
        rest: list[WorkItem] = []
        while not self.stopping:
            page = await self.ctx.store.claim(self.phase, PAGE_SIZE, account_id)
            if not page:
                break
            items = self.retry_pool.pop(account_id, []) + rest + page
            cut = len(items) - len(items) % size
            rest = items[cut:]
            await self._put_batches(account_id, items[:cut])
        if rest:
            self.retry_pool.setdefault(account_id, []).extend(rest)

    async def _put_batches(
        self, account_id: str | None, items: list[WorkItem], rank: int = _FRESH
    ) -> None:
        for batch in batches(self.action, self.phase, account_id, items):
            if self.stopping:
                return
            await self._put(batch, rank)

    async def _take_over(self) -> bool:
        """Send what runs that are gone left in flight (recovered first); whether any."""
        taken = await self.ctx.store.take_over(self.phase)
        by_account: dict[str | None, list[WorkItem]] = {}
        for item in await recover(self.ctx, self.action, taken):
            by_account.setdefault(item.account_id, []).append(item)
        for account_id, items in by_account.items():
            await self._put_batches(account_id, items)
        return bool(taken)

    async def _others_busy(self) -> bool:
        """Whether to keep watching a shared phase: claims of runners that are gone were
        taken over, or other runners still hold some of it (then wait a little)."""
        if await self._take_over():
            return True
        if not await self.ctx.store.others_busy(self.phase):
            return False
        await _first_of(self.ctx.health.stop_event, self.ctx.lease.lost, timeout=POLL_SECONDS)
        return True

    async def _work(self) -> None:
        while (batch := await self._take()) is not None:
            try:
                await self.ctx.lease.wait_valid()
                async with self.in_flight:
                    if not self.stopping:
                        await send_batch(self.ctx, batch, self.requeue)
            except LeaseLost as error:  # another runner holds some of its items now
                self.ctx.lease.lose(error)
            except (JobAborted, AuthError) as error:  # a look-up while verifying
                self.ctx.health.fail_job(
                    error if isinstance(error, JobAborted)
                    else JobAborted(f"authentication failed: {error}")
                )  # fmt: skip
            except Exception as error:  # a bug: stop cleanly, keep the checkpoint resumable
                log.exception("batch.crashed", action=batch.action.name, size=len(batch))
                self.ctx.health.fail_job(
                    JobAborted(f"internal error while sending a batch: {error!r}")
                )
            finally:
                self._sent()
                self._settle()

    async def _watch_stop(self) -> None:
        await _first_of(self.ctx.health.stop_event, self.ctx.lease.lost)
        self.all_done.set()

    async def run(self) -> None:
        """Produce and send until every batch is settled, or the job stops."""
        workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        producer = asyncio.create_task(self._produce())
        watcher = asyncio.create_task(self._watch_stop())
        progress = asyncio.create_task(report_progress(self.ctx, self.action, self.phase))
        try:
            await self.all_done.wait()
        finally:
            for task in (producer, watcher, *self.background):
                task.cancel()
            # Batches still queued were never marked in flight: they stay pending.
            while not self.queue.empty():
                self.queue.get_nowait()
            for _ in workers:
                self.queue.put_nowait((_STOP, next(self._order), None))
            # In-flight requests get a bounded time to finish and be recorded; a request
            # cut off here stays in_flight in the checkpoint and is resolved on resume.
            _, late = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                task.cancel()
            progress.cancel()  # last: its final update shows every recorded outcome
            await asyncio.gather(
                producer, watcher, progress, *self.background, *workers, return_exceptions=True
            )


async def _first_of(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Wait until one of *events* is set, or *timeout* seconds pass."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
