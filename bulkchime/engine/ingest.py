"""Ingest: every input row into the store before anything is sent.

Rows come from a file (CSV, JSONL or stdin, parsed off the event loop), from the
account itself (a query, or an action that reads the account), or are the job's one
account. Job-level problems (a ``user_id`` row with no account anywhere) stop the
job here with the file, line and field; row-level ones become ``rejected`` items.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog

from .._text import field_name
from ..actions import ActionSpec, Target, public_user
from ..constants import LICENSES
from ..errors import InputError
from ..job import JobSpec
from ..lookups import user_matches
from ..sources import SourceRow, file_fingerprint, read_source
from ..store import ItemRecord
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


def _records(ctx: RunContext) -> Iterator[ItemRecord]:
    path = ctx.job.input.path
    assert path is not None
    display = "<stdin>" if path == "-" else path
    rows = read_source(
        path,
        ctx.job.input.key,
        stdin=ctx.options.stdin,
        display_name=display,
        column=ctx.job.input.column,
    )
    for row in rows:
        yield _record(ctx, row, display)


def _record(ctx: RunContext, row: SourceRow, display: str) -> ItemRecord:
    job = ctx.job
    key_kind = job.input.key
    account_id = row.account_id or ctx.job_account
    fields = {name: row.fields[name] for name in _ITEM_FIELDS if row.fields.get(name)}
    rejection = row.rejection
    if rejection is None and "license" in fields and fields["license"] not in LICENSES:
        rejection = f"license {fields['license']!r} is not one of {', '.join(LICENSES)}"
    if ctx.actions[0].target is Target.USER and not account_id and not rejection:
        _require_account(ctx, row, display)
    skip_reason = row.fields.get("skip_reason")
    for spec in ctx.actions:
        for param in spec.required_params:
            if skip_reason or rejection or fields.get(param) or job.params.get(param):
                continue
            rejection = f"no {param}: the {param!r} cell is empty and the job has no params.{param}"
    return ItemRecord(
        line=row.line,
        key=row.key,
        raw_key=row.raw_key,
        account_id=row.key if key_kind == "account_id" else account_id,
        email=row.key if key_kind == "email" else None,
        user_id=row.key if key_kind == "user_id" else None,
        fields=fields or None,
        rejection=rejection,
        # An undo's input names the items it will not send, and why.
        skip=(row.fields.get("skip_code") or "Skipped", skip_reason) if skip_reason else None,
    )


def _require_account(ctx: RunContext, row: SourceRow, display: str) -> None:
    """A user row with no account anywhere is a job error where the account is needed."""
    if ctx.job.input.key == "user_id":
        raise InputError(
            display,
            "row gives a user_id but no account_id, and the job names no account. "
            "HINT: add an account_id column, or --account / account_id in the job",
            line=row.line,
            field="account_id",
        )
    team = [spec.name for spec in ctx.actions if spec.needs_team_account]
    if team:
        raise InputError(
            display,
            f"{team[0]} needs the Team account to {team[0]} into. HINT: --account or account_id",
            line=row.line,
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
