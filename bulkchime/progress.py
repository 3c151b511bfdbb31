"""Progress for the person at the terminal: a live bar on stderr (rich).

Pipelines get structured ``progress`` log events instead (see the engine); this
module is only used when stderr is a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressBar", "ProgressSnapshot"]


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """What the bar shows at one instant."""

    action: str
    total: int
    succeeded: int
    failed: int
    items_per_second: float
    rate: float
    throttled: int


class ProgressBar:
    """A live bar: done/failed/total, items/s, ETA, current rate and 429s so far."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[speed]:.0f} items/s"),
            TimeRemainingColumn(),
            TextColumn("rate {task.fields[rate]:.1f}/s, {task.fields[throttled]} x 429"),
            console=console or Console(stderr=True),
            transient=False,
            redirect_stderr=True,
            redirect_stdout=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Leave the bar as it is and give the terminal back (idempotent)."""
        if self._progress.live.is_started:
            self._progress.stop()

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Show *snapshot* (one bar per action phase)."""
        fields: dict[str, Any] = {
            "failed": snapshot.failed,
            "speed": snapshot.items_per_second,
            "rate": snapshot.rate,
            "throttled": snapshot.throttled,
        }
        task = self._tasks.get(snapshot.action)
        if task is None:
            task = self._progress.add_task(snapshot.action, total=snapshot.total, **fields)
            self._tasks[snapshot.action] = task
        self._progress.update(
            task,
            total=snapshot.total,
            completed=snapshot.succeeded + snapshot.failed,
            **fields,
        )
