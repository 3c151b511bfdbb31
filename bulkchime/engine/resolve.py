"""Resolve: emails to user ids, and users with no account to their account.

Per account, streamed from the store: one paginated scan of the account's users
when many of its emails are wanted, a ``ListUsers`` look-up per email when few are.
Items with no account are resolved by what it costs in read requests: look-ups one
by one for a few, a scan of every account's users for many (:mod:`._resolve_no_account`).
Whatever is still unresolved does not exist, and fails ``NotFound`` before anything is
sent. Which way was taken is logged (``resolve.way``) and kept for the dry run's plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from ..actions import ActionSpec
from ..store import WorkItem
from ._context import RunContext
from ._gather import map_bounded
from ._resolve_cost import PER_EMAIL_IN_ACCOUNT, Resolution
from ._resolve_no_account import PAGE_SIZE, resolve_without_account
from .before_images import BeforeImages

__all__ = ["PAGE_SIZE", "SCAN_THRESHOLD", "resolution_info_key", "resolve_users"]

log = structlog.get_logger("bulkchime")

#: Above this many emails in one account, one paginated scan beats per-email look-ups.
SCAN_THRESHOLD = 100
#: Directory pairs per store write while scanning.
_DIRECTORY_CHUNK = 5000

#: ``(item id, user id, account id or None)`` of an item resolved.
_Found = tuple[int, str, str | None]


def resolution_info_key(phase: int) -> str:
    """The store's ``info`` entry holding the sentence on how *phase* resolved emails."""
    return f"resolution.{phase}"


async def resolve_users(ctx: RunContext, phase: int, action: ActionSpec) -> None:
    """Find user ids (and accounts) for *phase*'s items given by email."""
    if not action.needs_user_ids:
        return
    way = Resolution()
    counts = await ctx.store.unresolved_counts(phase)
    for account_id, count in counts.items():
        if account_id is None:
            await resolve_without_account(ctx, phase, way)
        elif count > SCAN_THRESHOLD:
            await _resolve_by_scan(ctx, account_id, phase, count, way)
        else:
            after = 0
            while page := await ctx.store.unresolved_page(phase, account_id, after, PAGE_SIZE):
                after = page[-1].item_id
                await _resolve_each(ctx, account_id, page, way)
    missing = await ctx.store.fail_unresolved(phase)
    if missing:
        ctx.health.add_failed(missing)
        log.info("resolve.not_found", items=missing)
    if way:
        log.info(
            "resolve.way",
            way=way.way,
            how=way.text(),
            read_requests=way.scan_requests + way.per_email_requests,
        )
        await ctx.store.set_info(resolution_info_key(phase), way.text())


async def _resolve_each(
    ctx: RunContext, account_id: str, items: Sequence[WorkItem], way: Resolution
) -> None:
    images = BeforeImages(ctx, account_id)
    started = ctx.stats.total

    async def one(item: WorkItem) -> _Found | None:
        user = await ctx.lookups.find_user(account_id, item.email or item.key)
        if user is None:
            return None
        images.add(user)
        return (item.item_id, str(user["UserId"]), None)

    found = [f for f in await map_bounded(one, items, ctx.job.limits.concurrency) if f]
    await images.flush()
    await ctx.store.set_user_ids(found)
    way.add_per_email(len(items), ctx.stats.total - started)
    log.info("resolve.lookups", account_id=account_id, emails=len(items), found=len(found))


async def _resolve_by_scan(
    ctx: RunContext, account_id: str, phase: int, emails: int, way: Resolution
) -> None:
    pairs: list[tuple[str, str]] = []
    images = BeforeImages(ctx, account_id)
    scanned = 0
    started = ctx.stats.total
    async for user in ctx.lookups.users(account_id):
        email = user.get("PrimaryEmail")
        if email:
            pairs.append((str(email).lower(), str(user["UserId"])))
        images.add(user)
        scanned += 1
        if len(pairs) >= _DIRECTORY_CHUNK:
            await ctx.store.add_directory(account_id, pairs)
            await images.flush()
            pairs = []
    await ctx.store.add_directory(account_id, pairs)
    await images.flush()
    resolved = await ctx.store.resolve_from_directory(account_id, phase)
    way.add_scan({account_id}, ctx.stats.total - started, PER_EMAIL_IN_ACCOUNT * emails)
    log.info("resolve.scan", account_id=account_id, users_scanned=scanned, resolved=resolved)
