"""Attempt: one batch, sent until the service gives an answer worth recording.

The batch's intent is committed first. Then the request is sent under tenacity
(full-jitter backoff, ``Retry-After`` honoured) while the error is retryable and the
items have sends left; a non-idempotent request that may have been carried out is
never resent blind: it is verified (:mod:`.recovery`). The answer becomes one
outcome per item: done, failed with the service's code and message, or pending
again (a per-user ``Throttled``), which goes back to the dispatcher after a backoff.
A batch rejected whole (400) is cut in halves to find the bad items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from ..actions import ItemResult
from ..backoff import backoff_seconds, backoff_wait
from ..errors import (
    ApiError,
    AuthError,
    BadBatchError,
    Interrupted,
    JobAborted,
    PermanentError,
    RetryableError,
)
from ..plan import Batch, halves
from ..store import State, TaskOutcome, WorkItem
from ._context import RunContext
from ._crash import crash_points
from .accounts import account_forbidden
from .recovery import verdict_outcome, verify

__all__ = ["Requeue", "send_batch"]

log = structlog.get_logger("bulkchime")

#: How a batch goes back to the dispatcher: the batch, and the seconds to wait first.
Requeue = Callable[[Batch, float], None]


async def send_batch(ctx: RunContext, batch: Batch, requeue: Requeue) -> None:
    """Send *batch*, record every item's outcome, and requeue what is to be retried."""
    await ctx.store.mark_in_flight(batch.items)
    crash_points.reached("after_intent")
    attempt = _Attempt(ctx, batch)
    outcomes = await attempt.outcomes()
    if outcomes is None:  # bisected, or an account refused: recorded already
        for half in attempt.halves:
            requeue(half, 0.0)
        return
    await ctx.store.record(outcomes)
    ctx.health.count(outcomes)
    # A stopped batch's items stay pending for the next run, not for this one.
    retry = [
        item
        for item, o in zip(batch.items, outcomes, strict=True)
        if o.state is State.PENDING and not attempt.stopped
    ]
    for item in retry:
        item.attempts += attempt.sends
    (log.debug if ctx.options.progress_bar is not None else log.info)(
        "batch",
        action=batch.action.name,
        account_id=batch.account_id,
        size=len(batch),
        sends=attempt.sends,
        succeeded=sum(o.state is State.DONE for o in outcomes),
        failed=sum(o.state is State.FAILED for o in outcomes),
        retrying=len(retry),
        rate=round(ctx.budget.rate, 2),
    )
    if retry and not ctx.health.stopping:
        # The formula's attempt is the sends so far less one, as for a request sent
        # again: up to 0.25 s after a user's first failure.
        worst = max(item.attempts for item in retry)
        requeue(
            Batch(batch.action, batch.phase, batch.account_id, retry), backoff_seconds(worst - 1)
        )


class _Attempt:
    """The sends of one batch, and what their last answer means for each item."""

    def __init__(self, ctx: RunContext, batch: Batch) -> None:
        self.ctx = ctx
        self.batch = batch
        self.action = batch.action
        self.items = batch.items
        self.max_attempts = ctx.job.limits.max_attempts
        #: Requests that actually left.
        self.sends = 0
        #: Whether the job stopped before the batch got an answer (its items stay pending).
        self.stopped = False
        #: The halves of a batch rejected whole, to send next.
        self.halves: Sequence[Batch] = ()

    def _resend_allowed(self, error: BaseException) -> bool:
        # A non-idempotent request that may have been carried out is verified, not resent.
        return isinstance(error, RetryableError) and (
            self.action.idempotent or not error.maybe_applied
        )

    async def _send(self) -> list[ItemResult]:
        ctx = self.ctx
        budget = max(1, self.max_attempts - max(item.attempts for item in self.items))
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(budget),
            wait=backoff_wait,
            retry=retry_if_exception(self._resend_allowed),
            sleep=ctx.health.sleep,
            reraise=True,
        ):
            with attempt:
                if self.sends and ctx.health.stopping:
                    raise Interrupted("not sent again: the job is stopping")
                self.sends += 1
                try:
                    return await self.action.handler.send(
                        ctx.client, self.batch.account_id, self.items, ctx.job.params
                    )
                except Interrupted:
                    self.sends -= 1  # that one never left
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def outcomes(self) -> list[TaskOutcome] | None:
        """Each item's outcome, or ``None`` when they were recorded already."""
        try:
            results = await self._send()
            crash_points.reached("after_send")
        except Interrupted:
            self.stopped = True
            return [self._pending(item) for item in self.items]
        except AuthError as error:
            return await self._refused(error)
        except BadBatchError as error:
            if len(self.items) > 1:
                await self._bisect(error)
                return None
            return [self._failed(self.items[0], error)]
        except PermanentError as error:
            return [self._failed(item, error) for item in self.items]
        except RetryableError as error:
            if self._resend_allowed(error):  # out of sends, for the most-sent item at least
                return [self._retry_or_give_up(item, error) for item in self.items]
            return await self._verify_after(error)
        return [
            self._outcome(item, result) for item, result in zip(self.items, results, strict=True)
        ]

    # -- outcomes -----------------------------------------------------------------------

    def _pending(self, item: WorkItem, error: ApiError | None = None) -> TaskOutcome:
        code, message = (error.code, error.message) if error else (None, None)
        return TaskOutcome(item.item_id, item.phase, State.PENDING, code, message, sends=self.sends)

    def _failed(self, item: WorkItem, error: ApiError, note: str | None = None) -> TaskOutcome:
        message = error.message or error.code
        return self._failure(item, error.code, f"{note}: {message}" if note else message)

    def _failure(self, item: WorkItem, code: str | None, message: str | None) -> TaskOutcome:
        return TaskOutcome(item.item_id, item.phase, State.FAILED, code, message, sends=self.sends)

    def _has_sends_left(self, item: WorkItem) -> bool:
        return item.attempts + self.sends < self.max_attempts

    def _gave_up(self, item: WorkItem) -> str:
        return f"gave up after {item.attempts + self.sends} attempts"

    def _outcome(self, item: WorkItem, result: ItemResult) -> TaskOutcome:
        if result.ok:
            return TaskOutcome(
                item.item_id, item.phase, State.DONE, None, result.message, result.result,
                self.sends,
            )  # fmt: skip
        if result.retryable and self._has_sends_left(item):
            return TaskOutcome(
                item.item_id, item.phase, State.PENDING, result.code, result.message,
                sends=self.sends,
            )  # fmt: skip
        message = result.message or ""
        if result.retryable:
            message = f"{self._gave_up(item)}: {message}"
        return self._failure(item, result.code, message)

    def _retry_or_give_up(self, item: WorkItem, error: RetryableError) -> TaskOutcome:
        # Batched with retried items sent more often, this one may still have sends left.
        if self._has_sends_left(item):
            return self._pending(item, error)
        return self._failed(item, error, self._gave_up(item))

    # -- the errors that need more than a verdict per item ------------------------------

    async def _refused(self, error: AuthError) -> list[TaskOutcome] | None:
        account_id = self.batch.account_id
        if account_id and await account_forbidden(self.ctx, self.batch.phase, account_id, error):
            # The account's items were failed (and counted) with it.
            await self.ctx.store.record([self._failed(item, error) for item in self.items])
            return None
        # Refused before anything happened: back to pending, and stop the job.
        self.stopped = True
        self.ctx.health.fail_job(JobAborted(f"authentication failed: {error}"))
        return [self._pending(item, error) for item in self.items]

    async def _bisect(self, error: BadBatchError) -> None:
        for item in self.items:
            item.attempts += self.sends
        await self.ctx.store.record(
            [TaskOutcome(i.item_id, i.phase, State.PENDING, sends=self.sends) for i in self.items]
        )
        log.info("batch.bisect", action=self.action.name, size=len(self.items), code=error.code)
        self.halves = halves(self.batch)

    async def _verify_after(self, error: RetryableError) -> list[TaskOutcome]:
        """After an ambiguous failure of a non-idempotent request, ask the server."""
        log.warning("batch.verify", action=self.action.name, size=len(self.items), code=error.code)
        verdicts = await verify(self.ctx, self.action, self.items)
        outcomes: list[TaskOutcome] = []
        for item, verdict in zip(self.items, verdicts, strict=True):
            if verdict is not None:
                outcomes.append(verdict_outcome(item, verdict, self.sends))
            else:
                outcomes.append(self._retry_or_give_up(item, error))
        return outcomes
