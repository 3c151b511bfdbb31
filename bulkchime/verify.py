"""``bulkchime verify``: whether what a job set still holds on the server.

Re-reads the server (one ListUsers scan per account the job touched, or the account
and its settings), at the job's rate and changing nothing, and compares every
succeeded item with what the job set on it. Each item whose state no longer holds
(drift since the run) is a line of the drift report (JSONL); the count is printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._current import changed_since, current_state, open_lookups, read_job
from .job import JobSpec
from .store import open_store

__all__ = ["VerifyResult", "default_verify_report", "verify_job"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What a verification found."""

    #: Succeeded items checked.
    checked: int
    #: Of those, items whose state no longer holds.
    drifted: int
    #: Succeeded items of actions that leave nothing to check (logout, reads, ...).
    not_checkable: int
    report: Path


def default_verify_report(source: str) -> Path:
    """``<stem>.verify.jsonl`` beside the checkpoint file (a shared one's: its job's name)."""
    from .undo import default_undo_checkpoint

    undo = default_undo_checkpoint(source)
    return undo.with_name(undo.name.removesuffix(".undo.ckpt.sqlite") + ".verify.jsonl")


async def verify_job(
    source: str, base: JobSpec, output: Path, out: Callable[[str], None] = print
) -> VerifyResult:
    """Verify the job of checkpoint *source* against the server *base* names; write the
    drift report to *output* and print the counts with *out*."""
    store = await open_store(source, lock=False)
    try:
        job = await read_job(store)
    finally:
        await store.close()
    async with open_lookups(base) as lookups:
        now = await current_state(lookups, job.items)
    drifted = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as file:
        for item in job.items:
            changed = changed_since(item, now, job.params)
            if changed is None:
                continue
            drifted += 1
            record = {**item.record.as_dict(), "status": "drifted"}
            record.update(error_code=changed[0], message=changed[1])
            file.write(json.dumps(record, sort_keys=False) + "\n")
    result = VerifyResult(len(job.items), drifted, sum(job.others.values()), output)
    out(f"verify: {result.checked} succeeded items checked, {result.drifted} drifted")
    if result.not_checkable:
        actions = ", ".join(sorted(job.others))
        out(f"not checkable: {result.not_checkable} items ({actions} leave no state to read)")
    out(f"report: {output}")
    return result
