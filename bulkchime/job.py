"""The job file: what to do (actions), to whom (input), and how fast (limits).

:func:`load_job` reads a TOML job file and checks everything that can be checked
before anything is sent: unknown keys and sections, unknown actions, a key column the
actions cannot use, missing or unknown parameters, licenses, query filters, limits.
Every problem is an :class:`~bulkchime.errors.InputError` naming the job file, the
line (found by searching the file for the key) and the dotted field, e.g.
``jobs/x.toml:12: limits.rate: must be a number > 0, got -1``.

:func:`job_from_dict` applies the same checks to a job built from command-line
options, and :meth:`JobSpec.with_overrides` to the options that override a job file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkchime._text import show
from bulkchime._toml_lines import toml_error
from bulkchime.constants import COMMAND_LINE, DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS
from bulkchime.errors import InputError

__all__ = ["InputSpec", "JobSpec", "Limits", "job_from_dict", "load_job"]


# --- limits and the endpoint --------------------------------------------------------------


def _limit_problem(name: str, value: object) -> str | None:
    """Why *value* is not a valid limit *name*, or ``None`` when it is."""
    got = show(value)
    if name == "timeout":
        if not _is_number(value) or not 0 < value < math.inf:  # type: ignore[operator]
            return f"must be a number of seconds > 0, got {got}. HINT: e.g. timeout = 30"
    elif name == "rate":
        if not _is_number(value) or not 0 < value < math.inf:  # type: ignore[operator]
            return (
                f"must be a number > 0, got {got}. HINT: requests per second, e.g. rate = 10; "
                "leave it out for the default"
            )
    elif name == "failure_threshold":
        if not _is_number(value) or not 0 < value <= 1:  # type: ignore[operator]
            return (
                f"must be a number > 0 and <= 1, got {got}. HINT: it is a share of the "
                "finished items, e.g. 0.05 to stop when 5% failed"
            )
    elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return f"must be a whole number >= 1, got {got}. HINT: e.g. {name} = 8"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _endpoint_problem(url: str) -> str | None:
    """Why *url* is not an endpoint to send to, or ``None`` when it is."""
    if url.startswith(("http://", "https://")) and len(url) > len("https://"):
        return None
    return (
        f"must start with http:// or https://, got {show(url)}. "
        'HINT: e.g. endpoint_url = "http://127.0.0.1:8080"'
    )


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Limits:
    """How fast and how persistently the engine sends.

    Constructing one with an invalid value raises ``ValueError``; :func:`load_job` and
    :meth:`JobSpec.with_overrides` check first and raise :class:`InputError` instead.
    """

    #: Requests per second; ``None`` leaves it to the engine (its adaptive default).
    rate: float | None = None
    #: Token bucket size; ``None`` leaves it to the engine.
    burst: int | None = None
    #: Requests in flight at once.
    concurrency: int = DEFAULT_CONCURRENCY
    #: Sends of one item before it is recorded as failed.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: Abort when this share (0, 1] of the finished items failed; ``None`` never aborts.
    failure_threshold: float | None = None
    #: Seconds to wait for a response before the request counts as timed out (retryable).
    timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "rate",
            "burst",
            "concurrency",
            "max_attempts",
            "failure_threshold",
            "timeout",
        ):
            value = getattr(self, name)
            if value is None and name in ("rate", "burst", "failure_threshold"):
                continue
            problem = _limit_problem(name, value)
            if problem is not None:
                raise ValueError(f"{name}: {problem}")


# --- the job ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Where the items come from: a file (or stdin), a query on the account, or neither."""

    #: The input file, resolved against the job file's folder; ``"-"`` is stdin.
    #: ``None`` when :attr:`query` selects the users or the action reads the account.
    path: str | None = None
    #: The column or field that names each item: email, user_id, account_id or name.
    key: str = "email"
    #: Filters selecting users from the account, e.g. ``{"license": "Basic"}``.
    query: Mapping[str, str] | None = None
    #: The input's column (or JSONL field) holding the key, when not named after it
    #: (``"mail"`` holding emails); ``None``: the column named :attr:`key`.
    column: str | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A checked job: every field has been validated against the actions it runs."""

    #: The job's name: the file's ``name``, else the job file's stem.
    name: str
    #: The phases, in order, each a key of :data:`~bulkchime.actions.ACTIONS`.
    actions: tuple[str, ...]
    #: Where the items come from.
    input: InputSpec
    #: The account of every item (unless rows carry their own ``account_id``).
    account_id: str | None = None
    #: The account by name, resolved with ListAccounts before anything is sent.
    account_name: str | None = None
    #: The actions' parameters, e.g. ``{"license": "Pro"}``.
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Rate, burst, concurrency, attempts and failure threshold.
    limits: Limits = field(default_factory=Limits)
    #: AWS region; ``None`` leaves it to the AWS chain (then ``us-east-1``).
    region: str | None = None
    #: The endpoint to send to instead of AWS's, e.g. the emulator's.
    endpoint_url: str | None = None
    #: AWS profile for credentials.
    profile: str | None = None
    #: The checkpoint path, resolved against the job file's folder.
    checkpoint: str | None = None
    #: The report path, resolved against the job file's folder.
    report: str | None = None
    #: The job file as given, for messages; ``None`` for a job built from options.
    source: str | None = None

    def with_overrides(
        self,
        *,
        rate: float | None = None,
        burst: int | None = None,
        concurrency: int | None = None,
        max_attempts: int | None = None,
        failure_threshold: float | None = None,
        timeout: float | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        checkpoint: str | None = None,
        report: str | None = None,
    ) -> JobSpec:
        """Return a copy with the command-line options that were given (not ``None``).

        Limits and the endpoint are checked as in a job file; a bad one raises
        :class:`InputError` naming ``<command line>`` and the option, e.g. ``--rate``.
        Paths are kept as given (relative to the working directory).
        """
        limits = {
            "rate": rate,
            "timeout": timeout,
            "burst": burst,
            "concurrency": concurrency,
            "max_attempts": max_attempts,
            "failure_threshold": failure_threshold,
        }
        given: dict[str, Any] = {name: value for name, value in limits.items() if value is not None}
        for name, value in given.items():
            problem = _limit_problem(name, value)
            if problem is not None:
                raise InputError(COMMAND_LINE, problem, field=_option(name))
        for name in ("rate", "timeout"):
            if name in given:
                given[name] = float(given[name])
        if "failure_threshold" in given:
            given["failure_threshold"] = float(given["failure_threshold"])
        if endpoint_url is not None:
            problem = _endpoint_problem(endpoint_url)
            if problem is not None:
                raise InputError(COMMAND_LINE, problem, field="--endpoint-url")
        others: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region": region,
            "profile": profile,
            "checkpoint": checkpoint,
            "report": report,
        }
        return dataclasses.replace(
            self,
            limits=dataclasses.replace(self.limits, **given),
            **{name: value for name, value in others.items() if value is not None},
        )


def load_job(path: str | os.PathLike[str]) -> JobSpec:
    """Read and check the TOML job file at *path*.

    Paths inside it are resolved against its folder. Raises :class:`InputError` naming
    the file, the line where it can be found and the dotted field for every problem:
    a missing or non-UTF-8 file, TOML syntax, unknown keys or sections, unknown actions,
    a key the actions cannot use, missing or unknown parameters, bad limits.

    A required parameter (``license`` for ``update-license``) may instead be a column of
    the input; the input's first row is read to find it (not for stdin, which is
    checked row by row).
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            source, f"cannot read the job file: {reason}. HINT: check the path"
        ) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            source, "is not UTF-8 text. HINT: save the job file as UTF-8", line=line
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(source, text, exc) from None
    from bulkchime._job_checks import JobChecker  # not at the top: it imports our types

    checker = JobChecker(source, text.splitlines())
    stem = os.path.splitext(os.path.basename(source))[0]
    return checker.job(document, base_dir=os.path.dirname(source), default_name=stem, source=source)


def job_from_dict(
    data: Mapping[str, Any], *, source: str | None = None, base_dir: str | None = None
) -> JobSpec:
    """Check a job given as a mapping shaped like a job file (e.g. from CLI options).

    Errors name *source*, else ``<command line>`` and then the options that set each
    field (``--license``, not ``params.license``). Relative paths are resolved against
    *base_dir* when given, else kept as they are. Without a ``name``, the job is named
    ``<first action>-<input file stem>`` (``stdin`` for ``"-"``, ``account`` when
    the account is read), which names its default checkpoint.
    """
    from bulkchime._job_checks import JobChecker  # not at the top: it imports our types

    checker = JobChecker(source if source is not None else COMMAND_LINE, [])
    return checker.job(data, base_dir=base_dir or "", default_name=None, source=source)
