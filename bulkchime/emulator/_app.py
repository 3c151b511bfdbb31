"""The aiohttp application: routing, the per-request pipeline, and the test hooks.

Each API request goes route → count → auth → account permission → rate limit →
fault → latency → validate → apply, so a throttled or faulted request changes
nothing. The hooks under ``/_emulator/`` are not signed, not rate-limited and not
counted. A request line longer than :data:`MAX_URI_BYTES` is refused before routing.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Final

from aiohttp import web

from ._auth import SignedRequest, verify_signature
from ._config import EmulatorConfig, SettingValue, check_config
from ._errors import ChimeError, bad_request, forbidden, unknown_operation
from ._faults import FaultInjector
from ._ids import IdSource
from ._model import OPERATION_NAMES, SEED_MODEL_FILE, match_route, unserved_operation
from ._ops import Operations
from ._seed import seed_state
from ._state import EmulatorState
from ._stats import Stats
from ._validate import check_params, parse_body, parse_input

__all__ = ["MAX_URI_BYTES", "STATE_KEY", "Emulator", "create_app", "emulator_of"]

logger = logging.getLogger(__name__)

STATS_PATH: Final = "/_emulator/stats"
CONFIG_PATH: Final = "/_emulator/config"
#: Longest path and query answered; the SDKs never come near it (a page token is ~60 bytes).
MAX_URI_BYTES: Final = 8192


class Emulator:
    """One emulator's parts: live config, state, stats, faults and operations."""

    def __init__(self, config: EmulatorConfig) -> None:
        check_config(config)
        #: A copy of the given configuration, changed live by :meth:`configure`.
        self.config = dataclasses.replace(config)
        self.state = EmulatorState()
        seed_state(
            self.state,
            accounts=config.accounts,
            users_per_account=config.users_per_account,
            seed=config.seed,
        )
        self.stats = Stats()
        self.faults = FaultInjector(self.config, self.stats)
        self._ids = IdSource(config.seed)
        self._operations = Operations(self.state, self.stats, self.faults, self._ids)

    def __repr__(self) -> str:
        return f"<Emulator {self.state!r} {self.stats!r}>"

    async def apply(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one request made in this process, without HTTP or a signature.

        Counted, throttled, faulted and delayed like a request over the wire, then
        applied; raises :class:`ChimeError` as the server would answer it. For tests
        that run the engine's stages in virtual time.
        """
        self.stats.count_request(operation)
        self.faults.admit()
        self.faults.inject_fault()
        await self.faults.delay()
        check_params(operation, params)
        _, document = self._operations.run(operation, params)
        return document or {}

    def configure(self, changes: dict[str, object]) -> dict[str, SettingValue]:
        """Change fault injection live; returns the new settings. ValueError if bad."""
        return self.faults.configure(changes)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer any request: a hook, an API operation or an unknown route."""
        path = request.raw_path.partition("?")[0]
        if len(request.raw_path) > MAX_URI_BYTES:
            return self._error(
                bad_request(
                    f"The request URI is {len(request.raw_path)} bytes long; "
                    f"the limit is {MAX_URI_BYTES} bytes."
                )
            )
        if path == STATS_PATH and request.method == "GET":
            return web.json_response(self.stats.snapshot())
        if path == CONFIG_PATH and request.method in ("GET", "POST"):
            return await self._config_hook(request)
        match = match_route(request.method, request.raw_path)
        if match is None:
            return self._error(_unknown_operation(request.method, request.raw_path))
        operation = match.route.operation
        self.stats.count_request(operation)
        try:
            body = await self._read_body(request)
            signed = SignedRequest(
                request.method, request.host, request.raw_path, request.headers, body
            )
            verify_signature(
                signed,
                {self.config.access_key_id: self.config.secret_access_key},
                session_tokens=self.config.session_tokens,
            )
            self._check_account_allowed(operation, match.labels)
            self.faults.admit()
            self.faults.inject_fault()
            await self.faults.delay()
            params = parse_input(operation, match.labels, match.query, parse_body(body))
            status, document = self._operations.run(operation, params)
        except ChimeError as error:
            return self._error(error)
        except Exception:
            logger.exception("emulator: %s failed unexpectedly", operation)
            return self._error(ChimeError("ServiceFailureException", "Internal emulator error"))
        headers = {"x-amzn-RequestId": self._ids.request_id()}
        if document is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(document, status=status, headers=headers)

    def _check_account_allowed(self, operation: str, labels: dict[str, str]) -> None:
        """403 for a request on a ``forbidden_accounts`` account (after a valid signature)."""
        account_id = labels.get("accountId")
        if account_id is not None and account_id in self.config.forbidden_accounts:
            raise forbidden(
                f"User is not authorized to perform: chime:{operation} on this account "
                f"({account_id})."
            )

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        too_large = bad_request(f"The request body is larger than {limit} bytes.")
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            # The SDKs never compress Chime requests; refusing keeps a bad or huge
            # compressed body from ever being inflated.
            raise bad_request(
                f"Content-Encoding {encoding[:40]!r} is not supported: send the body as is."
            )
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        body = bytearray()
        try:
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise too_large
        except web.RequestPayloadError as exc:
            raise bad_request(f"The request body could not be read: {exc}") from None
        return bytes(body)

    async def _config_hook(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return web.json_response(self.faults.settings())
        try:
            changes: dict[str, Any] = parse_body(await self._read_body(request))
            return web.json_response(self.configure(changes))
        except ChimeError as error:
            return self._error(error)
        except ValueError as error:
            return self._error(bad_request(str(error)))

    def _error(self, error: ChimeError) -> web.Response:
        headers = {
            "x-amzn-ErrorType": error.shape_name,
            "x-amzn-RequestId": self._ids.request_id(),
            **error.headers,
        }
        return web.json_response(error.body(), status=error.status, headers=headers)


def _unknown_operation(method: str, raw_path: str) -> ChimeError:
    """404 ``UnknownOperationException`` naming what was asked, and what is served."""
    served = (
        f"this emulator serves only the {len(OPERATION_NAMES)} operations of the seed model "
        f"{SEED_MODEL_FILE.removesuffix('.json')}: {', '.join(OPERATION_NAMES)}."
    )
    operation = unserved_operation(method, raw_path)
    if operation is not None:
        return unknown_operation(f"{operation} is not served: {served}")
    path = raw_path.partition("?")[0]
    return unknown_operation(f"No Chime operation matches {method} {path[:200]}; {served}")


#: ``app[STATE_KEY]`` is the application's :class:`EmulatorState`.
STATE_KEY: Final = web.AppKey("bulkchime_emulator_state", EmulatorState)
_EMULATOR_KEY: Final = web.AppKey("bulkchime_emulator", Emulator)


def create_app(config: EmulatorConfig) -> web.Application:
    """An aiohttp application serving a freshly seeded emulator.

    Seeding happens here, before serving: about 3.5 s per million users.
    Raises ValueError for a configuration that cannot be served.
    """
    emulator = Emulator(config)
    app = web.Application(client_max_size=emulator.config.max_body_bytes)
    app[STATE_KEY] = emulator.state
    app[_EMULATOR_KEY] = emulator
    app.router.add_route("*", "/{tail:.*}", emulator.handle)
    return app


def emulator_of(app: web.Application) -> Emulator:
    """The :class:`Emulator` behind an application made by :func:`create_app`."""
    return app[_EMULATOR_KEY]
