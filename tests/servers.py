"""The PostgreSQL and Redis servers the scale-out tests use, found or explained.

Tests take the servers' addresses from ``BULKCHIME_TEST_POSTGRES_URL`` and
``BULKCHIME_TEST_REDIS_URL`` (defaults: the development machines' 127.0.0.1:5432,
user ``postgres``, database ``test``; and 127.0.0.1:6379). Where a server does not
answer, its tests skip with the reason on a user's machine, and fail under CI
(``CI=true``), where both servers are part of the contract.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

__all__ = [
    "postgres_url",
    "redis_url",
    "require_postgres",
    "require_redis",
    "unique_name",
]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def postgres_url() -> str:
    """The test database's URL (no ``job`` parameter)."""
    return os.environ.get("BULKCHIME_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def redis_url() -> str:
    """The test Redis server's URL (no ``key`` parameter)."""
    return os.environ.get("BULKCHIME_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def unique_name(prefix: str) -> str:
    """A job or budget key name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@functools.cache
def _answers(url: str, default_port: int) -> str | None:
    """``None`` if something listens at *url*'s host and port, else why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as error:
        return f"nothing answers at {host}:{port} ({error})"


def _require(what: str, variable: str, url: str, default_port: int) -> None:
    why = _answers(url, default_port)
    if why is None:
        return
    message = f"{what} is not available: {why}; set {variable} to a server's URL"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the scale-out tests need it)")
    pytest.skip(message)


def require_postgres() -> str:
    """The test database's URL; skips (fails under CI) if it does not answer."""
    url = postgres_url()
    _require("PostgreSQL", "BULKCHIME_TEST_POSTGRES_URL", url, 5432)
    return url


def require_redis() -> str:
    """The test Redis server's URL; skips (fails under CI) if it does not answer."""
    url = redis_url()
    _require("Redis", "BULKCHIME_TEST_REDIS_URL", url, 6379)
    return url
