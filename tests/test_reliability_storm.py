"""A fault storm: 5,000 users migrated through 30% 5xx, 20% per-user throttles and latency
spikes. Every user ends succeeded or failed after ``max_attempts``, none is lost, and the
report, the checkpoint and the emulator's state all tell the same story."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import read_report, run_cli, write_csv

pytestmark = pytest.mark.slow

USERS = 5000
MAX_ATTEMPTS = 5
#: Error codes a 5xx or a per-user throttle leaves on an item that ran out of attempts.
RETRYABLE_CODES = {"Throttled", "ServiceFailureException", "ServiceUnavailableException"}
#: Errors after which the service may have applied the change (the response was lost).
AMBIGUOUS_CODES = {"ServiceFailureException", "Timeout", "ConnectionError"}


@pytest.fixture
def latency_spikes() -> Iterator[Callable[[RunningEmulator], None]]:
    """Every half second, 150 ms of extra latency on every request for a tenth of a second."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(emulator: RunningEmulator) -> None:
        def spike() -> None:
            while not stop.wait(0.4):
                emulator.configure(latency_ms=150.0)
                stop.wait(0.1)
                emulator.configure(latency_ms=0.0)

        thread = threading.Thread(target=spike, name="latency-spikes", daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def test_a_5000_user_migration_through_a_fault_storm_loses_nobody(
    emulator_factory: Callable[..., RunningEmulator],
    latency_spikes: Callable[[RunningEmulator], None],
    tmp_path: Path,
) -> None:
    emulator = emulator_factory(
        accounts=1, users_per_account=USERS, error_rate=0.3, user_error_rate=0.2, seed=11
    )
    account = emulator.state.account_ids()[0]
    users = emulator.state.users(account)
    for user in users:
        user.license_type = "Basic"
    source = write_csv(tmp_path / "users.csv", "email", [u.primary_email for u in users])
    checkpoint = tmp_path / "storm.ckpt.sqlite"
    report_path = tmp_path / "storm.report.jsonl"
    latency_spikes(emulator)
    started = time.monotonic()

    result = run_cli(
        [
            "update-license",
            "--account",
            account,
            "--input",
            str(source),
            "--license",
            "Pro",
            "--endpoint-url",
            emulator.url,
            "--checkpoint",
            str(checkpoint),
            "--report",
            str(report_path),
            "--summary-json",
            str(tmp_path / "storm.summary.json"),
            "--rate",
            "2000",
            "--concurrency",
            "16",
            "--max-attempts",
            str(MAX_ATTEMPTS),
            "--log-format",
            "json",
        ]
    )

    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.exit_code in (0, 1), output[-3000:]
    assert "Traceback" not in output
    assert elapsed < 90, elapsed

    # The storm really happened.
    stats = emulator.stats()
    assert stats["faults"] > 100 and stats["user_throttled"] > 500, stats

    # Every user is in the report once, finished: none pending, none lost.
    report = read_report(report_path)
    assert len(report) == USERS
    assert [r["line"] for r in report] == list(range(2, USERS + 2))
    assert {r["email"] for r in report} == {u.primary_email for u in users}
    counts = Counter(r["status"] for r in report)
    assert set(counts) <= {"succeeded", "failed"}, counts
    assert result.exit_code == (0 if counts["failed"] == 0 else 1)

    # A failure is a retryable error that ran out of attempts, and says so.
    for record in report:
        assert 1 <= record["attempts"] <= MAX_ATTEMPTS, record
        if record["status"] == "failed":
            assert record["error_code"] in RETRYABLE_CODES, record
            assert record["attempts"] == MAX_ATTEMPTS, record
            assert record["message"].startswith(f"gave up after {MAX_ATTEMPTS} attempts"), record

    # The emulator agrees: succeeded users have the new license, failed ones do not
    # (unless the last error left it unknown whether the change was applied).
    licenses = {u.primary_email: u.license_type for u in emulator.state.users(account)}
    for record in report:
        if record["status"] == "succeeded":
            assert licenses[record["email"]] == "Pro", record
        elif record["error_code"] not in AMBIGUOUS_CODES:
            assert licenses[record["email"]] == "Basic", record
    effects = stats["effects"]["BatchUpdateUser"]
    assert effects["distinct"] == sum(1 for value in licenses.values() if value == "Pro")
    assert effects["distinct"] >= counts["succeeded"]

    # The checkpoint agrees with the report, and the summary with both.
    again = tmp_path / "again.report.jsonl"
    assert run_cli(["report", str(checkpoint), "--output", str(again)]).exit_code == 0
    assert read_report(again) == report
    status = run_cli(["status", str(checkpoint)])
    assert status.exit_code == 0
    assert str(USERS) in status.stdout and str(counts["succeeded"]) in status.stdout
    summary = json.loads((tmp_path / "storm.summary.json").read_text())
    assert summary["total"] == USERS
    assert summary["counts"].get("succeeded", 0) == counts["succeeded"]
    assert summary["counts"].get("failed", 0) == counts["failed"]
    assert summary["exit_code"] == result.exit_code
