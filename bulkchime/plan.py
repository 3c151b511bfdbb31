"""The plan: items of one account and action cut into batches of the API's per-request limits,
and the dry run's account of what a run would send."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ._text import count
from .actions import ActionSpec
from .store import WorkItem

__all__ = ["Batch", "PlanLine", "batches", "halves", "plan_text", "requests_for"]

#: Rows that will not be sent listed in a plan before "… and N more".
_LISTED_ROWS = 50


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
    #: The account's name, when the service told it.
    account_name: str | None = None
    #: For an action that reads its items from the account: the read-only operation
    #: that reads them (``ListUsers``); a real run reads them again, page by page.
    read_with: str | None = None
    #: Instead of items: a sentence on how the plan's look-ups were made (``resolution:
    #: scanned the users of 5 accounts …``), printed after the accounts' lines.
    note: str | None = None

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


def plan_text(
    lines: Sequence[PlanLine],
    rejected: Sequence[tuple[int | None, str, str]],
    lookups: Mapping[str, int],
    rate: float,
) -> str:
    """The dry run's plan: requests per action and account, rows not sent, duration.

    *lookups* counts the read-only requests made while planning, per operation; *rate*
    is the configured rate (not the one look-ups adapted to).
    """
    items = sum(line.items for line in lines)
    requests = sum(line.requests for line in lines)
    out = [
        f"plan: {count(items, 'item')} in {count(requests, 'batch', 'batches')} "
        f"({count(requests, 'request')})"
    ]
    by_operation = ", ".join(f"{op} {n}" for op, n in sorted(lookups.items())) or "none"
    out.append(
        f"look-ups: {count(sum(lookups.values()), 'read-only request')} made while planning "
        f"({by_operation})"
    )
    out += [_line_text(line) for line in lines if line.note is None]
    out += [line.note for line in lines if line.note is not None]
    if rejected:
        counts = Counter(status for _, status, _ in rejected)
        out.append(
            f"not sent: {count(len(rejected), 'row')} "
            f"({', '.join(f'{k} {v}' for k, v in counts.items())})"
        )
        for line_no, status, reason in rejected[:_LISTED_ROWS]:
            out.append(f"  line {line_no if line_no is not None else '-'}: {status}: {reason}")
        if len(rejected) > _LISTED_ROWS:
            more = len(rejected) - _LISTED_ROWS
            out.append(f"  … and {more} more (see the report after a real run)")
    out.append(f"estimated duration: {requests / rate:.1f} s at {rate:g} requests/s")
    return "\n".join(out)


def _line_text(line: PlanLine) -> str:
    """``  suspend account ID (NAME): 120 items, 3 requests of up to 50``."""
    account = line.account_id or "-"
    if line.account_name:
        account += f" ({line.account_name})"
    requests = count(line.requests, "request")
    if line.read_with:
        sends = (
            f"read with {count(line.requests, line.read_with + ' request')} of up to "
            f"{line.items_per_request} (changes nothing)"
        )
    elif line.items_per_request == 1:
        sends = requests if line.requests == 1 else f"{requests}, one item each"
    else:
        sends = f"{requests} of up to {line.items_per_request}"
    return f"  {line.action} account {account}: {count(line.items, 'item')}, {sends}"
