"""Hints for an input whose header lacks the key column: ones that can be followed."""

from __future__ import annotations

from typing import Final

__all__ = ["KEYS", "KEY_WORDS", "missing_column_hint"]

#: The key columns an input can be read by.
KEYS: Final[tuple[str, ...]] = ("email", "user_id", "account_id", "name")
#: Delimiters other than the comma that spreadsheets write, and what they are called.
OTHER_DELIMITERS: Final = {";": "semicolon", "\t": "tab", "|": "pipe"}
#: What each key names, in messages.
KEY_WORDS: Final = {
    "email": "emails",
    "user_id": "user ids",
    "account_id": "account ids",
    "name": "names",
}


def missing_column_hint(header: list[str], key: str, column: str) -> str:
    """What to do when the header has no *column*: a hint that can be followed."""
    for delimiter, called in OTHER_DELIMITERS.items():
        if any(delimiter in cell for cell in header):
            return (
                f"the header looks {called}-separated ({header[0]!r}), and the input is "
                "read as comma-separated CSV; save it as CSV with commas (in a spreadsheet: "
                "'CSV (comma delimited)'), or as JSON Lines (.jsonl)"
            )
    if any("@" in cell for cell in header):
        return (
            "the first line looks like data, not a header; "
            f"add a header line such as {column!r} at the top"
        )
    # A column that seems to hold the key: "mail", "e-mail address", "userid"...
    stem = {"email": "mail", "user_id": "id", "account_id": "id", "name": "name"}[key]
    guesses = [cell for cell in header if stem in cell.replace("_", "")]
    pick = guesses[0] if len(guesses) == 1 else "COLUMN"
    other = {"email": "user_id", "user_id": "email"}.get(key)
    if pick == "COLUMN" and other in header and column == key:  # --key user_id, emails
        return (
            f"the header has {'an' if other == 'email' else 'a'} {other!r} column: --key "
            f"{other} reads the rows by it "
            f'(key = "{other}" under [input] in a job file); or name the column that holds '
            f"the {KEY_WORDS[key]}: --key-column COLUMN"
        )
    return (
        f"name the column that holds the {KEY_WORDS[key]}: --key-column {pick} "
        f'(column = "{pick}" under [input] in a job file), or rename that column to {key!r}'
    )
