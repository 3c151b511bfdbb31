"""The rate budget interface: who may send a request now, and what the answers teach.

Every request a job makes, look-ups included, first takes a :class:`Ticket` from the
job's :class:`RateBudget` and then hands it back with its outcome: accepted
(:meth:`RateBudget.on_success`) or answered 429 (:meth:`RateBudget.on_throttle`). The
budget paces tickets (a token bucket) and adapts its rate to the 429s.

A ticket is the budget's own token: it says when, on the budget's clock, and under
which cut (``generation``) it was issued, so that the budget can tell a 429 that is
news (a request sent after its last cut) from the echo of requests already in flight
at the old rate. A budget shared by several processes issues tickets on a shared
clock; nothing in a ticket is the caller's local time.

To add a backend, implement :class:`RateBudget` and run the contract suite
(``tests/test_budget_contract.py``) over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["RateBudget", "Ticket"]


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission to send one request, handed back to the budget with its outcome."""

    #: Cuts the budget had made when it issued the ticket.
    generation: int
    #: When it was issued, in seconds on the budget's own clock.
    issued_at: float


@runtime_checkable
class RateBudget(Protocol):
    """Paces requests and adapts the pace to the service's 429s."""

    @property
    def rate(self) -> float:
        """The current rate, in requests per second (for logs and progress)."""
        ...

    def ready(self) -> bool:
        """Whether :meth:`acquire` would return at once: a hint, ``False`` when unknown.

        Callers use it to skip the cost of racing a wait that will not happen.
        """
        ...

    async def acquire(self) -> Ticket:
        """Wait until a request may be sent; return its ticket.

        Cancelling the wait takes nothing from the budget.
        """
        ...

    async def on_success(self, ticket: Ticket) -> None:
        """The request sent under *ticket* was accepted."""
        ...

    async def on_throttle(self, ticket: Ticket, retry_after_seconds: float | None) -> None:
        """The request sent under *ticket* was answered 429, with the server's
        ``Retry-After`` if it gave one: cut the rate if this is news, pause if asked."""
        ...

    async def close(self) -> None:
        """Release what the budget holds (connections); idempotent."""
        ...
