"""Which checkpoint a file is, and bringing it to the current schema (``PRAGMA user_version``).

=========  ===========================================================================
version    what the file is
=========  ===========================================================================
empty      a new checkpoint: the schema is created, at version 3
0          the first release's (``meta.schema = "1"``, a ``tasks.batch`` column): a
           writer migrates it in place, in one transaction; a reader reads it as it is
2          the second release's: a writer adds the ``before_images`` table in place; a
           reader reads it as it is (it has no before-images)
3          the current schema
above 3    written by a newer bulkchime: refused, untouched
=========  ===========================================================================

Anything else (not SQLite, or another program's SQLite file) is refused before a byte
of it is written.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import JobError
from ._sqlite_sql import APPLICATION_ID, KNOWN_TABLES, SCHEMA, SCHEMA_VERSION, Connection

__all__ = ["NOT_A_CHECKPOINT_HINT", "check_header", "not_a_checkpoint", "prepare"]

_SQLITE_MAGIC = b"SQLite format 3\x00"

NOT_A_CHECKPOINT_HINT = "HINT: give the .ckpt.sqlite file a run wrote"


def not_a_checkpoint(location: str, why: str) -> JobError:
    """The error for a file that is not a checkpoint."""
    return JobError(f"{location} is not a bulkchime checkpoint ({why}). {NOT_A_CHECKPOINT_HINT}")


def check_header(path: Path, location: str) -> None:
    """Refuse a non-empty file that is not SQLite (an input file given as the checkpoint),
    before SQLite or the lock touches anything. A missing or empty file is a new one."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise not_a_checkpoint(location, "it is a directory") from None
    if head and head != _SQLITE_MAGIC:
        raise not_a_checkpoint(location, "not an SQLite database")


def prepare(db: Connection, location: str, *, writable: bool) -> None:
    """Check what *db* is and bring it to :data:`SCHEMA_VERSION` (see the module docstring).

    Looks first without writing; creation and migration then run in one ``BEGIN
    IMMEDIATE`` transaction that looks again, so that two processes opening the same
    new file (a run and a ``status``) cannot both create it.
    """
    if _needs_upgrade(db, location, writable=writable):
        db.execute("BEGIN IMMEDIATE")
        try:
            if _needs_upgrade(db, location, writable=writable):
                _upgrade(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _needs_upgrade(db: Connection, location: str, *, writable: bool) -> bool:
    """Whether *db* must be created or migrated; raises for what must not be opened."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    application = int(db.execute("PRAGMA application_id").fetchone()[0])
    tables = {
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if application == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise JobError(
                f"checkpoint {location} was written by a newer bulkchime (schema version "
                f"{version}; this one reads up to {SCHEMA_VERSION}). HINT: resume it with "
                "the bulkchime release that wrote it, or give this run another --checkpoint"
            )
        # A reader leaves an older version alone: the run holding it may be of that
        # release, which would then refuse the file as newer.
        return writable and version < SCHEMA_VERSION
    if application != 0 or version != 0 or not tables <= KNOWN_TABLES:
        raise not_a_checkpoint(location, "an SQLite database of another program")
    if not tables:
        return True  # new: even a reader creates the tables, to have something to read
    # The first release's schema. A reader leaves it alone: the run holding it may be
    # of that release, and the reads need nothing version 2 changed.
    return writable


def _upgrade(db: Connection) -> None:
    """Create the current schema, or migrate an older one to it (in a transaction): the
    statements create only what is missing."""
    for statement in SCHEMA:
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
    if "batch" in columns and _sqlite_version(db) >= (3, 35, 0):
        # Version 1 stored a batch number per send that nothing read. An SQLite before
        # 3.35 cannot drop a column: there it stays, nullable, never read nor written.
        db.execute("ALTER TABLE tasks DROP COLUMN batch")
    # The version is PRAGMA user_version now, one place only.
    db.execute("DELETE FROM meta WHERE key = 'schema'")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _sqlite_version(db: Connection) -> tuple[int, ...]:
    text = str(db.execute("SELECT sqlite_version()").fetchone()[0])
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())
