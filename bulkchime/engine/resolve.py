"""Resolve: emails to user ids, and users with no account to their account.

Per account, streamed from the store: one paginated scan of the account's users
when many of its emails are wanted, a ``ListUsers`` look-up per email when few are.
Items with no account are found with ``ListAccounts(UserEmail)``. Whatever is still
unresolved does not exist, and fails ``NotFound`` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from ..actions import ActionSpec
from ..store import WorkItem
from ._context import RunContext
from ._gather import map_bounded
from .accounts import note_account
from .before_images import BeforeImages

__all__ = ["PAGE_SIZE", "SCAN_THRESHOLD", "resolve_users"]

log = structlog.get_logger("bulkchime")

#: Above this many emails in one account, one paginated scan beats per-email look-ups.
SCAN_THRESHOLD = 100
#: Items read from the store per page.
PAGE_SIZE = 1000
#: Directory pairs per store write while scanning.
_DIRECTORY_CHUNK = 5000

#: ``(item id, user id, account id or None)`` of an item resolved.
_Found = tuple[int, str, str | None]


async def resolve_users(ctx: RunContext, phase: int, action: ActionSpec) -> None:
    """Find user ids (and accounts) for *phase*'s items given by email."""
    if not action.needs_user_ids:
        return
    counts = await ctx.store.unresolved_counts(phase)
    for account_id, count in counts.items():
        if account_id is not None and count > SCAN_THRESHOLD:
            await _resolve_by_scan(ctx, account_id, phase)
            continue
        after = 0
        while page := await ctx.store.unresolved_page(phase, account_id, after, PAGE_SIZE):
            after = page[-1].item_id
            if account_id is None:
                await _resolve_accounts(ctx, page)
            else:
                await _resolve_each(ctx, account_id, page)
    missing = await ctx.store.fail_unresolved(phase)
    if missing:
        ctx.health.add_failed(missing)
        log.info("resolve.not_found", items=missing)


async def _resolve_each(ctx: RunContext, account_id: str, items: Sequence[WorkItem]) -> None:
    images = BeforeImages(ctx, account_id)

    async def one(item: WorkItem) -> _Found | None:
        user = await ctx.lookups.find_user(account_id, item.email or item.key)
        if user is None:
            return None
        images.add(user)
        return (item.item_id, str(user["UserId"]), None)

    found = [f for f in await map_bounded(one, items, ctx.job.limits.concurrency) if f]
    await images.flush()
    await ctx.store.set_user_ids(found)
    log.info("resolve.lookups", account_id=account_id, emails=len(items), found=len(found))


async def _resolve_by_scan(ctx: RunContext, account_id: str, phase: int) -> None:
    pairs: list[tuple[str, str]] = []
    images = BeforeImages(ctx, account_id)
    scanned = 0
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
    log.info("resolve.scan", account_id=account_id, users_scanned=scanned, resolved=resolved)


async def _resolve_accounts(ctx: RunContext, items: Sequence[WorkItem]) -> None:
    async def one(item: WorkItem) -> _Found | None:
        email = item.email or item.key
        accounts = await ctx.lookups.list_accounts(user_email=email)
        if not accounts:
            return None
        account_id = note_account(ctx, accounts[0])
        user = await ctx.lookups.find_user(account_id, email)
        if user is None:
            return None
        images = BeforeImages(ctx, account_id)
        images.add(user)
        await images.flush()
        return (item.item_id, str(user["UserId"]), account_id)

    found = [f for f in await map_bounded(one, items, ctx.job.limits.concurrency) if f]
    await ctx.store.set_user_ids(found)
    log.info("resolve.accounts", emails=len(items), found=len(found))
