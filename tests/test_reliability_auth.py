"""Credentials refused: the job stops at once (exit 3), marks nothing done, and resumes.

A 403 that belongs to one account of a multi-account job is not a credentials
problem: that account's items fail with the service's code, the others go on (exit 1).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import CliResult, read_report, run_cli, write_csv

#: What the CLI must tell an operator to check when the service refuses the credentials.
HINTS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _args(emulator: RunningEmulator, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "auth.ckpt.sqlite"),
        "--report",
        str(tmp_path / "auth.report.jsonl"),
        "--log-format",
        "json",
        *extra,
    ]


def _migration(emulator: RunningEmulator, tmp_path: Path, users: int) -> tuple[list[str], str]:
    """``update-license`` of the first *users* users of account 1 to Pro (all Basic now)."""
    account = emulator.state.account_ids()[0]
    targets = emulator.state.users(account)[:users]
    for user in targets:
        user.license_type = "Basic"
    source = write_csv(tmp_path / "users.csv", "user_id", [u.user_id for u in targets])
    args = [
        "update-license",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--license",
        "Pro",
    ]
    return args, account


def _timed(args: list[str]) -> tuple[CliResult, float]:
    started = time.monotonic()
    result = run_cli(args)
    return result, time.monotonic() - started


def _assert_aborted_on_auth(result: CliResult, seconds: float, *expect: str) -> None:
    output = result.stdout + result.stderr
    assert result.exit_code == 3, output
    assert "Traceback" not in output
    assert seconds < 10, seconds  # no retrying of refused credentials
    assert "authentication failed" in output
    for fragment in (*HINTS, *expect):
        assert fragment in output, fragment


def _statuses(tmp_path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in read_report(tmp_path / "auth.report.jsonl"):
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return counts


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong-secret"}, "signature we calculated does not match"),
        ({"AWS_ACCESS_KEY_ID": "AKIDNOTKNOWN"}, "unknown access key id"),
        ({"AWS_SESSION_TOKEN": "tok-expired"}, "security token included in the request is expired"),
    ],
    ids=["wrong-secret", "unknown-key-id", "expired-session-token"],
)
def test_refused_credentials_abort_at_once_and_resume_when_fixed(
    env: dict[str, str],
    expect: str,
    emulator_factory: Callable[..., RunningEmulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = emulator_factory(session_tokens=("tok-live",))
    args, account = _migration(emulator, tmp_path, 60)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result, seconds = _timed([*args, *_args(emulator, tmp_path)])

    _assert_aborted_on_auth(result, seconds, expect)
    assert _statuses(tmp_path) == {"pending": 60}  # nothing marked done, nothing failed
    stats = emulator.stats()
    assert stats["requests"]["BatchUpdateUser"] == 0
    assert all(u.license_type == "Basic" for u in emulator.state.users(account)[:60])

    # The operator fixes the credentials and runs the same command again.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok-live")
    resumed = run_cli([*args, *_args(emulator, tmp_path)])

    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    assert _statuses(tmp_path) == {"succeeded": 60}
    assert all(u.license_type == "Pro" for u in emulator.state.users(account)[:60])


def test_missing_credentials_abort_before_any_request(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args, _ = _migration(emulator, tmp_path, 10)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result, seconds = _timed([*args, *_args(emulator, tmp_path)])

    assert result.exit_code == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "no AWS credentials" in result.stdout + result.stderr
    assert sum(emulator.stats()["requests"].values()) == 0


@pytest.fixture
def expire_token_after() -> Iterator[Callable[[RunningEmulator, str, int, str], None]]:
    """Rotate the emulator's session token once *operation* has been sent *count* times."""
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def start(emulator: RunningEmulator, operation: str, count: int, new_token: str) -> None:
        def watch() -> None:
            while not stop.is_set():
                if emulator.stats()["requests"][operation] >= count:
                    emulator.configure(session_tokens=[new_token])
                    return
                time.sleep(0.005)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def test_a_session_token_expiring_mid_run_aborts_and_resumes(
    emulator_factory: Callable[..., RunningEmulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    expire_token_after: Callable[[RunningEmulator, str, int, str], None],
) -> None:
    emulator = emulator_factory(
        accounts=1, users_per_account=400, session_tokens=("tok-morning",), latency_ms=10.0
    )
    args, account = _migration(emulator, tmp_path, 400)  # 20 batches of 20
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok-morning")
    expire_token_after(emulator, "BatchUpdateUser", 4, "tok-afternoon")

    result, seconds = _timed([*args, *_args(emulator, tmp_path, "--concurrency", "2")])

    _assert_aborted_on_auth(result, seconds, "security token included in the request is expired")
    statuses = _statuses(tmp_path)
    assert set(statuses) == {"succeeded", "pending"}, statuses  # none failed
    # Two batches at least went through before the token was rotated (two more may have
    # been in flight when it was).
    assert 40 <= statuses["succeeded"] < 400
    report = read_report(tmp_path / "auth.report.jsonl")
    assert len({r["user_id"] for r in report}) == 400  # every user, once
    migrated = {u.user_id for u in emulator.state.users(account) if u.license_type == "Pro"}
    assert {r["user_id"] for r in report if r["status"] == "succeeded"} <= migrated

    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok-afternoon")
    resumed = run_cli([*args, *_args(emulator, tmp_path)])

    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    assert _statuses(tmp_path) == {"succeeded": 400}
    assert all(u.license_type == "Pro" for u in emulator.state.users(account)[:400])


@pytest.mark.parametrize("key", ["user_id", "email"])
def test_a_403_on_one_account_fails_that_account_only(
    key: str, emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=3, users_per_account=40)
    allowed, denied, also_allowed = emulator.state.account_ids()
    emulator.configure(forbidden_accounts=[denied])
    rows: list[str] = []
    for account in (allowed, denied, also_allowed):
        for user in emulator.state.users(account)[:25]:
            user.license_type = "Basic"
            rows.append(f"{user.user_id if key == 'user_id' else user.primary_email},{account}")
    source = write_csv(tmp_path / "accounts.csv", f"{key},account_id", rows)

    result = run_cli(
        [
            "update-license",
            "--input",
            str(source),
            "--key",
            key,
            "--license",
            "Pro",
            *_args(emulator, tmp_path),
        ]
    )

    output = result.stdout + result.stderr
    assert result.exit_code == 1, output  # some items failed; the job was not aborted
    assert "Traceback" not in output
    report = read_report(tmp_path / "auth.report.jsonl")
    assert len(report) == 75
    for record in report:
        if record["account_id"] == denied:
            assert record["status"] == "failed", record
            assert "Forbidden" in record["error_code"]
            assert "not authorized to perform" in record["message"]
        else:
            assert record["status"] == "succeeded", record
    for account in (allowed, also_allowed):
        assert all(u.license_type == "Pro" for u in emulator.state.users(account)[:25])
    assert all(u.license_type == "Basic" for u in emulator.state.users(denied)[:25])
    assert emulator.stats()["effects"]["BatchUpdateUser"]["distinct"] == 50
