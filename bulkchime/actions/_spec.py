"""What an action is: its API operation, batch size, keys, parameters, and its handler."""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..lookups import Caller, Lookups
    from ..store import WorkItem

__all__ = ["ActionHandler", "ActionSpec", "ItemResult", "OneItem", "Resend", "Target"]


class Target(enum.Enum):
    """What one item of an action names."""

    USER = "user"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The server's answer for one item of a request."""

    ok: bool
    #: Whether sending the item again may succeed (a per-user ``Throttled``).
    retryable: bool = False
    code: str | None = None
    message: str | None = None
    result: Mapping[str, Any] | None = None


#: The answer for an item that simply succeeded.
OK = ItemResult(ok=True)


@runtime_checkable
class ActionHandler(Protocol):
    """How one action talks to the API: its request, its answer, and its verification."""

    async def send(
        self,
        caller: Caller,
        account_id: str | None,
        items: Sequence[WorkItem],
        params: Mapping[str, Any],
    ) -> list[ItemResult]:
        """Send one request for *items* (of one account); one result per item, in order.

        Raises :class:`~bulkchime.errors.ApiError` when the request as a whole failed.
        """
        ...

    async def verify(self, lookups: Lookups, item: WorkItem) -> ItemResult | None:
        """Whether a send whose answer was lost took effect, asked of the server.

        ``None``: it did not, send it again. A successful result: it did. A failed
        result: nobody can tell (the item fails with that code and is not repeated).
        Only non-idempotent actions are asked; the others are simply sent again.
        """
        ...


class Resend:
    """Verification of an idempotent action: a lost answer is simply sent again."""

    async def verify(self, lookups: Lookups, item: WorkItem) -> ItemResult | None:
        """``None``: send it again (harmless for an idempotent action)."""
        return None


class OneItem(Resend, abc.ABC):
    """A handler whose request carries one item."""

    async def send(
        self,
        caller: Caller,
        account_id: str | None,
        items: Sequence[WorkItem],
        params: Mapping[str, Any],
    ) -> list[ItemResult]:
        """Send the batch's one item with :meth:`send_one`."""
        (item,) = items
        return [await self.send_one(caller, account_id, item, params)]

    @abc.abstractmethod
    async def send_one(
        self, caller: Caller, account_id: str | None, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        """Send one request for *item*; raise :class:`~bulkchime.errors.ApiError` if refused."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One engine action and how it maps onto the API."""

    #: The name used on the command line and in job files.
    name: str
    #: The model's operation name.
    operation: str
    #: Items per request (the model's list maxima; 1 for single-item operations).
    items_per_request: int
    #: Whether sending it again after an unknown outcome is harmless.
    idempotent: bool
    #: Whether it changes anything on the server.
    mutating: bool
    #: What an item is.
    target: Target
    #: Input key columns accepted; the first is the default.
    keys: tuple[str, ...]
    #: Sends the request and reads the answer.
    handler: ActionHandler
    #: Parameters that must be present (``[params]`` or per-row columns).
    required_params: tuple[str, ...] = ()
    #: Parameters that may be present.
    optional_params: tuple[str, ...] = ()
    #: Optional parameters of which at least one must be present (``[params]`` or columns).
    one_of_params: tuple[str, ...] = ()
    #: Whether the items come from the account itself rather than an input file.
    reads_account: bool = False
    #: Whether emails must be resolved to user ids before sending (invites send emails).
    needs_user_ids: bool = True
    #: Whether the account must be a Team account (the only kind that takes invites).
    needs_team_account: bool = False

    @property
    def params(self) -> tuple[str, ...]:
        """Every parameter the action takes, required first."""
        return (*self.required_params, *self.optional_params)
