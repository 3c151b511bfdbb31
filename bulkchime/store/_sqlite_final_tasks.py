"""The tasks an ingest makes final at once: rejected, skipped (an undo's input) or done.

A new ingest keeps its rejected and skipped tasks in a temporary table until its last
transaction, which moves them into ``tasks`` in index order (:func:`move_held_tasks`).
``tasks_by_state`` orders tasks by state: a ``rejected`` task stored with its chunk sits
right after the ``pending`` ones, and every pending task of every later chunk would then
go into the middle of the index, not at its end, which costs SQLite twice as much as
the rest of storing the task. Nothing is lost by waiting: a new ingest that does not
reach its last transaction is started again from its first row. Done tasks are stored
with their chunk, before its pending tasks, which must not replace them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from . import _sqlite_sql as sql
from ._item_rows import ItemRow
from ._models import State
from ._sqlite_sql import Connection

__all__ = ["DROP_HELD_TASKS", "insert_final_tasks", "move_held_tasks"]

_COLUMNS: Final = "item_id, phase, action, state, error_code, message, result, updated"
_HELD_TASKS_TABLE: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS bulkchime_held_tasks (item_id INTEGER NOT NULL, "
    "phase INTEGER NOT NULL, action TEXT NOT NULL, state TEXT NOT NULL, error_code TEXT, "
    "message TEXT, result TEXT, updated REAL)"
)
_HOLD_TASK: Final = (
    f"INSERT INTO temp.bulkchime_held_tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_MOVE_HELD_TASKS: Final = (
    f"INSERT INTO tasks ({_COLUMNS}) SELECT {_COLUMNS} FROM temp.bulkchime_held_tasks "
    "ORDER BY phase, state, item_id"
)
#: Forget the tasks a new ingest held (it starts again, or they were moved).
DROP_HELD_TASKS: Final = "DROP TABLE IF EXISTS temp.bulkchime_held_tasks"


def insert_final_tasks(
    db: Connection,
    actions: Sequence[str],
    final: list[tuple[int, ItemRow]],
    now: float,
    *,
    hold: bool,
) -> None:
    """The tasks of the *final* items (rejected, skipped or done), one per action phase;
    rejected and skipped ones held until :func:`move_held_tasks` when *hold*."""
    tasks: list[tuple[Any, ...]] = []
    held: list[tuple[Any, ...]] = []
    for item_id, row in final:
        rejection, result, skip = row[7], row[8], row[9]
        if rejection:
            state, code, message = State.REJECTED, "Rejected", rejection
        elif skip is not None:
            state, (code, message) = State.SKIPPED, skip
        else:
            state, code, message = State.DONE, None, None
        result_text = sql.dumps(result)
        into = held if hold and state is not State.DONE else tasks
        for phase, action in enumerate(actions):
            into.append((item_id, phase, action, state.value, code, message, result_text, now))
    if tasks:
        db.executemany(sql.INSERT_TASK, tasks)
    if held:
        db.execute(_HELD_TASKS_TABLE)
        db.executemany(_HOLD_TASK, held)


def move_held_tasks(db: Connection) -> None:
    """Store the tasks a new ingest held (in its last transaction)."""
    db.execute(_HELD_TASKS_TABLE)
    db.execute(_MOVE_HELD_TASKS)
    db.execute(DROP_HELD_TASKS)
