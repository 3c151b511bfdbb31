"""The run's health: items finished, the failure threshold, and stopping.

One :class:`Health` per run. Every stage that finishes items tells it; when
permanent failures pass the job's ``failure_threshold`` it aborts the job, and
:meth:`Health.stop` (a signal, an abort) makes every stage stop taking new work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog

from ..errors import JobAborted
from ..store import State, TaskOutcome

__all__ = ["FAILURE_THRESHOLD_MIN_ITEMS", "Health"]

#: Finished items needed before the failure threshold can abort a job.
FAILURE_THRESHOLD_MIN_ITEMS = 20

log = structlog.get_logger("bulkchime")


class Health:
    """Counts what a run finished and decides when it must stop.

    :param failure_threshold: abort when more than this share of finished items failed
        (``None``: never).
    """

    def __init__(self, failure_threshold: float | None) -> None:
        self.failure_threshold = failure_threshold
        #: Items this run recorded as succeeded / failed.
        self.succeeded = 0
        self.failed = 0
        #: Why the job aborted, once it has.
        self.abort: JobAborted | None = None
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called or the job aborted."""
        return self._stopping.is_set()

    @property
    def stop_event(self) -> asyncio.Event:
        """Set when the run stops (the client holds back changes waiting for a ticket)."""
        return self._stopping

    @property
    def finished_this_run(self) -> int:
        """Items this run recorded as succeeded or failed."""
        return self.succeeded + self.failed

    def stop(self) -> None:
        """Stop taking new work; requests in flight finish and are recorded."""
        self._stopping.set()

    async def stopped(self) -> None:
        """Return once the run is stopping."""
        await self._stopping.wait()

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early when the run stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def count(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Note finished outcomes, then check the threshold."""
        for outcome in outcomes:
            if outcome.state is State.DONE:
                self.succeeded += 1
            elif outcome.state is State.FAILED:
                self.failed += 1
        self.check_threshold()

    def add_succeeded(self, count: int) -> None:
        """Note *count* items done without a send of their own (read with the account)."""
        self.succeeded += count

    def add_failed(self, count: int) -> None:
        """Note *count* items failed without a send (unknown users, missing accounts)."""
        self.failed += count
        self.check_threshold()

    def check_threshold(self) -> None:
        """Abort when permanent failures (sent or not) pass the threshold."""
        threshold = self.failure_threshold
        finished = self.finished_this_run
        if (
            threshold is None
            or finished < FAILURE_THRESHOLD_MIN_ITEMS
            or self.failed / finished <= threshold
        ):
            return
        self.fail_job(
            JobAborted(
                f"{self.failed} of {finished} finished items failed, more than the "
                f"failure_threshold of {threshold:.0%}; stopped so that the rest are not "
                "failed one by one. HINT: read the report's error codes and fix the cause; "
                "then the same command with --retry-failed sends the failed items again "
                "(add --force if you changed the job file or the input)"
            )
        )

    def fail_job(self, error: JobAborted) -> None:
        """Abort the job with *error* (the first reason wins) and stop."""
        if self.abort is None:
            self.abort = error
            log.error("job.abort", reason=str(error))
        self.stop()

    def __repr__(self) -> str:
        return (
            f"<Health succeeded={self.succeeded} failed={self.failed} "
            f"stopping={self.stopping} aborted={self.abort is not None}>"
        )
