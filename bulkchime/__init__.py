"""bulkchime: bulk operations on Amazon Chime users, batched, rate-limited and resumable.

The data flow, one module or package each: :mod:`~bulkchime.sources` (input rows) →
:mod:`~bulkchime.job` (the job) → :mod:`~bulkchime.engine` (ingest, resolve, dispatch,
attempt: one module per stage) → :mod:`~bulkchime.client` (the transport, error
mapping) → :mod:`~bulkchime.report`. Two interfaces are where a backend plugs in:
:class:`~bulkchime.store.CheckpointStore` (the checkpoint; SQLite by default) and
:class:`~bulkchime.budget.RateBudget` (the rate limit; in-process by default). What an
action means lives in :mod:`~bulkchime.actions`; :mod:`~bulkchime.cli` is the command,
:mod:`bulkchime.emulator` the local API.

Names are imported lazily, so that ``bulkchime --help`` does not load the AWS SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ACTIONS": "actions",
    "ActionSpec": "actions",
    "ApiError": "errors",
    "AuthError": "errors",
    "BadBatchError": "errors",
    "BulkchimeError": "errors",
    "Client": "client",
    "CheckpointStore": "store",
    "CheckpointInUse": "errors",
    "CheckpointMismatch": "errors",
    "InputError": "errors",
    "InputSpec": "job",
    "JobAborted": "errors",
    "JobError": "errors",
    "JobSpec": "job",
    "Limits": "job",
    "PermanentError": "errors",
    "LocalBudget": "budget",
    "RateBudget": "budget",
    "RetryableError": "errors",
    "RunOptions": "engine",
    "RunResult": "engine",
    "SourceRow": "sources",
    "SQLiteStore": "store",
    "State": "store",
    "Ticket": "budget",
    "Summary": "report",
    "classify": "client",
    "job_from_dict": "job",
    "load_job": "job",
    "open_store": "store",
    "open_client": "client",
    "read_source": "sources",
    "run_job": "engine",
}

__all__ = [
    "ACTIONS",
    "ActionSpec",
    "ApiError",
    "AuthError",
    "BadBatchError",
    "BulkchimeError",
    "CheckpointInUse",
    "CheckpointMismatch",
    "CheckpointStore",
    "Client",
    "InputError",
    "InputSpec",
    "JobAborted",
    "JobError",
    "JobSpec",
    "Limits",
    "LocalBudget",
    "PermanentError",
    "RateBudget",
    "RetryableError",
    "RunOptions",
    "RunResult",
    "SQLiteStore",
    "SourceRow",
    "State",
    "Summary",
    "Ticket",
    "__version__",
    "classify",
    "job_from_dict",
    "load_job",
    "open_client",
    "open_store",
    "read_source",
    "run_job",
]

if TYPE_CHECKING:
    from .actions import ACTIONS, ActionSpec
    from .budget import LocalBudget, RateBudget, Ticket
    from .client import Client, classify, open_client
    from .engine import RunOptions, RunResult, run_job
    from .errors import (
        ApiError,
        AuthError,
        BadBatchError,
        BulkchimeError,
        CheckpointInUse,
        CheckpointMismatch,
        InputError,
        JobAborted,
        JobError,
        PermanentError,
        RetryableError,
    )
    from .job import InputSpec, JobSpec, Limits, job_from_dict, load_job
    from .report import Summary
    from .sources import SourceRow, read_source
    from .store import CheckpointStore, SQLiteStore, State, open_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkchime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
