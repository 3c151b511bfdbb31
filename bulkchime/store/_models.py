"""What the checkpoint stores and hands out: task states, items, work, outcomes, reports.

Every :class:`~bulkchime.store.CheckpointStore` speaks these types, whatever it keeps
them in; none of them knows SQL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "REPORT_STATUS",
    "STATUS_ORDER",
    "ItemRecord",
    "ReportRecord",
    "RunnerInfo",
    "State",
    "TaskOutcome",
    "WorkItem",
]


class State(enum.StrEnum):
    """Where one task (item x action phase) is in its life."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    SKIPPED = "skipped"


#: How a task state reads in reports, summaries and ``bulkchime status``.
REPORT_STATUS: Mapping[State, str] = {
    State.PENDING: "pending",
    State.IN_FLIGHT: "in_flight",
    State.DONE: "succeeded",
    State.FAILED: "failed",
    State.REJECTED: "rejected",
    State.SKIPPED: "skipped",
}

#: Report statuses in the order summaries list them; the first four are always shown.
STATUS_ORDER: tuple[str, ...] = (
    "succeeded",
    "failed",
    "rejected",
    "skipped",
    "pending",
    "in_flight",
)


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One input row as it is ingested."""

    line: int | None
    key: str
    raw_key: str
    account_id: str | None = None
    email: str | None = None
    user_id: str | None = None
    fields: Mapping[str, Any] | None = None
    #: Why the row cannot be sent; ``None`` for a valid row.
    rejection: str | None = None
    #: Final outcome known at ingest (export rows are done when read).
    result: Mapping[str, Any] | None = None
    #: ``(error code, reason)`` of a row that is known at ingest not to need sending
    #: (an undo's item whose state changed since the job): stored ``skipped``.
    skip: tuple[str, str] | None = None


@dataclass(slots=True)
class WorkItem:
    """A task the engine is about to send, with what it needs to build the request."""

    item_id: int
    phase: int
    key: str
    account_id: str | None
    email: str | None
    user_id: str | None
    fields: Mapping[str, Any]
    #: Sends already made for this task (by this run and earlier ones).
    attempts: int


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What happened to one task; applied to the checkpoint in bulk."""

    item_id: int
    phase: int
    state: State
    error_code: str | None = None
    message: str | None = None
    result: Mapping[str, Any] | None = None
    #: Sends this outcome adds to the task's attempts.
    sends: int = 1


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One row of the per-item report."""

    line: int | None
    key: str
    action: str
    account_id: str | None
    user_id: str | None
    email: str | None
    status: str
    error_code: str | None
    message: str | None
    attempts: int
    result: Mapping[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """The record as the report's JSON object (``result`` only when present)."""
        record: dict[str, Any] = {
            "line": self.line,
            "key": self.key,
            "action": self.action,
            "account_id": self.account_id,
            "user_id": self.user_id,
            "email": self.email,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "attempts": self.attempts,
        }
        if self.result:
            record["result"] = dict(self.result)
        return record


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    """One process that worked on a shared job, as ``bulkchime status`` shows it."""

    runner_id: str
    host: str
    pid: int
    #: ``running``, ``lapsed`` (its lease ran out; taken over) or ``left`` (it stopped).
    state: str
    #: Seconds since its last heartbeat, on the store's clock.
    heartbeat_age: float
    #: Tasks it has brought to a final outcome.
    items_done: int
