"""Where a shared rate budget lives: ``redis://HOST:PORT/DB?key=NAME``, read and checked.

Everything a user can get wrong in the URL is a :class:`~bulkchime.errors.JobError`
with a HINT, raised before anything is connected or sent; no message shows a password.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import JobError

__all__ = ["DEFAULT_KEY", "RedisAddress", "parse_budget_url"]

#: The budget's name when the URL gives no ``key=``.
DEFAULT_KEY = "bulkchime"

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DB_NUMBER = re.compile(r"[0-9]{1,5}")
_URL_HINT = (
    "HINT: write redis://HOST:PORT/DB?key=NAME (rediss:// for TLS, "
    "redis://:PASSWORD@HOST:PORT/DB?key=NAME with a password), "
    "e.g. redis://127.0.0.1:6379/0?key=chime-prod"
)


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a shared budget lives: a Redis server, a database, and the budget's name."""

    host: str
    port: int
    db: int
    #: The budget's name: every process with the same one shares the budget.
    key: str = DEFAULT_KEY
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: Whether to connect with TLS (``rediss://``).
    tls: bool = False

    def __str__(self) -> str:
        """``HOST:PORT/DB``, for messages: never the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.db}"


def parse_budget_url(url: str) -> RedisAddress:
    """Read ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?key=NAME]``.

    Raises :class:`~bulkchime.errors.JobError` (with a HINT) for anything else: another
    scheme, no host, a port or database that is not a number, a parameter other than
    ``key``, a name with characters other than letters, digits, ``.``, ``_`` and ``-``.
    """
    shown = _redacted(url)

    def bad(why: str) -> JobError:
        return JobError(f"budget URL {shown!r}: {why}. {_URL_HINT}")

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise bad(f"it cannot be read ({error})") from None
    if parts.scheme not in ("redis", "rediss"):
        scheme = f"{parts.scheme}://" if parts.scheme else "none"
        raise bad(f"the scheme must be redis:// (or rediss:// for TLS), not {scheme}")
    if not parts.hostname:
        raise bad("it names no host")
    if port == 0:
        raise bad("the port must be a number from 1 to 65535")
    if parts.fragment:
        raise bad("it must not have a #fragment")
    db = parts.path.removeprefix("/")
    if db and not _DB_NUMBER.fullmatch(db):
        raise bad(f"the database must be a number, as in /0, not {parts.path!r}")
    return RedisAddress(
        host=parts.hostname,
        port=port or 6379,
        db=int(db or 0),
        key=_key_name(parts.query, bad),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=parts.scheme == "rediss",
    )


def _redacted(url: str) -> str:
    """*url* with whatever comes before its host (a user, a password) shown as ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def _key_name(query: str, bad: Callable[[str], JobError]) -> str:
    """The ``key`` parameter of a budget URL's query (the only one allowed)."""
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise bad(f"its parameters {query!r} cannot be read") from None
    unknown = sorted(set(params) - {"key"})
    if unknown:
        raise bad(f"unknown parameter {unknown[0]!r}: the only one is key=NAME")
    names = params.get("key", [DEFAULT_KEY])
    if len(names) > 1:
        raise bad("it gives key= more than once")
    if not _KEY_NAME.fullmatch(names[0]):
        raise bad(
            f"the key {names[0]!r} must be 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return names[0]
