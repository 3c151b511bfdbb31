"""The checkpoint: the engine's work queue, its memory across crashes, the report's source.

:class:`CheckpointStore` is the extension point: the engine, the report and
``bulkchime status`` speak only this interface and the models beside it
(:class:`State`, :class:`ItemRecord`, :class:`WorkItem`, :class:`TaskOutcome`,
:class:`ReportRecord`). :class:`SQLiteStore` keeps the checkpoint in a file beside
the job, and is what :func:`open_store` opens today. Another backend implements the
protocol and passes the contract suite (``tests/test_store_contract.py``).
"""

from __future__ import annotations

import os

from ..errors import JobError
from ._models import (
    REPORT_STATUS,
    STATUS_ORDER,
    ItemRecord,
    ReportRecord,
    RunnerInfo,
    State,
    TaskOutcome,
    WorkItem,
)
from ._protocol import CheckpointStore
from .sqlite import SQLiteStore

__all__ = [
    "REPORT_STATUS",
    "STATUS_ORDER",
    "CheckpointStore",
    "ItemRecord",
    "ReportRecord",
    "RunnerInfo",
    "SQLiteStore",
    "State",
    "TaskOutcome",
    "WorkItem",
    "open_store",
]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


async def open_store(
    location: str | os.PathLike[str],
    *,
    lock: bool = True,
    lease_seconds: float = 30.0,
    default_job: str | None = None,
) -> CheckpointStore:
    """Open the checkpoint at *location*: today a file path, opened as an :class:`SQLiteStore`.

    *lock* takes the checkpoint for this run (a second live run gets
    :class:`~bulkchime.errors.CheckpointInUse`); ``lock=False`` opens it for reading
    alongside the run that holds it. A location the store cannot open (not a
    checkpoint, written by a newer bulkchime, a database URL) is a
    :class:`~bulkchime.errors.JobError`.
    """
    text = os.fspath(location)
    if text.lower().startswith(_POSTGRES_SCHEMES):
        raise JobError(
            "a PostgreSQL checkpoint is not supported in this version of bulkchime. "
            "HINT: give --checkpoint a file path (an SQLite file is created there)"
        )
    return await SQLiteStore.open(text, lock=lock)
