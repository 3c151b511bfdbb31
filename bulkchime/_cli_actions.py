"""The ad-hoc action commands (``bulkchime suspend ...``): their options, their help, and
the job their options describe."""

from __future__ import annotations

import shlex
import textwrap
from pathlib import PurePath
from typing import Any

import click

from ._input_checks import CHOICE_PARAMS, QUERY_FILTERS
from .actions import ActionSpec, Target
from .actions._help import HELP

__all__ = ["ActionCommand", "action_help", "action_params", "job_document"]

_BOOLEAN_PARAMS = ("disable_remote_control", "enable_dial_out")
_PARAM_HELP = {
    "license": "The license to give every user (or a license column in the input).",
    "user_type": "The user type to give every user (or a user_type column in the input).",
    "name": "The account's new name (or a name column in the input).",
    "default_license": "The account's new default license for new users.",
}


class ActionCommand(click.Command):
    """An action's command, whose help keeps option, file and command names whole: it
    wraps lines between words only, never at a hyphen (``--dry-`` / ``run``)."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the help's paragraphs; one that starts with ``\\b`` is kept as written."""
        formatter.write_paragraph()
        with formatter.indentation():
            indent = " " * formatter.current_indent
            for number, paragraph in enumerate((self.help or "").split("\n\n")):
                if number:
                    formatter.write("\n")
                if paragraph.startswith("\b\n"):
                    formatter.write(textwrap.indent(paragraph[2:], indent) + "\n")
                    continue
                formatter.write(
                    textwrap.fill(
                        " ".join(paragraph.split()),
                        width=max(formatter.width, 40),
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                        break_long_words=False,
                    )
                    + "\n"
                )


def action_help(spec: ActionSpec) -> tuple[str, str]:
    """The ``--help`` text of *spec*'s command, and its line in the list of commands."""
    words = HELP[spec.name]
    item = "user" if spec.target is Target.USER else "name" if spec.keys == ("name",) else "account"
    per_request = (
        f"One {spec.operation} request per {item}."
        if spec.items_per_request == 1
        else f"Up to {spec.items_per_request} {item}s per {spec.operation} request."
    )
    paragraphs = [f"{words.what} {per_request}", "Example:", f"\b\n  {words.example}"]
    paragraphs.append(_items_text(spec) + (f" {words.where}" if words.where else ""))
    paragraphs.append(_checkpoint_text(spec, words.example))
    return "\n\n".join(paragraphs), words.short


def _checkpoint_text(spec: ActionSpec, example: str) -> str:
    """Where the command keeps its progress by default, and how to resume."""
    by_file = f"{spec.name}-<input file stem>.ckpt.sqlite"
    words = shlex.split(example)
    if "--input" in words:
        stem = PurePath(words[words.index("--input") + 1]).stem
        by_file += f" ({spec.name}-{stem}.ckpt.sqlite for the example)"
    by_account = f"{spec.name}-<account>-<hash>.ckpt.sqlite"
    if spec.reads_account:
        where = by_account
    elif spec.keys == ("name",):
        where = by_file
    else:
        other = "--where" if spec.target is Target.USER else "--account and no --input"
        where = f"{by_file}, or {by_account} with {other}"
    return (
        f"Progress is kept in a checkpoint in the working directory: {where}; "
        "--checkpoint PATH puts it elsewhere. Run the same command again to resume it. The "
        "report goes beside it (<checkpoint stem>.report.jsonl) unless --report. Plan first "
        "with --dry-run: it changes nothing, and exits 2 where the run would."
    )


def _items_text(spec: ActionSpec) -> str:
    """Where the command's items come from."""
    if spec.reads_account:
        return "The users are read from the account: --account ID or --account-name NAME."
    if spec.target is Target.ACCOUNT and spec.keys == ("name",):
        return "The names come from --input FILE, a CSV or JSONL file with a name column."
    if spec.target is Target.ACCOUNT:
        return (
            "The accounts are --account ID, or the account_id column of --input FILE "
            "(CSV or JSONL)."
        )
    keys = " or ".join(spec.keys)
    return (
        f"The users come from --input FILE, a CSV or JSONL file (- for stdin) with an {keys} "
        "column (--key-column names a column called otherwise), or from --where FIELD VALUE: "
        "the users of the account that match."
    )


def action_params(spec: ActionSpec) -> list[click.Parameter]:
    """The options of *spec*'s command besides the run options: account, input, params."""
    params: list[click.Parameter] = []
    if spec.keys != ("name",):  # create-account's items are new names, not an account
        params += [
            click.Option(
                ["--account"],
                metavar="ID",
                help="The account to read, by id."
                if spec.reads_account
                else "Account id of every item (rows may carry account_id).",
            ),
            click.Option(
                ["--account-name"],
                metavar="NAME",
                help="Account by its exact name (looked up first).",
            ),
        ]
    if not spec.reads_account:
        params += _input_params(spec)
    if spec.target is Target.USER:
        select = "Select users of the account instead of a file"
        extra = HELP[spec.name].where or ""
        if spec.reads_account:  # the help says it; "instead of a file" would not be true
            select, extra = "Only the users of the account that match", ""
        params.append(
            click.Option(
                ["--where"],
                multiple=True,
                type=(str, str),
                metavar="FIELD VALUE",
                help=f"{select}; FIELD is {', '.join(QUERY_FILTERS)} (repeatable). {extra}",
            )
        )
    for param in spec.params:
        option = "--" + param.replace("_", "-")
        if param in _BOOLEAN_PARAMS:
            params.append(
                click.Option([f"{option}/--no-{option[2:]}"], default=None, help=f"Set {param}.")
            )
        else:
            choices = CHOICE_PARAMS.get(param)
            params.append(
                click.Option(
                    [option],
                    type=click.Choice(choices) if choices else None,
                    help=_PARAM_HELP.get(param, f"The {param} to set."),
                )
            )
    return params


def _input_params(spec: ActionSpec) -> list[click.Parameter]:
    return [
        click.Option(
            ["--input"],
            metavar="FILE",
            help="CSV or JSONL file of items, or - for stdin.",
        ),
        click.Option(
            ["--key"],
            type=click.Choice(list(spec.keys)),
            help=f"What the rows name (default {spec.keys[0]}).",
        ),
        click.Option(
            ["--key-column"],
            metavar="COLUMN",
            help=f"The input's column (JSONL: field) holding the key, when it is not "
            f"called {spec.keys[0]!r}; e.g. --key-column mail.",
        ),
    ]


def job_document(spec: ActionSpec, options: dict[str, Any]) -> dict[str, Any]:
    """The job, shaped like a job file, that an action command's *options* describe.

    Pops the options it uses, so that *options* is left with the run options.
    """
    document: dict[str, Any] = {"action": spec.name}
    account = options.pop("account", None)
    account_name = options.pop("account_name", None)
    if account:
        document["account_id"] = account
    if account_name:
        document["account_name"] = account_name
    input_section: dict[str, Any] = {}
    for option, key in (("input", "path"), ("key", "key"), ("key_column", "column")):
        value = options.pop(option, None)
        if value:
            input_section[key] = value
    where = options.pop("where", ())
    if where:
        input_section["query"] = dict(where)
    if input_section:
        document["input"] = input_section
    params = {param: options.pop(param) for param in spec.params if options.get(param) is not None}
    for param in spec.params:
        options.pop(param, None)
    if params:
        document["params"] = params
    return document
