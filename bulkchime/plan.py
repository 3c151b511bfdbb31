"""Batching: items of one account and action, cut to the API's per-request limits."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .actions import ActionSpec
from .checkpoint import WorkItem

__all__ = ["Batch", "PlanLine", "batches", "requests_for"]


@dataclass(slots=True)
class Batch:
    """Items sent together in one request."""

    action: ActionSpec
    phase: int
    account_id: str | None
    items: list[WorkItem]
    #: Whether this batch is half of a batch the service rejected whole (400).
    bisected: bool = False

    def __len__(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class PlanLine:
    """One line of a dry-run plan: an action's items in one account."""

    action: str
    account_id: str | None
    items: int
    items_per_request: int

    @property
    def requests(self) -> int:
        """Mutating requests needed to send :attr:`items`."""
        return requests_for(self.items, self.items_per_request)


def requests_for(items: int, items_per_request: int) -> int:
    """Requests needed for *items* at *items_per_request* each."""
    return math.ceil(items / items_per_request) if items else 0


def batches(
    action: ActionSpec, phase: int, account_id: str | None, items: Iterable[WorkItem]
) -> Iterator[Batch]:
    """Cut *items* (one account) into batches of at most ``action.items_per_request``."""
    size = action.items_per_request
    chunk: list[WorkItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield Batch(action, phase, account_id, chunk)
            chunk = []
    if chunk:
        yield Batch(action, phase, account_id, chunk)


def halves(batch: Batch) -> Sequence[Batch]:
    """Split a batch the service rejected whole, to find the bad item(s)."""
    middle = len(batch.items) // 2
    return [
        Batch(batch.action, batch.phase, batch.account_id, batch.items[:middle], bisected=True),
        Batch(batch.action, batch.phase, batch.account_id, batch.items[middle:], bisected=True),
    ]
