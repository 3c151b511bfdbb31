"""A leavers list of emails with no account column (issue 13, item 4), through the CLI
against an emulator over HTTP: which way resolution takes, what it costs in read
requests (the emulator's stats), and that every row reaches the right user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bulkchime.emulator import RunningEmulator

from .conftest import read_report, run_cli, write_csv

READ_ONLY = ("ListAccounts", "ListUsers", "GetAccount", "GetUser")
GHOST = "ghost@nowhere.example.com"


def _reads(emulator: RunningEmulator, since: dict[str, int]) -> dict[str, int]:
    """Read-only requests the emulator received since *since* (its ``requests`` then)."""
    now = emulator.stats()["requests"]
    return {op: now[op] - since.get(op, 0) for op in READ_ONLY if now[op] - since.get(op, 0)}


def _run(emulator: RunningEmulator, tmp_path: Path, *args: str) -> tuple[Any, dict[str, int]]:
    since = dict(emulator.stats()["requests"])
    result = run_cli([*args, "--endpoint-url", emulator.url, "--log-format", "json",
                      "--checkpoint", str(tmp_path / "leavers.ckpt.sqlite")])  # fmt: skip
    return result, _reads(emulator, since)


def _events(stderr: str, name: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [event for event in events if event["event"] == name]


def _state(emulator: RunningEmulator) -> dict[str, str]:
    return {
        user.user_id: user.registration_status
        for account in emulator.state.account_ids()
        for user in emulator.state.users(account)
    }


def test_a_leavers_list_across_accounts_is_resolved_by_scanning_them(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=3, users_per_account=250)  # 2 pages an account
    people = [u for a in emulator.state.account_ids() for u in emulator.state.users(a)[::5]]
    emails = [u.primary_email for u in people] + [GHOST]
    leavers = write_csv(tmp_path / "leavers.csv", "email", emails)

    plan, reads = _run(emulator, tmp_path, "logout", "--input", str(leavers), "--dry-run")

    assert plan.exit_code == 0, plan.stdout + plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[0] == "plan: 150 items in 150 batches (150 requests)"
    assert reads == {"ListAccounts": 1, "ListUsers": 6}  # not ~300 look-ups
    assert (
        "resolution: scanned the users of 3 accounts (7 read requests) "
        "instead of ~302 per-email look-ups"
    ) in lines
    assert f"  line {len(emails) + 1}: failed: no account has a user with email {GHOST}" in lines
    (way,) = _events(plan.stderr, "resolve.way")
    assert (way["way"], way["read_requests"]) == ("scan", 7)

    result, reads = _run(emulator, tmp_path, "logout", "--input", str(leavers))

    assert result.exit_code == 1, result.stdout + result.stderr  # the ghost failed
    assert reads == {"ListAccounts": 1, "ListUsers": 6}
    report = read_report(tmp_path / "leavers.report.jsonl")
    done = {(r["account_id"], r["user_id"]) for r in report if r["status"] == "succeeded"}
    assert done == {(u.account_id, u.user_id) for u in people}
    assert emulator.stats()["effects"]["LogoutUser"]["distinct"] == len(people)
    (ghost,) = [r for r in report if r["status"] == "failed"]
    assert (ghost["key"], ghost["error_code"]) == (GHOST, "NotFound")


def test_two_leavers_in_a_large_account_are_looked_up_one_by_one(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=2000)  # 10 pages
    (account,) = emulator.state.account_ids()
    people = emulator.state.users(account)[-2:]
    leavers = write_csv(tmp_path / "leavers.csv", "email", [u.primary_email for u in people])

    plan, reads = _run(emulator, tmp_path, "logout", "--input", str(leavers), "--dry-run")

    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert reads == {"ListAccounts": 2, "ListUsers": 2}  # an account and a user per email
    assert "resolution: per-email look-ups (2 emails, 4 read requests)" in plan.stdout.splitlines()
    (way,) = _events(plan.stderr, "resolve.way")
    assert way["way"] == "per-email"


def test_undo_of_a_suspension_resolved_by_a_scan_restores_every_account(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=3, users_per_account=250)
    before = _state(emulator)
    # Unsuspend returns a user to Registered: an Unregistered one could not be put back.
    every = [u for a in emulator.state.account_ids() for u in emulator.state.users(a)]
    people = [u for u in every if u.registration_status != "Unregistered"][::4]
    assert {before[u.user_id] for u in people} == {"Registered", "Suspended"}
    leavers = write_csv(tmp_path / "leavers.csv", "email", [u.primary_email for u in people])

    result, reads = _run(emulator, tmp_path, "suspend", "--input", str(leavers))

    assert result.exit_code == 0, result.stdout + result.stderr
    assert reads == {"ListAccounts": 1, "ListUsers": 6}
    suspended = _state(emulator)
    assert {suspended[u.user_id] for u in people} == {"Suspended"}
    assert suspended != before

    undone = run_cli(["undo", str(tmp_path / "leavers.ckpt.sqlite"), "--endpoint-url",
                      emulator.url])  # fmt: skip

    assert undone.exit_code == 0, undone.stdout + undone.stderr
    assert _state(emulator) == before  # each user as the scan recorded it
