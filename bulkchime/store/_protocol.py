"""The checkpoint store interface: the queue, the memory across crashes, the report's source.

A store keeps one row per input item and one task per item and action phase. A
task's intent (``in_flight``) is committed before its request is sent and its outcome
after, so a run killed at any instant can be resumed: ``done``, ``failed``,
``rejected`` and ``skipped`` tasks are never sent again, ``pending`` ones are, and
``in_flight`` ones are re-sent (idempotent actions) or checked against the server
first (the others).

Every method is a coroutine, so that a store may live in another process (a
database server) or off the event loop (SQLite, on a thread of its own). Each
call that writes is one transaction: when it returns, what it wrote survives the
death of the process.

To add a backend, implement :class:`CheckpointStore` and run the contract suite
(``tests/test_store_contract.py``) over it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ._models import ItemRecord, ReportRecord, State, TaskOutcome, WorkItem

__all__ = ["CheckpointStore"]


@runtime_checkable
class CheckpointStore(Protocol):
    """Where one job's items, tasks and outcomes live (see the module docstring)."""

    #: Where the checkpoint is, as the user named it (a file path or a URL), for messages.
    location: str

    # -- lifecycle and the job ------------------------------------------------------

    async def close(self, *, discard: bool = False) -> None:
        """Release the store (idempotent). *discard* deletes the checkpoint too (a run
        that created it and then stopped on a job error, before anything was sent)."""
        ...

    async def holder(self) -> int | None:
        """The pid of a live run holding the checkpoint (this process's when this store
        holds it; ``-1`` if unknown), or ``None``."""
        ...

    async def check_job(self, identity: Mapping[str, Any], *, force: bool = False) -> bool:
        """Compare *identity* with the stored job, store it if new; return whether to ingest.

        The input must be (re)read when the checkpoint is new, when a run died while
        reading it (a forced re-read of a changed input included), or when *force*
        accepts a changed input (``input``, ``input_sha256`` or ``query``). Raises
        :class:`~bulkchime.errors.CheckpointMismatch` naming every differing field when
        the checkpoint was made for another job, unless *force*.
        """
        ...

    async def job_meta(self) -> dict[str, Any] | None:
        """The job identity stored by :meth:`check_job`, or ``None`` for a new checkpoint."""
        ...

    async def set_info(self, name: str, value: Any) -> None:
        """Store a JSON-ready run statistic (``started``, ``finished``) for ``status``."""
        ...

    async def info(self) -> dict[str, Any]:
        """Every statistic stored with :meth:`set_info`."""
        ...

    # -- ingest -----------------------------------------------------------------------

    async def ingest(self, actions: Sequence[str], records: Iterable[ItemRecord]) -> int:
        """Store *records* with one task per action phase each, mark duplicates, finish.

        *records* may be a generator parsing a large file: it is consumed off the event
        loop, in chunks, in constant memory. An exception it raises (an
        :class:`~bulkchime.errors.InputError`) propagates, and the input does not count
        as ingested. Returns the number of items stored.
        """
        ...

    async def ingest_chunk(self, actions: Sequence[str], records: Sequence[ItemRecord]) -> int:
        """Store one chunk (records from an account scan); :meth:`finish_ingest` ends it."""
        ...

    async def finish_ingest(self) -> None:
        """Mark duplicates (as ``skipped``, code ``Duplicate``) and record the input as read."""
        ...

    # -- the work queue ---------------------------------------------------------------

    async def accounts_pending(self, phase: int) -> list[str | None]:
        """Distinct account ids with tasks of *phase* still pending or in flight."""
        ...

    async def pending_page(
        self, phase: int, after_item: int, limit: int, account_id: str | None = None
    ) -> list[WorkItem]:
        """Up to *limit* pending tasks of *phase* (of *account_id*, if given) with an item id
        above *after_item*, in item order."""
        ...

    async def in_flight(self, phase: int) -> list[WorkItem]:
        """Every task of *phase* left ``in_flight`` (by a run that died), in item order."""
        ...

    async def mark_in_flight(self, items: Sequence[WorkItem]) -> None:
        """Commit the intent to send *items* (before the request goes out)."""
        ...

    async def record(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Commit outcomes: state, error, message, result (kept if ``None``), attempts += sends."""
        ...

    async def reset_in_flight(self, phase: int) -> int:
        """Return *phase*'s in-flight tasks to pending (idempotent actions); how many."""
        ...

    async def skip_after_failed_phase(self, phase: int) -> int:
        """Skip (code ``PreviousPhaseFailed``) pending tasks of *phase* whose item failed or
        was rejected in the phase before; how many."""
        ...

    async def retry_failed(self) -> int:
        """Re-queue failed tasks with their attempts reset (``--retry-failed``), and the
        later phases they skipped; returns how many failed tasks were re-queued."""
        ...

    async def fail_account(self, phase: int, account_id: str, code: str, message: str) -> int:
        """Fail every unfinished task of *phase* in *account_id*; how many."""
        ...

    # -- resolution (emails to user ids, users to accounts) ---------------------------

    async def unresolved_counts(self, phase: int) -> dict[str | None, int]:
        """Pending tasks of *phase* whose item has no user id yet, per account."""
        ...

    async def unresolved_page(
        self, phase: int, account_id: str | None, after_item: int, limit: int
    ) -> list[WorkItem]:
        """Up to *limit* unresolved pending tasks of *phase* in *account_id* (``None``:
        items with no account), item id above *after_item*, in item order."""
        ...

    async def set_user_ids(self, found: Iterable[tuple[int, str, str | None]]) -> None:
        """Record resolved ``(item_id, user_id, account_id or None)`` triples; ``None``
        keeps the item's account."""
        ...

    async def add_directory(self, account_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Remember ``(lower-case email, user_id)`` pairs scanned from *account_id*."""
        ...

    async def resolve_from_directory(self, account_id: str, phase: int) -> int:
        """Fill in user ids of *account_id*'s unresolved items from the scanned directory,
        then forget that account's directory; how many were resolved."""
        ...

    async def fail_unresolved(self, phase: int) -> int:
        """Fail (code ``NotFound``) pending tasks of *phase* whose item has no user id."""
        ...

    # -- reading ------------------------------------------------------------------------

    async def phase_counts(self, phase: int) -> dict[State, int]:
        """Task counts by state for one phase."""
        ...

    async def pending_by_account(self, phase: int) -> dict[str | None, int]:
        """Tasks of *phase* pending or in flight, per account (for plans)."""
        ...

    async def rejected_rows(self) -> list[tuple[int | None, str, str]]:
        """``(line, report status, reason)`` of first-phase tasks that will not be sent
        (rejected, skipped, failed), in input order."""
        ...

    async def counts(self) -> dict[str, int]:
        """Task counts by report status (``succeeded``, ``failed``, ...)."""
        ...

    async def error_counts(self) -> dict[str, int]:
        """Failed and rejected tasks by error code, most frequent first."""
        ...

    async def last_errors(self, limit: int = 5) -> list[tuple[str, str, str]]:
        """The most recent failures: ``(key, error_code, message)``."""
        ...

    async def total_attempts(self) -> int:
        """Sends made so far, over every task."""
        ...

    def report_records(self) -> AsyncIterator[ReportRecord]:
        """Every task, in input order then phase order, streamed in pages."""
        ...
