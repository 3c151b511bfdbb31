"""A checkpoint written by the previous release resumes with this one."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import read_report, run_cli

_DATA = Path(__file__).parent / "data" / "release-0.1-checkpoint"
_ACCOUNT = "ac4c09c2-8206-47e3-9594-aa6b342f5d0a"  # the default emulator's first account


def test_a_release_0_1_checkpoint_killed_mid_run_resumes_exactly_once(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert emulator.state.account_ids()[0] == _ACCOUNT
    shutil.copy(_DATA / "users.csv", tmp_path / "users.csv")
    shutil.copy(_DATA / "suspend.sqlite", tmp_path / "suspend.ckpt.sqlite")
    monkeypatch.chdir(tmp_path)  # the checkpoint names its input as it was given

    status = run_cli(["status", "suspend.ckpt.sqlite"])
    assert status.exit_code == 0, status.stderr
    assert "succeeded: 50" in status.stdout and "in_flight: 50" in status.stdout

    args = ["suspend", "--account", _ACCOUNT, "--input", "users.csv", "--key", "user_id",
            "--checkpoint", "suspend.ckpt.sqlite", "--endpoint-url", emulator.url]  # fmt: skip
    resumed = run_cli(args)

    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    report = read_report(tmp_path / "suspend.report.jsonl")
    assert len(report) == 100
    assert {r["status"] for r in report} == {"succeeded"}
    # Only the 50 left in flight were sent (suspend is idempotent: re-sent, not verified).
    assert emulator.stats()["effects"]["BatchSuspendUser"] == {"total": 50, "distinct": 50}
    assert [r["attempts"] for r in report[:50]] == [1] * 50
    with contextlib.closing(sqlite3.connect(tmp_path / "suspend.ckpt.sqlite")) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (3,)
