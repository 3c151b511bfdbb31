"""Before-images: what the job's users and accounts were before it changed them.

``bulkchime undo`` puts them back and ``bulkchime verify`` compares against what the
job set (see :mod:`bulkchime.actions._undo`). They come from the look-ups the engine
makes anyway: the users a query selects (:mod:`.ingest`), the users a resolution
scan or look-up finds (:mod:`.resolve`). Only an input of user ids costs one
``ListUsers`` scan per account before the first send, and an account action one
``GetAccount`` / ``GetAccountSettings``; actions that cannot be undone cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from ..actions import ActionSpec, Capture, image_of, reversal
from ..store import State
from ._context import RunContext

__all__ = ["BeforeImages", "capture_before_send", "captures"]

log = structlog.get_logger("bulkchime")


def captures(ctx: RunContext) -> set[Capture]:
    """What the job's undoable actions need recorded before they change it."""
    found: set[Capture] = set()
    for action in ctx.actions:
        rule = reversal(action.name)
        if rule is not None and rule.capture is not None:
            found.add(rule.capture)
    return found


class BeforeImages:
    """Collects the users of one account that a scan or look-up read, written in one
    store call per page (:meth:`flush`); nothing when the job needs no user images."""

    def __init__(self, ctx: RunContext, account_id: str) -> None:
        self._ctx = ctx
        self._account_id = account_id
        self._wanted = Capture.USERS in captures(ctx)
        self._pairs: list[tuple[str, Mapping[str, Any]]] = []

    def add(self, user: Mapping[str, Any]) -> None:
        """Keep *user* (a ``User`` of ListUsers) as it is now."""
        if self._wanted:
            self._pairs.append((str(user["UserId"]), image_of(Capture.USERS, user)))

    async def flush(self) -> None:
        """Write what was kept."""
        if self._pairs:
            await self._ctx.store.add_before_images(self._account_id, self._pairs)
            self._pairs = []


async def capture_before_send(ctx: RunContext, phase: int, action: ActionSpec) -> None:
    """Record what *action* will change that no look-up has read yet, once per job.

    Only before the phase's first send: after it, a look-up would read the job's own
    change (a checkpoint of an older release has no images of what it changed).
    """
    rule = reversal(action.name)
    if rule is None or rule.capture is None or ctx.dry_run:
        return
    flag = f"before_images.{phase}"
    sent = await ctx.store.phase_counts(phase)
    if (await ctx.store.info()).get(flag) or sent.get(State.DONE) or sent.get(State.IN_FLIGHT):
        return
    if rule.capture is Capture.USERS:
        if ctx.job.input.key == "user_id" and ctx.job.input.path:
            await _scan_users(ctx, phase)
    else:
        await _read_accounts(ctx, phase, rule.capture)
    await ctx.store.set_info(flag, True)


async def _scan_users(ctx: RunContext, phase: int) -> None:
    """One ListUsers scan of each account the phase acts on."""
    for account_id in await ctx.store.accounts_pending(phase):
        if account_id is None:
            continue
        images = BeforeImages(ctx, account_id)
        scanned = 0
        async for user in ctx.lookups.users(account_id):
            images.add(user)
            scanned += 1
            if scanned % 1000 == 0:
                await images.flush()
        await images.flush()
        log.info("before_images.scan", account_id=account_id, users_scanned=scanned)


async def _read_accounts(ctx: RunContext, phase: int, capture: Capture) -> None:
    """One GetAccount or GetAccountSettings of each account the phase changes."""
    for account_id in await ctx.store.accounts_pending(phase):
        if account_id is None:
            continue
        if capture is Capture.ACCOUNT:
            record = await ctx.lookups.get_account(account_id)
        else:
            record = await ctx.lookups.get_settings(account_id)
        if record is not None:
            image = image_of(capture, record)
            await ctx.store.add_before_images(account_id, [(account_id, image)])
