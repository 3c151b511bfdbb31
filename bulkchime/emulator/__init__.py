"""A faithful local emulator of the Amazon Chime administration API.

It serves the 16 operations of the seed model ``chime-2018-05-01`` (rest-json, SigV4)
under both ``/console/accounts…`` and ``/accounts…``, with the members that botocore's
current model gives them (``UserType``, ``DefaultLicense``, …), validates requests from
the model's shapes, checks SigV4 signatures with botocore, and injects faults (a token
bucket answering 429, random 500/503, per-user ``Throttled`` errors, latency),
deterministically under a seed. ``GET /_emulator/stats`` and
``POST /_emulator/config`` are the test and benchmark hooks.

::

    async with running_emulator(EmulatorConfig(users_per_account=1000)) as emulator:
        ...  # a chime client with endpoint_url=emulator.url, keys testing/testing
        assert emulator.stats()["effects"]["BatchSuspendUser"]["total"] == 50

Credential and permission failures, for testing what a client does with them:

* ``EmulatorConfig(session_tokens=("tok-1",))``: temporary credentials. A request
  whose ``X-Amz-Security-Token`` is not in the list is answered 403
  ``ForbiddenException`` "The security token included in the request is expired";
  one without a token needs the access key pair, as always.
* ``EmulatorConfig(forbidden_accounts=(account_id,))``: every request on those
  accounts (``{accountId}`` in the URI) is answered 403 ``ForbiddenException``
  "User is not authorized to perform: chime:<Operation> on this account (<id>)."
  after a valid signature; other accounts and ``ListAccounts`` still work.

Both are live settings too: ``emulator.configure(session_tokens=["tok-2"])`` or
``POST /_emulator/config {"forbidden_accounts": ["..."]}`` (lists of strings) expire a
token or revoke an account in the middle of a run.

Malformed requests get the model's errors, never a 500: a body that is not a JSON
object, too large (``max_body_bytes``), nested too deeply or compressed
(``Content-Encoding``, which no SDK sends to Chime) is 400 ``BadRequest``, as is a path
and query longer than 8 KiB. An operation the emulator does not serve
(``ListPhoneNumbers``, ``CreateUser``, …), or a route that no operation has, is 404
``UnknownOperationException`` naming the operation, never ``NotFound``.
"""

from __future__ import annotations

from ._app import STATE_KEY, Emulator, create_app
from ._config import EmulatorConfig
from ._errors import ChimeError
from ._model import service_model
from ._records import Account, AccountSettings, AlexaForBusiness, User
from ._serve import RunningEmulator, emulator_in_thread, run_emulator, running_emulator
from ._state import EmulatorState

__all__ = [
    "Account",
    "AccountSettings",
    "AlexaForBusiness",
    "ChimeError",
    "Emulator",
    "EmulatorConfig",
    "EmulatorState",
    "RunningEmulator",
    "STATE_KEY",
    "User",
    "create_app",
    "emulator_in_thread",
    "run_emulator",
    "running_emulator",
    "service_model",
]
