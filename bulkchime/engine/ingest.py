"""Ingest: every input row into the store before anything is sent.

Rows come from a file (CSV, JSONL or stdin, parsed off the event loop), from the
account itself (a query, or an action that reads the account), or are the job's one
account. Job-level problems (a ``user_id`` row with no account anywhere) stop the
job here with the file, line and field; row-level ones become ``rejected`` items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import structlog

from .._text import field_name
from ..actions import ActionSpec, Target, public_user
from ..constants import LICENSES
from ..errors import InputError
from ..job import JobSpec
from ..lookups import user_matches
from ..sources import RowValues, file_fingerprint, read_rows
from ..store import ItemRecord, ItemRow, ItemRows
from ._context import RunContext
from .before_images import BeforeImages

__all__ = ["ingest", "job_identity"]

log = structlog.get_logger("bulkchime")

#: Columns kept as the item's own parameters (an undo's input sets the last four).
_ITEM_FIELDS = (
    "license",
    "name",
    "user_type",
    "default_license",
    "disable_remote_control",
    "enable_dial_out",
)

#: The keys that name an item's account, email or user id.
_ITEM_KEYS = ("account_id", "email", "user_id")

#: Records per store write while scanning an account.
_SCAN_CHUNK = 2000


def job_identity(job: JobSpec) -> dict[str, Any]:
    """What makes a checkpoint belong to *job* (stored, compared on resume)."""
    path = job.input.path
    fingerprint = None
    if path and path != "-":
        try:
            fingerprint = file_fingerprint(path)
        except OSError:
            fingerprint = None  # reading it will report the problem with file and field
    identity: dict[str, Any] = {
        "actions": list(job.actions),
        "account_id": job.account_id,
        "account_name": job.account_name,
        "key": job.input.key,
        "input": path,
        "input_sha256": fingerprint,
        "query": dict(job.input.query) if job.input.query else None,
        "params": {k: job.params[k] for k in sorted(job.params)},
    }
    if job.input.column:  # only when given: checkpoints made before it still match
        identity["column"] = job.input.column
    return identity


async def ingest(ctx: RunContext) -> None:
    """Read the job's items into the store."""
    first = ctx.actions[0]
    job = ctx.job
    if first.target is Target.ACCOUNT and not job.input.path:
        await _ingest_one_account(ctx, first)
    elif first.reads_account or job.input.query is not None or not job.input.path:
        await _ingest_from_account(ctx, first)
    else:
        count = await ctx.store.ingest(job.actions, _records(ctx))
        log.info("ingested", items=count, input=job.input.path)


async def _ingest_one_account(ctx: RunContext, action: ActionSpec) -> None:
    account_id = ctx.job_account
    if account_id is None:
        raise InputError(
            ctx.source,
            f"{action.name} needs the account: --account, or an input file of account ids",
            field=field_name(ctx.source, "account_id"),
        )
    record = ItemRecord(line=None, key=account_id, raw_key=account_id, account_id=account_id)
    await ctx.store.ingest(ctx.job.actions, [record])


def _records(ctx: RunContext) -> ItemRows:
    """The input file's rows as items, tuples in and out (a million rows cost no object
    each): see :func:`_item_rows`."""
    path = ctx.job.input.path
    assert path is not None
    display = "<stdin>" if path == "-" else path
    rows = read_rows(
        path,
        ctx.job.input.key,
        stdin=ctx.options.stdin,
        display_name=display,
        column=ctx.job.input.column,
    )
    return ItemRows(_item_rows(ctx, rows, display))


def _item_rows(ctx: RunContext, rows: Iterable[RowValues], display: str) -> Iterator[ItemRow]:
    """Each source row as an item: its account (the row's, or the job's), the columns it
    keeps, and a rejection when a cell the actions need is empty or invalid."""
    job = ctx.job
    by_account, by_email, by_user_id = (job.input.key == kind for kind in _ITEM_KEYS)
    job_account = ctx.job_account
    needs_account = ctx.actions[0].target is Target.USER
    # Parameters each row must carry, in the order they are checked, since the job
    # gives no value for them.
    needed = [
        param for spec in ctx.actions for param in spec.required_params if not job.params.get(param)
    ]
    for line, key, raw_key, row_account, row_fields, rejection in rows:
        account_id = row_account or job_account
        fields: dict[str, str] | None = None
        skip = None
        if row_fields:
            fields = {name: row_fields[name] for name in _ITEM_FIELDS if row_fields.get(name)}
            license = fields.get("license")
            if rejection is None and license is not None and license not in LICENSES:
                rejection = f"license {license!r} is not one of {', '.join(LICENSES)}"
            skip_reason = row_fields.get("skip_reason")
            if skip_reason:
                # An undo's input names the items it will not send, and why.
                skip = (row_fields.get("skip_code") or "Skipped", skip_reason)
        if needs_account and not account_id and not rejection:
            _require_account(ctx, line, display)
        if needed and not rejection and skip is None:
            for param in needed:
                if not (fields and fields.get(param)):
                    rejection = (
                        f"no {param}: the {param!r} cell is empty and the job has no params.{param}"
                    )
                    break
        yield (
            line,
            key,
            raw_key,
            key if by_account else account_id,
            key if by_email else None,
            key if by_user_id else None,
            fields or None,
            rejection,
            None,
            skip,
        )


def _require_account(ctx: RunContext, line: int, display: str) -> None:
    """A user row with no account anywhere is a job error where the account is needed."""
    if ctx.job.input.key == "user_id":
        raise InputError(
            display,
            "row gives a user_id but no account_id, and the job names no account. "
            "HINT: add an account_id column, or --account / account_id in the job",
            line=line,
            field="account_id",
        )
    team = [spec.name for spec in ctx.actions if spec.needs_team_account]
    if team:
        raise InputError(
            display,
            f"{team[0]} needs the Team account to {team[0]} into. HINT: --account or account_id",
            line=line,
            field="account_id",
        )


async def _ingest_from_account(ctx: RunContext, action: ActionSpec) -> None:
    account_id = ctx.job_account
    if account_id is None:
        raise InputError(
            ctx.source,
            f"{action.name} reads users from an account; name it. HINT: --account or account_id",
            field=field_name(ctx.source, "account_id"),
        )
    query = dict(ctx.job.input.query or {})
    chunk: list[ItemRecord] = []
    total = 0
    # The service filters by user type itself; the other filters are applied here.
    images = BeforeImages(ctx, account_id)
    async for user in ctx.lookups.users(account_id, user_type=query.get("user_type")):
        if not user_matches(user, query):
            continue
        chunk.append(_user_record(user, account_id, done=action.reads_account))
        images.add(user)
        total += 1
        if len(chunk) >= _SCAN_CHUNK:
            await ctx.store.ingest_chunk(ctx.job.actions, chunk)
            await images.flush()
            chunk = []
    await ctx.store.ingest_chunk(ctx.job.actions, chunk)
    await images.flush()
    await ctx.store.finish_ingest()
    if action.reads_account:  # read is done: these are the run's items, at its speed
        ctx.health.add_succeeded(total)
    log.info("ingested", items=total, account_id=account_id, query=ctx.job.input.query)


def _user_record(user: dict[str, Any], account_id: str, *, done: bool) -> ItemRecord:
    email = str(user.get("PrimaryEmail") or "") or None
    user_id = str(user["UserId"])
    return ItemRecord(
        line=None,
        key=email.lower() if email else user_id,
        raw_key=email or user_id,
        account_id=account_id,
        email=email.lower() if email else None,
        user_id=user_id,
        result=public_user(user) if done else None,
    )
