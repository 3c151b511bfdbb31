"""Crash safety: the real CLI in a subprocess, killed at chosen and random instants.

``BULKCHIME_CRASHPOINT`` makes the engine SIGKILL itself right after committing a
batch's intent (before the request goes out) or right after the response came back
(before the outcome is committed): the two instants where a naive tool loses or
repeats work.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import mutations, read_report, run_cli, team_account, write_csv

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BULKCHIME_CRASHPOINT", None)
    env.update(extra)
    return env


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkchime", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _start(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulkchime", *args],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _invites(
    emulator: RunningEmulator, tmp_path: Path, name: str, count: int, *options: str
) -> tuple[str, list[str], list[str]]:
    """A new Team account, *count* new emails, and ``bulkchime invite`` of them into it.

    Files are ``<name>.csv``, ``<name>.ckpt.sqlite`` and ``<name>.report.jsonl``.
    Returns the account id, the emails and the command's arguments.
    """
    account = team_account(emulator, tmp_path)
    emails = [f"{name}{i}@example.org" for i in range(count)]
    source = write_csv(tmp_path / f"{name}.csv", "email", emails)
    args = [
        "invite",
        "--account",
        account,
        "--input",
        str(source),
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / f"{name}.ckpt.sqlite"),
        "--log-format",
        "json",
        *options,
    ]
    return account, emails, args


def test_invites_survive_kills_at_every_instant_and_are_sent_once(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(latency_ms=5.0)
    account, emails, args = _invites(
        emulator, tmp_path, "inv", 1000, "--concurrency", "4", "--rate", "200"
    )

    for crash in (
        "after_intent=1",
        "after_send=1",
        "after_send=2",
        "after_intent=3",
        "after_send=4",
    ):
        killed = _cli(args, BULKCHIME_CRASHPOINT=crash)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    finished = _cli(args)

    assert finished.returncode == 0, finished.stdout + finished.stderr[-2000:]
    effects = emulator.stats()["effects"]["InviteUsers"]
    assert effects == {"total": 1000, "distinct": 1000}
    assert {u.primary_email for u in emulator.state.users(account)} == set(emails)
    report = read_report(tmp_path / "inv.report.jsonl")
    assert len(report) == 1000 and {r["status"] for r in report} == {"succeeded"}
    assert any("already invited" in (r["message"] or "") for r in report)  # after_send kills


def test_license_migration_survives_random_kills(emulator_factory: Any, tmp_path: Path) -> None:
    emulator = emulator_factory(
        accounts=1, users_per_account=3000, latency_ms=15.0, user_error_rate=0.02, seed=3
    )
    account = emulator.state.account_ids()[0]
    users = emulator.state.users(account)
    source = write_csv(tmp_path / "u.csv", "user_id", [u.user_id for u in users])
    args = [
        "update-license",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--license",
        "ProTrial",
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "mig.ckpt.sqlite"),
        "--concurrency",
        "4",
        "--rate",
        "400",
        "--log-format",
        "json",
    ]
    rng = random.Random(11)

    for _ in range(4):
        process = _start(args)
        time.sleep(rng.uniform(0.8, 1.6))
        process.kill()
        process.communicate(timeout=30)
    finished = _cli(args)

    assert finished.returncode == 0, finished.stdout + finished.stderr[-2000:]
    assert all(u.license_type == "ProTrial" for u in emulator.state.users(account))
    report = read_report(tmp_path / "mig.report.jsonl")
    assert len(report) == 3000 and {r["status"] for r in report} == {"succeeded"}
    assert sorted(r["user_id"] for r in report) == sorted(u.user_id for u in users)


def test_sigterm_finishes_in_flight_work_and_resumes(emulator_factory: Any, tmp_path: Path) -> None:
    emulator = emulator_factory(latency_ms=40.0)
    _, _, args = _invites(emulator, tmp_path, "term", 600, "--concurrency", "2")
    checkpoint = tmp_path / "term.ckpt.sqlite"

    process = _start([*args, "--rate", "2", "--burst", "1"])
    _wait_for(lambda: emulator.stats()["effects"]["InviteUsers"]["total"] >= 100)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stdout + stderr[-2000:]
    assert "run the same command again to resume" in stdout
    status = run_cli(["status", str(checkpoint)])
    assert "pending:" in status.stdout and "running: no" in status.stdout
    invited_before = emulator.stats()["effects"]["InviteUsers"]["total"]
    assert 0 < invited_before < 600

    finished = _cli([*args, "--rate", "1000"])

    assert finished.returncode == 0, finished.stdout + finished.stderr[-2000:]
    assert emulator.stats()["effects"]["InviteUsers"] == {"total": 600, "distinct": 600}


def test_a_second_run_on_a_busy_checkpoint_exits_2_and_sends_nothing(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(latency_ms=50.0)
    account = emulator.state.account_ids()[0]
    source = write_csv(
        tmp_path / "u.csv", "user_id", [u.user_id for u in emulator.state.users(account)]
    )
    args = [
        "logout",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "busy.ckpt.sqlite"),
        "--concurrency",
        "1",
        "--rate",
        "25",
        "--log-format",
        "json",
    ]
    first = _start(args)
    try:
        _wait_for(lambda: emulator.stats()["effects"]["LogoutUser"]["total"] > 0)
        second = _cli(args)
        assert second.returncode == 2
        assert f"is in use by pid {first.pid}" in second.stderr
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err[-2000:]
    assert emulator.stats()["effects"]["LogoutUser"] == {"total": 100, "distinct": 100}


def test_changed_input_is_refused_unless_forced(emulator: RunningEmulator, tmp_path: Path) -> None:
    account = emulator.state.account_ids()[0]
    users = emulator.state.users(account)
    source = write_csv(tmp_path / "u.csv", "user_id", [u.user_id for u in users[:10]])
    args = [
        "logout",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "c.ckpt.sqlite"),
    ]
    assert run_cli(args).exit_code == 0
    write_csv(source, "user_id", [u.user_id for u in users[:15]])

    refused = run_cli(args)
    assert refused.exit_code == 2
    assert "made for another job" in refused.stderr and "--force" in refused.stderr

    forced = run_cli([*args, "--force"])
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert emulator.stats()["effects"]["LogoutUser"] == {"total": 15, "distinct": 15}


def test_reset_pin_in_flight_at_a_crash_is_not_repeated(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    users = emulator.state.users(account)[:6]
    source = write_csv(tmp_path / "u.csv", "user_id", [u.user_id for u in users])
    args = [
        "reset-pin",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "pin.ckpt.sqlite"),
        "--concurrency",
        "1",
    ]

    killed = _cli(args, BULKCHIME_CRASHPOINT="after_send=2")
    assert killed.returncode == -signal.SIGKILL
    resumed = _cli(args)

    assert resumed.returncode == 1
    report = read_report(tmp_path / "pin.report.jsonl")
    unknown = [r for r in report if r["error_code"] == "OutcomeUnknown"]
    assert len(unknown) == 1 and "--retry-failed" in unknown[0]["message"]
    assert emulator.stats()["effects"]["ResetPersonalPIN"] == {"total": 6, "distinct": 6}

    retried = _cli([*args, "--retry-failed"])
    assert retried.returncode == 0
    assert emulator.stats()["effects"]["ResetPersonalPIN"]["total"] == 7


def test_a_second_signal_exits_at_once_and_the_run_still_resumes_cleanly(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(latency_ms=2000.0)
    _, _, args = _invites(emulator, tmp_path, "twice", 300, "--concurrency", "2")

    def in_flight() -> int:
        stats = emulator.stats()
        return stats["requests"]["InviteUsers"] - stats["effects"]["InviteUsers"]["total"] // 50

    process = _start(args)
    _wait_for(lambda: in_flight() > 0)  # each answer takes 2 s: the signals come well within
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 130, out + err[-3000:]
    assert time.monotonic() - started < 1.5  # did not wait for the in-flight requests
    # The server still applies what it received; the resume then finds those users invited.
    _wait_for(lambda: in_flight() == 0)
    emulator.configure(latency_ms=0.0)
    finished = _cli([*args, "--rate", "1000"])
    assert finished.returncode == 0, finished.stdout + finished.stderr[-2000:]
    assert emulator.stats()["effects"]["InviteUsers"] == {"total": 300, "distinct": 300}


class _CtrlCWhileRead(io.BytesIO):
    """Standard input that presses Ctrl-C (SIGINT to this process) on its first read."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() == 0 and size != 0:  # click probes with read(0)
            os.kill(os.getpid(), signal.SIGINT)
        return super().read(size)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_ctrl_c_while_the_input_is_read_sends_nothing_and_exits_130(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    ids = [u.user_id for u in emulator.state.users(account)]
    stdin = _CtrlCWhileRead(("user_id\n" + "".join(f"{i}\n" for i in ids)).encode())
    args = [
        "suspend",
        "--account",
        account,
        "--input",
        "-",
        "--key",
        "user_id",
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "early.ckpt.sqlite"),
    ]

    before = signal.getsignal(signal.SIGINT)  # not always Python's: `nohup pytest` ignores it
    stopped = run_cli(args, input=stdin)

    assert stopped.exit_code == 130, stopped.stdout + stopped.stderr
    assert "interrupted: run the same command again to resume" in stopped.stdout
    assert f"{len(ids)} pending" in stopped.stdout
    assert mutations(emulator.stats()) == 0
    assert signal.getsignal(signal.SIGINT) is before  # handed back


def test_changes_waiting_for_a_token_are_not_sent_after_sigint(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    source = write_csv(
        tmp_path / "u.csv", "user_id", [u.user_id for u in emulator.state.users(account)]
    )
    args = [
        "logout",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "slow.ckpt.sqlite"),
        "--concurrency",
        "4",
        "--rate",
        "1",
        "--burst",
        "1",
        "--log-format",
        "json",
    ]

    process = _start(args)
    _wait_for(lambda: emulator.stats()["effects"]["LogoutUser"]["total"] >= 2)
    sent_at_signal = emulator.stats()["effects"]["LogoutUser"]["total"]
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)

    assert process.returncode == 130
    assert time.monotonic() - started < 3  # did not wait for tokens at 1 request/s
    assert emulator.stats()["effects"]["LogoutUser"]["total"] <= sent_at_signal + 1
    report = read_report(tmp_path / "slow.report.jsonl")
    sent = sum(r["attempts"] for r in report)
    assert sent == emulator.stats()["effects"]["LogoutUser"]["total"]  # attempts are real sends
