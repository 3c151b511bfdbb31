"""Bad input: a corpus of broken job files and inputs, run through the real CLI.

Job-level problems (the job cannot start) must exit 2 with a message naming the file,
the line and the field, before a single request reaches the emulator. Row-level
problems become ``rejected`` (or ``skipped`` for duplicates) rows of the report, and
every data row of the input is accounted for there.

The corpus lives in ``tests/data/reliability/``; this module lists what each file
must produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import CliResult, mutations, read_report, run_cli

CORPUS = Path(__file__).parent / "data" / "reliability"
JOBS = CORPUS / "jobs"
#: The seeded account the row-level job files name (``account_name = "Example Corp 1"``).
ACCOUNT_NAME = "Example Corp 1"


@dataclass(frozen=True)
class JobErrorCase:
    """A job file that must be refused: exit 2, these fragments in the message."""

    job: str
    expect: tuple[str, ...]


JOB_ERRORS = [
    # The job file itself.
    JobErrorCase("invalid_toml.toml", ("invalid_toml.toml:6:", "is not valid TOML")),
    JobErrorCase("non_utf8_job.toml", ("non_utf8_job.toml:2:", "is not UTF-8")),
    JobErrorCase(
        "unknown_action.toml",
        ("unknown_action.toml:1:", "action:", "unknown action 'update-licence'"),
    ),
    JobErrorCase("action_not_a_string.toml", ("action_not_a_string.toml:1:", "action:")),
    JobErrorCase(
        "unknown_key.toml",
        ("unknown_key.toml:13:", "limits.rat:", "unknown key", "did you mean 'rate'"),
    ),
    JobErrorCase("unknown_section.toml", ("unknown_section.toml:11:", "limit:", "unknown section")),
    JobErrorCase(
        "bad_license.toml",
        ("bad_license.toml:9:", "params.license:", "Basic, Plus, Pro, ProTrial", "'Gold'"),
    ),
    JobErrorCase("missing_license.toml", ("missing_license.toml", "params.license:", "is missing")),
    # Limits: zero or negative.
    JobErrorCase("zero_rate.toml", ("zero_rate.toml:13:", "limits.rate:", "got 0")),
    JobErrorCase("negative_rate.toml", ("negative_rate.toml:13:", "limits.rate:", "got -2.5")),
    JobErrorCase(
        "zero_concurrency.toml", ("zero_concurrency.toml:13:", "limits.concurrency:", "got 0")
    ),
    JobErrorCase("negative_burst.toml", ("negative_burst.toml:13:", "limits.burst:", "got -1")),
    JobErrorCase(
        "zero_max_attempts.toml", ("zero_max_attempts.toml:13:", "limits.max_attempts:", "got 0")
    ),
    JobErrorCase(
        "negative_failure_threshold.toml",
        ("negative_failure_threshold.toml:13:", "limits.failure_threshold:", "got -0.05"),
    ),
    JobErrorCase("zero_timeout.toml", ("zero_timeout.toml:13:", "limits.timeout:", "got 0")),
    # The input file as a whole.
    JobErrorCase("missing_input.toml", ("does-not-exist.csv", "cannot read")),
    JobErrorCase("empty_input.toml", ("empty.csv", "is empty")),
    JobErrorCase("blank_input.toml", ("blank.csv", "is empty")),
    JobErrorCase("header_only.toml", ("header_only.csv:1:", "header but no rows")),
    JobErrorCase("no_key_column.toml", ("no_key_column.csv:1:", "email:", "no 'email' column")),
    JobErrorCase(
        "duplicate_header.toml", ("duplicate_header.csv:1:", "email:", "column 'email' twice")
    ),
    JobErrorCase("non_utf8.toml", ("non_utf8.csv:3:", "not UTF-8", "0xe9")),
    JobErrorCase("truncated_jsonl.toml", ("truncated.jsonl:3:", "invalid JSON", "looks cut short")),
    JobErrorCase("json_array.toml", ("array.json:1:", "JSON array")),
    JobErrorCase("stray_quote.toml", ("stray_quote.csv:3:", "not valid CSV")),
    JobErrorCase(
        "user_id_without_account.toml", ("user_ids.csv:2:", "account_id:", "no account_id")
    ),
]


def _args(emulator: RunningEmulator, tmp_path: Path) -> list[str]:
    return [
        "--endpoint-url",
        emulator.url,
        "--checkpoint",
        str(tmp_path / "job.ckpt.sqlite"),
        "--report",
        str(tmp_path / "job.report.jsonl"),
        "--log-format",
        "json",
    ]


def _requests(emulator: RunningEmulator) -> dict[str, int]:
    return {op: n for op, n in emulator.stats()["requests"].items() if n}


def _assert_refused(result: CliResult, expect: tuple[str, ...]) -> None:
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    message = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    for fragment in expect:
        assert fragment in message, (fragment, message)


def test_the_corpus_is_complete() -> None:
    """Every job file of the corpus is a case here, and every case has its file."""
    listed = (
        {case.job for case in JOB_ERRORS}
        | set(ROW_CASES)
        | {
            "good_fake_account.toml",
            "from_stdin.toml",
        }
    )
    assert {path.name for path in JOBS.glob("*.toml")} == listed


@pytest.mark.parametrize("case", JOB_ERRORS, ids=lambda case: case.job.removesuffix(".toml"))
def test_job_level_problems_exit_2_and_send_nothing(
    case: JobErrorCase, emulator: RunningEmulator, tmp_path: Path
) -> None:
    result = run_cli(["run", str(JOBS / case.job), *_args(emulator, tmp_path)])

    _assert_refused(result, case.expect)
    assert _requests(emulator) == {}  # not even a look-up
    assert not (tmp_path / "job.report.jsonl").exists()


def test_a_missing_job_file_exits_2(emulator: RunningEmulator, tmp_path: Path) -> None:
    result = run_cli(["run", str(JOBS / "no-such-job.toml"), *_args(emulator, tmp_path)])
    _assert_refused(result, ("no-such-job.toml", "cannot read the job file"))
    assert _requests(emulator) == {}


@pytest.mark.parametrize(
    ("option", "value", "expect"),
    [
        ("--rate", "0", "got 0"),
        ("--rate", "-1", "got -1"),
        ("--burst", "0", "got 0"),
        ("--concurrency", "-3", "got -3"),
        ("--max-attempts", "0", "got 0"),
        ("--failure-threshold", "0", "got 0"),
        ("--failure-threshold", "1.5", "got 1.5"),
        ("--timeout", "-1", "got -1"),
    ],
)
def test_bad_limits_on_the_command_line_exit_2(
    option: str, value: str, expect: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    job = JOBS / "good_fake_account.toml"
    result = run_cli(["run", str(job), option, value, *_args(emulator, tmp_path)])
    _assert_refused(result, ("<command line>", f"{option}:", expect))
    assert _requests(emulator) == {}


_BAD_STDIN = [
    pytest.param(b"", (": is empty",), id="empty"),
    pytest.param(
        b"email\nuser1@corp1.example.com\nuser2@corp1.example.com,caf\xe9\n",
        (":3: is not UTF-8",),
        id="non-utf8",
    ),
    pytest.param(
        b'{"email": "user1@corp1.example.com"}\n{"email": "user2@',
        (":2: invalid JSON", "looks cut short"),
        id="truncated-jsonl",
    ),
    pytest.param(
        b"mail\nuser1@corp1.example.com\n", (":1: email: no 'email' column",), id="no-key-column"
    ),
]


@pytest.mark.parametrize(("data", "expect"), _BAD_STDIN)
def test_bad_stdin_exits_2_and_sends_nothing(
    data: bytes, expect: tuple[str, ...], emulator: RunningEmulator, tmp_path: Path
) -> None:
    result = run_cli(["run", str(JOBS / "from_stdin.toml"), *_args(emulator, tmp_path)], input=data)
    _assert_refused(result, expect)
    # Naming the account by name is the one look-up allowed before the input is read.
    assert set(_requests(emulator)) <= {"ListAccounts"}
    assert mutations(emulator.stats()) == 0


def test_input_errors_on_stdin_name_stdin(emulator: RunningEmulator, tmp_path: Path) -> None:
    data = b"email\nuser1@corp1.example.com\nuser2@corp1.example.com,caf\xe9\n"
    result = run_cli(["run", str(JOBS / "from_stdin.toml"), *_args(emulator, tmp_path)], input=data)
    _assert_refused(result, ("error: <stdin>:3: is not UTF-8",))


# ---------------------------------------------------------------- row-level problems


@dataclass(frozen=True)
class Row:
    """What the report must say about the data row starting at ``line``."""

    line: int
    status: str
    email: str | None = None
    #: A fragment of the report's message.
    message: str = ""
    #: The license the user must have afterwards (``None``: not changed by the run).
    license: str | None = None


_CSV_ROWS = (
    Row(2, "succeeded", "user1@corp1.example.com", license="Pro"),  # quoted commas
    Row(3, "succeeded", "user2@corp1.example.com", license="Pro"),  # spaces around
    Row(4, "skipped", "user1@corp1.example.com", "duplicate of line 2"),  # other case
    Row(5, "rejected", None, "malformed email 'not-an-email'"),
    Row(6, "rejected", None, "empty email"),
    Row(7, "succeeded", "user3@corp1.example.com", license="Pro"),  # a note over 2 lines
    Row(9, "rejected", None, "row has 5 fields, header has 4"),
    Row(10, "failed", "ghost@corp1.example.com", "no user with email"),
    Row(11, "succeeded", "user5@corp1.example.com", license="Pro"),  # tabs around
    Row(12, "rejected", None, "license 'Gold' is not one of"),
    Row(13, "succeeded", "user7@corp1.example.com", license="Basic"),  # its own license
    Row(14, "skipped", "user2@corp1.example.com", "duplicate of line 3"),
    Row(15, "succeeded", "user8@corp1.example.com", license="Pro"),  # trailing commas
)
_JSONL_ROWS = (
    Row(1, "succeeded", "user11@corp1.example.com", license="Pro"),
    Row(2, "succeeded", "user12@corp1.example.com", license="Pro"),  # whitespace around
    Row(4, "skipped", "user11@corp1.example.com", "duplicate of line 1"),
    Row(5, "rejected", None, "no 'email' field"),
    Row(6, "rejected", None, "malformed email '42'"),
    Row(7, "rejected", None, "empty email"),
    Row(8, "rejected", None, "license 'Pro Trial' is not one of"),
    Row(9, "succeeded", "user14@corp1.example.com", license="Pro"),  # "Email" field name
    Row(10, "rejected", None, "tags is a JSON array"),
    Row(11, "failed", "nobody@corp1.example.com", "no user with email"),
)
#: Job file -> what the report says about each data row of its input.
ROW_CASES = {"messy_rows_csv.toml": _CSV_ROWS, "messy_rows_jsonl.toml": _JSONL_ROWS}


@pytest.mark.parametrize("job", sorted(ROW_CASES), ids=lambda job: job.removesuffix(".toml"))
def test_row_level_problems_are_reported_row_by_row(
    job: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    rows = ROW_CASES[job]
    account = emulator.state.find_accounts_by_name(ACCOUNT_NAME)[0].account_id
    before = {u.primary_email: u.license_type for u in emulator.state.users(account)}

    result = run_cli(["run", str(JOBS / job), *_args(emulator, tmp_path)])

    output = result.stdout + result.stderr
    assert result.exit_code == 1, output  # rows were rejected or failed
    assert "Traceback" not in output
    _assert_rows(read_report(tmp_path / "job.report.jsonl"), rows)
    _assert_licenses(emulator, account, before, rows)
    stats = emulator.stats()
    assert stats["requests"]["BatchUpdateUser"] == 1  # the good rows, in one batch
    sent = sum(row.status == "succeeded" for row in rows)
    assert stats["effects"]["BatchUpdateUser"] == {"total": sent, "distinct": sent}


def test_stdin_with_bom_crlf_and_duplicates(emulator: RunningEmulator, tmp_path: Path) -> None:
    data = (
        b"\xef\xbb\xbfemail\r\n"
        b"user21@corp1.example.com\r\n"
        b"  USER21@corp1.example.com \r\n"
        b"user22@corp1.example.com;user23@corp1.example.com\r\n"
        b'"user24@corp1.example.com"\r\n'
    )
    rows = (
        Row(2, "succeeded", "user21@corp1.example.com", license="Pro"),
        Row(3, "skipped", "user21@corp1.example.com", "duplicate of line 2"),
        Row(4, "rejected", None, "malformed email"),
        Row(5, "succeeded", "user24@corp1.example.com", license="Pro"),
    )
    account = emulator.state.find_accounts_by_name(ACCOUNT_NAME)[0].account_id
    before = {u.primary_email: u.license_type for u in emulator.state.users(account)}

    result = run_cli(["run", str(JOBS / "from_stdin.toml"), *_args(emulator, tmp_path)], input=data)

    assert result.exit_code == 1, result.stdout + result.stderr
    _assert_rows(read_report(tmp_path / "job.report.jsonl"), rows)
    _assert_licenses(emulator, account, before, rows)


def _assert_rows(report: list[dict[str, Any]], rows: tuple[Row, ...]) -> None:
    assert [record["line"] for record in report] == [row.line for row in rows]
    for record, row in zip(report, rows, strict=True):
        assert record["status"] == row.status, record
        assert record["action"] == "update-license"
        if row.email is not None:
            assert record["email"] == row.email, record
        assert row.message in (record["message"] or ""), record
        if row.status == "rejected":
            assert record["error_code"] == "Rejected" and record["attempts"] == 0
        if row.status == "skipped":
            assert record["error_code"] == "Duplicate" and record["attempts"] == 0


def _assert_licenses(
    emulator: RunningEmulator, account: str, before: dict[str, str], rows: tuple[Row, ...]
) -> None:
    wanted = {row.email: row.license for row in rows if row.license is not None}
    after = {u.primary_email: u.license_type for u in emulator.state.users(account)}
    for email, license_type in after.items():
        assert license_type == wanted.get(email, before[email]), email
