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

import contextlib
import dataclasses
import difflib
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from bulkchime.actions import ActionSpec, Target, get_action
from bulkchime.constants import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS, LICENSES
from bulkchime.errors import InputError
from bulkchime.sources import KEYS, read_source

__all__ = ["InputSpec", "JobSpec", "Limits", "job_from_dict", "load_job"]

#: How a job built from command-line options is named in messages.
COMMAND_LINE: Final = "<command line>"

_TOP_KEYS: Final = ("name", "action", "account_id", "account_name", "checkpoint", "report")
_SECTION_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "input": ("path", "key", "query"),
    "params": (),  # checked against the actions' parameters
    "limits": ("rate", "burst", "concurrency", "max_attempts", "failure_threshold", "timeout"),
    "aws": ("region", "endpoint_url", "profile"),
}
#: ``input.query`` filters and the values each accepts.
_QUERY_FILTERS: Final[Mapping[str, tuple[str, ...]]] = {
    "license": LICENSES,
    "registration_status": ("Unregistered", "Registered", "Suspended"),
    "invitation_status": ("Pending", "Accepted", "Failed"),
}
_BOOLEAN_PARAMS: Final = ("disable_remote_control", "enable_dial_out")
_PARAM_EXAMPLES: Final[Mapping[str, str]] = {"license": '"Pro"', "name": '"Example Corp"'}
_NAME_MAX = 100
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


# --- limits -------------------------------------------------------------------------------


def _limit_problem(name: str, value: object) -> str | None:
    """Why *value* is not a valid limit *name*, or ``None`` when it is."""
    got = _show(value)
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
        raise _toml_error(source, text, exc) from None
    checker = _Checker(source, text.splitlines())
    stem = os.path.splitext(os.path.basename(source))[0]
    return checker.job(document, base_dir=os.path.dirname(source), default_name=stem, source=source)


def _toml_error(source: str, text: str, exc: tomllib.TOMLDecodeError) -> InputError:
    """An :class:`InputError` at the line that ``tomllib`` names in its message."""
    message = str(exc)
    line = None
    match = _TOML_POSITION.search(message)
    if match is not None:
        message = message[: match.start()]
        if match.group(1) is not None:
            line, message = int(match.group(1)), f"{message} (column {match.group(2)})"
        else:
            line = text.count("\n") + 1
    if message.startswith(("Cannot overwrite", "Cannot declare")):
        hint = "a key or table is given twice; keep one"
    elif message.startswith("Invalid value"):
        hint = 'strings need quotes, e.g. action = "suspend"'
    else:
        hint = "fix the syntax on that line (see https://toml.io)"
    return InputError(source, f"is not valid TOML: {message}. HINT: {hint}", line=line)


def job_from_dict(
    data: Mapping[str, Any], *, source: str | None = None, base_dir: str | None = None
) -> JobSpec:
    """Check a job given as a mapping shaped like a job file (e.g. from CLI options).

    Errors name *source*, else ``<command line>``. Relative paths are resolved against
    *base_dir* when given, else kept as they are. Without a ``name``, the job is named
    ``<first action>-<input file stem>`` (``stdin`` for ``"-"``, ``account`` when
    the account is read), which names its default checkpoint.
    """
    checker = _Checker(source if source is not None else COMMAND_LINE, [])
    return checker.job(data, base_dir=base_dir or "", default_name=None, source=source)


# --- checking -----------------------------------------------------------------------------


class _Checker:
    """Checks one job document and raises :class:`InputError` at the first problem."""

    def __init__(self, file: str, lines: Sequence[str]) -> None:
        self.file = file
        self.lines = lines

    def fail(self, field: str, message: str) -> NoReturn:
        raise InputError(self.file, message, line=_locate(self.lines, field), field=field)

    def job(
        self,
        document: Mapping[str, Any],
        *,
        base_dir: str,
        default_name: str | None,
        source: str | None,
    ) -> JobSpec:
        self.unknown_keys(document, "", (*_TOP_KEYS, *_SECTION_KEYS))
        sections = {name: self.section(document, name) for name in _SECTION_KEYS}
        for name in sections:
            if name != "params":
                self.unknown_keys(sections[name], name, _SECTION_KEYS[name])
        specs = self.actions(document.get("action"))
        account_id = self.text(document, "account_id", spaces=False)
        account_name = self.text(document, "account_name")
        if account_id is not None and account_name is not None:
            self.fail(
                "account_name",
                "give account_id or account_name, not both. HINT: delete one of them",
            )
        if account_name is not None and len(account_name) > _NAME_MAX:
            self.fail("account_name", f"is longer than {_NAME_MAX} characters")
        has_account = account_id is not None or account_name is not None
        input_spec = self.input(sections["input"], specs, has_account, base_dir)
        params = self.params(sections["params"], specs, input_spec)
        limits = self.limits(sections["limits"])
        aws = sections["aws"]
        region = self.text(aws, "region", prefix="aws", spaces=False)
        endpoint_url = self.text(aws, "endpoint_url", prefix="aws")
        if endpoint_url is not None:
            problem = _endpoint_problem(endpoint_url)
            if problem is not None:
                self.fail("aws.endpoint_url", problem)
        profile = self.text(aws, "profile", prefix="aws")
        checkpoint = self.text(document, "checkpoint")
        report = self.text(document, "report")
        written_name = self.text(document, "name")
        if written_name is not None and (
            written_name in (".", "..")
            or any(c in written_name for c in "/\\")
            or not written_name.isprintable()
        ):
            self.fail(
                "name",
                f'{_show(written_name)} cannot name a file. HINT: use e.g. name = "q3-migration"',
            )
        name = (
            written_name
            or default_name
            or _adhoc_name(specs[0].name, input_spec, account_id, account_name, params)
        )
        return JobSpec(
            name=name,
            actions=tuple(spec.name for spec in specs),
            input=input_spec,
            account_id=account_id,
            account_name=account_name,
            params=params,
            limits=limits,
            region=region,
            endpoint_url=endpoint_url,
            profile=profile,
            checkpoint=_resolve(base_dir, checkpoint),
            report=_resolve(base_dir, report),
            source=source,
        )

    # -- structure

    def unknown_keys(self, table: Mapping[str, Any], prefix: str, allowed: Sequence[str]) -> None:
        for key in table:
            if key in allowed:
                continue
            dotted = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            if not prefix:
                keys = ", ".join(_TOP_KEYS)
                sections = ", ".join(f"[{name}]" for name in _SECTION_KEYS)
                where = f"allowed top-level keys: {keys}; sections: {sections}"
            elif allowed:
                where = f"allowed keys in [{prefix}]: {', '.join(allowed)}"
            else:
                where = f"[{prefix}] takes no keys"
            kind = "section" if not prefix and _is_table(table[key]) else "key"
            self.fail(dotted, f"unknown {kind}. HINT: {hint}{where}")

    def section(self, document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = document.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"must be a table, got {_show(value)}. HINT: write it as [{name}]")
        return value

    def actions(self, value: object) -> list[ActionSpec]:
        if value is None:
            self.fail(
                "action",
                'is missing. HINT: add e.g. action = "suspend" or action = ["logout", "suspend"]',
            )
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names:
            self.fail(
                "action",
                f"must be an action name or a non-empty list of them, got {_show(value)}",
            )
        specs: list[ActionSpec] = []
        for name in names:
            if not isinstance(name, str):
                self.fail("action", f"must name actions as strings, got {_show(name)}")
            try:
                spec = get_action(name)
            except KeyError as exc:
                self.fail("action", str(exc.args[0]))
            if spec in specs:
                self.fail("action", f"lists {name!r} twice. HINT: each phase runs once")
            specs.append(spec)
        readers = [spec.name for spec in specs if spec.reads_account]
        if readers and len(specs) > 1:
            self.fail(
                "action",
                f"{readers[0]} reads the whole account and cannot be combined with other "
                "actions. HINT: run it as a job of its own",
            )
        return specs

    def text(
        self, table: Mapping[str, Any], key: str, *, prefix: str = "", spaces: bool = True
    ) -> str | None:
        """An optional non-empty string, trimmed."""
        dotted = f"{prefix}.{key}" if prefix else key
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(dotted, f"must be a non-empty string, got {_show(value)}")
        value = value.strip()
        if not spaces and re.search(r"\s", value):
            self.fail(dotted, f"{_show(value)} cannot contain spaces")
        return value

    # -- input

    def input(
        self,
        table: Mapping[str, Any],
        specs: Sequence[ActionSpec],
        has_account: bool,
        base_dir: str,
    ) -> InputSpec:
        path = self.text(table, "path", prefix="input")
        query_value = table.get("query")
        key = self.key(table.get("key"), specs)
        reader = specs[0] if specs[0].reads_account else None
        if reader is not None:
            if path is not None:
                self.fail(
                    "input.path",
                    f"{reader.name} reads the users from the account, not from a file. "
                    "HINT: delete input.path; use input.query to select some users",
                )
            if not has_account:
                self.fail(
                    "account_id",
                    f"is missing: {reader.name} reads an account. HINT: add account_id "
                    'or account_name = "..."',
                )
        elif path is not None and query_value is not None:
            self.fail(
                "input.query",
                "give input.path or input.query, not both. HINT: a file names the users; "
                "a query selects them from the account",
            )
        elif path is None and query_value is None and specs[0].target is Target.ACCOUNT:
            if not has_account:
                self.fail(
                    "input.path",
                    f"is missing: {specs[0].name} needs accounts. HINT: account_id for one "
                    "account, or an input file with an account_id column",
                )
        elif path is None and query_value is None:
            self.fail(
                "input.path",
                'is missing. HINT: name the input file (.csv or .jsonl, or "-" for stdin) '
                "with path under [input], or select users with input.query",
            )
        query = None
        if query_value is not None:
            query = self.query(query_value, specs, has_account)
        return InputSpec(path=_resolve(base_dir, path), key=key, query=query)

    def key(self, value: object, specs: Sequence[ActionSpec]) -> str:
        if value is None:
            key = specs[0].keys[0]
        elif not isinstance(value, str) or value.strip().lower() not in KEYS:
            self.fail("input.key", f"must be one of {', '.join(KEYS)}, got {_show(value)}")
        else:
            key = value.strip().lower()
        for spec in specs:
            if key not in spec.keys:
                self.fail(
                    "input.key",
                    f"{spec.name} cannot use the key {key!r}. HINT: {spec.name} takes "
                    f"{' or '.join(spec.keys)}",
                )
        return key

    def query(
        self, value: object, specs: Sequence[ActionSpec], has_account: bool
    ) -> dict[str, str]:
        for spec in specs:
            if spec.target is not Target.USER:
                self.fail(
                    "input.query",
                    f"selects users, but {spec.name} acts on accounts. HINT: name the "
                    "accounts in a file with input.path",
                )
        if not isinstance(value, dict):
            self.fail(
                "input.query",
                f'must be a table, got {_show(value)}. HINT: query = {{ license = "Basic" }}',
            )
        if not value:
            self.fail(
                "input.query",
                "is empty, which would select every user of the account. HINT: name at "
                f"least one filter: {', '.join(_QUERY_FILTERS)}",
            )
        if not has_account:
            self.fail(
                "input.query",
                "selects users from an account, but no account is given. HINT: add "
                'account_id or account_name = "..."',
            )
        query: dict[str, str] = {}
        for name, wanted in value.items():
            dotted = f"input.query.{name}"
            if name not in _QUERY_FILTERS:
                self.fail(dotted, f"unknown filter. HINT: filters: {', '.join(_QUERY_FILTERS)}")
            query[name] = self.choice(dotted, wanted, _QUERY_FILTERS[name])
        return query

    def choice(self, dotted: str, value: object, allowed: Sequence[str]) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        message = f"must be one of {', '.join(allowed)}, got {_show(value)}"
        if isinstance(value, str):
            same = [item for item in allowed if item.lower() == value.strip().lower()]
            if same:
                message += f". HINT: did you mean {same[0]!r}? Values are case-sensitive"
        self.fail(dotted, message)

    # -- params

    def params(
        self, table: Mapping[str, Any], specs: Sequence[ActionSpec], input_spec: InputSpec
    ) -> dict[str, Any]:
        allowed: list[str] = []
        for spec in specs:
            allowed += [
                p for p in (*spec.required_params, *spec.optional_params) if p not in allowed
            ]
        names = " and ".join(spec.name for spec in specs)
        params: dict[str, Any] = {}
        for name, value in table.items():
            dotted = f"params.{name}"
            if name not in allowed:
                if not allowed:
                    self.fail(
                        dotted,
                        f"unknown parameter: {names} takes no parameters. HINT: delete [params]",
                    )
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(
                    dotted,
                    f"unknown parameter. HINT: {hint}{names} takes {', '.join(allowed)}",
                )
            params[name] = self.param(dotted, name, value)
        missing = [
            (spec, name) for spec in specs for name in spec.required_params if name not in params
        ]
        columns = _input_columns(input_spec) if missing else frozenset()
        for spec, name in missing:
            if columns is None or name in columns:
                continue  # the rows carry it (stdin's rows are checked one by one)
            example = _PARAM_EXAMPLES.get(name, '"..."')
            self.fail(
                f"params.{name}",
                f"is missing: {spec.name} needs a {name}. HINT: add {name} = {example} "
                f"under [params], or a {name!r} column to the input",
            )
        return params

    def param(self, dotted: str, name: str, value: object) -> Any:
        if name == "license":
            return self.choice(dotted, value, LICENSES)
        if name in _BOOLEAN_PARAMS:
            if not isinstance(value, bool):
                self.fail(dotted, f"must be true or false, got {_show(value)}")
            return value
        if name == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > _NAME_MAX:
                self.fail(
                    dotted,
                    f"must be an account name of 1 to {_NAME_MAX} characters, got {_show(value)}",
                )
            return value.strip()
        return value

    # -- limits

    def limits(self, table: Mapping[str, Any]) -> Limits:
        values: dict[str, Any] = {}
        for name, value in table.items():
            problem = _limit_problem(name, value)
            if problem is not None:
                self.fail(f"limits.{name}", problem)
            values[name] = (
                float(value) if name in ("rate", "failure_threshold", "timeout") else value
            )
        return Limits(**values)


# --- helpers ------------------------------------------------------------------------------


def _input_columns(spec: InputSpec) -> frozenset[str] | None:
    """The columns of the input's first row; ``None`` for stdin, which cannot be peeked."""
    if spec.path == "-":
        return None
    if spec.path is None:
        return frozenset()
    rows = read_source(spec.path, spec.key)
    with contextlib.suppress(InputError), contextlib.closing(rows):
        for row in rows:
            return frozenset(row.fields)
    return frozenset()


def _endpoint_problem(url: str) -> str | None:
    if url.startswith(("http://", "https://")) and len(url) > len("https://"):
        return None
    return (
        f"must start with http:// or https://, got {_show(url)}. "
        'HINT: e.g. endpoint_url = "http://127.0.0.1:8080"'
    )


def _is_table(value: object) -> bool:
    """Whether *value* came from ``[name]`` or ``[[name]]``."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) for item in value)
    return isinstance(value, dict)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _resolve(base_dir: str, path: str | None) -> str | None:
    """*path* as written, relative to *base_dir* unless absolute; ``"-"`` is kept."""
    if path is None or path == "-":
        return path
    path = os.path.expanduser(path)
    if os.path.isabs(path) or not base_dir:
        return path
    return os.path.join(base_dir, path)


def _adhoc_name(
    action: str,
    spec: InputSpec,
    account_id: str | None,
    account_name: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    if spec.path == "-":
        return f"{action}-stdin"
    if spec.path is not None:
        return f"{action}-{os.path.splitext(os.path.basename(spec.path))[0]}"
    # No file to name it after: name the account, and tell queries and parameters apart.
    account = account_id or re.sub(r"[^A-Za-z0-9]+", "-", account_name or "account").strip("-")
    extra = repr((sorted((spec.query or {}).items()), sorted((params or {}).items())))
    return f"{action}-{account}-{hashlib.sha256(extra.encode()).hexdigest()[:8]}"


def _locate(lines: Sequence[str], dotted: str) -> int | None:
    """The line of *dotted* in a TOML text, else of its nearest enclosing table or key."""
    wanted = tuple(dotted.split("."))
    table: tuple[str, ...] = ()
    best: tuple[int, int] | None = None  # (depth matched, line)
    for number, line in enumerate(lines, 1):
        header = _TABLE_HEADER.match(line)
        if header is not None:
            table = _split_key(header.group(1))
            found = table
        else:
            assignment = _ASSIGNMENT.match(line)
            if assignment is None:
                continue
            found = table + _split_key(assignment.group(1))
        if found == wanted:
            return number
        depth = len(found)
        if wanted[:depth] == found and (best is None or depth > best[0]):
            best = (depth, number)
    return best[1] if best is not None else None


_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(
    r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def _show(value: object) -> str:
    """A value as TOML would spell it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)
