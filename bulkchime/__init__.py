"""bulkchime: bulk operations on Amazon Chime users, batched, rate-limited and resumable.

The data flow, one module each: :mod:`~bulkchime.sources` (input rows) →
:mod:`~bulkchime.job` (the job) → :mod:`~bulkchime.checkpoint` (the queue and its
memory) → :mod:`~bulkchime.plan` (batches) → :mod:`~bulkchime.schedule` (rate and
backoff) → :mod:`~bulkchime.client` (the API calls, error mapping) →
:mod:`~bulkchime.report`; :mod:`~bulkchime.engine` runs them, :mod:`~bulkchime.cli`
is the command, :mod:`bulkchime.emulator` the local API.

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
    "ChimeApi": "client",
    "Checkpoint": "checkpoint",
    "CheckpointInUse": "errors",
    "CheckpointMismatch": "errors",
    "InputError": "errors",
    "InputSpec": "job",
    "JobAborted": "errors",
    "JobError": "errors",
    "JobSpec": "job",
    "Limits": "job",
    "PermanentError": "errors",
    "RateLimiter": "schedule",
    "RetryableError": "errors",
    "RunOptions": "engine",
    "RunResult": "engine",
    "SourceRow": "sources",
    "State": "checkpoint",
    "Summary": "report",
    "classify": "client",
    "job_from_dict": "job",
    "load_job": "job",
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
    "Checkpoint",
    "CheckpointInUse",
    "CheckpointMismatch",
    "ChimeApi",
    "InputError",
    "InputSpec",
    "JobAborted",
    "JobError",
    "JobSpec",
    "Limits",
    "PermanentError",
    "RateLimiter",
    "RetryableError",
    "RunOptions",
    "RunResult",
    "SourceRow",
    "State",
    "Summary",
    "__version__",
    "classify",
    "job_from_dict",
    "load_job",
    "open_client",
    "read_source",
    "run_job",
]

if TYPE_CHECKING:
    from .actions import ACTIONS, ActionSpec
    from .checkpoint import Checkpoint, State
    from .client import ChimeApi, classify, open_client
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
    from .schedule import RateLimiter
    from .sources import SourceRow, read_source


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkchime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
