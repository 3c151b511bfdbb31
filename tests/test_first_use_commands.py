"""What a new user hit first (issue 14, items 1-5): dry runs as a CI gate, command-line
words in messages, a missing-column hint that can be followed, each action's --help, and
counts that read as English."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bulkchime.actions import ACTIONS
from bulkchime.emulator import RunningEmulator

from .conftest import mutations, read_report, run_cli, write_csv


def _errors(stderr: str) -> list[str]:
    """The lines a person reads on stderr (the JSON events left out)."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def _corp1_emails(emulator: RunningEmulator, count: int) -> list[str]:
    account = emulator.state.find_accounts_by_name("Example Corp 1")[0].account_id
    return [user.primary_email for user in emulator.state.users(account)[:count]]


# --- 1. a dry run exits 2 where the run would -----------------------------------------------


def test_a_dry_run_for_a_missing_account_exits_2_in_one_line_like_the_run(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    users = write_csv(tmp_path / "users.csv", "email", _corp1_emails(emulator, 50))
    args = ["suspend", "--account-name", "Example Corp 9", "--input", str(users)]
    args += ["--endpoint-url", emulator.url, "--checkpoint", str(tmp_path / "c.ckpt.sqlite")]

    dry = run_cli([*args, "--dry-run"])
    real = run_cli(args)

    assert (dry.exit_code, real.exit_code) == (2, 2)
    assert dry.stdout == ""  # no plan of 50 "failed" lines
    assert (
        _errors(dry.stderr)
        == _errors(real.stderr)
        == [
            "error: <command line>: --account-name: must match exactly one account; "
            "'Example Corp 9' matches none. HINT: check the exact name (case included), or "
            "create the account first with bulkchime create-account"
        ]
    )
    assert mutations(emulator.stats()) == 0
    assert not (tmp_path / "c.ckpt.sqlite").exists()


def test_a_dry_run_of_a_valid_job_still_exits_0_listing_users_not_found(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    emails = [*_corp1_emails(emulator, 2), "nobody@corp1.example.com"]
    users = write_csv(tmp_path / "users.csv", "email", emails)
    result = run_cli(
        ["suspend", "--account-name", "Example Corp 1", "--input", str(users), "--dry-run"]
        + ["--endpoint-url", emulator.url]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "plan: 2 items in 1 batch (1 request)"
    assert "not sent: 1 row (failed 1)" in result.stdout


# --- 2. ad-hoc commands speak command-line words -------------------------------------------


def test_update_license_without_license_names_the_option_and_its_values(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    users = write_csv(tmp_path / "users.csv", "email", _corp1_emails(emulator, 2))
    result = run_cli(
        ["update-license", "--account-name", "Example Corp 1", "--input", str(users)]
        + ["--endpoint-url", emulator.url, "--dry-run"]
    )
    assert result.exit_code == 2
    assert _errors(result.stderr) == [
        "error: <command line>: --license: is missing: update-license needs a license "
        "(Basic, Plus, Pro, ProTrial). HINT: add --license Pro, or a 'license' column to the "
        "input"
    ]
    assert mutations(emulator.stats()) == 0


def test_a_command_without_input_names_input_and_where(emulator: RunningEmulator) -> None:
    result = run_cli(
        ["update-license", "--account-name", "Example Corp 1", "--license", "Pro"]
        + ["--endpoint-url", emulator.url, "--dry-run"]
    )
    assert result.exit_code == 2
    assert _errors(result.stderr) == [
        "error: <command line>: --input: is missing: update-license needs the users. HINT: "
        "--input FILE (CSV or JSONL with an email or user_id column, or - for stdin), or "
        "--where FIELD VALUE to select users of the account (--where license Basic)"
    ]


def test_license_options_list_their_values_and_refuse_others() -> None:
    for command in ("update-license", "update-user", "update-account"):
        help_text = run_cli([command, "--help"]).stdout
        assert re.search(r"--(default-)?license \[Basic\|Plus\|Pro\|ProTrial\]", help_text)
    refused = run_cli(["update-license", "--input", "u.csv", "--license", "pro"])
    assert refused.exit_code == 2
    assert "'pro' is not one of 'Basic', 'Plus', 'Pro', 'ProTrial'" in refused.stderr


# --- 3. a missing-column hint that can be followed ------------------------------------------


def test_the_key_column_hint_is_followed_to_a_successful_run(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    emails = _corp1_emails(emulator, 3)
    users = write_csv(tmp_path / "users.csv", "Mail,Name", [f"{e},x" for e in emails])
    args = ["suspend", "--account-name", "Example Corp 1", "--input", str(users)]
    args += ["--endpoint-url", emulator.url, "--checkpoint", str(tmp_path / "s.ckpt.sqlite")]

    refused = run_cli(args)
    assert refused.exit_code == 2
    (message,) = _errors(refused.stderr)
    hint = re.search(r"HINT: .*?(--key-column \S+)", message)
    assert hint is not None, message

    done = run_cli([*args, *hint.group(1).split()])
    assert done.exit_code == 0, done.stdout + done.stderr
    report = read_report(tmp_path / "s.report.jsonl")
    assert sorted(r["email"] for r in report) == sorted(emails)
    assert emulator.stats()["effects"]["BatchSuspendUser"]["distinct"] == 3


def test_a_job_file_names_the_key_column_with_input_column(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    write_csv(tmp_path / "users.csv", "mail", _corp1_emails(emulator, 2))
    job = tmp_path / "job.toml"
    job.write_text(
        'action = "suspend"\naccount_name = "Example Corp 1"\n'
        '[input]\npath = "users.csv"\nkey = "mail"\n'
    )
    refused = run_cli(["run", str(job), "--dry-run", "--endpoint-url", emulator.url])
    assert refused.exit_code == 2
    (message,) = _errors(refused.stderr)
    assert message.endswith(
        "job.toml:5: input.key: must be one of email, user_id, account_id, name, got 'mail'. "
        "HINT: input.key says what the rows name; to read the key from a column with another "
        'name, add column = "mail" under [input] and keep key = "email"'
    )

    job.write_text(job.read_text().replace('key = "mail"', 'column = "mail"'))
    planned = run_cli(["run", str(job), "--dry-run", "--endpoint-url", emulator.url])
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    assert planned.stdout.splitlines()[0] == "plan: 2 items in 1 batch (1 request)"


def test_a_semicolon_separated_file_gets_a_hint_about_the_delimiter(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("email;name\na@corp1.example.com;A\n")
    result = run_cli(["suspend", "--account", "acc", "--input", str(users)])
    assert result.exit_code == 2
    (message,) = _errors(result.stderr)
    assert "HINT: the header looks semicolon-separated ('email;name')" in message
    assert "save it as CSV with commas" in message


# --- 4. each action's --help says what it does --------------------------------------------


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_action_help_says_what_it_does_with_an_example_and_the_checkpoint(action: str) -> None:
    result = run_cli([action, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert f"{action}: {ACTIONS[action].operation}" not in text  # the old one-liner
    assert "Example: bulkchime " + action in text
    assert "Progress is kept in a checkpoint in the working directory: " + action in text
    assert "Run the same command again to resume it." in text
    example = re.search(r"^ +(bulkchime .*)$", result.stdout, flags=re.MULTILINE)
    assert example is not None
    words = shlex.split(example.group(1))
    assert words[1] == action
    options = [line.split("  ")[1] for line in result.stdout.splitlines() if line[:3] == "  -"]
    listed = {name for line in options for name in re.findall(r"--[a-z][a-z-]*", line)}
    assert {w for w in words if w.startswith("--")} <= listed


def test_suspend_help_names_its_default_checkpoint() -> None:
    text = " ".join(run_cli(["suspend", "--help"]).stdout.split())
    assert 'bulkchime suspend --account-name "Example Corp" --input leavers.csv' in text
    assert "suspend-leavers.ckpt.sqlite for the example" in text


def test_invite_help_says_where_selects_users_who_already_exist() -> None:
    text = " ".join(run_cli(["invite", "--help"]).stdout.split())
    assert "--where selects people who already have a user in the account" in text


def test_the_command_list_says_what_each_action_does() -> None:
    listing = run_cli(["--help"]).stdout
    assert re.search(r"^  suspend\s+Suspend users", listing, flags=re.MULTILINE)
    assert "items per request" not in listing


# --- 5. English counts ---------------------------------------------------------------------


def test_one_item_reads_as_english(emulator: RunningEmulator, tmp_path: Path) -> None:
    users = write_csv(tmp_path / "one.csv", "email", _corp1_emails(emulator, 1))
    common = ["--account-name", "Example Corp 1", "--input", str(users)]
    common += ["--endpoint-url", emulator.url]
    plan = run_cli(["logout", *common, "--dry-run"])
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[0] == "plan: 1 item in 1 batch (1 request)"
    assert re.fullmatch(r"  logout account \S+ \(Example Corp 1\): 1 item, 1 request", lines[2])
    help_text = " ".join(run_cli(["logout", "--help"]).stdout.split())
    assert "One LogoutUser request per user." in help_text
    assert "up to 1 items" not in help_text
