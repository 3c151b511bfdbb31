"""How fast requests go out: the job's rate budget.

Every request of a job, look-ups included, takes a :class:`Ticket` from one
:class:`RateBudget` before it is sent and hands it back with the answer. The budget
paces tickets with a token bucket and adapts the rate to the service's 429s (the
control law and its reasoning: ``docs/retries-and-rate-limits.md``).

:class:`RateBudget` is the extension point: :class:`LocalBudget` keeps the budget in
the process; a budget shared by several processes implements the same protocol and
passes the same contract suite (``tests/test_budget_contract.py``). :class:`RedisBudget`
is one: a budget shared through Redis by every process that names the same key
(imported on first use, so that a run without it does not load the Redis client).
"""

from __future__ import annotations

import importlib
import math
from typing import TYPE_CHECKING, Any

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
    "RedisBudget",
    "Ticket",
    "client_burst",
]

if TYPE_CHECKING:
    from .redis import RedisBudget

#: Names imported on first use, and their modules.
_LAZY = {"RedisBudget": "redis"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def client_burst(rate: float) -> int:
    """The bucket depth to use against a server bucket of unknown phase: 1/4 s of *rate*.

    Two tokens at least, so that a late timer does not waste capacity; far below a
    server burst of one second's worth, so that a fresh bucket cannot overrun a
    server bucket someone else has half spent.
    """
    return max(2, math.ceil(rate / 4))
