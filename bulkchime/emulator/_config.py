"""The emulator's configuration: sizes, seed, credentials and fault injection."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = [
    "LIST_SETTINGS",
    "LIVE_SETTINGS",
    "NUMBER_SETTINGS",
    "EmulatorConfig",
    "SettingValue",
    "check_config",
    "checked_changes",
]

#: The numeric settings ``POST /_emulator/config`` and ``RunningEmulator.configure`` may change.
NUMBER_SETTINGS: Final[tuple[str, ...]] = (
    "rate",
    "burst",
    "error_rate",
    "user_error_rate",
    "latency_ms",
)
#: The list-valued settings that may be changed live (lists of strings).
LIST_SETTINGS: Final[tuple[str, ...]] = ("session_tokens", "forbidden_accounts")
#: Every setting ``POST /_emulator/config`` and ``RunningEmulator.configure`` may change.
LIVE_SETTINGS: Final[tuple[str, ...]] = NUMBER_SETTINGS + LIST_SETTINGS

#: The value of one live setting.
SettingValue: TypeAlias = float | int | tuple[str, ...]


@dataclass
class EmulatorConfig:
    """How to serve, what to seed and which faults to inject.

    The same ``seed`` and sizes give the same accounts, ids and users in every
    instance; faults are drawn from their own generator seeded from ``seed`` too.
    """

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    #: EnterpriseLWA accounts to seed, named ``Example Corp 1``, ``Example Corp 2``, …
    accounts: int = 2
    users_per_account: int = 100
    seed: int = 0
    #: Server-side token bucket in requests per second; 0 means unlimited.
    rate: float = 0.0
    #: Bucket size; 0 means ``max(1, ceil(rate))``.
    burst: int = 0
    #: Share of requests answered 500 ServiceFailure or 503 ServiceUnavailable.
    error_rate: float = 0.0
    #: Share of batch items answered with a per-user ``Throttled`` error.
    user_error_rate: float = 0.0
    #: Added to every request.
    latency_ms: float = 0.0
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    #: When non-empty, the only session tokens (``X-Amz-Security-Token``) accepted: a
    #: request carrying any other token is answered 403 ``ForbiddenException`` "The
    #: security token included in the request is expired", as AWS answers for an expired
    #: STS session. Requests without a token need the access key pair, as always.
    session_tokens: tuple[str, ...] = ()
    #: Account ids whose requests (``{accountId}`` in the URI) are answered 403
    #: ``ForbiddenException`` "... is not authorized to perform ... on this account"
    #: after a valid signature: credentials that work, but not on these accounts.
    forbidden_accounts: tuple[str, ...] = ()
    #: Larger request bodies are answered 400 BadRequest.
    max_body_bytes: int = 1_048_576

    def __post_init__(self) -> None:
        # Accept any sequence of strings (a list from JSON); keep tuples, which are hashable
        # and cannot be changed behind the emulator's back.
        for name in LIST_SETTINGS:
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))

    def __repr__(self) -> str:
        # Secrets never show up in logs or tracebacks.
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__dataclass_fields__
            if name not in ("secret_access_key", "session_tokens")
        )
        tokens = f"<{len(self.session_tokens)} hidden>"
        return f"EmulatorConfig({shown}, secret_access_key='***', session_tokens={tokens})"


def _problem(name: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for the live setting ``name``, or None."""
    if name in LIST_SETTINGS:
        if not isinstance(value, list | tuple):
            return f"{name} must be a list of strings, not {type(value).__name__}"
        if not all(isinstance(item, str) and item for item in value):
            return f"{name} must hold non-empty strings only"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, not {type(value).__name__}"
    if not math.isfinite(value) or value < 0:
        return f"{name} must be a finite number >= 0, not {value!r}"
    if name == "burst" and not float(value).is_integer():
        return f"burst must be a whole number, not {value!r}"
    if name in ("error_rate", "user_error_rate") and value > 1:
        return f"{name} is a share of requests: it must be between 0 and 1, not {value!r}"
    return None


def checked_changes(changes: Mapping[str, object]) -> dict[str, SettingValue]:
    """The live setting changes, checked; raises ValueError naming every problem."""
    problems = [
        f"unknown setting {name!r} (settings: {', '.join(LIVE_SETTINGS)})"
        for name in changes
        if name not in LIVE_SETTINGS
    ]
    values: dict[str, SettingValue] = {}
    for name, value in changes.items():
        if name not in LIVE_SETTINGS:
            continue
        problem = _problem(name, value)
        if problem is not None:
            problems.append(problem)
        elif isinstance(value, list | tuple):
            values[name] = tuple(str(item) for item in value)
        elif isinstance(value, int | float):
            values[name] = int(value) if name == "burst" else float(value)
    if problems:
        raise ValueError("; ".join(problems))
    return values


def check_config(config: EmulatorConfig) -> None:
    """Raise ValueError if the configuration cannot be served."""
    checked_changes({name: getattr(config, name) for name in LIVE_SETTINGS})
    for name in ("accounts", "users_per_account", "seed", "port", "max_body_bytes"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    if config.port > 65535:
        raise ValueError(f"port must be between 0 and 65535, not {config.port}")
    if config.max_body_bytes < 1:
        raise ValueError("max_body_bytes must be at least 1")
    if not config.access_key_id or not config.secret_access_key:
        raise ValueError("access_key_id and secret_access_key must not be empty")
