"""The checks behind :func:`~bulkchime.job.load_job` and :func:`~bulkchime.job.job_from_dict`.

:class:`JobChecker` walks a job document (a job file's TOML, or command-line options
shaped like one) and raises :class:`~bulkchime.errors.InputError` at the first problem,
naming the file, the line where the field is written and the dotted field. It checks the
top-level keys, the sections, the actions and the limits itself, and hands the input and
the actions' parameters to :class:`~bulkchime._input_checks.InputChecker`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bulkchime._input_checks import NAME_MAX, Checks, InputChecker, resolve_path
from bulkchime._text import show
from bulkchime.actions import ActionSpec, get_action
from bulkchime.job import InputSpec, JobSpec, Limits, _endpoint_problem, _limit_problem

__all__ = ["JobChecker"]

_TOP_KEYS: Final = ("name", "action", "account_id", "account_name", "checkpoint", "report")
_SECTION_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "input": ("path", "key", "column", "query"),
    "params": (),  # checked against the actions' parameters
    "limits": ("rate", "burst", "concurrency", "max_attempts", "failure_threshold", "timeout"),
    "aws": ("region", "endpoint_url", "profile"),
}


class JobChecker(Checks):
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
                self.words("give account_id or account_name", "give --account or --account-name")
                + ", not both. HINT: "
                + self.words("delete one of them", "leave one out"),
            )
        if account_name is not None and len(account_name) > NAME_MAX:
            self.fail("account_name", f"is longer than {NAME_MAX} characters")
        has_account = account_id is not None or account_name is not None
        items = InputChecker(self.file, self.lines)
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
            checkpoint=resolve_path(base_dir, checkpoint),
            report=resolve_path(base_dir, report),
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


def _is_table(value: object) -> bool:
    """Whether *value* came from ``[name]`` or ``[[name]]``."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) for item in value)
    return isinstance(value, dict)


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
