"""How fast requests go out: the job's rate budget.

Every request of a job, look-ups included, takes a :class:`Ticket` from one
:class:`RateBudget` before it is sent and hands it back with the answer. The budget
paces tickets with a token bucket and adapts the rate to the service's 429s (the
control law and its reasoning: ``docs/retries-and-rate-limits.md``).

:class:`RateBudget` is the extension point: :class:`LocalBudget` keeps the budget in
the process; a budget shared by several processes implements the same protocol and
passes the same contract suite (``tests/test_budget_contract.py``).
"""

from __future__ import annotations

import math

from ._adaptive import (
    DECREASE_FACTOR,
    DELIVERY_WINDOW_SECONDS,
    DOUBLING_SECONDS,
    REGROWTH_SECONDS,
)
from ._protocol import RateBudget, Ticket
from .local import LocalBudget

__all__ = [
    "DECREASE_FACTOR",
    "DELIVERY_WINDOW_SECONDS",
    "DOUBLING_SECONDS",
    "REGROWTH_SECONDS",
    "LocalBudget",
    "RateBudget",
    "Ticket",
    "client_burst",
]


def client_burst(rate: float) -> int:
    """The bucket depth to use against a server bucket of unknown phase: 1/4 s of *rate*.

    Two tokens at least, so that a late timer does not waste capacity; far below a
    server burst of one second's worth, so that a fresh bucket cannot overrun a
    server bucket someone else has half spent.
    """
    return max(2, math.ceil(rate / 4))
