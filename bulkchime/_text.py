"""How values are spelled in messages, shared by the job checks, the input reader, the plan
and the status."""

from __future__ import annotations

from bulkchime.constants import COMMAND_LINE

__all__ = ["count", "field_name", "show"]

#: Strings longer than this are cut short (with ``...``) in messages.
_SHOWN_MAX = 60

#: Job-file fields and the command-line options that set them.
_OPTIONS = {
    "account_id": "--account",
    "account_name": "--account-name",
    "input.path": "--input",
    "input.key": "--key",
    "input.column": "--key-column",
    "input.query": "--where",
}


def show(value: object) -> str:
    """*value* as TOML would spell it, for messages: strings quoted and cut short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOWN_MAX else value[: _SHOWN_MAX - 3] + "...")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1 batch``, ``3 batches`` (with *plural* given)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def field_name(source: str, dotted: str) -> str:
    """How a job's *dotted* field is written where the job came from: the job file's own
    name (``params.license``), or the option of a command (``--license``)."""
    if source != COMMAND_LINE:
        return dotted
    if dotted in _OPTIONS:
        return _OPTIONS[dotted]
    if dotted.startswith("input.query."):
        return "--where " + dotted.removeprefix("input.query.")
    return "--" + dotted.removeprefix("params.").replace("_", "-")
