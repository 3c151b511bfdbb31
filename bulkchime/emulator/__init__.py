"""A faithful local emulator of the Amazon Chime administration API.

It serves the 16 operations of the seed model ``chime-2018-05-01`` (rest-json, SigV4)
under both ``/console/accounts…`` and ``/accounts…``, validates requests from the
model's shapes, checks SigV4 signatures with botocore, and injects faults (a token
bucket answering 429, random 500/503, per-user ``Throttled`` errors, latency),
deterministically under a seed. ``GET /_emulator/stats`` and
``POST /_emulator/config`` are the test and benchmark hooks.

::

    async with running_emulator(EmulatorConfig(users_per_account=1000)) as emulator:
        ...  # a chime client with endpoint_url=emulator.url, keys testing/testing
        assert emulator.stats()["effects"]["BatchSuspendUser"]["total"] == 50
"""

from __future__ import annotations

from ._app import STATE_KEY, create_app
from ._config import EmulatorConfig
from ._records import Account, AccountSettings, User
from ._serve import RunningEmulator, emulator_in_thread, run_emulator, running_emulator
from ._state import EmulatorState

__all__ = [
    "Account",
    "AccountSettings",
    "EmulatorConfig",
    "EmulatorState",
    "RunningEmulator",
    "STATE_KEY",
    "User",
    "create_app",
    "emulator_in_thread",
    "run_emulator",
    "running_emulator",
]
