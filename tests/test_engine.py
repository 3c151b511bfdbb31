"""The engine end to end: the CLI against the emulator over real HTTP."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from bulkchime.emulator import RunningEmulator

from .conftest import mutations, read_report, run_cli, write_csv


def _account(emulator: RunningEmulator, index: int = 0) -> str:
    return emulator.state.account_ids()[index]


def _common(emulator: RunningEmulator, tmp_path: Path, name: str) -> list[str]:
    return [
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / f"{name}.ckpt.sqlite"),
        "--report",
        str(tmp_path / f"{name}.report.jsonl"),
        "--log-format",
        "json",
    ]


def test_license_migration_under_faults_moves_every_user(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(
        accounts=1,
        users_per_account=3000,
        rate=60.0,
        burst=10,
        error_rate=0.05,
        user_error_rate=0.02,
        seed=7,
    )
    account = _account(emulator)
    users = emulator.state.users(account)
    source = write_csv(tmp_path / "users.csv", "email", [u.primary_email for u in users])

    result = run_cli(
        [
            "update-license",
            "--account",
            account,
            "--input",
            str(source),
            "--license",
            "Pro",
            "--rate",
            "100",
            "--concurrency",
            "16",
            *_common(emulator, tmp_path, "mig"),
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    assert all(u.license_type == "Pro" for u in emulator.state.users(account))
    report = read_report(tmp_path / "mig.report.jsonl")
    assert len(report) == 3000
    assert {r["status"] for r in report} == {"succeeded"}
    assert {r["email"] for r in report} == {u.primary_email for u in users}
    stats = emulator.stats()
    assert stats["faults"] > 0 and stats["throttled"] > 0  # the faults really happened
    assert "3000 succeeded" in result.stdout
    assert "throttled" in result.stdout


def test_suspend_then_unsuspend_by_user_id(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator)
    targets = [u for u in emulator.state.users(account) if u.registration_status == "Registered"][
        :60
    ]
    source = write_csv(tmp_path / "leavers.csv", "user_id", [u.user_id for u in targets])

    result = run_cli(
        [
            "suspend",
            "--account",
            account,
            "--input",
            str(source),
            "--key",
            "user_id",
            *_common(emulator, tmp_path, "suspend"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert all(
        emulator.state.get_user(account, u.user_id).registration_status == "Suspended"  # type: ignore[union-attr]
        for u in targets
    )
    assert emulator.stats()["requests"]["BatchSuspendUser"] == 2  # 50 + 10

    result = run_cli(
        [
            "unsuspend",
            "--account",
            account,
            "--input",
            str(source),
            "--key",
            "user_id",
            *_common(emulator, tmp_path, "unsuspend"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert all(
        emulator.state.get_user(account, u.user_id).registration_status == "Registered"  # type: ignore[union-attr]
        for u in targets
    )


def test_unknown_email_is_a_failed_row_not_a_crash(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = _account(emulator)
    known = [u.primary_email for u in emulator.state.users(account)[:3]]
    source = write_csv(tmp_path / "u.csv", "email", [*known, "nobody@nowhere.example.com"])

    result = run_cli(
        ["logout", "--account", account, "--input", str(source), *_common(emulator, tmp_path, "lo")]
    )

    assert result.exit_code == 1
    report = {r["email"]: r for r in read_report(tmp_path / "lo.report.jsonl")}
    assert report["nobody@nowhere.example.com"]["status"] == "failed"
    assert report["nobody@nowhere.example.com"]["error_code"] == "NotFound"
    assert all(report[email]["status"] == "succeeded" for email in known)
    assert emulator.stats()["effects"]["LogoutUser"]["total"] == 3


def test_rejected_and_duplicate_rows_are_reported_and_sent_once(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = _account(emulator)
    emails = [u.primary_email for u in emulator.state.users(account)[:4]]
    rows = [
        emails[0],
        emails[1],
        f"  {emails[0].upper()} ",
        "not-an-email",
        "",
        emails[2],
        emails[3],
    ]
    source = write_csv(tmp_path / "u.csv", "email", rows)

    result = run_cli(
        [
            "update-license",
            "--account",
            account,
            "--input",
            str(source),
            "--license",
            "Plus",
            *_common(emulator, tmp_path, "dup"),
        ]
    )

    assert result.exit_code == 1  # a rejected row is not a success
    report = read_report(tmp_path / "dup.report.jsonl")
    by_line = {r["line"]: r for r in report}
    assert len(report) == 6  # the blank line is not a row
    assert by_line[4]["status"] == "skipped" and "line 2" in by_line[4]["message"]
    assert by_line[5]["status"] == "rejected" and "malformed email" in by_line[5]["message"]
    assert sum(r["status"] == "succeeded" for r in report) == 4
    effects = emulator.stats()["effects"]["BatchUpdateUser"]
    assert effects == {"total": 4, "distinct": 4}


def test_invite_into_a_team_account_once_each(emulator: RunningEmulator, tmp_path: Path) -> None:
    created = run_cli(
        [
            "create-account",
            "--input",
            str(write_csv(tmp_path / "a.csv", "name", ["Onboarding Team"])),
            *_common(emulator, tmp_path, "create"),
        ]
    )
    assert created.exit_code == 0, created.stdout + created.stderr
    team = emulator.state.find_accounts_by_name("Onboarding Team")
    assert len(team) == 1 and team[0].account_type == "Team"
    emails = [f"new{i}@joiners.example.com" for i in range(120)]
    source = write_csv(tmp_path / "joiners.csv", "email", emails)

    result = run_cli(
        [
            "invite",
            "--account",
            team[0].account_id,
            "--input",
            str(source),
            *_common(emulator, tmp_path, "invite"),
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    invites = emulator.stats()["effects"]["InviteUsers"]
    assert invites == {"total": 120, "distinct": 120}
    assert emulator.stats()["requests"]["InviteUsers"] == 3  # 50 + 50 + 20
    members = {u.primary_email for u in emulator.state.users(team[0].account_id)}
    assert members == set(emails)


def test_reset_pin_never_writes_the_pin(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator)
    users = emulator.state.users(account)[:5]
    source = write_csv(tmp_path / "u.csv", "user_id", [u.user_id for u in users])

    result = run_cli(
        [
            "reset-pin",
            "--account",
            account,
            "--input",
            str(source),
            "--key",
            "user_id",
            *_common(emulator, tmp_path, "pin"),
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    assert emulator.stats()["effects"]["ResetPersonalPIN"] == {"total": 5, "distinct": 5}
    pins = [emulator.state.get_user(account, u.user_id).personal_pin for u in users]  # type: ignore[union-attr]
    assert all(pins)
    artefacts = "".join(
        p.read_bytes().decode(errors="replace") for p in tmp_path.iterdir() if p.is_file()
    )
    assert not any(pin in artefacts for pin in pins if pin)


def test_export_users_writes_every_user_to_csv(emulator_factory: Any, tmp_path: Path) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=450)
    account = _account(emulator)
    report = tmp_path / "export.csv"

    result = run_cli(
        [
            "export-users",
            "--account",
            account,
            "--endpoint-url",
            emulator.url,
            "--checkpoint",
            str(tmp_path / "e.ckpt.sqlite"),
            "--report",
            str(report),
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    with report.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 450
    assert {r["user_id"] for r in rows} == {u.user_id for u in emulator.state.users(account)}
    assert all(r["result_license_type"] for r in rows)
    assert emulator.stats()["requests"]["ListUsers"] == 3  # pages of 200
    assert mutations(emulator.stats()) == 0


def test_query_selects_users_by_license(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator)
    basic = {u.user_id for u in emulator.state.users(account) if u.license_type == "Basic"}
    assert basic

    result = run_cli(
        [
            "update-license",
            "--account",
            account,
            "--where",
            "license",
            "Basic",
            "--license",
            "Pro",
            *_common(emulator, tmp_path, "q"),
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    assert not any(u.license_type == "Basic" for u in emulator.state.users(account))
    assert emulator.stats()["effects"]["BatchUpdateUser"]["distinct"] == len(basic)


def test_account_operations(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator, 1)
    renames = tmp_path / "renames.csv"
    renames.write_text(f"account_id,name\n{account},Renamed Corp\n")
    result = run_cli(
        [
            "update-account",
            "--input",
            str(renames),
            "--key",
            "account_id",
            *_common(emulator, tmp_path, "rename"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert emulator.state.get_account(account).name == "Renamed Corp"  # type: ignore[union-attr]

    result = run_cli(
        [
            "update-settings",
            "--account",
            account,
            "--enable-dial-out",
            "--disable-remote-control",
            *_common(emulator, tmp_path, "settings"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    settings = emulator.state.settings(account)
    assert settings is not None and settings.enable_dial_out and settings.disable_remote_control

    result = run_cli(["get-settings", "--account", account, *_common(emulator, tmp_path, "get")])
    assert result.exit_code == 0
    (record,) = read_report(tmp_path / "get.report.jsonl")
    assert record["result"] == {"DisableRemoteControl": True, "EnableDialOut": True}

    result = run_cli(["delete-account", "--account", account, *_common(emulator, tmp_path, "del")])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert emulator.state.get_account(account) is None


def test_an_unknown_job_account_is_a_job_error(emulator: RunningEmulator, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "u.csv", "user_id", ["a", "b", "c"])
    result = run_cli(
        [
            "suspend",
            "--account",
            "00000000-0000-4000-8000-000000000000",
            "--input",
            str(source),
            "--key",
            "user_id",
            *_common(emulator, tmp_path, "noacct"),
        ]
    )
    assert result.exit_code == 2
    assert "--account: account '00000000-0000-4000-8000-000000000000' does not exist" in (
        result.stderr
    )
    assert mutations(emulator.stats()) == 0


def test_rows_of_an_unknown_account_fail_and_the_others_succeed(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = _account(emulator)
    users = emulator.state.users(account)[:3]
    source = tmp_path / "rows.csv"
    ghost = "00000000-0000-4000-8000-000000000000"
    source.write_text(
        "account_id,user_id\n"
        + "".join(f"{account},{u.user_id}\n" for u in users)
        + f"{ghost},someone\n"
    )
    result = run_cli(
        ["logout", "--input", str(source), "--key", "user_id", *_common(emulator, tmp_path, "rows")]
    )
    assert result.exit_code == 1
    report = {r["user_id"]: r for r in read_report(tmp_path / "rows.report.jsonl")}
    assert report["someone"]["error_code"] == "NotFoundException"
    assert report["someone"]["attempts"] == 0
    assert all(report[u.user_id]["status"] == "succeeded" for u in users)
    assert emulator.stats()["requests"]["LogoutUser"] == 3


def test_wrong_secret_aborts_with_exit_3_and_resumes_after_the_fix(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: Any
) -> None:
    account = _account(emulator)
    source = write_csv(
        tmp_path / "u.csv", "user_id", [u.user_id for u in emulator.state.users(account)[:30]]
    )
    args = [
        "suspend",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        *_common(emulator, tmp_path, "auth"),
    ]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")

    result = run_cli(args)

    assert result.exit_code == 3
    assert "AWS_SECRET_ACCESS_KEY" in result.stdout + result.stderr
    assert emulator.stats()["effects"]["BatchSuspendUser"]["total"] == 0
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    result = run_cli(args)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert emulator.stats()["effects"]["BatchSuspendUser"]["distinct"] == 30


def test_job_error_exits_2_and_sends_nothing(emulator: RunningEmulator, tmp_path: Path) -> None:
    source = tmp_path / "u.csv"
    source.write_text("mail\nx@example.com\n")
    result = run_cli(
        [
            "suspend",
            "--account",
            _account(emulator),
            "--input",
            str(source),
            *_common(emulator, tmp_path, "bad"),
        ]
    )
    assert result.exit_code == 2
    assert "u.csv:1" in result.stderr and "email" in result.stderr
    assert sum(emulator.stats()["requests"].values()) == 0
    assert not (tmp_path / "bad.ckpt.sqlite").exists()


def test_dry_run_plans_and_mutates_nothing(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator)
    emails = [u.primary_email for u in emulator.state.users(account)[:45]]
    source = write_csv(tmp_path / "u.csv", "email", [*emails, "bad-email", "ghost@example.com"])

    result = run_cli(
        [
            "update-license",
            "--account",
            account,
            "--input",
            str(source),
            "--license",
            "Pro",
            "--dry-run",
            *_common(emulator, tmp_path, "plan"),
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first == "plan: 45 items in 3 batches (3 requests)"
    assert "rejected" in result.stdout and "ghost@example.com" in result.stdout
    assert "estimated duration" in result.stdout
    assert mutations(emulator.stats()) == 0
    assert not (tmp_path / "plan.ckpt.sqlite").exists()


def test_rerun_of_a_finished_job_sends_nothing_again(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = _account(emulator)
    source = write_csv(
        tmp_path / "u.csv", "user_id", [u.user_id for u in emulator.state.users(account)[:20]]
    )
    args = [
        "logout",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        *_common(emulator, tmp_path, "again"),
    ]
    assert run_cli(args).exit_code == 0
    assert run_cli(args).exit_code == 0
    assert emulator.stats()["effects"]["LogoutUser"]["total"] == 20
    report = read_report(tmp_path / "again.report.jsonl")
    assert len(report) == 20 and all(r["attempts"] == 1 for r in report)


def test_multi_phase_offboarding_job_file(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator)
    leavers = [u for u in emulator.state.users(account) if u.registration_status == "Registered"][
        :7
    ]
    write_csv(
        tmp_path / "leavers.csv", "email", [u.primary_email for u in leavers] + ["gone@example.com"]
    )
    job = tmp_path / "offboard.toml"
    job.write_text(
        f'action = ["logout", "suspend"]\naccount_id = "{account}"\n'
        '[input]\npath = "leavers.csv"\nkey = "email"\n'
        f'[aws]\nendpoint_url = "{emulator.url}"\n'
    )

    result = run_cli(["run", str(job), "--log-format", "json"])

    assert result.exit_code == 1  # gone@example.com does not exist
    report = read_report(tmp_path / "offboard.report.jsonl")
    assert len(report) == 16  # 8 items x 2 phases
    ghost = [r for r in report if r["email"] == "gone@example.com"]
    assert [r["status"] for r in ghost] == ["failed", "skipped"]
    assert emulator.stats()["effects"]["LogoutUser"]["distinct"] == 7
    assert all(
        emulator.state.get_user(account, u.user_id).registration_status == "Suspended"  # type: ignore[union-attr]
        for u in leavers
    )
    assert (tmp_path / "offboard.ckpt.sqlite").exists()


def test_status_and_report_commands(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator)
    source = write_csv(
        tmp_path / "u.csv", "user_id", [u.user_id for u in emulator.state.users(account)[:10]]
    )
    run_cli(
        [
            "logout",
            "--account",
            account,
            "--input",
            str(source),
            "--key",
            "user_id",
            *_common(emulator, tmp_path, "st"),
        ]
    )
    checkpoint = str(tmp_path / "st.ckpt.sqlite")

    status = run_cli(["status", checkpoint])
    assert status.exit_code == 0
    assert "total: 10" in status.stdout and "succeeded: 10" in status.stdout

    report = run_cli(["report", checkpoint, "--format", "csv"])
    assert report.exit_code == 0
    assert len(report.stdout.strip().splitlines()) == 11
    assert report.stdout.startswith("line,key,action,account_id,user_id,email,status")


def test_a_batch_rejected_whole_is_bisected_to_the_bad_item(
    emulator_factory: Any, tmp_path: Path
) -> None:
    # The emulator answers 400 to a request body over max_body_bytes: one absurd user id
    # poisons the whole batch it is in, and only that one.
    emulator = emulator_factory(max_body_bytes=8192)
    account = _account(emulator)
    users = emulator.state.users(account)[:39]
    poison = "x" * 10_000
    ids = [u.user_id for u in users[:25]] + [poison] + [u.user_id for u in users[25:]]
    source = write_csv(tmp_path / "u.csv", "user_id", ids)

    result = run_cli(
        [
            "update-license",
            "--account",
            account,
            "--input",
            str(source),
            "--key",
            "user_id",
            "--license",
            "ProTrial",
            *_common(emulator, tmp_path, "poison"),
        ]
    )

    assert result.exit_code == 1
    report = {r["user_id"]: r for r in read_report(tmp_path / "poison.report.jsonl")}
    assert report[poison]["status"] == "failed"
    assert report[poison]["error_code"] == "BadRequestException"
    assert all(report[u.user_id]["status"] == "succeeded" for u in users)
    assert all(
        emulator.state.get_user(account, u.user_id).license_type == "ProTrial"  # type: ignore[union-attr]
        for u in users
    )
    # 2 batches of 20; the poisoned one split 10/10, 5/5, 3/2, 2/1, 1/1 down to the item.
    assert emulator.stats()["requests"]["BatchUpdateUser"] <= 2 + 2 * 5


def test_demo_runs_the_sample_migration(tmp_path: Path) -> None:
    result = run_cli(["demo", "--workdir", str(tmp_path / "demo"), "--log-format", "json"])

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "3508 succeeded, 0 failed" in result.stdout
    assert "3508 users changed" in result.stdout
    report = (tmp_path / "demo" / "demo.report.csv").read_text().splitlines()
    assert len(report) == 3509


def test_stdin_input_and_endpoint_from_the_environment(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: Any
) -> None:
    account = _account(emulator)
    ids = [u.user_id for u in emulator.state.users(account)[:5]]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CHIME", emulator.url)
    summary = tmp_path / "summary.json"

    result = run_cli(
        [
            "logout",
            "--account",
            account,
            "--input",
            "-",
            "--key",
            "user_id",
            "--checkpoint",
            str(tmp_path / "in.ckpt.sqlite"),
            "--report",
            str(tmp_path / "r.csv"),
            "--summary-json",
            str(summary),
        ],
        input=("user_id\n" + "\n".join(ids) + "\n").encode(),
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    assert emulator.stats()["effects"]["LogoutUser"]["distinct"] == 5
    assert (tmp_path / "r.csv").read_text().count("succeeded") == 5
    data = json.loads(summary.read_text())
    assert data["exit_code"] == 0 and data["counts"] == {"succeeded": 5}
    assert data["requests"]["LogoutUser"] == 5


def test_invite_into_an_enterprise_account_is_a_job_error(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "j.csv", "email", ["new@joiners.example.com"])
    result = run_cli(
        [
            "invite",
            "--account",
            _account(emulator),
            "--input",
            str(source),
            *_common(emulator, tmp_path, "lwa"),
        ]
    )
    assert result.exit_code == 2
    assert "invite needs a Team account" in result.stderr and "EnterpriseLWA" in result.stderr
    assert mutations(emulator.stats()) == 0


def test_a_job_selects_shared_devices_and_changes_them(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = _account(emulator)
    shared = {u.user_id for u in emulator.state.users(account) if u.user_type == "SharedDevice"}
    assert shared  # the seed makes some users shared devices
    job = tmp_path / "rooms.toml"
    job.write_text(
        f'action = "update-user"\naccount_id = "{account}"\n'
        '[input]\nquery = { user_type = "SharedDevice", registration_status = "Registered" }\n'
        '[params]\nuser_type = "PrivateUser"\nlicense = "Basic"\n'
    )
    selected = {
        u.user_id
        for u in emulator.state.users(account)
        if u.user_id in shared and u.registration_status == "Registered"
    }

    result = run_cli(["run", str(job), *_common(emulator, tmp_path, "rooms")])

    assert result.exit_code == 0, result.stdout + result.stderr
    report = read_report(tmp_path / "rooms.report.jsonl")
    assert {r["user_id"] for r in report} == selected
    assert {r["status"] for r in report} == {"succeeded"}
    assert all(r["result"] == {"LicenseType": "Basic", "UserType": "PrivateUser"} for r in report)
    for user_id in selected:
        user = emulator.state.get_user(account, user_id)
        assert user is not None and (user.user_type, user.license_type) == ("PrivateUser", "Basic")
    assert emulator.stats()["effects"]["UpdateUser"] == {
        "total": len(selected),
        "distinct": len(selected),
    }

    # The same from the command line: --where user_type, --user-type.
    result = run_cli(
        [
            "update-user",
            "--account",
            account,
            "--where",
            "user_type",
            "PrivateUser",
            "--where",
            "license",
            "ProTrial",
            "--user-type",
            "SharedDevice",
            *_common(emulator, tmp_path, "back"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    trials = [u for u in emulator.state.users(account) if u.license_type == "ProTrial"]
    assert trials and all(u.user_type == "SharedDevice" for u in trials)


def test_update_account_sets_the_default_license(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = _account(emulator, 1)
    result = run_cli(
        [
            "update-account",
            "--account",
            account,
            "--default-license",
            "Basic",
            *_common(emulator, tmp_path, "default"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    stored = emulator.state.get_account(account)
    assert stored is not None and (stored.default_license, stored.name) == (
        "Basic",
        "Example Corp 2",
    )
    (record,) = read_report(tmp_path / "default.report.jsonl")
    assert record["result"] == {"Name": "Example Corp 2", "DefaultLicense": "Basic"}

    # A Team account supports Basic and Pro only: the service's refusal is the item's.
    team = tmp_path / "team.csv"
    write_csv(team, "name", ["Rooms Team"])
    created = run_cli(["create-account", "--input", str(team), *_common(emulator, tmp_path, "t")])
    assert created.exit_code == 0, created.stdout + created.stderr
    (team_account,) = emulator.state.find_accounts_by_name("Rooms Team")
    result = run_cli(
        [
            "update-account",
            "--account",
            team_account.account_id,
            "--default-license",
            "Plus",
            *_common(emulator, tmp_path, "plus"),
        ]
    )
    assert result.exit_code == 1, result.stdout + result.stderr
    (record,) = read_report(tmp_path / "plus.report.jsonl")
    assert (record["status"], record["error_code"]) == ("failed", "BadRequestException")
    assert "supported: Basic, Pro" in record["message"]
    assert team_account.default_license == "Pro"
