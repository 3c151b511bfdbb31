"""The failure threshold: a job that is failing wholesale stops (exit 3) instead of
failing every item one by one, and its checkpoint resumes once the job is fixed."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bulkchime.emulator import RunningEmulator

from .conftest import CliResult, read_report, run_cli, write_csv

#: Users in the job; 90% of them do not exist.
ITEMS = 2000
REAL = 200


def _args(emulator: RunningEmulator, tmp_path: Path) -> list[str]:
    return [
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "t.ckpt.sqlite"),
        "--report",
        str(tmp_path / "t.report.jsonl"),
        "--log-format",
        "json",
        "--rate",
        "500",
        "--concurrency",
        "4",
    ]


def _mostly_missing_users(emulator: RunningEmulator, tmp_path: Path) -> tuple[Path, str]:
    """A CSV of 2,000 user ids of the first account: 200 real (all Basic), 1,800 unknown."""
    account = emulator.state.account_ids()[0]
    real = emulator.state.users(account)[:REAL]
    for user in real:
        user.license_type = "Basic"
    chance = random.Random(5)
    ids = [u.user_id for u in real]
    ids += [str(uuid.UUID(int=chance.getrandbits(128), version=4)) for _ in range(ITEMS - REAL)]
    chance.shuffle(ids)
    return write_csv(tmp_path / "users.csv", "user_id", ids), account


def _counts(tmp_path: Path) -> Counter[str]:
    return Counter(r["status"] for r in read_report(tmp_path / "t.report.jsonl"))


def _assert_aborted_early(result: CliResult, emulator: RunningEmulator, tmp_path: Path) -> None:
    output = result.stdout + result.stderr
    assert result.exit_code == 3, output
    assert "Traceback" not in output
    assert "failure_threshold" in output
    sent = emulator.stats()["requests"]["BatchUpdateUser"]
    assert sent <= 12, sent  # of the 100 batches the whole job needs
    counts = _counts(tmp_path)
    assert sum(counts.values()) == ITEMS  # every item is in the report...
    assert counts["pending"] >= ITEMS - 12 * 20  # ...and most were never sent
    assert set(counts) <= {"succeeded", "failed", "pending"}


def test_threshold_aborts_a_job_of_missing_users_and_resumes(
    emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=REAL)
    source, account = _mostly_missing_users(emulator, tmp_path)
    command = [
        "update-license",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--license",
        "Pro",
        *_args(emulator, tmp_path),
    ]

    result = run_cli([*command, "--failure-threshold", "0.05"])

    _assert_aborted_early(result, emulator, tmp_path)
    failed = [r for r in read_report(tmp_path / "t.report.jsonl") if r["status"] == "failed"]
    assert failed and {r["error_code"] for r in failed} == {"NotFound"}
    status = run_cli(["status", str(tmp_path / "t.ckpt.sqlite")])
    assert status.exit_code == 0 and "pending" in status.stdout

    # Resumed without the threshold (the operator accepts the failures): every item ends.
    resumed = run_cli(command)

    assert resumed.exit_code == 1, resumed.stdout + resumed.stderr
    counts = _counts(tmp_path)
    assert counts == {"succeeded": REAL, "failed": ITEMS - REAL}
    assert all(u.license_type == "Pro" for u in emulator.state.users(account))
    effects = emulator.stats()["effects"]["BatchUpdateUser"]
    assert effects["distinct"] == REAL


def test_threshold_from_the_job_file(
    emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=REAL)
    source, account = _mostly_missing_users(emulator, tmp_path)
    job = tmp_path / "migration.toml"
    job.write_text(
        f'action = "update-license"\naccount_id = "{account}"\n\n'
        f'[input]\npath = "{source.name}"\nkey = "user_id"\n\n'
        '[params]\nlicense = "Pro"\n\n'
        "[limits]\nfailure_threshold = 0.05\n"
    )

    result = run_cli(["run", str(job), *_args(emulator, tmp_path)])

    _assert_aborted_early(result, emulator, tmp_path)


def test_threshold_aborts_a_job_aimed_at_the_wrong_account(
    emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=2, users_per_account=150)
    right, wrong = emulator.state.account_ids()
    emails = [u.primary_email for u in emulator.state.users(right)]
    source = write_csv(tmp_path / "users.csv", "email", emails)

    result = run_cli(
        [
            "update-license",
            "--account",
            wrong,  # the users are in the other account
            "--input",
            str(source),
            "--license",
            "Pro",
            "--failure-threshold",
            "0.05",
            *_args(emulator, tmp_path),
        ]
    )

    assert emulator.stats()["requests"]["BatchUpdateUser"] == 0
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "failure_threshold" in result.stdout + result.stderr
