"""The checks every part of a job document shares, and those of its input and parameters.

:class:`Checks` knows where the document came from: a job file, whose messages name the
line and the dotted field (``params.license``), or a command's options, whose messages
name the options (``--license``) and give hints in command-line words.
:class:`InputChecker` checks where the items come from (a file, a query, the account)
and the parameters the actions take.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

from bulkchime._text import field_name, show
from bulkchime._toml_lines import locate
from bulkchime.actions import ActionSpec, Target
from bulkchime.constants import COMMAND_LINE, LICENSES
from bulkchime.errors import InputError
from bulkchime.job import InputSpec
from bulkchime.lookups import USER_FILTERS, USER_TYPES
from bulkchime.sources import KEYS, read_source

__all__ = ["QUERY_FILTERS", "Checks", "InputChecker", "resolve_path"]

#: ``input.query`` filters and the values each accepts.
QUERY_FILTERS: Final[Mapping[str, tuple[str, ...]]] = {
    name: values for name, (_, values) in USER_FILTERS.items()
}
_BOOLEAN_PARAMS: Final = ("disable_remote_control", "enable_dial_out")
#: Parameters that take one of a few values, and those values.
CHOICE_PARAMS: Final[Mapping[str, tuple[str, ...]]] = {
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
NAME_MAX: Final = 100


class Checks:
    """Where a job document came from, and the checks that every part of it shares."""

    def __init__(self, file: str, lines: Sequence[str]) -> None:
        self.file = file
        self.lines = lines

    @property
    def command_line(self) -> bool:
        """Whether the document was built from a command's options (not a job file)."""
        return self.file == COMMAND_LINE

    def fail(self, field: str, message: str) -> NoReturn:
        """Raise :class:`InputError` at *field*, named as the user wrote it."""
        raise InputError(
            self.file,
            message,
            line=locate(self.lines, field),
            field=field_name(self.file, field),
        )

    def words(self, in_a_file: str, on_the_command_line: str) -> str:
        """The text that speaks the words of where the job came from."""
        return on_the_command_line if self.command_line else in_a_file

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


class InputChecker(Checks):
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
        column = self.text(table, "column", prefix="input")
        if path is None and column is not None:
            self.fail(
                "input.column",
                self.words(
                    "names a column of the input file, but there is none. HINT: add "
                    "input.path, or delete input.column",
                    "names a column of the input file, but there is none. HINT: add --input",
                ),
            )
        if specs[0].reads_account:
            self._reader(specs[0], path, has_account)
        elif path is not None and query_value is not None:
            self.fail(
                "input.query",
                self.words("give input.path or input.query", "give --input or --where")
                + ", not both. HINT: a file names the users; "
                + self.words("a query selects", "--where selects")
                + " them from the account",
            )
        elif path is None and query_value is None:
            self._no_items(specs[0], has_account)
        query = None
        if query_value is not None:
            query = self.query(query_value, specs, has_account)
        return InputSpec(
            path=resolve_path(base_dir, path),
            key=key,
            query=query,
            column=column.lower() if column else None,
        )

    def _reader(self, reader: ActionSpec, path: str | None, has_account: bool) -> None:
        """An action that reads the account takes no file, and needs the account."""
        if path is not None:
            self.fail(
                "input.path",
                f"{reader.name} reads the users from the account, not from a file. "
                + self.words(
                    "HINT: delete input.path; use input.query to select some users",
                    "HINT: leave out --input; use --where FIELD VALUE to select some users",
                ),
            )
        if not has_account:
            self.fail(
                "account_id",
                f"is missing: {reader.name} reads an account. HINT: "
                + self.words(
                    'add account_id or account_name = "..."',
                    'give --account ID or --account-name "NAME"',
                ),
            )

    def _no_items(self, action: ActionSpec, has_account: bool) -> None:
        """Neither a file nor a query: only an account action on one account needs none."""
        if action.target is Target.ACCOUNT:
            if not has_account:
                self.fail(
                    "input.path",
                    f"is missing: {action.name} needs accounts. HINT: "
                    + self.words(
                        "account_id for one account, or an input file with an account_id column",
                        "--account ID for one account, or --input FILE with an account_id column",
                    ),
                )
            return
        keys = " or ".join(action.keys)
        self.fail(
            "input.path",
            self.words(
                'is missing. HINT: name the input file (.csv or .jsonl, or "-" for stdin) '
                "with path under [input], or select users with input.query",
                f"is missing: {action.name} needs the users. HINT: --input FILE (CSV or "
                f"JSONL with an {keys} column, or - for stdin), or --where FIELD VALUE to "
                "select users of the account (--where license Basic)",
            ),
        )

    def key(self, value: object, specs: Sequence[ActionSpec]) -> str:
        if value is None:
            key = specs[0].keys[0]
        elif not isinstance(value, str) or value.strip().lower() not in KEYS:
            hint = (
                ". HINT: input.key says what the rows name; to read the key from a column "
                f'with another name, add column = "{value.strip()}" under [input] and keep '
                f'key = "{specs[0].keys[0]}"'
                if isinstance(value, str) and value.strip()
                else ""
            )
            self.fail("input.key", f"must be one of {', '.join(KEYS)}, got {show(value)}{hint}")
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
                f"least one filter: {', '.join(QUERY_FILTERS)}",
            )
        if not has_account:
            self.fail(
                "input.query",
                "selects users from an account, but no account is given. HINT: "
                + self.words(
                    'add account_id or account_name = "..."',
                    'add --account ID or --account-name "NAME"',
                ),
            )
        query: dict[str, str] = {}
        for name, wanted in value.items():
            dotted = f"input.query.{name}"
            if name not in QUERY_FILTERS:
                self.fail(dotted, f"unknown filter. HINT: filters: {', '.join(QUERY_FILTERS)}")
            query[name] = self.choice(dotted, wanted, QUERY_FILTERS[name])
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
            self._missing_param(spec, group)
        return params

    def _missing_param(self, spec: ActionSpec, group: tuple[str, ...]) -> NoReturn:
        first = group[0]
        values = CHOICE_PARAMS.get(first)
        what = " or a ".join(group) + (f" ({', '.join(values)})" if values else "")
        if self.command_line:  # --license Pro, --name "Example Corp"
            add = " or ".join(
                f"{field_name(self.file, 'params.' + p)} "
                + _PARAM_EXAMPLES.get(p, "...").strip('"' if p in CHOICE_PARAMS else "")
                for p in group
            )
        else:
            add = f"{first} = {_PARAM_EXAMPLES.get(first, '...')} under [params]"
        columns = " or a ".join(repr(p) for p in group)
        self.fail(
            f"params.{first}",
            f"is missing: {spec.name} needs a {what}. HINT: add {add}, or a {columns} column "
            "to the input",
        )

    def param(self, dotted: str, name: str, value: object) -> Any:
        if name in CHOICE_PARAMS:
            return self.choice(dotted, value, CHOICE_PARAMS[name])
        if name in _BOOLEAN_PARAMS:
            if not isinstance(value, bool):
                self.fail(dotted, f"must be true or false, got {show(value)}")
            return value
        if name == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
                self.fail(
                    dotted,
                    f"must be an account name of 1 to {NAME_MAX} characters, got {show(value)}",
                )
            return value.strip()
        return value


def _input_columns(spec: InputSpec) -> frozenset[str] | None:
    """The columns of the input's first row; ``None`` for stdin, which cannot be peeked."""
    if spec.path == "-":
        return None
    if spec.path is None:
        return frozenset()
    rows = read_source(spec.path, spec.key, column=spec.column)
    with contextlib.suppress(InputError), contextlib.closing(rows):
        for row in rows:
            return frozenset(row.fields)
    return frozenset()


def resolve_path(base_dir: str, path: str | None) -> str | None:
    """*path* as written, relative to *base_dir* unless absolute; ``"-"`` and URLs
    (a shared checkpoint's ``postgresql://...``) are kept."""
    if path is None or path == "-" or "://" in path:
        return path
    path = os.path.expanduser(path)
    if os.path.isabs(path) or not base_dir:
        return path
    return os.path.join(base_dir, path)
