"""An input row with a ``skip_reason`` is reported skipped with it, and not sent."""

from __future__ import annotations

from pathlib import Path

from bulkchime.emulator import RunningEmulator

from .conftest import read_report, run_cli


def test_rows_with_a_skip_reason_are_reported_skipped_and_not_sent(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    account = emulator.state.account_ids()[0]
    first, second, third = (u.user_id for u in emulator.state.users(account)[:3])
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,skip_code,skip_reason\n"
        f"{first},,\n"
        f"{second},OnLeave,back in January\n"
        f"{third},,kept by HR\n"
    )

    result = run_cli(["update-license", "--account", account, "--input", str(users), "--key",
                      "user_id", "--license", "Pro", "--endpoint-url", emulator.url,
                      "--checkpoint", str(tmp_path / "m.ckpt.sqlite")])  # fmt: skip

    assert result.exit_code == 0, result.stdout + result.stderr
    report = {r["user_id"]: r for r in read_report(tmp_path / "m.report.jsonl")}
    assert report[first]["status"] == "succeeded"
    assert (report[second]["status"], report[second]["error_code"]) == ("skipped", "OnLeave")
    assert report[second]["message"] == "back in January"
    assert (report[third]["status"], report[third]["error_code"]) == ("skipped", "Skipped")
    assert emulator.stats()["effects"]["BatchUpdateUser"] == {"total": 1, "distinct": 1}
