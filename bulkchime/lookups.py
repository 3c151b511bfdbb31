"""Read-only look-ups: users by email, pages of an account's users, accounts by name,
and the filters (``input.query``, ``--where``) that select users from an account.

The functions take anything with the client's ``call`` (:class:`Caller`) and send
each request once. :class:`Lookups` is what the engine's stages use: the same
look-ups, each retried like any request (full-jitter backoff, ``Retry-After``), an
answer that never comes aborting the job with a hint. An
:class:`~bulkchime.errors.AuthError` is not retried: it reaches the caller as it is,
which decides whether the credentials or one account were refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from .backoff import backoff_wait
from .constants import LICENSES
from .errors import ApiError, JobAborted, PermanentError, RetryableError

__all__ = [
    "USER_FILTERS",
    "USER_TYPES",
    "Caller",
    "Lookups",
    "credentials_work",
    "find_user",
    "get_account",
    "get_settings",
    "list_accounts",
    "records_with_id",
    "user_matches",
    "users_page",
]

_T = TypeVar("_T")

log = structlog.get_logger("bulkchime")

#: Users per ListUsers page (the model's maximum).
USERS_PER_PAGE = 200

#: User types (the current model's ``UserType`` enum).
USER_TYPES: tuple[str, ...] = ("PrivateUser", "SharedDevice")

#: ``input.query`` / ``--where`` filters: the ``User`` member each compares, and its values.
USER_FILTERS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "license": ("LicenseType", LICENSES),
    "registration_status": ("UserRegistrationStatus", ("Unregistered", "Registered", "Suspended")),
    "invitation_status": ("UserInvitationStatus", ("Pending", "Accepted", "Failed")),
    "user_type": ("UserType", USER_TYPES),
}


def user_matches(user: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """Whether *user* (a ``User`` of ListUsers) passes every filter of *query*."""
    return all(str(user.get(USER_FILTERS[name][0])) == value for name, value in query.items())


class Caller(Protocol):
    """What sends one request: the client's :meth:`~bulkchime.client.Client.call`."""

    async def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        """Send one request of *operation* (the model's name); raise ``ApiError``."""
        ...


def records_with_id(records: Any, id_field: str) -> list[dict[str, Any]]:
    """The records of a list answer that carry their id; the rest are logged and dropped."""
    kept = [dict(r) for r in records or [] if isinstance(r, Mapping) and r.get(id_field)]
    dropped = len(records or []) - len(kept)
    if dropped:
        log.warning("response.incomplete", field=id_field, records_without_it=dropped)
    return kept


async def find_user(caller: Caller, account_id: str, email: str) -> dict[str, Any] | None:
    """The user of *account_id* whose primary email is *email*, or ``None``."""
    response = await caller.call("ListUsers", AccountId=account_id, UserEmail=email)
    for user in records_with_id(response.get("Users"), "UserId"):
        if str(user.get("PrimaryEmail", "")).lower() == email.lower():
            return user
    return None


async def users_page(
    caller: Caller, account_id: str, token: str | None = None, *, user_type: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of *account_id*'s users (of *user_type* only, when given: the service
    filters them), and the token of the next page."""
    params: dict[str, Any] = {"AccountId": account_id, "MaxResults": USERS_PER_PAGE}
    if user_type:
        params["UserType"] = user_type
    if token:
        params["NextToken"] = token
    response = await caller.call("ListUsers", **params)
    return records_with_id(response.get("Users"), "UserId"), response.get("NextToken")


async def list_accounts(
    caller: Caller, *, name: str | None = None, user_email: str | None = None
) -> list[dict[str, Any]]:
    """Accounts matching *name* (exactly) or holding *user_email*; every page."""
    accounts: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"MaxResults": 200}
        if name is not None:
            params["Name"] = name
        if user_email is not None:
            params["UserEmail"] = user_email
        if token:
            params["NextToken"] = token
        response = await caller.call("ListAccounts", **params)
        accounts.extend(records_with_id(response.get("Accounts"), "AccountId"))
        token = response.get("NextToken")
        if not token:
            break
    if name is not None:
        accounts = [account for account in accounts if account.get("Name") == name]
    return accounts


async def get_account(caller: Caller, account_id: str) -> dict[str, Any] | None:
    """The account, or ``None`` when the service says it does not exist."""
    try:
        response = await caller.call("GetAccount", AccountId=account_id)
    except PermanentError as error:
        if error.status == 404:
            return None
        raise
    return dict(response.get("Account", {}))


async def get_settings(caller: Caller, account_id: str) -> dict[str, Any] | None:
    """The account's settings, or ``None`` when the service says it does not exist."""
    try:
        response = await caller.call("GetAccountSettings", AccountId=account_id)
    except PermanentError as error:
        if error.status == 404:
            return None
        raise
    return dict(response.get("AccountSettings", {}))


async def credentials_work(caller: Caller) -> bool:
    """Whether the credentials are accepted now (a 403 may be one account's).

    Asked afresh after each 403: credentials that worked an hour ago may have expired
    since (a session token), and that must abort the job, not fail an account.
    """
    try:
        await caller.call("ListAccounts", MaxResults=1)
    except ApiError:
        return False
    return True


class Lookups:
    """The look-ups, each retried like any request; one that never answers aborts the job.

    :param caller: the client.
    :param max_attempts: sends of one look-up before the job aborts.
    :param sleep: the backoff's sleep (one that ends early when the job stops).
    """

    def __init__(
        self, caller: Caller, *, max_attempts: int, sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self.caller = caller
        self.max_attempts = max_attempts
        self._sleep = sleep

    async def find_user(self, account_id: str, email: str) -> dict[str, Any] | None:
        """:func:`find_user`, retried."""
        return await self._retried(find_user, self.caller, account_id, email)

    async def users_page(
        self, account_id: str, token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """:func:`users_page`, retried: a page of *account_id*'s users and the next token."""
        return await self._retried(users_page, self.caller, account_id, token)

    async def list_accounts(
        self, *, name: str | None = None, user_email: str | None = None
    ) -> list[dict[str, Any]]:
        """:func:`list_accounts`, retried."""
        return await self._retried(list_accounts, self.caller, name=name, user_email=user_email)

    async def get_account(self, account_id: str) -> dict[str, Any] | None:
        """:func:`get_account`, retried."""
        return await self._retried(get_account, self.caller, account_id)

    async def get_settings(self, account_id: str) -> dict[str, Any] | None:
        """:func:`get_settings`, retried."""
        return await self._retried(get_settings, self.caller, account_id)

    async def users(
        self, account_id: str, *, user_type: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every user of *account_id* (of *user_type* only, when given), each page retried."""
        token: str | None = None
        while True:
            users, token = await self._retried(
                users_page, self.caller, account_id, token, user_type=user_type
            )
            for user in users:
                yield user
            if not token:
                return

    async def credentials_work(self) -> bool:
        """:func:`credentials_work` (asked once: it is the question, not a look-up)."""
        return await credentials_work(self.caller)

    async def _retried(self, fn: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> _T:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=backoff_wait,
                retry=retry_if_exception_type(RetryableError),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    return await fn(*args, **kwargs)
        except RetryableError as error:
            # Without look-ups nothing can be sent; the checkpoint keeps everything.
            raise JobAborted(
                f"a look-up got no usable answer in {self.max_attempts} attempts ({error}). "
                "HINT: check --endpoint-url / the network and that the service is up; then "
                "run the same command again to resume"
            ) from error
        raise AssertionError("unreachable")  # pragma: no cover
