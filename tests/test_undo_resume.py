"""An undo interrupted mid-run resumes from its own checkpoint, like any job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import read_report, run_cli
from .test_undo import users_state

pytestmark = pytest.mark.slow


def test_an_interrupted_undo_resumes_and_restores_every_user(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=1000)
    account = emulator.state.account_ids()[0]
    before = users_state(emulator, account)
    checkpoint = tmp_path / "mig.ckpt.sqlite"
    migrated = run_cli(["update-license", "--account", account, "--where", "license", "Basic",
                        "--license", "Pro", "--checkpoint", str(checkpoint),
                        "--endpoint-url", emulator.url])  # fmt: skip
    assert migrated.exit_code == 0, migrated.stdout + migrated.stderr
    count = len(read_report(tmp_path / "mig.report.jsonl"))
    assert count > 100
    args = [sys.executable, "-m", "bulkchime", "undo", str(checkpoint),
            "--endpoint-url", emulator.url, "--concurrency", "1"]  # fmt: skip

    process = subprocess.Popen(
        [*args, "--rate", "2", "--burst", "1"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while emulator.stats()["effects"]["BatchUpdateUser"]["total"] < count + 40:
        assert time.monotonic() < deadline and process.poll() is None, "the undo did not start"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stdout + stderr[-2000:]
    assert users_state(emulator, account) != before
    resumed = subprocess.run([*args, "--rate", "1000"], capture_output=True, text=True, timeout=120)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-2000:]
    assert users_state(emulator, account) == before
    report = read_report(tmp_path / "mig.undo.report.jsonl")
    assert len(report) == count and {r["status"] for r in report} == {"succeeded"}
    # Every user was put back once: the resumed run sent only what was left.
    assert emulator.stats()["effects"]["BatchUpdateUser"]["total"] == 2 * count
