"""The checkpoint store interface: the queue, the memory across crashes, the report's source.

A store keeps one row per input item and one task per item and action phase. A
task's intent (``in_flight``) is committed before its request is sent and its outcome
after, so a run killed at any instant can be resumed: ``done``, ``failed``,
``rejected`` and ``skipped`` tasks are never sent again, ``pending`` ones are, and
``in_flight`` ones are re-sent (idempotent actions) or checked against the server
first (the others).

Several processes (runners) may work on one job when the store is ``shared`` (a
database server): each claims the pending tasks it will send, holds them under a
lease it renews, and takes over the claims of runners whose lease lapsed. A store
one process holds alone (SQLite, locked) keeps the same methods, trivially.

Every method is a coroutine, so that a store may live in another process (a
database server) or off the event loop (SQLite, on a thread of its own). Each
call that writes is one transaction: when it returns, what it wrote survives the
death of the process.

To add a backend, implement :class:`CheckpointStore` and run the contract suite
(``tests/test_store_contract.py``) over it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from ._models import ItemRecord, ReportRecord, RunnerInfo, State, TaskOutcome, WorkItem

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

    async def mark_in_flight(self, items: Sequence[WorkItem]) -> None:
        """Commit the intent to send *items* (before the request goes out).

        A shared store raises :class:`~bulkchime.errors.LeaseLost`, writing nothing,
        when any of them is no longer this runner's (its lease lapsed and another
        runner took them over): they must not be sent.
        """
        ...

    async def record(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Commit outcomes: state, error, message, result (kept if ``None``), attempts += sends.

        A shared store applies only those of tasks this runner still holds (a task taken
        over by another runner is that runner's to record); a pending outcome keeps the
        task this runner's claim (it is retried by this runner) until :meth:`release`.
        """
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

    # -- claims: who sends what (several runners may share a job) --------------------

    #: Whether other processes may work on this job at the same time, so that claims,
    #: leases and take-overs matter; ``False`` for a store one process holds alone.
    shared: bool

    async def claim(self, phase: int, limit: int, account_id: str | None = None) -> list[WorkItem]:
        """Take up to *limit* pending tasks of *phase* (of *account_id*, if given) that no
        runner holds, for this runner, in item order.

        A claimed task is this runner's until its outcome is final or it is released;
        no other runner's :meth:`claim` returns it meanwhile. A store one process holds
        hands each pending task out once per sweep: when a claim comes back empty, the
        next one starts over.
        """
        ...

    async def take_over(self, phase: int) -> list[WorkItem]:
        """Claim what runners that are gone left of *phase*, and return its in-flight tasks.

        Their pending claims go back to the pool (for :meth:`claim`); their tasks left
        ``in_flight`` become this runner's and are returned, to be re-sent (idempotent
        actions) or verified (the others), as after a crash. A runner is gone when its
        lease lapsed or it left with requests cut off. A store one process holds returns
        the tasks a killed run left in flight, on the first call per phase only.
        """
        ...

    async def release(self) -> None:
        """Return this runner's claimed tasks that are still pending to the pool."""
        ...

    async def others_busy(self, phase: int) -> bool:
        """Whether tasks of *phase* are unfinished outside this runner's claims (held by
        another runner, alive or not yet taken over); always ``False`` unless shared."""
        ...

    async def renew_lease(self, items_done: int) -> bool:
        """Renew this runner's lease (the heartbeat) and publish *items_done*.

        ``False`` when the lease was lost: it lapsed and other runners may have taken
        over its claims, so nothing more may be sent for them (:meth:`rejoin` first).
        A store one process holds always renews. Raises when the store cannot be
        reached (the caller retries until its lease would lapse).
        """
        ...

    async def rejoin(self) -> None:
        """After a lost lease: join the job again as a new runner, holding nothing."""
        ...

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]:
        """Hold the job-wide lock *name* for a block that one runner at a time should run
        (resolving users: the second runner finds the work done). Other runners of the
        job wait for it; a store one process holds has nobody to wait for."""
        ...

    async def runners(self) -> list[RunnerInfo]:
        """The processes that have worked on this job, newest first (empty unless shared)."""
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

    # -- before-images (undo, verify) --------------------------------------------------

    async def add_before_images(
        self, account_id: str, pairs: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """Remember what ``(subject, image)`` *pairs* of *account_id* were before the job
        changed them (the subject a user id, or the account id for the account itself;
        the image the members undo and verify compare). The first image of a subject is
        kept: one taken again later (on resume, after the change) is ignored."""
        ...

    def before_images(self) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
        """Every before-image as ``(account id, subject, image)``, in account then subject
        order, streamed in pages; none for a checkpoint of an older schema."""
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
