"""What ``undo`` and ``verify`` read: a finished job's succeeded items, their
before-images, and the server's state now (read-only, at the job's rate).

Both compare, per succeeded item, what the job set (:meth:`Reversal.after_state`)
with what the server holds now, and ``undo`` also with the before-image.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .actions import Capture, Reversal, image_of, reversal
from .client import Client, RequestStats
from .errors import JobError
from .job import JobSpec
from .lookups import Lookups
from .store import CheckpointStore, ReportRecord

__all__ = [
    "FinishedJob",
    "Images",
    "SucceededItem",
    "current_state",
    "open_lookups",
    "read_images",
    "read_job",
]

#: ``(account id, subject)`` -> image.
Images = dict[tuple[str, str], dict[str, str]]


@dataclass(frozen=True, slots=True)
class SucceededItem:
    """One item a phase of the job changed."""

    record: ReportRecord
    rule: Reversal
    #: ``(account id, subject)``: the user, or the account itself.
    subject: tuple[str, str]


@dataclass(slots=True)
class FinishedJob:
    """A checkpoint's job, as undo and verify read it."""

    actions: list[str]
    params: dict[str, Any]
    #: Succeeded items of the phases that can be undone (and so checked).
    items: list[SucceededItem]
    #: Succeeded items of the phases that cannot be undone, by action.
    others: dict[str, int]


async def read_job(store: CheckpointStore) -> FinishedJob:
    """The job of *store*, with its succeeded items; raises :class:`JobError` for a
    checkpoint that holds no job."""
    meta = await store.job_meta()
    if meta is None:
        raise JobError(
            f"checkpoint {store.location} holds no job. HINT: give the checkpoint a run wrote"
        )
    job = FinishedJob(list(meta.get("actions") or []), dict(meta.get("params") or {}), [], {})
    async for record in store.report_records():
        if record.status != "succeeded":
            continue
        rule = reversal(record.action)
        if rule is None:
            job.others[record.action] = job.others.get(record.action, 0) + 1
            continue
        account = record.account_id or ""
        if rule.capture is Capture.USERS:
            subject = (account, record.user_id or "")
        elif rule.only_if_empty:  # a created account: the id is in the result
            subject = (str((record.result or {}).get("AccountId") or ""),) * 2
        else:
            subject = (account or record.key, account or record.key)
        job.items.append(SucceededItem(record, rule, subject))
    return job


async def read_images(store: CheckpointStore, items: Iterable[SucceededItem]) -> Images:
    """The before-images of *items* (the store may hold more: every user a resolution
    scan read, where the job changed a few of them)."""
    wanted = {item.subject for item in items}
    return {(a, s): image async for a, s, image in store.before_images() if (a, s) in wanted}


@asynccontextmanager
async def open_lookups(job: JobSpec) -> AsyncIterator[Lookups]:
    """Read-only look-ups with *job*'s endpoint, credentials and rate."""
    from .engine.runner import open_budget, open_job_client

    budget = await open_budget(job.limits)
    try:
        async with open_job_client(job) as raw:
            client = Client(raw, budget, RequestStats())
            yield Lookups(client, max_attempts=job.limits.max_attempts, sleep=asyncio.sleep)
    finally:
        await budget.close()


async def current_state(lookups: Lookups, items: Iterable[SucceededItem]) -> Images:
    """What the server holds now for *items*: each user of their accounts (one ListUsers
    scan per account), each account or its settings, each created account's users."""
    wanted: dict[tuple[str, Capture | None], None] = {}
    subjects: set[tuple[str, str]] = set()
    for item in items:
        wanted.setdefault((item.subject[0], item.rule.capture), None)
        subjects.add(item.subject)
    state: Images = {}
    for account_id, capture in wanted:
        if not account_id:
            continue
        if capture is Capture.USERS:
            # Only the job's users are kept: an account may hold far more.
            async for user in lookups.users(account_id):
                subject = (account_id, str(user["UserId"]))
                if subject in subjects:
                    state[subject] = image_of(Capture.USERS, user)
        elif capture is Capture.ACCOUNT:
            account = await lookups.get_account(account_id)
            if account is not None:
                state[(account_id, account_id)] = image_of(capture, account)
        elif capture is Capture.SETTINGS:
            settings = await lookups.get_settings(account_id)
            if settings is not None:
                state[(account_id, account_id)] = image_of(capture, settings)
        elif await lookups.get_account(account_id) is not None:
            users = 0
            async for _user in lookups.users(account_id):
                users += 1
            state[(account_id, account_id)] = {"Users": str(users)}
    return state


def changed_since(
    item: SucceededItem, now: Images, params: dict[str, Any]
) -> tuple[str, str] | None:
    """``(code, reason)`` when what the job set on *item* no longer holds; ``None`` when
    it does."""
    current = now.get(item.subject)
    what = "account" if item.rule.capture is not Capture.USERS else "user"
    if current is None:
        return "NotFound", f"the {what} is no longer there"
    if item.rule.only_if_empty:
        return None
    after = item.rule.after_state(item.record.result, params)
    for member, value in after.items():
        if current.get(member) != value:
            found = current.get(member) or "unset"
            return "Changed", f"{member} is now {found}, not the {value} the job set"
    return None
