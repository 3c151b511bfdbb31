"""A full disk under the checkpoint or the report: exit 3, the path named, nothing lost.

The disk is made full with SQLite's ``max_page_count`` (the checkpoint cannot grow past
it, and SQLite answers exactly as on a full disk: ``database or disk is full``), and
the report with ``/dev/full``. Each run is then repeated with space again, as the
message tells the administrator to, and must finish the job with no user changed twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulkchime.emulator import RunningEmulator
from bulkchime.store import _sqlite_ops, sqlite

from .conftest import mutations, read_report, run_cli, write_csv

USERS = 600


def _pages(db: Any) -> int:
    return int(db.execute("PRAGMA page_count").fetchone()[0])


def limit_checkpoint_growth(monkeypatch: pytest.MonkeyPatch, *, extra_pages: int) -> None:
    """Checkpoints opened from now on may grow by *extra_pages* pages only."""
    connect = sqlite._connect

    def limited(path: Path, location: str, *, writable: bool) -> Any:
        db = connect(path, location, writable=writable)
        db.execute(f"PRAGMA max_page_count = {_pages(db) + extra_pages}")
        return db

    monkeypatch.setattr(sqlite, "_connect", limited)


def fill_disk_at_first_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the first batch's outcomes are recorded, the checkpoint may not grow."""
    record: Callable[..., Any] = _sqlite_ops.record

    def then_full(db: Any, outcomes: Any) -> Any:
        result = record(db, outcomes)
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'filler'").fetchone():
            # The pages the resolution's directory freed would take the next outcomes:
            # fill them too, so that the very next write needs a page the disk lacks.
            db.execute(f"PRAGMA max_page_count = {_pages(db)}")
            db.execute("CREATE TABLE filler (b BLOB)")
            with contextlib.suppress(sqlite3.OperationalError):
                while True:
                    db.execute("INSERT INTO filler VALUES (zeroblob(1000))")
        return result

    monkeypatch.setattr(_sqlite_ops, "record", then_full)


def suspend(emulator: RunningEmulator, tmp_path: Path, *extra: str) -> Any:
    return _run(emulator, tmp_path, "suspend", *extra)


def migrate(emulator: RunningEmulator, tmp_path: Path, *extra: str) -> Any:
    """Every user to Pro: each outcome stores the license set, so the checkpoint grows."""
    return _run(emulator, tmp_path, "update-license", "--license", "Pro", *extra)


def _run(emulator: RunningEmulator, tmp_path: Path, action: str, *extra: str) -> Any:
    account = emulator.state.account_ids()[0]
    emails = [u.primary_email for u in emulator.state.users(account)][:USERS]
    leavers = write_csv(tmp_path / "leavers.csv", "email", emails)
    return run_cli([action, "--account", account, "--input", str(leavers),
                    "--checkpoint", str(tmp_path / "leavers.ckpt.sqlite"),
                    "--endpoint-url", emulator.url, *extra])  # fmt: skip


def suspended(emulator: RunningEmulator) -> dict[str, int]:
    return dict(emulator.stats()["effects"]["BatchSuspendUser"])


def migrated(emulator: RunningEmulator) -> dict[str, int]:
    return dict(emulator.stats()["effects"]["BatchUpdateUser"])


def assert_says_disk_full(result: Any, path: Path) -> None:
    assert result.exit_code == 3, result.stdout + result.stderr
    assert f"aborted: the disk holding the checkpoint {path} is full" in result.stdout
    assert "free space on that disk, then run the same command again" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stdout


@pytest.fixture
def emulator(emulator_factory: Any) -> RunningEmulator:
    return emulator_factory(accounts=1, users_per_account=USERS)  # type: ignore[no-any-return]


def test_a_full_disk_while_the_input_is_read_sends_nothing_and_the_run_resumes(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as full:
        limit_checkpoint_growth(full, extra_pages=2)
        aborted = suspend(emulator, tmp_path)

    assert_says_disk_full(aborted, tmp_path / "leavers.ckpt.sqlite")
    assert mutations(emulator.stats()) == 0

    resumed = suspend(emulator, tmp_path)

    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    report = read_report(tmp_path / "leavers.report.jsonl")
    assert len(report) == USERS
    assert {r["status"] for r in report} == {"succeeded"}
    assert suspended(emulator) == {"total": USERS, "distinct": USERS}


def test_a_full_disk_mid_send_stops_cleanly_and_the_run_resumes_with_no_repeat(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as full:
        fill_disk_at_first_outcome(full)
        aborted = migrate(emulator, tmp_path, "--concurrency", "1")

    assert_says_disk_full(aborted, tmp_path / "leavers.ckpt.sqlite")
    assert 0 < migrated(emulator)["total"] < USERS  # some batches went out, not all
    assert "report: not written" not in aborted.stdout  # the report's own disk had space
    partial = read_report(tmp_path / "leavers.report.jsonl")
    assert len(partial) == USERS  # every row is in it, succeeded or not yet done
    assert {r["status"] for r in partial} <= {"succeeded", "pending", "in_flight"}

    resumed = migrate(emulator, tmp_path, "--concurrency", "1")

    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    report = read_report(tmp_path / "leavers.report.jsonl")
    assert len(report) == USERS
    assert {r["status"] for r in report} == {"succeeded"}
    assert {r["result"]["LicenseType"] for r in report} == {"Pro"}
    account = emulator.state.account_ids()[0]
    assert {u.license_type for u in emulator.state.users(account)} == {"Pro"}
    # What went out before the disk filled is not sent again; only the batch whose
    # outcome could not be written is (a license change is safe to repeat).
    assert migrated(emulator)["distinct"] == USERS
    assert USERS <= migrated(emulator)["total"] <= USERS + 20


def test_a_full_disk_under_the_report_exits_3_and_the_next_run_writes_it(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkchime import report as report_module

    with monkeypatch.context() as full:
        full.setattr(report_module, "_open_private", lambda path: open("/dev/full", "w"))  # noqa: SIM115
        aborted = suspend(emulator, tmp_path)

    report_path = tmp_path / "leavers.report.jsonl"
    assert aborted.exit_code == 3, aborted.stdout + aborted.stderr
    assert f"report: not written ({report_path}: disk full)" in aborted.stdout
    assert f"aborted: the disk holding the report {report_path} is full" in aborted.stdout
    assert "run the same command again; it writes the report again" in aborted.stdout
    assert not report_path.exists()
    assert not report_path.with_name(report_path.name + ".partial").exists()
    assert suspended(emulator) == {"total": USERS, "distinct": USERS}

    again = suspend(emulator, tmp_path)

    assert again.exit_code == 0, again.stdout + again.stderr
    assert len(read_report(report_path)) == USERS
    assert suspended(emulator) == {"total": USERS, "distinct": USERS}  # nothing re-sent


def test_a_report_command_onto_a_full_disk_names_it(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert suspend(emulator, tmp_path).exit_code == 0
    from bulkchime import report as report_module

    monkeypatch.setattr(report_module, "_open_private", lambda path: open("/dev/full", "w"))  # noqa: SIM115
    out = tmp_path / "copy.csv"
    result = run_cli(["report", str(tmp_path / "leavers.ckpt.sqlite"), "--output", str(out)])

    assert result.exit_code == 3, result.stdout + result.stderr
    assert f"the disk holding the report {out} is full" in result.stderr


def test_sqlite_reports_a_full_checkpoint_as_a_full_disk(tmp_path: Path) -> None:
    """The premise of the tests above: ``max_page_count`` fails as a full disk does."""
    db = sqlite3.connect(tmp_path / "x.sqlite")
    db.execute("CREATE TABLE t (v BLOB)")
    db.execute(f"PRAGMA max_page_count = {_pages(db)}")
    with pytest.raises(sqlite3.OperationalError) as raised:
        db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert raised.value.sqlite_errorcode == sqlite3.SQLITE_FULL
    db.close()


async def test_a_postgres_server_out_of_disk_is_a_full_disk_at_once_not_an_outage() -> None:
    """PostgreSQL's ``53100 disk_full`` stops the job at once (exit 3, the database named,
    its password not), instead of being retried for a minute as an unreachable server."""
    import psycopg

    from bulkchime.errors import DiskFull
    from bulkchime.store._pg_conn import Connections
    from bulkchime.store._pg_url import parse_postgres_url

    address = parse_postgres_url("postgresql://ops:s3cret@db.example:5432/jobs?job=leavers")
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    with pytest.raises(DiskFull) as raised:
        await Connections(address).retrying(attempt)

    assert calls == 1
    assert "the disk holding the checkpoint postgresql://ops@db.example:5432/jobs" in str(
        raised.value
    )
    assert "No space left on device" in str(raised.value)
    assert "s3cret" not in str(raised.value)
