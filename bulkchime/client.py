"""The transport: one aiobotocore client, every call paced by the budget, every error classified.

It knows operations, not actions: :meth:`Client.call` sends one request of a model
operation and returns its answer or raises an :class:`~bulkchime.errors.ApiError`;
what a request means is the business of :mod:`bulkchime.actions` and
:mod:`bulkchime.lookups`.

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
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import exceptions as boto_errors
from botocore import xform_name
from botocore.parsers import ResponseParserError

from .constants import DEFAULT_REGION, SERVICE_NAME
from .errors import (
    ApiError,
    AuthError,
    BadBatchError,
    Interrupted,
    PermanentError,
    RetryableError,
)

if TYPE_CHECKING:
    from .budget import RateBudget, Ticket

if TYPE_CHECKING:
    from types_aiobotocore_chime import ChimeClient
else:
    ChimeClient = Any

__all__ = ["Client", "RequestStats", "classify", "open_client", "resolve_endpoint"]

#: Seconds to wait for a connection / for a response before calling it a retryable timeout.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: What botocore raises when no connection was made: the request was not sent.
_NOT_CONNECTED = (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError)


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
    #: Requests that never left: the connection was refused or could not be made in time.
    not_connected: int = 0
    #: Seconds a request takes from sent to answered, smoothed; ``None`` before the first.
    latency: float | None = None

    @property
    def total(self) -> int:
        """Requests sent, over every operation."""
        return sum(self.requests.values())

    def observe_latency(self, seconds: float) -> None:
        """Fold one request's time into :attr:`latency` (an exponential moving average)."""
        previous = self.latency
        self.latency = seconds if previous is None else previous + 0.2 * (seconds - previous)


class Client:
    """Sends requests: each paced by the budget, counted, and its error classified.

    :param client: an aiobotocore Chime client from :func:`open_client`.
    :param budget: the job's rate budget; every request takes a ticket from it.
    :param stats: where requests, throttles and errors are counted.
    :param stopping: set when the job stops: a change still waiting for a ticket is
        then not sent (at a low rate that wait can outlast a pipeline's grace period).
    :param fence: asked once a change has its ticket, just before it is sent; ``False``
        (this runner's lease is not current) and the change is not sent.
    """

    def __init__(
        self,
        client: ChimeClient,
        budget: RateBudget,
        stats: RequestStats,
        stopping: asyncio.Event | None = None,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        self._client = client
        self.budget = budget
        self.stats = stats
        self.stopping = stopping
        self.fence = fence
        self._changes: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (
            f"<Client requests={self.stats.total} throttled={self.stats.throttled} "
            f"budget={self.budget!r}>"
        )

    def changes(self, operation: str) -> bool:
        """Whether *operation* changes anything (the model's HTTP method is not GET)."""
        known = self._changes.get(operation)
        if known is None:
            model = self._client.meta.service_model.operation_model(operation)
            known = self._changes[operation] = model.http.get("method", "POST") != "GET"
        return known

    async def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        """Send one request of *operation* (the model's name) once; raise :class:`ApiError`.

        Raises :class:`~bulkchime.errors.Interrupted` instead of sending a change when
        the job is stopping, or the fence is down.
        """
        method = getattr(self._client, xform_name(operation))
        ticket = await self._admit(operation)
        if self.fence is not None and not self.fence() and self.changes(operation):
            raise Interrupted(f"{operation} not sent: this runner's lease is not current")
        self.stats.requests[operation] += 1
        sent = time.monotonic()
        try:
            response: dict[str, Any] = await method(**params)
        except Exception as exc:  # every failure is classified, none escapes raw
            self.stats.observe_latency(time.monotonic() - sent)
            error = classify(exc)
            self.stats.errors[error.code] += 1
            if isinstance(exc, _NOT_CONNECTED):  # nothing reached the service: not sent
                self.stats.requests[operation] -= 1
                self.stats.requests += Counter()  # drops the operation if it is now 0
                self.stats.not_connected += 1
            if error.status == 429:
                self.stats.throttled += 1
                await self.budget.on_throttle(ticket, error.retry_after_seconds)
            raise error from exc
        self.stats.observe_latency(time.monotonic() - sent)
        await self.budget.on_success(ticket)
        return response

    async def _admit(self, operation: str) -> Ticket:
        """A ticket from the budget, unless the job stops first and *operation* is a change."""
        stop = self.stopping if self.changes(operation) else None
        if stop is None:
            return await self.budget.acquire()
        if not stop.is_set():
            if self.budget.ready():  # no wait to race: skip the cost of racing it
                ticket = await self.budget.acquire()
                if not stop.is_set():
                    return ticket
            else:
                ticket_or_none = await self._acquire_unless(stop)
                if ticket_or_none is not None:
                    return ticket_or_none
        raise Interrupted(f"{operation} not sent: the job is stopping")

    async def _acquire_unless(self, stop: asyncio.Event) -> Ticket | None:
        """A ticket, or ``None`` if *stop* is set first (the wait is then given up)."""
        acquire = asyncio.ensure_future(self.budget.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((acquire, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if acquire.done() and not stop.is_set():
            return acquire.result()
        acquire.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acquire
        return None
