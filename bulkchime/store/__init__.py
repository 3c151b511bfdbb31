"""The checkpoint: the engine's work queue, its memory across crashes, the report's source.

:class:`CheckpointStore` is the extension point: the engine, the report and
``bulkchime status`` speak only this interface and the models beside it
(:class:`State`, :class:`ItemRecord`, :class:`WorkItem`, :class:`TaskOutcome`,
:class:`ReportRecord`). :class:`SQLiteStore` keeps the checkpoint in a file beside
the job, the default; ``PostgresStore`` (:mod:`bulkchime.store.postgres`, imported
only for a ``postgresql://`` URL, with psycopg) keeps a job that several runner
processes share. :func:`open_store` opens either. Another backend implements the
protocol and passes the contract suite (``tests/test_store_contract.py``).
"""

from __future__ import annotations

import os

from ..errors import JobError
from ._item_rows import ItemRow, ItemRows
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
    "ItemRow",
    "ItemRows",
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
    """Open the checkpoint at *location*: a file path (an :class:`SQLiteStore`) or a
    ``postgresql://`` / ``postgres://`` URL (a shared ``PostgresStore``).

    *lock* takes the checkpoint for this run: an SQLite file's lock (a second live run
    gets :class:`~bulkchime.errors.CheckpointInUse`), or a place among a PostgreSQL
    job's runners, holding its claims under a lease of *lease_seconds*.
    ``lock=False`` opens it for reading alongside the runs that hold it (it must
    exist). A PostgreSQL URL without ``job=`` names the job *default_job*, else
    ``bulkchime``; SQLite ignores both. A location the store cannot open (not a
    checkpoint, written by a newer bulkchime, a server that does not answer, a
    PostgreSQL URL without psycopg installed) is a :class:`~bulkchime.errors.JobError`.
    """
    text = os.fspath(location)
    if text.lower().startswith(_POSTGRES_SCHEMES):
        try:
            from .postgres import PostgresStore
        except ImportError as error:
            if error.name is not None and not error.name.startswith("psycopg"):
                raise
            raise JobError(
                "a PostgreSQL checkpoint needs the psycopg package, which is not installed "
                f"({error}). HINT: pip install 'bulkchime[scale]'"
            ) from None
        return await PostgresStore.open(
            text, lock=lock, lease_seconds=lease_seconds, default_job=default_job
        )
    return await SQLiteStore.open(text, lock=lock)
