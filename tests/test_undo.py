"""``bulkchime undo`` and ``bulkchime verify`` against the emulator, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import mutations, read_report, run_cli, write_csv
from .servers import require_postgres, unique_name


def users_state(emulator: RunningEmulator, account_id: str) -> dict[str, tuple[str, str, str]]:
    """Each user's license, registration status and type, by user id."""
    return {
        u.user_id: (u.license_type, u.registration_status, u.user_type)
        for u in emulator.state.users(account_id)
    }


def cli(emulator: RunningEmulator, *args: str) -> Any:
    return run_cli([*args, "--endpoint-url", emulator.url])


def migrate(emulator: RunningEmulator, account: str, checkpoint: Path) -> Any:
    """Migrate the account's Basic users to Pro (selected by a query)."""
    result = cli(emulator, "update-license", "--account", account, "--where", "license", "Basic",
                 "--license", "Pro", "--checkpoint", str(checkpoint))  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def test_undo_of_a_query_selected_migration_restores_every_user(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    before = users_state(emulator, account)
    checkpoint = tmp_path / "mig.ckpt.sqlite"
    migrate(emulator, account, checkpoint)
    migrated = users_state(emulator, account)
    assert migrated != before
    changes = mutations(emulator.stats())

    plan = cli(emulator, "undo", str(checkpoint), "--dry-run")

    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert plan.stdout.startswith("plan: ")
    assert mutations(emulator.stats()) == changes  # a dry run changes nothing
    assert users_state(emulator, account) == migrated

    undone = cli(emulator, "undo", str(checkpoint))

    assert undone.exit_code == 0, undone.stdout + undone.stderr
    assert users_state(emulator, account) == before  # user by user
    report = read_report(tmp_path / "mig.undo.report.jsonl")
    basic = [u for u, (license_type, _, _) in before.items() if license_type == "Basic"]
    assert sorted(r["user_id"] for r in report) == sorted(basic)
    assert {r["status"] for r in report} == {"succeeded"}
    assert (tmp_path / "mig.undo.ckpt.sqlite").exists()

    # Run again: the undo's checkpoint is done; nothing more is sent.
    changes = mutations(emulator.stats())
    again = cli(emulator, "undo", str(checkpoint))
    assert again.exit_code == 0, again.stdout + again.stderr
    assert mutations(emulator.stats()) == changes


def test_undo_of_suspend_unsuspends_only_those_it_suspended(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    before = users_state(emulator, account)
    chosen = list(before)[:30]
    already = [u for u in chosen if before[u][1] == "Suspended"]
    assert already, "the seed has a suspended user among the first 30"
    users = write_csv(tmp_path / "users.csv", "user_id", chosen)
    checkpoint = tmp_path / "off.ckpt.sqlite"
    result = cli(emulator, "suspend", "--account", account, "--input", str(users), "--key",
                 "user_id", "--checkpoint", str(checkpoint))  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr

    undone = cli(emulator, "undo", str(checkpoint))

    assert undone.exit_code == 0, undone.stdout + undone.stderr
    # Unsuspend returns a user to Registered (the service's semantics): the suspension
    # is put back, an Unregistered user's registration cannot be.
    suspended = {u for u, (_, status, _) in before.items() if status == "Suspended"}
    after = users_state(emulator, account)
    assert {u for u, (_, status, _) in after.items() if status == "Suspended"} == suspended
    report = {r["user_id"]: r for r in read_report(tmp_path / "off.undo.report.jsonl")}
    assert {report[u]["status"] for u in already} == {"skipped"}
    assert {report[u]["error_code"] for u in already} == {"Unchanged"}
    assert emulator.stats()["effects"]["BatchUnsuspendUser"]["distinct"] == 30 - len(already)


def test_a_user_changed_since_the_job_is_skipped_with_the_reason(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    checkpoint = tmp_path / "mig.ckpt.sqlite"
    migrate(emulator, account, checkpoint)
    migrated = read_report(tmp_path / "mig.report.jsonl")
    drifted = migrated[0]["user_id"]
    emulator.state.get_user(account, drifted).license_type = "Plus"  # type: ignore[union-attr]

    checked = cli(emulator, "verify", str(checkpoint))

    assert checked.exit_code == 1, checked.stdout + checked.stderr
    assert f"{len(migrated)} succeeded items checked, 1 drifted" in checked.stdout
    (drift,) = read_report(tmp_path / "mig.verify.jsonl")
    assert drift["user_id"] == drifted and drift["status"] == "drifted"
    assert drift["message"] == "LicenseType is now Plus, not the Pro the job set"

    undone = cli(emulator, "undo", str(checkpoint))

    assert undone.exit_code == 0, undone.stdout + undone.stderr
    report = {r["user_id"]: r for r in read_report(tmp_path / "mig.undo.report.jsonl")}
    assert report[drifted]["status"] == "skipped"
    assert report[drifted]["error_code"] == "Changed"
    assert "LicenseType is now Plus, not the Pro the job set" in report[drifted]["message"]
    assert emulator.state.get_user(account, drifted).license_type == "Plus"  # type: ignore[union-attr]
    assert sum(r["status"] == "succeeded" for r in report.values()) == len(migrated) - 1


def test_verify_exits_0_when_nothing_drifted_and_changes_nothing(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    checkpoint = tmp_path / "mig.ckpt.sqlite"
    migrate(emulator, account, checkpoint)
    changes = mutations(emulator.stats())

    checked = cli(emulator, "verify", str(checkpoint), "--output", str(tmp_path / "d.jsonl"))

    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert " 0 drifted" in checked.stdout
    assert (tmp_path / "d.jsonl").read_text() == ""
    assert mutations(emulator.stats()) == changes


def test_undo_of_update_account_puts_the_name_back(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[1]
    name = emulator.state.get_account(account).name  # type: ignore[union-attr]
    checkpoint = tmp_path / "rename.ckpt.sqlite"
    result = cli(emulator, "update-account", "--account", account, "--name", "Renamed Corp",
                 "--checkpoint", str(checkpoint))  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    assert emulator.state.get_account(account).name == "Renamed Corp"  # type: ignore[union-attr]

    undone = cli(emulator, "undo", str(checkpoint))

    assert undone.exit_code == 0, undone.stdout + undone.stderr
    assert emulator.state.get_account(account).name == name  # type: ignore[union-attr]


@pytest.mark.parametrize("action", ["logout", "invite"])
def test_actions_that_cannot_be_undone_exit_2_with_the_reason(
    emulator: RunningEmulator, tmp_path: Path, action: str
) -> None:
    account = emulator.state.account_ids()[0]
    if action == "invite":
        from .conftest import team_account

        account = team_account(emulator, tmp_path)
        users = write_csv(tmp_path / "users.csv", "email", ["new1@example.com"])
        args = ["--input", str(users)]
    else:
        users = write_csv(
            tmp_path / "users.csv", "user_id", list(users_state(emulator, account))[:3]
        )
        args = ["--input", str(users), "--key", "user_id"]
    checkpoint = tmp_path / f"{action}.ckpt.sqlite"
    result = cli(emulator, action, "--account", account, *args, "--checkpoint", str(checkpoint))
    assert result.exit_code == 0, result.stdout + result.stderr
    changes = mutations(emulator.stats())

    refused = cli(emulator, "undo", str(checkpoint))

    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert f"{action} cannot be undone" in refused.stderr
    if action == "invite":
        assert str(tmp_path / "invite.report.jsonl") in refused.stderr
    assert mutations(emulator.stats()) == changes
    assert not (tmp_path / f"{action}.undo.ckpt.sqlite").exists()


def test_undo_and_verify_of_a_postgresql_checkpoint(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = require_postgres()
    monkeypatch.chdir(tmp_path)
    account = emulator.state.account_ids()[0]
    before = users_state(emulator, account)
    job = unique_name("undo")
    url = f"{database}?job={job}"
    migrate(emulator, account, url)  # type: ignore[arg-type]

    checked = cli(emulator, "verify", url)
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    undo_url = f"{database}?job={job}-undo"
    undone = cli(emulator, "undo", url, "--checkpoint", undo_url)

    assert undone.exit_code == 0, undone.stdout + undone.stderr
    assert users_state(emulator, account) == before
    assert cli(emulator, "verify", url).exit_code == 1
