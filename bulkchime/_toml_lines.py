"""Lines of a TOML job file: where a dotted field is written, and where the syntax broke.

Every :class:`~bulkchime.errors.InputError` about a job file names a line; these find it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence

from bulkchime.errors import InputError

__all__ = ["locate", "toml_error"]

#: Where ``tomllib`` says the syntax broke, at the end of its message.
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
#: A table header, ``[name]`` or ``[[name]]``, and a ``key = value`` line.
_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(
    r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def toml_error(source: str, text: str, exc: tomllib.TOMLDecodeError) -> InputError:
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


def locate(lines: Sequence[str], dotted: str) -> int | None:
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


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))
