"""What a new user hit in runs (issue 14, items 6-10): aborts and job errors as error
events, the speed ``status`` gives after a resume, exports' counts, account names and job
parameters in plans and status, and refused connections counted apart."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

from bulkchime.emulator import RunningEmulator

from .conftest import run_cli, write_csv


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _corp(emulator: RunningEmulator, number: int) -> str:
    return emulator.state.find_accounts_by_name(f"Example Corp {number}")[0].account_id


def _emails(emulator: RunningEmulator, count: int) -> list[str]:
    return [u.primary_email for u in emulator.state.users(_corp(emulator, 1))[:count]]


def _run(emulator: RunningEmulator, tmp_path: Path, *args: str) -> list[str]:
    return [*args, "--endpoint-url", emulator.url, "--log-format", "json"] + [
        "--checkpoint",
        str(tmp_path / "job.ckpt.sqlite"),
    ]


# --- 6. aborts and job errors are error events on stderr ----------------------------------


def test_a_wrong_secret_is_an_error_event_not_only_the_summary(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: Any
) -> None:
    users = write_csv(tmp_path / "users.csv", "email", _emails(emulator, 3))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    result = run_cli(_run(emulator, tmp_path, "suspend", "--account", _corp(emulator, 1),
                          "--input", str(users)))  # fmt: skip
    assert result.exit_code == 3
    aborts = [e for e in _events(result.stderr) if e["event"] == "job.abort"]
    assert len(aborts) == 1 and aborts[0]["level"] == "error"
    assert aborts[0]["reason"].startswith("authentication failed: ")
    assert "AWS_SECRET_ACCESS_KEY" in aborts[0]["reason"]
    assert f"aborted: {aborts[0]['reason']}" in result.stdout.splitlines()


def test_the_failure_threshold_is_an_error_event(emulator: RunningEmulator, tmp_path: Path) -> None:
    missing = [f"nobody{i}@corp1.example.com" for i in range(25)]
    users = write_csv(tmp_path / "users.csv", "email", missing)
    result = run_cli(_run(emulator, tmp_path, "suspend", "--account", _corp(emulator, 1),
                          "--input", str(users), "--failure-threshold", "0.1"))  # fmt: skip
    assert result.exit_code == 3, result.stdout + result.stderr
    (abort,) = [e for e in _events(result.stderr) if e["event"] == "job.abort"]
    assert abort["level"] == "error" and "failure_threshold" in abort["reason"]


def test_a_job_error_is_an_error_event_as_well_as_its_line(tmp_path: Path) -> None:
    job = tmp_path / "bad.toml"
    job.write_text('action = "update-license"\naccount_id = "a"\n[input]\npath = "u.csv"\n')
    write_csv(tmp_path / "u.csv", "email", ["a@b.example.com"])
    result = run_cli(["run", str(job), "--log-format", "json"])
    assert result.exit_code == 2
    (event,) = _events(result.stderr)
    assert (event["event"], event["level"]) == ("job.error", "error")
    assert f"error: {event['error']}" in result.stderr.splitlines()
    assert "params.license: is missing" in event["error"]


# --- 7. status gives the speed of the last run, not of the whole checkpoint ---------------


def test_status_after_a_resumed_run_gives_that_runs_own_speed(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory(users_per_account=200, user_error_rate=0.3, seed=3)
    users = write_csv(tmp_path / "users.csv", "email", _emails(emulator, 150))
    args = _run(emulator, tmp_path, "suspend", "--account", _corp(emulator, 1),
                "--input", str(users), "--max-attempts", "1")  # fmt: skip
    first = run_cli(args)
    assert first.exit_code == 1  # the per-user throttles had one attempt each
    failed = int(re.search(r"(\d+) failed", first.stdout).group(1))  # type: ignore[union-attr]
    assert 0 < failed < 150

    emulator.configure(user_error_rate=0.0)
    resumed = run_cli([*args, "--retry-failed"])
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    status = run_cli(["status", str(tmp_path / "job.ckpt.sqlite")]).stdout

    summary_speed = re.search(r"^elapsed: ([\d.]+) s, ([\d.]+) items/s$", resumed.stdout, re.M)
    assert summary_speed is not None
    seconds, speed = summary_speed.groups()
    assert f"throughput: {speed} items/s over the last run ({failed} items in {seconds} s)" in (
        status.splitlines()
    ), status

    again = run_cli(args)  # nothing left: the last run finished nothing
    assert again.exit_code == 0
    status = run_cli(["status", str(tmp_path / "job.ckpt.sqlite")]).stdout
    assert re.search(r"^throughput: 0\.0 items/s over the last run \(0 items in [\d.]+ s\)$",
                     status, re.M), status  # fmt: skip


# --- 8. exports show their real count and speed --------------------------------------------


def test_export_users_plans_and_reports_the_users_it_reads(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    args = _run(emulator, tmp_path, "export-users", "--account-name", "Example Corp 2")
    plan = run_cli([*args, "--dry-run"]).stdout.splitlines()
    assert plan[0] == "plan: 100 items in 1 batch (1 request)"
    assert plan[2] == (
        f"  export-users account {_corp(emulator, 2)} (Example Corp 2): 100 items, read with "
        "1 ListUsers request of up to 200 (changes nothing)"
    )

    result = run_cli([*args, "--summary-json", str(tmp_path / "summary.json")])
    assert result.exit_code == 0, result.stdout + result.stderr
    speed = float(re.search(r"([\d.]+) items/s", result.stdout).group(1))  # type: ignore[union-attr]
    assert speed > 0
    assert json.loads((tmp_path / "summary.json").read_text())["items_per_second"] > 0
    status = run_cli(["status", str(tmp_path / "job.ckpt.sqlite")]).stdout
    assert "over the last run (100 items in " in status


# --- 9. account names beside ids, and the job's parameters --------------------------------


def test_plans_and_status_name_the_account_and_status_shows_the_parameters(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = _corp(emulator, 1)
    users = write_csv(tmp_path / "users.csv", "email", _emails(emulator, 3))
    args = _run(emulator, tmp_path, "update-license", "--account", account,
                "--input", str(users), "--license", "Pro")  # fmt: skip
    plan = run_cli([*args, "--dry-run"]).stdout.splitlines()
    assert plan[2] == (
        f"  update-license account {account} (Example Corp 1): 3 items, 1 request of up to 20"
    )

    assert run_cli(args).exit_code == 0
    status = run_cli(["status", str(tmp_path / "job.ckpt.sqlite")]).stdout.splitlines()
    assert status[1] == f"job: update-license → Pro (input {users})"
    assert status[2] == f"account: {account} (Example Corp 1)"


# --- 10. refused connections are not requests sent ----------------------------------------


def test_refused_connections_are_counted_apart_from_requests_sent(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    users = write_csv(tmp_path / "users.csv", "email", ["a@corp1.example.com"])
    result = run_cli(
        ["suspend", "--account", "acc", "--input", str(users), "--max-attempts", "2"]
        + ["--endpoint-url", f"http://127.0.0.1:{port}", "--log-format", "json"]
        + ["--checkpoint", str(tmp_path / "job.ckpt.sqlite")]
        + ["--summary-json", str(tmp_path / "summary.json")]
    )
    assert result.exit_code == 3
    assert (
        "requests: 0 sent (none), 0 throttled (429); 2 not sent (could not connect)"
        in result.stdout.splitlines()
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["requests_total"], summary["not_connected"]) == (0, 2)
