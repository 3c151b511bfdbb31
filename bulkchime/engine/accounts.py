"""Accounts before users: the job's account, and every account the items name, checked first.

An account that does not exist fails its items before any look-up is spent on them;
one the credentials may not administer (403 while the credentials work elsewhere)
fails its items too; credentials refused outright abort the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from .._text import field_name
from ..errors import AuthError, InputError
from ._context import RunContext

__all__ = ["account_forbidden", "check_accounts", "note_account", "resolve_job_account"]

log = structlog.get_logger("bulkchime")


async def resolve_job_account(ctx: RunContext) -> None:
    """Check the job's ``account_id``, or find the id of its ``account_name`` (exit 2 if not,
    in a dry run as in a real run: a dry run is the gate before the real one)."""
    account_id = ctx.job.account_id
    if account_id and account_id not in ctx.checked_accounts:
        await _check_job_account_id(ctx, account_id)
    name = ctx.job.account_name
    if not name or name in ctx.account_ids:
        return
    accounts = await ctx.lookups.list_accounts(name=name)
    if len(accounts) != 1:
        found = ", ".join(str(a.get("AccountId")) for a in accounts) or "none"
        hint = (
            f"use {field_name(ctx.source, 'account_id')} to pick one"
            if accounts
            else "check the exact name (case included), or create the account first "
            "with bulkchime create-account"
        )
        raise InputError(
            ctx.source,
            f"must match exactly one account; {name!r} matches {found}. HINT: {hint}",
            field=field_name(ctx.source, "account_name"),
        )
    ctx.account_ids[name] = note_account(ctx, accounts[0])
    await _save_names(ctx)
    _require_team(ctx, accounts[0], "account_name")


def note_account(ctx: RunContext, account: Mapping[str, Any]) -> str:
    """Remember the name of *account* (an ``Account`` the service sent); its id."""
    account_id = str(account["AccountId"])
    if account.get("Name"):
        ctx.account_names[account_id] = str(account["Name"])
    return account_id


async def _save_names(ctx: RunContext) -> None:
    """Keep the accounts' names in the checkpoint, for ``bulkchime status``."""
    if ctx.account_names and not ctx.dry_run:
        await ctx.store.set_info("accounts", ctx.account_names)


async def _check_job_account_id(ctx: RunContext, account_id: str) -> None:
    try:
        account = await ctx.lookups.get_account(account_id)
    except AuthError as error:
        # A 403 here is this account's, if the credentials work elsewhere.
        if await ctx.lookups.credentials_work():
            raise InputError(
                ctx.source,
                f"these credentials may not administer account {account_id}: {error.message}",
                field=field_name(ctx.source, "account_id"),
            ) from None
        raise
    if account is None:
        raise InputError(
            ctx.source,
            f"account {account_id!r} does not exist. HINT: list the accounts with "
            f"'aws chime list-accounts', or give {field_name(ctx.source, 'account_name')}",
            field=field_name(ctx.source, "account_id"),
        )
    ctx.checked_accounts.add(account_id)
    note_account(ctx, {**account, "AccountId": account_id})
    await _save_names(ctx)
    _require_team(ctx, account, "account_id")


def _require_team(ctx: RunContext, account: Mapping[str, Any], field: str) -> None:
    """Invites go to Team accounts only: say so before anything is sent."""
    kind = account.get("AccountType")
    needs_team = [spec.name for spec in ctx.actions if spec.needs_team_account]
    if needs_team and kind and kind != "Team":
        raise InputError(
            ctx.source,
            f"{needs_team[0]} needs a Team account; {account.get('Name')!r} "
            f"({account.get('AccountId')}) is {kind}. HINT: create a Team account with "
            f"bulkchime create-account, or {needs_team[0]} into an existing one",
            field=field_name(ctx.source, field),
        )


async def check_accounts(ctx: RunContext, phase: int) -> None:
    """Fail every item of an account the service does not know, before sending any."""
    named = len(ctx.account_names)
    for account_id in await ctx.store.accounts_pending(phase):
        if account_id is None or account_id in ctx.checked_accounts:
            continue
        try:
            account = await ctx.lookups.get_account(account_id)
        except AuthError as error:
            if not await account_forbidden(ctx, phase, account_id, error):
                raise
            continue
        ctx.checked_accounts.add(account_id)
        if account is None:
            failed = await ctx.store.fail_account(
                phase, account_id, "NotFoundException", f"account {account_id} does not exist"
            )
            log.warning("account.not_found", account_id=account_id, items=failed)
            ctx.health.add_failed(failed)
        else:
            note_account(ctx, {**account, "AccountId": account_id})
    if len(ctx.account_names) > named:
        await _save_names(ctx)


async def account_forbidden(ctx: RunContext, phase: int, account_id: str, error: AuthError) -> bool:
    """Handle a 403 on one account: if the credentials work elsewhere, fail that account.

    Returns ``False`` when the credentials themselves are refused (abort the job).
    """
    if error.status != 403 or not await ctx.lookups.credentials_work():
        return False
    ctx.checked_accounts.add(account_id)
    failed = await ctx.store.fail_account(phase, account_id, error.code, error.message)
    log.error("account.forbidden", account_id=account_id, items=failed, code=error.code)
    ctx.health.add_failed(failed)
    return True
