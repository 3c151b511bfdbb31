"""A PostgreSQL checkpoint's URL: where the database is, which job, and what may be shown.

``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB?job=NAME`` (or ``postgres://``), with any
other libpq parameter (``sslmode``, ``options``...). The password never leaves
:attr:`PgAddress.conninfo`: :attr:`PgAddress.location` (what messages, logs and the
report show) is the URL without it, and always names the job, so that it can be given
to ``bulkchime status`` or ``report`` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..errors import JobError

__all__ = ["DEFAULT_JOB", "PgAddress", "parse_postgres_url"]

#: The job's name when neither the URL nor the caller names one.
DEFAULT_JOB = "bulkchime"

#: libpq connection settings added unless the URL sets them: a server that stops
#: answering (a dropped network, not a refused port) is noticed in seconds, not minutes.
_DEFAULT_SETTINGS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
    "application_name": "bulkchime",
}
_MAX_JOB_LENGTH = 200
_URL_HINT = (
    "HINT: write postgresql://USER@HOST:PORT/DB?job=NAME, "
    "e.g. postgresql://bulkchime@db.internal:5432/bulkchime?job=offboarding"
)


@dataclass(frozen=True, slots=True)
class PgAddress:
    """Where a job's checkpoint lives: a database, and the job's name in it."""

    #: The URL as given, less its password, with ``job=`` always present.
    location: str
    #: The job's name: every runner with the same database and name shares the job.
    job: str
    #: ``HOST:PORT/DB``, for messages.
    server: str
    #: What libpq connects with (the password included): never shown.
    conninfo: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.location

    def scrub(self, text: str) -> str:
        """*text* (a driver's error message) with the password masked, should it hold it."""
        if self.password:
            for form in {self.password, quote(self.password, safe="")}:
                text = text.replace(form, "***")
        return text


def parse_postgres_url(url: str, default_job: str | None = None) -> PgAddress:
    """Read a ``postgresql://`` (or ``postgres://``) URL; *default_job* names the job when
    the URL does not. Raises :class:`~bulkchime.errors.JobError` for a URL that cannot be
    one (the message never shows its password)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise JobError(f"not a PostgreSQL URL: {_redact(url)}. {_URL_HINT}")
    try:
        port = parts.port
    except ValueError:
        raise JobError(f"the port of {_redact(url)} is not a number. {_URL_HINT}") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    jobs = [value for name, value in query if name == "job"]
    if len(jobs) > 1:
        raise JobError(f"{_redact(url)} names more than one job. {_URL_HINT}")
    job = jobs[0] if jobs else (default_job or DEFAULT_JOB)
    if not job or len(job) > _MAX_JOB_LENGTH or not job.isprintable():
        raise JobError(
            f"job name {job!r} in {_redact(url)} must be 1 to {_MAX_JOB_LENGTH} "
            f"printable characters. {_URL_HINT}"
        )
    settings = [(name, value) for name, value in query if name != "job"]
    shown = [(name, value) for name, value in settings if name != "password"]
    netloc = _netloc(parts.username, parts.hostname, port, password=None)
    location = urlunsplit((parts.scheme, netloc, parts.path, urlencode([*shown, ("job", job)]), ""))
    given = {name for name, _ in settings}
    connect = settings + [(k, v) for k, v in _DEFAULT_SETTINGS.items() if k not in given]
    conninfo = urlunsplit(
        (
            "postgresql",
            _netloc(parts.username, parts.hostname, port, password=parts.password),
            parts.path,
            urlencode(connect),
            "",
        )
    )
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "") or "?"
    host = parts.hostname or "localhost"
    server = f"{f'[{host}]' if ':' in host else host}:{port or 5432}/{database}"
    password = unquote(parts.password) if parts.password is not None else None
    password = dict(query).get("password", password)
    return PgAddress(location, job, server, conninfo, password)


def _netloc(user: str | None, host: str | None, port: int | None, *, password: str | None) -> str:
    """``USER[:PASSWORD]@HOST[:PORT]``, quoted again after :func:`urlsplit` took it apart."""
    auth = ""
    if user is not None:
        auth = quote(unquote(user), safe="")
        if password is not None:
            auth += ":" + quote(unquote(password), safe="")
        auth += "@"
    where = ""
    if host:
        where = f"[{host}]" if ":" in host else host
    if port is not None:
        where += f":{port}"
    return auth + where


def _redact(url: str) -> str:
    """*url* with any password cut out, for an error about the URL itself."""
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query:
        return url
    try:
        netloc = _netloc(parts.username, parts.hostname, parts.port, password=None)
    except ValueError:
        netloc = "…"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
