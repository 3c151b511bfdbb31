"""Recovery: what to do with sends whose answer was lost (a killed run, a lapsed lease,
a timeout).

Idempotent actions are simply sent again. A non-idempotent one is asked about
first: its handler checks on the server whether the send took effect (an invited
email is in the account; a created account is found by name) and, where nobody can
tell (a PIN reset), the item fails ``OutcomeUnknown`` rather than being repeated.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from ..actions import ActionSpec, ItemResult
from ..store import State, TaskOutcome, WorkItem
from ._context import RunContext
from ._gather import map_bounded

__all__ = ["recover", "verdict_outcome", "verify"]

log = structlog.get_logger("bulkchime")


async def recover(ctx: RunContext, action: ActionSpec, items: Sequence[WorkItem]) -> list[WorkItem]:
    """Decide what to do with tasks left ``in_flight`` (by a killed run, or a runner whose
    lease lapsed, now this runner's); return those to send.

    Idempotent ones are all sent again. The others are verified: those that took
    effect are recorded done (or failed), and only those that did not are sent.
    """
    if not items:
        return []
    if action.idempotent:
        log.info("recover.resend", action=action.name, items=len(items))
        return list(items)
    verdicts = await verify(ctx, action, items)
    outcomes = [
        verdict_outcome(item, verdict)
        for item, verdict in zip(items, verdicts, strict=True)
        if verdict is not None
    ]
    await ctx.store.record(outcomes)
    log.info(
        "recover.verified",
        action=action.name,
        items=len(items),
        already_done=sum(o.state is State.DONE for o in outcomes),
    )
    return [item for item, verdict in zip(items, verdicts, strict=True) if verdict is None]


async def verify(
    ctx: RunContext, action: ActionSpec, items: Sequence[WorkItem]
) -> list[ItemResult | None]:
    """Ask the server about each item, as many at once as the job's concurrency allows."""

    async def one(item: WorkItem) -> ItemResult | None:
        return await action.handler.verify(ctx.lookups, item)

    return await map_bounded(one, items, ctx.job.limits.concurrency)


def verdict_outcome(item: WorkItem, verdict: ItemResult | None, sends: int = 0) -> TaskOutcome:
    """The outcome a verification leads to: pending (not applied), done, or failed."""
    if verdict is None:
        return TaskOutcome(item.item_id, item.phase, State.PENDING, sends=sends)
    state = State.DONE if verdict.ok else State.FAILED
    return TaskOutcome(
        item.item_id, item.phase, state, verdict.code, verdict.message, verdict.result, sends
    )
