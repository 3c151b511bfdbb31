"""How values are spelled in messages, shared by the job checks and the input reader."""

from __future__ import annotations

__all__ = ["show"]

#: Strings longer than this are cut short (with ``...``) in messages.
_SHOWN_MAX = 60


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
