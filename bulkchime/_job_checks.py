"""The checks behind :func:`~bulkchime.job.load_job` and :func:`~bulkchime.job.job_from_dict`.

:class:`JobChecker` walks a job document (a job file's TOML, or command-line options
shaped like one) and raises :class:`~bulkchime.errors.InputError` at the first problem,
naming the file, the line where the field is written and the dotted field. It checks the
top-level keys, the sections, the actions and the limits itself, and hands the input and
the actions' parameters to :class:`_InputChecker`.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

from bulkchime._text import show
from bulkchime._toml_lines import locate
from bulkchime.actions import ActionSpec, Target, get_action
from bulkchime.constants import LICENSES
from bulkchime.errors import InputError
from bulkchime.job import InputSpec, JobSpec, Limits, _endpoint_problem, _limit_problem
from bulkchime.lookups import USER_FILTERS, USER_TYPES
from bulkchime.sources import KEYS, read_source

__all__ = ["JobChecker"]

_TOP_KEYS: Final = ("name", "action", "account_id", "account_name", "checkpoint", "report")
_SECTION_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "input": ("path", "key", "query"),
    "params": (),  # checked against the actions' parameters
    "limits": ("rate", "burst", "concurrency", "max_attempts", "failure_threshold", "timeout"),
    "aws": ("region", "endpoint_url", "profile"),
}
#: ``input.query`` filters and the values each accepts.
_QUERY_FILTERS: Final[Mapping[str, tuple[str, ...]]] = {
    name: values for name, (_, values) in USER_FILTERS.items()
}
_BOOLEAN_PARAMS: Final = ("disable_remote_control", "enable_dial_out")
#: Parameters that take one of a few values, and those values.
_CHOICE_PARAMS: Final[Mapping[str, tuple[str, ...]]] = {
    "license": LICENSES,
    "default_license": LICENSES,
    "user_type": USER_TYPES,
}
_PARAM_EXAMPLES: Final[Mapping[str, str]] = {
    "license": '"Pro"',
    "name": '"Example Corp"',
    "default_license": '"Basic"',
    "user_type": '"SharedDevice"',
}
_NAME_MAX = 100


class _Checks:
    """Where a job document came from, and the checks that every part of it shares."""

    def __init__(self, file: str, lines: Sequence[str]) -> None:
        self.file = file
        self.lines = lines

    def fail(self, field: str, message: str) -> NoReturn:
        raise InputError(self.file, message, line=locate(self.lines, field), field=field)

    def text(
        self, table: Mapping[str, Any], key: str, *, prefix: str = "", spaces: bool = True
    ) -> str | None:
        """An optional non-empty string, trimmed."""
        dotted = f"{prefix}.{key}" if prefix else key
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(dotted, f"must be a non-empty string, got {show(value)}")
        value = value.strip()
        if not spaces and re.search(r"\s", value):
            self.fail(dotted, f"{show(value)} cannot contain spaces")
        return value

    def choice(self, dotted: str, value: object, allowed: Sequence[str]) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        message = f"must be one of {', '.join(allowed)}, got {show(value)}"
        if isinstance(value, str):
            same = [item for item in allowed if item.lower() == value.strip().lower()]
            if same:
                message += f". HINT: did you mean {same[0]!r}? Values are case-sensitive"
        self.fail(dotted, message)


class JobChecker(_Checks):
    """Checks one job document and raises :class:`InputError` at the first problem."""

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
        items = _InputChecker(self.file, self.lines)
        input_spec = items.input(sections["input"], specs, has_account, base_dir)
        params = items.params(sections["params"], specs, input_spec)
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
                f'{show(written_name)} cannot name a file. HINT: use e.g. name = "q3-migration"',
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
            self.fail(name, f"must be a table, got {show(value)}. HINT: write it as [{name}]")
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
                f"must be an action name or a non-empty list of them, got {show(value)}",
            )
        specs: list[ActionSpec] = []
        for name in names:
            if not isinstance(name, str):
                self.fail("action", f"must name actions as strings, got {show(name)}")
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


class _InputChecker(_Checks):
    """Checks where a job's items come from, and the parameters its actions take."""

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
            self.fail("input.key", f"must be one of {', '.join(KEYS)}, got {show(value)}")
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
                f'must be a table, got {show(value)}. HINT: query = {{ license = "Basic" }}',
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

    def params(
        self, table: Mapping[str, Any], specs: Sequence[ActionSpec], input_spec: InputSpec
    ) -> dict[str, Any]:
        allowed: list[str] = []
        for spec in specs:
            allowed += [p for p in spec.params if p not in allowed]
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
        # Each required parameter, and each action's one_of_params, must be given.
        groups: list[tuple[ActionSpec, tuple[str, ...]]] = [
            (spec, (name,)) for spec in specs for name in spec.required_params
        ]
        groups += [(spec, spec.one_of_params) for spec in specs if spec.one_of_params]
        missing = [(spec, group) for spec, group in groups if not any(p in params for p in group)]
        columns = _input_columns(input_spec) if missing else frozenset()
        for spec, group in missing:
            if columns is None or any(p in columns for p in group):
                continue  # the rows carry it (stdin's rows are checked one by one)
            first, example = group[0], _PARAM_EXAMPLES.get(group[0], '"..."')
            self.fail(
                f"params.{first}",
                f"is missing: {spec.name} needs a {' or a '.join(group)}. HINT: add {first} = "
                f"{example} under [params], or a {first!r} column to the input",
            )
        return params

    def param(self, dotted: str, name: str, value: object) -> Any:
        if name in _CHOICE_PARAMS:
            return self.choice(dotted, value, _CHOICE_PARAMS[name])
        if name in _BOOLEAN_PARAMS:
            if not isinstance(value, bool):
                self.fail(dotted, f"must be true or false, got {show(value)}")
            return value
        if name == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > _NAME_MAX:
                self.fail(
                    dotted,
                    f"must be an account name of 1 to {_NAME_MAX} characters, got {show(value)}",
                )
            return value.strip()
        return value


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


def _is_table(value: object) -> bool:
    """Whether *value* came from ``[name]`` or ``[[name]]``."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) for item in value)
    return isinstance(value, dict)


def _resolve(base_dir: str, path: str | None) -> str | None:
    """*path* as written, relative to *base_dir* unless absolute; ``"-"`` and URLs
    (a shared checkpoint's ``postgresql://...``) are kept."""
    if path is None or path == "-" or "://" in path:
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
