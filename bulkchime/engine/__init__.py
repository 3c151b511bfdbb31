"""The engine: a job run as a pipeline of stages, one module each, in the order a row travels.

::

    runner          open the store, the budget and the client; wrap up; exit code
      planning      a dry run's plan lines, read from the store
      run_record    what the run finished and when, for ``bulkchime status``
      phases        ingest, the job's account, then each action phase:
        ingest        input rows -> the store (job errors stop here, nothing sent)
        accounts      the job's account, and each account the items name, checked first
        resolve       emails -> user ids (per-email look-ups or one scan per account)
        recovery      sends a killed run left in flight: resend, or verify first
        dispatch      pending items -> batches -> a pool of workers; retries rejoin batches
          attempt     one batch: send under backoff, outcomes per item, bisection
      health        finished items, the failure threshold, stopping
      signals       SIGINT / SIGTERM: the first stops the run, the second exits

The stages share a :class:`RunContext`; they reach storage only through its
:class:`~bulkchime.store.CheckpointStore`, pace requests only through its
:class:`~bulkchime.budget.RateBudget`, and learn what an action means only from
:mod:`bulkchime.actions`.
"""

from __future__ import annotations

from ._context import RunContext, RunOptions, RunResult
from .runner import default_report_path, run_job

__all__ = ["RunContext", "RunOptions", "RunResult", "default_report_path", "run_job"]
