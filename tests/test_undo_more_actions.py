"""``bulkchime undo`` of update-user, update-settings and create-account, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bulkchime.emulator import RunningEmulator

from .conftest import mutations, read_report, write_csv
from .test_undo import cli, users_state


def settings_of(emulator: RunningEmulator, account: str) -> tuple[bool, bool]:
    settings = emulator.state.settings(account)
    assert settings is not None
    return (settings.disable_remote_control, settings.enable_dial_out)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def test_undo_of_update_user_puts_back_each_users_license_and_type(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    before = users_state(emulator, account)
    chosen = list(before)[:12]
    assert len({before[u][0] for u in chosen}) > 1, "the seed mixes licenses"
    users = write_csv(tmp_path / "rooms.csv", "user_id", chosen)
    checkpoint = tmp_path / "rooms.ckpt.sqlite"
    ok(cli(emulator, "update-user", "--account", account, "--input", str(users), "--key",
           "user_id", "--license", "Pro", "--user-type", "SharedDevice",
           "--checkpoint", str(checkpoint)))  # fmt: skip
    changed = users_state(emulator, account)
    assert {changed[u][0] for u in chosen} == {"Pro"}
    assert {changed[u][2] for u in chosen} == {"SharedDevice"}

    undone = ok(cli(emulator, "undo", str(checkpoint)))

    assert users_state(emulator, account) == before, undone.stdout  # user by user
    report = read_report(tmp_path / "rooms.undo.report.jsonl")
    assert sorted(r["user_id"] for r in report) == sorted(chosen)
    assert {r["status"] for r in report} == {"succeeded"}


def test_undo_of_update_settings_restores_each_accounts_settings(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    first, second = emulator.state.account_ids()[:2]
    emulator.state.settings(second).enable_dial_out = False  # type: ignore[union-attr]
    before = {a: settings_of(emulator, a) for a in (first, second)}
    accounts = write_csv(tmp_path / "accounts.csv", "account_id", [first, second])
    checkpoint = tmp_path / "lockdown.ckpt.sqlite"
    ok(cli(emulator, "update-settings", "--input", str(accounts), "--disable-remote-control",
           "--enable-dial-out", "--checkpoint", str(checkpoint)))  # fmt: skip
    assert {settings_of(emulator, a) for a in (first, second)} == {(True, True)}

    ok(cli(emulator, "undo", str(checkpoint)))

    assert {a: settings_of(emulator, a) for a in (first, second)} == before


def test_undo_of_create_account_deletes_only_the_accounts_still_empty(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    names = write_csv(tmp_path / "teams.csv", "name", ["Sales Team", "Support Team"])
    checkpoint = tmp_path / "teams.ckpt.sqlite"
    ok(cli(emulator, "create-account", "--input", str(names), "--checkpoint", str(checkpoint)))
    (sales,) = emulator.state.find_accounts_by_name("Sales Team")
    (support,) = emulator.state.find_accounts_by_name("Support Team")
    joiners = write_csv(tmp_path / "joiners.csv", "email", ["new.hire@example.com"])
    ok(cli(emulator, "invite", "--account", support.account_id, "--input", str(joiners),
           "--checkpoint", str(tmp_path / "invite.ckpt.sqlite")))  # fmt: skip
    changes = mutations(emulator.stats())

    plan = ok(cli(emulator, "undo", str(checkpoint), "--dry-run"))
    assert "delete-account" in plan.stdout
    assert mutations(emulator.stats()) == changes

    ok(cli(emulator, "undo", str(checkpoint)))

    assert emulator.state.find_accounts_by_name("Sales Team") == []
    assert [a.account_id for a in emulator.state.find_accounts_by_name("Support Team")] == [
        support.account_id
    ]
    report = {r["account_id"]: r for r in read_report(tmp_path / "teams.undo.report.jsonl")}
    assert report[sales.account_id]["status"] == "succeeded"
    kept = report[support.account_id]
    assert (kept["status"], kept["error_code"]) == ("skipped", "NotEmpty")
    assert kept["message"] == "the account has 1 user now; not deleted"
    assert emulator.stats()["effects"]["DeleteAccount"] == {"total": 1, "distinct": 1}
