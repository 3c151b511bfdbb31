"""Resolve items with no account (an offboarding list of emails alone) at the least cost.

Looked up one by one, an email costs two reads (``ListAccounts(UserEmail)``, then
``ListUsers(UserEmail)``). A scan reads every account's users, 200 a page, and costs
what the accounts hold, which the service does not say. So, for each window of emails:

1. too few emails for even the smallest probe to fit its budget: one by one;
2. else the accounts are listed and, if that fits the budget too, the first page of
   each is read: a sample of the whole organisation, not of one account;
3. the scan goes on, account by account, while the emails it found pay for the pages it
   read (:class:`~._resolve_cost.ScanTally`), and stops once every email is found;
4. what a scan that stopped paying left is looked up one by one; after a complete scan,
   what is left exists in no account.

A user found either way gets its item's account, its before-image and its account's
name, as a per-email look-up always gave them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from ._context import RunContext
from ._gather import map_bounded
from ._resolve_cost import (
    PER_EMAIL_ANYWHERE,
    Resolution,
    ScanTally,
    worth_listing,
    worth_sampling,
)
from .accounts import note_account
from .before_images import BeforeImages

__all__ = ["PAGE_SIZE", "WINDOW", "resolve_without_account"]

log = structlog.get_logger("bulkchime")

#: Items read from the store per page (and looked up one by one per store write).
PAGE_SIZE = 1000
#: Emails held in memory at once; a longer list is resolved a window at a time.
WINDOW = 50_000

#: ``(item id, user id, account id)`` of an item resolved.
_Found = tuple[int, str, str | None]
#: Item ids still wanted, by lower-case email.
_Wanted = dict[str, list[int]]


@dataclass(slots=True)
class _Accounts:
    """Every account, listed once per phase."""

    ids: list[str]
    #: Read requests the listing took that no scan has counted yet.
    unpaid: int


@dataclass(slots=True)
class _Cursor:
    """Where the scan of one account is: the next page's token (``None`` at the end)."""

    account_id: str
    token: str | None = None
    #: Users on each page read so far.
    page_sizes: list[int] = field(default_factory=list)


async def resolve_without_account(ctx: RunContext, phase: int, way: Resolution) -> None:
    """Find the account and user of *phase*'s unresolved items that have no account."""
    accounts: _Accounts | None = None
    after = 0
    while True:
        wanted, after = await _next_window(ctx, phase, after)
        if not wanted:
            return
        if worth_listing(len(wanted)):
            accounts = accounts or await _list_accounts(ctx)
            if worth_sampling(len(wanted), accounts.unpaid, len(accounts.ids)):
                await _scan(ctx, accounts, wanted, way)
        if wanted:
            await _look_up_each(ctx, wanted, way)


async def _next_window(ctx: RunContext, phase: int, after: int) -> tuple[_Wanted, int]:
    wanted: _Wanted = {}
    items = 0
    while items < WINDOW:
        page = await ctx.store.unresolved_page(phase, None, after, min(PAGE_SIZE, WINDOW - items))
        if not page:
            break
        after = page[-1].item_id
        items += len(page)
        for item in page:
            wanted.setdefault((item.email or item.key).lower(), []).append(item.item_id)
    return wanted, after


async def _list_accounts(ctx: RunContext) -> _Accounts:
    started = ctx.stats.total
    ids: list[str] = []
    for account in await ctx.lookups.list_accounts():
        account_id = note_account(ctx, account)
        ctx.checked_accounts.add(account_id)  # the service has just described it
        ids.append(account_id)
    return _Accounts(ids, ctx.stats.total - started)


async def _scan(ctx: RunContext, accounts: _Accounts, wanted: _Wanted, way: Resolution) -> None:
    """Scan the accounts for *wanted* (emptied as they are found); leave in it what a
    scan that stopped paying did not reach, and empty it after a complete scan."""
    emails = len(wanted)
    started = ctx.stats.total
    tally = ScanTally(spent=accounts.unpaid)
    cursors = [_Cursor(account_id) for account_id in accounts.ids]
    complete = await _read_pages(ctx, cursors, wanted, tally)
    requests = ctx.stats.total - started + accounts.unpaid
    accounts.unpaid = 0
    not_found = len(wanted) if complete else 0
    scanned = {cursor.account_id for cursor in cursors if cursor.page_sizes}
    way.add_scan(scanned, requests, PER_EMAIL_ANYWHERE * (emails - len(wanted) + not_found))
    way.scan_stopped = way.scan_stopped or not complete
    log.info(
        "resolve.scan_accounts",
        accounts=len(scanned),
        pages=sum(len(cursor.page_sizes) for cursor in cursors),
        users_scanned=sum(sum(cursor.page_sizes) for cursor in cursors),
        emails=emails,
        found=tally.found,
        complete=complete,
    )
    if complete:
        wanted.clear()  # in no account: they fail NotFound


async def _read_pages(
    ctx: RunContext, cursors: Sequence[_Cursor], wanted: _Wanted, tally: ScanTally
) -> bool:
    """Read pages until every email is found (``True``), every account is read to its
    end (``True``), or the scan stops paying (``False``)."""
    for cursor in cursors:  # the sample: a first page of every account
        if not wanted:
            return True
        await _read_page(ctx, cursor, wanted, tally)
    for cursor in cursors:
        while cursor.token is not None:
            if not wanted:
                return True
            if not tally.paying():
                return False
            await _read_page(ctx, cursor, wanted, tally)
    return True


async def _read_page(ctx: RunContext, cursor: _Cursor, wanted: _Wanted, tally: ScanTally) -> None:
    users, cursor.token = await ctx.lookups.users_page(cursor.account_id, cursor.token)
    cursor.page_sizes.append(len(users))
    tally.spent += 1
    images = BeforeImages(ctx, cursor.account_id)
    found: list[_Found] = []
    for user in users:
        item_ids = wanted.pop(str(user.get("PrimaryEmail") or "").lower(), None)
        if item_ids:
            images.add(user)
            found += [(item_id, str(user["UserId"]), cursor.account_id) for item_id in item_ids]
            tally.found += 1
    if found:
        await images.flush()
        await ctx.store.set_user_ids(found)


async def _look_up_each(ctx: RunContext, wanted: _Wanted, way: Resolution) -> None:
    """Find each email's account with ``ListAccounts(UserEmail)``, then its user."""

    async def one(entry: tuple[str, list[int]]) -> list[_Found]:
        email, item_ids = entry
        accounts = await ctx.lookups.list_accounts(user_email=email)
        if not accounts:
            return []
        account_id = note_account(ctx, accounts[0])
        ctx.checked_accounts.add(account_id)
        user = await ctx.lookups.find_user(account_id, email)
        if user is None:
            return []
        images = BeforeImages(ctx, account_id)
        images.add(user)
        await images.flush()
        return [(item_id, str(user["UserId"]), account_id) for item_id in item_ids]

    entries = list(wanted.items())
    for start in range(0, len(entries), PAGE_SIZE):
        chunk = entries[start : start + PAGE_SIZE]
        started = ctx.stats.total
        results = await map_bounded(one, chunk, ctx.job.limits.concurrency)
        found = [f for result in results for f in result]
        await ctx.store.set_user_ids(found)
        way.add_per_email(len(chunk), ctx.stats.total - started)
        log.info("resolve.accounts", emails=len(chunk), found=sum(1 for r in results if r))
