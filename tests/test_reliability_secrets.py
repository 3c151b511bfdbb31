"""Secrets stay secret: no key, secret, session token or PIN in any artefact of a run.

Distinctive values are configured on the emulator and in the environment, runs are made
the ways an operator makes them (JSON and console logs, killed and resumed, refused
credentials), and every artefact is searched byte by byte: stdout, stderr, the report
(JSONL and CSV), the summary, the checkpoint and its write-ahead log. The checkpoint,
its side files and the reports are readable by their owner only, whatever the umask.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import write_csv

pytestmark = pytest.mark.slow

ACCESS_KEY_ID = "AKIAEXAMPLEKEY77Q9Z"
SECRET = "s3cr3t-VALUE-xyz"
SESSION_TOKEN = "tok-SESSION-4a6f-secret"
WRONG_SECRET = "s3cr3t-WRONG-abc"
EXPIRED_TOKEN = "tok-EXPIRED-77e1-secret"
USERS = 40


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``python -m bulkchime ARGS`` with a umask that hides nothing (0)."""
    return subprocess.run(
        [sys.executable, "-m", "bulkchime", *args],
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        umask=0,
    )


def _assert_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"{path.name} is {mode:o}, not 600"


def _assert_no_secrets(name: str, data: bytes, pins: set[str]) -> None:
    for secret in (ACCESS_KEY_ID, SECRET, SESSION_TOKEN, WRONG_SECRET, EXPIRED_TOKEN):
        assert secret.encode() not in data, f"{secret!r} found in {name}"
    for pin in pins:  # ten digits, not part of a longer number
        assert re.search(rb"(?<![0-9])" + pin.encode() + rb"(?![0-9])", data) is None, (
            f"PersonalPIN {pin} found in {name}"
        )


def test_no_secret_or_pin_in_any_artefact_and_files_are_private(
    emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(
        accounts=1,
        users_per_account=USERS,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET,
        session_tokens=(SESSION_TOKEN,),
        latency_ms=5.0,
    )
    account = emulator.state.account_ids()[0]
    users = emulator.state.users(account)
    source = write_csv(tmp_path / "leavers.csv", "email", [u.primary_email for u in users])
    checkpoint = tmp_path / "pins.ckpt.sqlite"
    report = tmp_path / "pins.report.jsonl"
    summary = tmp_path / "pins.summary.json"
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
    }
    command = [
        "reset-pin",
        "--account",
        account,
        "--input",
        str(source),
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(checkpoint),
        "--report",
        str(report),
        "--summary-json",
        str(summary),
        "--concurrency",
        "4",
        "--rate",
        "500",
    ]
    outputs: dict[str, bytes] = {}
    side_files: dict[str, bytes] = {}

    # 1. Killed after the tenth PIN came back: the checkpoint is left with its WAL.
    killed = _run(
        [*command, "--log-format", "json"], {**env, "BULKCHIME_CRASHPOINT": "after_send=10"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    outputs["killed run"] = killed.stdout + killed.stderr
    for suffix in ("-wal", "-shm", ".lock"):
        side = Path(f"{checkpoint}{suffix}")
        assert side.exists(), side
        _assert_private(side)
        side_files[side.name] = side.read_bytes()
    _assert_private(checkpoint)
    side_files["checkpoint after the kill"] = checkpoint.read_bytes()

    # 2. Resumed to the end with console logs, as at a terminal.
    resumed = _run([*command, "--log-format", "console"], env)
    assert resumed.returncode in (0, 1), resumed.stdout + resumed.stderr
    outputs["resumed run"] = resumed.stdout + resumed.stderr

    # 3. The same command with a wrong secret, then with an expired session token.
    wrong = _run(command, {**env, "AWS_SECRET_ACCESS_KEY": WRONG_SECRET})
    expired = _run(command, {**env, "AWS_SESSION_TOKEN": EXPIRED_TOKEN})
    for name, refused in (("wrong secret", wrong), ("expired token", expired)):
        # Whatever is left to do, a refused run must not echo what it was refused with.
        assert refused.returncode in (0, 1, 3), refused.stdout + refused.stderr
        outputs[name] = refused.stdout + refused.stderr

    # 4. Reports written from the checkpoint, and its status.
    csv_report = tmp_path / "pins.report.csv"
    exported = _run(["report", str(checkpoint), "--output", str(csv_report)], env)
    assert exported.returncode == 0, exported.stderr
    status = _run(["status", str(checkpoint)], env)
    outputs["status"] = status.stdout + status.stderr

    pins = {u.personal_pin for u in emulator.state.users(account) if u.personal_pin}
    assert len(pins) >= USERS - 4  # every user got a PIN (bar those cut off by the kill)
    assert emulator.stats()["effects"]["ResetPersonalPIN"]["total"] >= len(pins)
    for path in (checkpoint, report, csv_report, summary):
        _assert_private(path)
    files = {path.name: path.read_bytes() for path in (checkpoint, report, csv_report, summary)}
    for wal in tmp_path.glob("*-wal"):
        files[wal.name] = wal.read_bytes()
    for name, data in {**outputs, **side_files, **files}.items():
        _assert_no_secrets(name, data, pins)
    # The searches looked at real content.
    assert account.encode() in files[report.name] and b"reset-pin" in files[csv_report.name]
    assert b"ResetPersonalPIN" in outputs["resumed run"] + files[summary.name]


def test_failed_credentials_are_not_echoed_by_the_cli(
    emulator_factory: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """A job refused at the first request shows what to check, never the values."""
    emulator = emulator_factory(
        accounts=1,
        users_per_account=5,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET,
        session_tokens=(SESSION_TOKEN,),
    )
    account = emulator.state.account_ids()[0]
    source = write_csv(tmp_path / "u.csv", "email", ["user1@corp1.example.com"])
    command = [
        "suspend",
        "--account",
        account,
        "--input",
        str(source),
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "c.ckpt.sqlite"),
        "--log-format",
        "json",
    ]
    for env in (
        {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": WRONG_SECRET},
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_SESSION_TOKEN": EXPIRED_TOKEN,
        },
    ):
        refused = _run(command, env)
        output = refused.stdout + refused.stderr
        assert refused.returncode == 3, output
        assert b"AWS_SECRET_ACCESS_KEY" in output  # what to check...
        _assert_no_secrets("refused run", output, set())  # ...but not the values
        for path in tmp_path.iterdir():
            if path.suffix != ".csv":
                _assert_no_secrets(path.name, path.read_bytes(), set())
