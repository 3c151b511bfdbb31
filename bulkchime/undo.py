"""``bulkchime undo``: the reverse of a job, built from its before-images, run as a job.

:func:`build_undo` reads the job's checkpoint (its succeeded items and their
before-images) and the server's state now, and writes the reverse job's input: one
row per succeeded item, with the values to put back (each user's previous license,
...) or, for an item that will not be sent, ``skip_code`` and ``skip_reason`` (its
state is no longer what the job set; it was already so before the job; ...). The
reverse job then runs through :func:`~bulkchime.engine.run_job` like any job: a
plan with ``--dry-run``, its own checkpoint, a report, resume, the exit codes.

The input is written once: an undo resumed on its checkpoint reads the same file
again (the server's state has since changed by the undo's own work).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

from ._current import (
    FinishedJob,
    Images,
    SucceededItem,
    changed_since,
    current_state,
    open_lookups,
    read_images,
    read_job,
)
from ._text import count
from .actions import COLUMNS, Capture, cannot_undo, reversal
from .errors import JobError
from .job import InputSpec, JobSpec
from .store import open_store

__all__ = ["build_undo", "default_undo_checkpoint", "undo_input_path"]

log = structlog.get_logger("bulkchime")


def default_undo_checkpoint(source: str) -> Path:
    """``<stem>.undo.ckpt.sqlite`` beside the job's checkpoint file (for a shared one, the
    job's name in the working directory)."""
    if "://" in source:
        job = parse_qs(urlsplit(source).query).get("job", ["bulkchime"])[0]
        return Path(f"{job}.undo.ckpt.sqlite")
    path = Path(source)
    stem = path.name.removesuffix(".sqlite").removesuffix(".ckpt")
    return path.with_name(f"{stem}.undo.ckpt.sqlite")


def undo_input_path(undo_checkpoint: Path) -> Path:
    """The reverse job's input, beside its checkpoint."""
    stem = undo_checkpoint.name.removesuffix(".sqlite").removesuffix(".ckpt")
    return undo_checkpoint.with_name(f"{stem}.input.jsonl")


async def build_undo(
    source: str, base: JobSpec, input_path: Path, *, reuse: bool, report_hint: str
) -> tuple[JobSpec, list[str]]:
    """The reverse of the job in checkpoint *source*, and notes for the user.

    *base* gives the endpoint, credentials and limits; the input goes to *input_path*
    (kept as it is when *reuse* and it exists). Raises :class:`JobError` when nothing
    of the job can be undone, naming why (*report_hint*: where an invite's report is).
    """
    store = await open_store(source, lock=False)
    try:
        job = await read_job(store)
        phase_action, notes = _undoable_action(job, report_hint)
        items = [item for item in job.items if item.record.action == phase_action]
        if not items:
            raise JobError(
                f"no {phase_action} item of {source} succeeded: nothing to undo. "
                "HINT: bulkchime status shows the job's outcomes"
            )
        if not (reuse and input_path.exists()):
            images = await read_images(store, items)
            async with open_lookups(base) as lookups:
                now = await current_state(lookups, items)
            _write_rows(input_path, [_row(item, images, now, job.params) for item in items])
    finally:
        await store.close()
    rule = reversal(phase_action)
    assert rule is not None
    account_target = rule.capture is not Capture.USERS
    spec = JobSpec(
        name=input_path.name.removesuffix(".input.jsonl"),
        actions=(rule.action,),
        input=InputSpec(path=str(input_path), key="account_id" if account_target else "user_id"),
        limits=base.limits,
        region=base.region,
        endpoint_url=base.endpoint_url,
        profile=base.profile,
        source=str(input_path),
    )
    notes.append(f"undo: {len(items)} succeeded {phase_action} items, reversed by {rule.action}")
    return spec, notes


def _undoable_action(job: FinishedJob, report_hint: str) -> tuple[str, list[str]]:
    """The one phase to undo, and notes on the phases that cannot be."""
    undoable = [action for action in job.actions if reversal(action) is not None]
    refused = [action for action in job.actions if reversal(action) is None]
    reasons = [
        f"{action} cannot be undone: {cannot_undo(action, report_hint)}" for action in refused
    ]
    if not undoable:
        raise JobError("; ".join(reasons) + ". HINT: nothing was sent")
    if len(undoable) > 1:
        raise JobError(
            f"the job changes users in {len(undoable)} phases ({', '.join(undoable)}); undo "
            "reverses one. HINT: undo a job of one changing phase"
        )
    return undoable[0], reasons


def _row(
    item: SucceededItem, images: Images, now: Images, params: dict[str, Any]
) -> dict[str, str]:
    """The reverse job's row for *item*: the values to put back, or why it is skipped."""
    record, rule = item.record, item.rule
    account_id, subject = item.subject
    row = {"account_id": account_id}
    if rule.capture is Capture.USERS:
        row["user_id"] = subject
    if rule.not_this_jobs(record.message):
        return row | _skip("NotCreated", "the account existed before the job; not deleted")
    changed = changed_since(item, now, params)
    if changed is not None:
        return row | _skip(changed[0], f"{changed[1]}; left as it is")
    if rule.only_if_empty:
        users = now[item.subject].get("Users", "0")
        if users != "0":
            held = count(int(users), "user")
            return row | _skip("NotEmpty", f"the account has {held} now; not deleted")
        return row
    before = images.get(item.subject)
    if before is None:
        return row | _skip(
            "NoBeforeImage",
            "no before-image was recorded for it (the job ran before this "
            "release, or was resumed after sending); nothing to put back",
        )
    after = rule.after_state(record.result, params)
    restore = {m: before.get(m, "") for m, value in after.items() if before.get(m) != value}
    if not restore:
        told = ", ".join(f"{m} {v}" for m, v in after.items())
        return row | _skip("Unchanged", f"it was already {told} before the job; nothing to undo")
    return row | {COLUMNS[m]: value for m, value in restore.items() if m in COLUMNS}


def _skip(code: str, reason: str) -> dict[str, str]:
    return {"skip_code": code, "skip_reason": reason}


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the input whole, or not at all (a resumed undo must read the same file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    log.info("undo.input", path=str(path), items=len(rows))
