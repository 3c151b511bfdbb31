"""What the emulator counts for ``GET /_emulator/stats``."""

from __future__ import annotations

from typing import Any, Final

from ._model import OPERATION_NAMES

__all__ = ["MUTATING_OPERATIONS", "Stats"]

#: Operations that change something; each has an ``effects`` entry, zeros included.
MUTATING_OPERATIONS: Final[tuple[str, ...]] = (
    "BatchSuspendUser",
    "BatchUnsuspendUser",
    "BatchUpdateUser",
    "CreateAccount",
    "DeleteAccount",
    "InviteUsers",
    "LogoutUser",
    "ResetPersonalPIN",
    "UpdateAccount",
    "UpdateAccountSettings",
    "UpdateUser",
)


class Stats:
    """Requests per operation, throttles, faults, and the effects of mutating operations.

    An effect is one successful per-item application (one user suspended, one email
    invited, one account created); ``total`` counts every one, repeats included, and
    ``distinct`` the different users, emails or accounts touched. Exactly-once
    delivery shows as ``total == distinct``.
    """

    def __init__(self) -> None:
        self.requests: dict[str, int] = dict.fromkeys(OPERATION_NAMES, 0)
        #: Requests answered 429 by the token bucket.
        self.throttled = 0
        #: Requests answered 500/503 by fault injection.
        self.faults = 0
        #: Batch items answered with a per-user ``Throttled`` error.
        self.user_throttled = 0
        self._totals: dict[str, int] = dict.fromkeys(MUTATING_OPERATIONS, 0)
        self._touched: dict[str, set[str]] = {op: set() for op in MUTATING_OPERATIONS}

    def __repr__(self) -> str:
        return (
            f"<Stats requests={sum(self.requests.values())} throttled={self.throttled} "
            f"faults={self.faults}>"
        )

    def count_request(self, operation: str) -> None:
        """One request was routed to ``operation``, whatever its outcome."""
        self.requests[operation] += 1

    def effect(self, operation: str, touched: str) -> None:
        """``operation`` applied one item to ``touched`` (a user id, email or account)."""
        self._totals[operation] += 1
        self._touched[operation].add(touched)

    def snapshot(self) -> dict[str, Any]:
        """The JSON document of ``GET /_emulator/stats``."""
        return {
            "requests": dict(self.requests),
            "throttled": self.throttled,
            "faults": self.faults,
            "user_throttled": self.user_throttled,
            "effects": {
                op: {"total": self._totals[op], "distinct": len(self._touched[op])}
                for op in MUTATING_OPERATIONS
            },
        }
