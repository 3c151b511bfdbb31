"""The Chime client: one aiobotocore client, every call rate-limited, every error classified.

The SDK's own retries are off (``total_max_attempts=1``): botocore's standard and
adaptive modes do not retry Chime's 429 ``ThrottledClientException`` at all, its
legacy mode retries it blindly, and none retries per-user ``Throttled`` errors
inside a 200. The engine decides, so the SDK sends each request exactly once.

:func:`classify` is the one place where botocore and aiohttp exceptions become the
engine's :mod:`bulkchime.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import exceptions as boto_errors
from botocore import xform_name
from botocore.parsers import ResponseParserError

from .actions import ACTIONS, ActionSpec
from .checkpoint import WorkItem
from .constants import DEFAULT_REGION, RETRYABLE_USER_ERROR_CODES, SERVICE_NAME
from .errors import (
    ApiError,
    AuthError,
    BadBatchError,
    Interrupted,
    PermanentError,
    RetryableError,
)
from .schedule import RateLimiter

if TYPE_CHECKING:
    from types_aiobotocore_chime import ChimeClient
else:
    ChimeClient = Any

__all__ = [
    "ChimeApi",
    "ItemResult",
    "RequestStats",
    "classify",
    "open_client",
    "records_with_id",
    "resolve_endpoint",
]

#: Seconds to wait for a connection / for a response before calling it a retryable timeout.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

log = structlog.get_logger("bulkchime")

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from AWS; backoff covers it
    return seconds if seconds > 0 else None


def classify(exc: BaseException) -> ApiError:
    """Turn what a call raised into the :class:`ApiError` the engine acts on."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, boto_errors.ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        code = str(error.get("Code") or f"HTTP{status}")
        message = str(error.get("Message") or "")
        retry_after = _retry_after(meta.get("HTTPHeaders", {}))
        if status in _RETRYABLE_STATUS or status >= 500:
            return RetryableError(
                code,
                message,
                status=status,
                retry_after_seconds=retry_after,
                maybe_applied=status not in (429, 503),
            )
        if status in (401, 403):
            return AuthError(code, _auth_hint(code, message), status=status)
        if status == 400:
            return BadBatchError(code, message, status=status)
        return PermanentError(code, message, status=status)
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return AuthError("NoCredentials", _auth_hint("NoCredentials", str(exc)))
    if isinstance(exc, boto_errors.ConnectTimeoutError):
        return RetryableError("ConnectTimeout", _first_line(str(exc)))
    if isinstance(exc, boto_errors.EndpointConnectionError):
        # Could not connect at all: nothing reached the service.
        return RetryableError("ConnectionError", _first_line(str(exc)))
    if isinstance(exc, boto_errors.ReadTimeoutError | asyncio.TimeoutError | TimeoutError):
        return RetryableError("Timeout", "no response in time", maybe_applied=True)
    if isinstance(exc, ResponseParserError):
        return RetryableError("MalformedResponse", _first_line(str(exc)), maybe_applied=True)
    if isinstance(exc, boto_errors.HTTPClientError | aiohttp.ClientError | OSError):
        return RetryableError(
            "ConnectionError", _first_line(str(exc)) or type(exc).__name__, maybe_applied=True
        )
    if isinstance(exc, boto_errors.BotoCoreError):
        return PermanentError(type(exc).__name__, _first_line(str(exc)))
    return PermanentError(type(exc).__name__, _first_line(str(exc)))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _auth_hint(code: str, message: str) -> str:
    if code == "NoCredentials":
        return (
            f"{message.rstrip('.')}. HINT: nothing was sent; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or --profile (for the emulator: testing / testing)"
        )
    return (
        f"{(message or code).rstrip('.')}. HINT: the service refused the credentials or the "
        "signature; "
        "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or --profile), "
        "that the session token has not expired, the region, and the machine's clock"
    )


def resolve_endpoint(explicit: str | None) -> str | None:
    """The endpoint URL: explicit, else ``AWS_ENDPOINT_URL_CHIME``, else ``AWS_ENDPOINT_URL``."""
    return (
        explicit or os.environ.get("AWS_ENDPOINT_URL_CHIME") or os.environ.get("AWS_ENDPOINT_URL")
    )


def _keep_text(value: str) -> str:
    return value


def _require_json_body(response_dict: Mapping[str, Any], **_: Any) -> None:
    """A success whose body is not JSON is malformed, not an empty success.

    botocore's rest-json parser turns an unparsable body into an empty result, which
    for a batch call reads as "every user succeeded": refuse it before parsing.
    """
    status = int(response_dict.get("status_code") or 0)
    body = response_dict.get("body") or b""
    if status >= 300 or not body:
        return
    try:
        json.loads(body)
    except ValueError:
        raise ResponseParserError(
            f"HTTP {status} answer is not JSON: {bytes(body[:60])!r}"
        ) from None


@asynccontextmanager
async def open_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    concurrency: int = 8,
    timeout: float = READ_TIMEOUT,
) -> AsyncIterator[ChimeClient]:
    """An aiobotocore Chime client with the SDK's retries off.

    Credentials come from the standard AWS chain; missing ones raise
    :class:`AuthError` before any request is made.
    """
    session = AioSession(profile=profile)
    # Keep timestamps as the ISO text the service sent: botocore's default parser
    # costs most of the client's CPU on ListUsers pages, and reports want text anyway.
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_keep_text
    )
    if await session.get_credentials() is None:
        raise AuthError("NoCredentials", _auth_hint("NoCredentials", "no AWS credentials found"))
    config = AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max(concurrency, 1) + 2,
        connect_timeout=min(CONNECT_TIMEOUT, timeout),
        read_timeout=timeout,
    )
    region_name = region or session.get_config_variable("region") or DEFAULT_REGION
    async with session.create_client(
        SERVICE_NAME,
        region_name=region_name,
        endpoint_url=resolve_endpoint(endpoint_url),
        config=config,
    ) as client:
        client.meta.events.register(f"before-parse.{SERVICE_NAME}", _require_json_body)
        yield client


@dataclass(slots=True)
class RequestStats:
    """What was sent: the summary's and the progress line's figures."""

    requests: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Requests sent, over every operation."""
        return sum(self.requests.values())


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The server's answer for one item of a batch."""

    ok: bool
    retryable: bool = False
    code: str | None = None
    message: str | None = None
    result: Mapping[str, Any] | None = None


_OK = ItemResult(ok=True)

_MUTATING_OPERATIONS = frozenset(spec.operation for spec in ACTIONS.values() if spec.mutating)

#: User fields kept in reports and exports; PersonalPIN is a secret and never kept.
_USER_FIELDS = (
    "UserId",
    "AccountId",
    "PrimaryEmail",
    "DisplayName",
    "LicenseType",
    "UserRegistrationStatus",
    "UserInvitationStatus",
)


def public_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """A user record without secrets, with JSON-ready values."""
    return {name: str(user[name]) for name in _USER_FIELDS if user.get(name) is not None}


class ChimeApi:
    """The calls the engine makes, each through the shared limiter and classified."""

    def __init__(
        self,
        client: ChimeClient,
        limiter: RateLimiter,
        stats: RequestStats,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._client = client
        self.limiter = limiter
        self.stats = stats
        #: Set when the job stops: a change still waiting for a token is then not sent
        #: (at a low rate that wait can be longer than a pipeline's grace period).
        self.stopping = stopping
        #: Whether the service has accepted these credentials at least once.
        self.authenticated = False

    async def _admit(self, operation: str) -> float:
        """Wait for a token, unless the job stops first and *operation* changes something."""
        stop = self.stopping if operation in _MUTATING_OPERATIONS else None
        if stop is None or self.limiter.has_capacity():
            sent_at = await self.limiter.admit()
        else:
            admit = asyncio.ensure_future(self.limiter.admit())
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait((admit, stopped), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            if not admit.done():
                admit.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await admit
                raise Interrupted(f"{operation} not sent: the job is stopping")
            sent_at = admit.result()
        if stop is not None and stop.is_set():
            raise Interrupted(f"{operation} not sent: the job is stopping")
        return sent_at

    async def credentials_work(self) -> bool:
        """Whether the credentials are accepted now (a 403 may be one account's).

        Asked afresh after each 403: credentials that worked an hour ago may have
        expired since (a session token), and that must abort the job, not fail an account.
        """
        try:
            await self.call("ListAccounts", MaxResults=1)
        except ApiError:
            return False
        return True

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Send one request of *operation* (the model's name) once; raise :class:`ApiError`."""
        method = getattr(self._client, xform_name(operation))
        # The admission time tells the limiter whether a 429 is news (sent after its
        # last cut) or the echo of requests already in flight at the old rate.
        sent_at = await self._admit(operation)
        self.stats.requests[operation] += 1
        try:
            response: dict[str, Any] = await method(**params)
        except Exception as exc:  # every failure is classified, none escapes raw
            error = classify(exc)
            self.stats.errors[error.code] += 1
            if error.status == 429:
                self.stats.throttled += 1
                self.limiter.on_throttle(error.retry_after_seconds, sent_at=sent_at)
            raise error from exc
        self.limiter.on_success(sent_at)
        self.authenticated = True
        return response

    # -- look-ups ------------------------------------------------------------------

    async def find_user(self, account_id: str, email: str) -> dict[str, Any] | None:
        """The user of *account_id* whose primary email is *email*, or ``None``."""
        response = await self.call("ListUsers", AccountId=account_id, UserEmail=email)
        for user in records_with_id(response.get("Users"), "UserId"):
            if str(user.get("PrimaryEmail", "")).lower() == email.lower():
                return user
        return None

    async def users_page(
        self, account_id: str, token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page (200) of *account_id*'s users, and the token of the next page."""
        params: dict[str, Any] = {"AccountId": account_id, "MaxResults": 200}
        if token:
            params["NextToken"] = token
        response = await self.call("ListUsers", **params)
        return records_with_id(response.get("Users"), "UserId"), response.get("NextToken")

    async def list_accounts(
        self, *, name: str | None = None, user_email: str | None = None
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
            response = await self.call("ListAccounts", **params)
            accounts.extend(records_with_id(response.get("Accounts"), "AccountId"))
            token = response.get("NextToken")
            if not token:
                break
        if name is not None:
            accounts = [account for account in accounts if account.get("Name") == name]
        return accounts

    async def get_account(self, account_id: str) -> dict[str, Any] | None:
        """The account, or ``None`` when the service says it does not exist."""
        try:
            response = await self.call("GetAccount", AccountId=account_id)
        except PermanentError as error:
            if error.status == 404:
                return None
            raise
        return dict(response.get("Account", {}))

    # -- actions -------------------------------------------------------------------

    async def execute(
        self,
        action: ActionSpec,
        account_id: str | None,
        items: Sequence[WorkItem],
        params: Mapping[str, Any],
    ) -> list[ItemResult]:
        """Send one request of *action* for *items*; one :class:`ItemResult` per item.

        Raises :class:`ApiError` when the request as a whole failed.
        """
        name = action.name
        if name in ("suspend", "unsuspend", "update-license"):
            return await self._batch_users(action, _need(account_id), items, params)
        if name == "invite":
            return await self._invite(_need(account_id), items)
        if action.target.value == "account":
            return [await self._account_call(name, items[0], params)]
        return [await self._user_call(name, _need(account_id), items[0], params)]

    async def _batch_users(
        self,
        action: ActionSpec,
        account_id: str,
        items: Sequence[WorkItem],
        params: Mapping[str, Any],
    ) -> list[ItemResult]:
        user_ids = [_need(item.user_id) for item in items]
        if action.name == "update-license":
            entries = [
                {
                    "UserId": user_id,
                    "LicenseType": str(item.fields.get("license") or params["license"]),
                }
                for user_id, item in zip(user_ids, items, strict=True)
            ]
            response = await self.call(
                "BatchUpdateUser", AccountId=account_id, UpdateUserRequestItems=entries
            )
        else:
            response = await self.call(action.operation, AccountId=account_id, UserIdList=user_ids)
        errors = {str(e.get("UserId")): e for e in response.get("UserErrors", [])}
        results: list[ItemResult] = []
        for user_id in user_ids:
            error = errors.get(user_id)
            if error is None:
                results.append(_OK)
            else:
                code = str(error.get("ErrorCode") or "Unknown")
                results.append(
                    ItemResult(
                        ok=False,
                        retryable=code in RETRYABLE_USER_ERROR_CODES,
                        code=code,
                        message=str(error.get("ErrorMessage") or ""),
                    )
                )
        return results

    async def _invite(self, account_id: str, items: Sequence[WorkItem]) -> list[ItemResult]:
        emails = [_need(item.email) for item in items]
        response = await self.call("InviteUsers", AccountId=account_id, UserEmailList=emails)
        invites = {
            str(invite.get("EmailAddress", "")).lower(): invite
            for invite in response.get("Invites", [])
        }
        results: list[ItemResult] = []
        for email in emails:
            invite = invites.get(email.lower())
            if invite is None:
                results.append(
                    ItemResult(
                        ok=False, code="NotInvited", message="the service returned no invite"
                    )
                )
            elif invite.get("Status") == "Failed" or invite.get("EmailStatus") == "Failed":
                results.append(
                    ItemResult(
                        ok=False,
                        code="InviteFailed",
                        message=(
                            f"invite status {invite.get('Status')}, "
                            f"email {invite.get('EmailStatus')}"
                        ),
                    )
                )
            else:
                results.append(
                    ItemResult(ok=True, result={"InviteId": str(invite.get("InviteId"))})
                )
        return results

    async def _user_call(
        self, name: str, account_id: str, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        user_id = _need(item.user_id)
        if name == "update-user":
            license_type = item.fields.get("license") or params.get("license")
            kwargs: dict[str, Any] = {"AccountId": account_id, "UserId": user_id}
            if license_type:
                kwargs["LicenseType"] = str(license_type)
            await self.call("UpdateUser", **kwargs)
            return _OK
        if name == "logout":
            await self.call("LogoutUser", AccountId=account_id, UserId=user_id)
            return _OK
        if name == "reset-pin":
            # The new PIN is in the response; it is a secret and is not kept anywhere.
            await self.call("ResetPersonalPIN", AccountId=account_id, UserId=user_id)
            return _OK
        if name == "get-user":
            response = await self.call("GetUser", AccountId=account_id, UserId=user_id)
            return ItemResult(ok=True, result=public_user(response.get("User", {})))
        raise ValueError(f"no user call for action {name!r}")

    async def _account_call(
        self, name: str, item: WorkItem, params: Mapping[str, Any]
    ) -> ItemResult:
        if name == "create-account":
            existing = await self.list_accounts(name=item.key)
            if existing:  # CreateAccount would make a second account with the same name
                return ItemResult(
                    ok=True,
                    message="already exists (found with ListAccounts); not created again",
                    result={"AccountId": str(existing[0].get("AccountId"))},
                )
            response = await self.call("CreateAccount", Name=item.key)
            account = response.get("Account", {})
            return ItemResult(ok=True, result={"AccountId": str(account.get("AccountId"))})
        account_id = _need(item.account_id or item.key)
        if name == "update-account":
            new_name = item.fields.get("name") or params.get("name")
            response = await self.call("UpdateAccount", AccountId=account_id, Name=str(new_name))
            return ItemResult(
                ok=True, result={"Name": str(response.get("Account", {}).get("Name"))}
            )
        if name == "delete-account":
            try:
                await self.call("DeleteAccount", AccountId=account_id)
            except PermanentError as error:
                # A retry after a lost response finds the account gone: that is success.
                if error.status == 404 and item.attempts > 0:
                    return ItemResult(ok=True, message="already deleted")
                raise
            return _OK
        if name == "get-settings":
            response = await self.call("GetAccountSettings", AccountId=account_id)
            settings = response.get("AccountSettings", {})
            return ItemResult(ok=True, result={k: bool(v) for k, v in settings.items()})
        if name == "update-settings":
            settings = {
                model_name: bool(params[param])
                for param, model_name in (
                    ("disable_remote_control", "DisableRemoteControl"),
                    ("enable_dial_out", "EnableDialOut"),
                )
                if param in params
            }
            await self.call("UpdateAccountSettings", AccountId=account_id, AccountSettings=settings)
            return _OK
        raise ValueError(f"no account call for action {name!r}")


def records_with_id(records: Any, id_field: str) -> list[dict[str, Any]]:
    """The records of a list answer that carry their id; the rest are logged and dropped."""
    kept = [dict(r) for r in records or [] if isinstance(r, Mapping) and r.get(id_field)]
    dropped = len(records or []) - len(kept)
    if dropped:
        log.warning("response.incomplete", field=id_field, records_without_it=dropped)
    return kept


def _need(value: str | None) -> str:
    if value is None:
        raise ValueError("item is missing a value the request needs")
    return value
