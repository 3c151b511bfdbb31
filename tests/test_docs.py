"""What the README, docs/ and jobs/ promise, checked against the real CLI and emulator.

- every template in jobs/ dry-runs against an emulator: exit 0, the plan's first line,
  and no request that changes anything;
- the README tour works: a real offboarding run, ``bulkchime status``, the report,
  Ctrl-C and resume;
- every ``bulkchime`` command shown in the docs uses only options its ``--help`` lists,
  and the docs cover every option, limit and action;
- JSON logs parse line by line.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bulkchime.actions import ACTIONS
from bulkchime.demo import DEMO_EMULATOR
from bulkchime.emulator import STATE_KEY, RunningEmulator, create_app
from bulkchime.job import Limits

from .conftest import mutations, read_report, run_cli

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "jobs"
README = ROOT / "README.md"
DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md"))]

#: The first line each template's dry run prints against a default emulator (seed 0,
#: 2 accounts x 100 users); the docs show these lines.
EXPECTED_PLANS = {
    "export-users": "plan: 100 items in 1 batch (1 request)",
    "license-migration": "plan: 38 items in 2 batches (2 requests)",
    "multi-account-migration": "plan: 6 items in 2 batches (2 requests)",
    "offboarding": "plan: 8 items in 5 batches (5 requests)",
    "onboarding-invites": "plan: 6 items in 1 batch (1 request)",
}
TEMPLATES = sorted(path.stem for path in JOBS.glob("*.toml"))
PLAN_LINE = re.compile(r"^plan: \d+ items? in \d+ batch(es)? \(\d+ requests?\)$")


def _copy_jobs(tmp_path: Path) -> Path:
    """jobs/ in a scratch folder, so that checkpoints and reports land there."""
    return Path(
        shutil.copytree(
            JOBS, tmp_path / "jobs", ignore=shutil.ignore_patterns("*.ckpt.sqlite*", "*.report.*")
        )
    )


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line of *text* as a JSON object (fails on the first that is not)."""
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"event", "level", "timestamp"} <= event.keys() for event in events), events
    return events


def _create_team_account(emulator: RunningEmulator, jobs: Path, tmp_path: Path) -> None:
    """The step onboarding-invites.toml asks for: create-account from team-account.csv."""
    result = run_cli(
        [
            "create-account",
            "--input",
            str(jobs / "team-account.csv"),
            "--endpoint-url",
            emulator.url,
            "--checkpoint",
            str(tmp_path / "team.ckpt.sqlite"),
            "--log-format",
            "json",
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(emulator.state.find_accounts_by_name("Onboarding Team")) == 1


# --- templates ------------------------------------------------------------------------


def test_every_template_has_an_expected_plan() -> None:
    assert TEMPLATES == sorted(EXPECTED_PLANS)


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_dry_run_plans_and_changes_nothing(
    template: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    jobs = _copy_jobs(tmp_path)
    if template == "onboarding-invites":
        _create_team_account(emulator, jobs, tmp_path)
    before = mutations(emulator.stats())

    result = run_cli(
        [
            "run",
            str(jobs / f"{template}.toml"),
            "--dry-run",
            "--endpoint-url",
            emulator.url,
            "--log-format",
            "json",
        ]
    )

    assert result.exit_code == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert PLAN_LINE.match(first), first
    assert first == EXPECTED_PLANS[template]
    assert mutations(emulator.stats()) == before
    _json_lines(result.stderr)
    leftovers = [p.name for p in jobs.iterdir() if ".ckpt.sqlite" in p.name or ".report." in p.name]
    assert leftovers == []  # a dry run writes no checkpoint or report


def test_onboarding_dry_run_before_the_team_account_exists_exits_2_as_the_run_would(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    jobs = _copy_jobs(tmp_path)
    args = ["run", str(jobs / "onboarding-invites.toml"), "--endpoint-url", emulator.url]

    dry = run_cli([*args, "--dry-run"])
    real = run_cli(args)

    assert (dry.exit_code, real.exit_code) == (2, 2), dry.stdout + dry.stderr
    assert dry.stdout == ""  # no plan of a job that cannot run
    errors = [line for line in dry.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [line for line in real.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].endswith(
        "onboarding-invites.toml: account_name: must match exactly one account; "
        "'Onboarding Team' matches none. HINT: check the exact name (case included), or "
        "create the account first with bulkchime create-account"
    )
    assert mutations(emulator.stats()) == 0


def test_leavers_are_seeded_users_but_one(emulator: RunningEmulator) -> None:
    account = emulator.state.find_accounts_by_name("Example Corp 1")[0].account_id
    with (JOBS / "leavers.csv").open() as f:
        emails = [row["email"] for row in csv.DictReader(f)]
    found = [emulator.state.find_user_by_email(account, email) is not None for email in emails]
    assert found == [True] * (len(emails) - 1) + [False]


# --- the README tour ------------------------------------------------------------------


def test_tour_offboarding_run_status_and_report(emulator: RunningEmulator, tmp_path: Path) -> None:
    jobs = _copy_jobs(tmp_path)
    args = ["run", str(jobs / "offboarding.toml"), "--endpoint-url", emulator.url]

    result = run_cli([*args, "--log-format", "json"])

    assert result.exit_code == 1, result.stdout + result.stderr  # one leaver does not exist
    assert result.stdout.splitlines()[0] == (
        "records: 10 = 5 items x 2 actions (8 succeeded, 1 failed, 0 rejected, 1 skipped)"
    )
    events = {event["event"] for event in _json_lines(result.stderr)}
    assert {"ingested", "phase.start", "batch", "phase.end"} <= events
    account = emulator.state.find_accounts_by_name("Example Corp 1")[0].account_id
    report = read_report(jobs / "offboarding.report.jsonl")
    assert len(report) == 10  # 5 rows x 2 phases
    for record in report:
        if record["email"] == "already.gone@corp1.example.com":
            logout = record["action"] == "logout"
            expected = ("failed", "NotFound") if logout else ("skipped", "PreviousPhaseFailed")
            assert (record["status"], record["error_code"]) == expected
        else:
            assert record["status"] == "succeeded", record
            user = emulator.state.find_user_by_email(account, record["email"])
            assert user is not None and user.registration_status == "Suspended"
    effects = emulator.stats()["effects"]
    assert effects["LogoutUser"] == {"total": 4, "distinct": 4}
    assert effects["BatchSuspendUser"] == {"total": 4, "distinct": 4}

    status = run_cli(["status", str(jobs / "offboarding.ckpt.sqlite")])
    assert status.exit_code == 0
    lines = status.stdout.splitlines()
    for line in ("total: 10", "  succeeded: 8", "  failed: 1", "  skipped: 1"):
        assert line in lines, status.stdout
    assert "running: no (finished)" in lines

    exported = run_cli(["report", str(jobs / "offboarding.ckpt.sqlite"), "--format", "csv"])
    assert exported.exit_code == 0
    rows = list(csv.DictReader(exported.stdout.splitlines()))
    assert [(r["email"], r["action"], r["status"]) for r in rows] == [
        (r["email"], r["action"], r["status"]) for r in report
    ]

    before = mutations(emulator.stats())
    again = run_cli([*args, "--log-format", "json"])
    assert again.exit_code == 1
    assert mutations(emulator.stats()) == before  # nothing done is sent again


def test_tour_ctrl_c_then_the_same_command_resumes(emulator_factory: Any, tmp_path: Path) -> None:
    # One request at a time, 5 ms each at least: the run lasts long enough to be interrupted.
    emulator: RunningEmulator = emulator_factory(latency_ms=5)
    checkpoint = tmp_path / "signout-corp2.ckpt.sqlite"
    args = [
        "logout",
        "--account-name",
        "Example Corp 2",
        "--where",
        "registration_status",
        "Registered",
        "--rate",
        "1000",
        "--concurrency",
        "1",
        "--checkpoint",
        str(checkpoint),
        "--endpoint-url",
        emulator.url,
        "--log-format",
        "json",
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", "from bulkchime.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait for the first batch, then press "Ctrl-C"
        if line.startswith("{") and json.loads(line)["event"] == "batch":
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stdout + stderr
    assert "interrupted: run the same command again to resume" in stdout
    status = run_cli(["status", str(checkpoint)])
    assert "running: no (stopped; run the same command again to resume)" in status.stdout
    assert "  pending: " in status.stdout

    resumed = run_cli(args)

    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    account = emulator.state.find_accounts_by_name("Example Corp 2")[0].account_id
    registered = {
        u.user_id for u in emulator.state.users(account) if u.registration_status == "Registered"
    }
    report = read_report(tmp_path / "signout-corp2.report.jsonl")
    assert {r["user_id"] for r in report} == registered
    assert {r["status"] for r in report} == {"succeeded"}
    assert emulator.stats()["effects"]["LogoutUser"]["distinct"] == len(registered)


def test_readme_shows_what_the_demo_prints() -> None:
    """The README's demo output against the demo's settings and seeded users.

    (tests/test_engine.py runs the demo itself; running it here again would cost seconds.)
    """
    shown = _block_after(README.read_text(), "It writes into `./bulkchime-demo/` and prints:")
    config = dataclasses.replace(DEMO_EMULATOR)
    state = create_app(config)[STATE_KEY]
    account = state.find_accounts_by_name("Example Corp 1")[0].account_id
    basic = sum(user.license_type == "Basic" for user in state.users(account))

    assert re.fullmatch(
        rf"emulator: http://127\.0\.0\.1:\d+ \({config.accounts} accounts x "
        rf"{config.users_per_account} users, server limit {config.rate:g} req/s, "
        rf"{config.error_rate:.0%} 5xx, {config.user_error_rate:.0%} per-user throttles\)",
        shown[0],
    ), shown[0]
    assert shown[1] == "job: update-license Basic -> Pro for every Basic user of 'Example Corp 1'"
    assert shown[2] == f"items: {basic} ({basic} succeeded, 0 failed, 0 rejected, 0 skipped)"
    assert shown[3].startswith("requests: ") and shown[4].startswith("elapsed: ")
    assert shown[5:7] == [
        "report: bulkchime-demo/demo.report.csv",
        "checkpoint: bulkchime-demo/demo.ckpt.sqlite",
    ]
    assert shown[7].startswith("emulator saw: ") and shown[7].endswith(f" {basic} users changed")
    assert shown[8].startswith("next: bulkchime status bulkchime-demo/demo.ckpt.sqlite")


# --- commands and options in the docs ---------------------------------------------------


@cache
def _help(*command: str) -> str:
    result = run_cli([*command, "--help"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def _section(help_text: str, title: str) -> list[str]:
    lines = help_text.splitlines()
    start = lines.index(f"{title}:") + 1
    return [line for line in lines[start:] if line.strip()]


@cache
def _options(*command: str) -> frozenset[str]:
    """The option names ``bulkchime COMMAND --help`` lists."""
    names: set[str] = set()
    for line in _section(_help(*command), "Options"):
        if re.match(r"^ {2}-", line):
            spec = re.split(r" {2,}", line.strip())[0]
            names.update(re.findall(r"(?<![\w-])--?[a-z][\w-]*", spec))
    return frozenset(names)


@cache
def _subcommands() -> frozenset[str]:
    return frozenset(
        line.split()[0] for line in _section(_help(), "Commands") if re.match(r"^ {2}\S", line)
    )


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def _block_after(text: str, marker: str) -> list[str]:
    """The lines of the first code block after *marker*."""
    return _code_blocks(text[text.index(marker) :])[0].splitlines()


def _commands_in(text: str) -> list[str]:
    """Every ``bulkchime …`` command in the code blocks and inline code of *text*."""
    commands: list[str] = []
    for block in _code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            for prefix in ("$ ", "run: ", "exec "):
                line = line.removeprefix(prefix)
            if line.startswith("bulkchime "):
                commands.append(line)
    commands += re.findall(r"`(bulkchime [^`]+)`", text)
    return commands


def _documented_commands() -> list[tuple[str, str]]:
    """``(file, command)`` pairs from the docs and the templates' comments.

    Placeholders such as ``bulkchime ACTION --help`` are left out.
    """
    found = [
        (path.relative_to(ROOT).as_posix(), command)
        for path in DOC_FILES
        for command in _commands_in(path.read_text())
    ]
    for path in sorted(JOBS.glob("*.toml")):
        for line in path.read_text().splitlines():
            match = re.match(r"^#\s+(bulkchime \S.*?)(\s+#.*)?$", line)
            if match:
                found.append((path.relative_to(ROOT).as_posix(), match.group(1)))
    return [(where, command) for where, command in found if not command.split()[1].isupper()]


def test_the_docs_show_commands() -> None:
    places = {where for where, _ in _documented_commands()}
    assert len(_documented_commands()) > 20
    assert {"README.md", "jobs/offboarding.toml", "docs/pipelines.md"} <= places


@pytest.mark.parametrize(("where", "command"), _documented_commands())
def test_documented_command_uses_only_options_its_help_lists(where: str, command: str) -> None:
    words = shlex.split(command.replace("…", ""))[1:]
    if not words or words[0].startswith("-"):
        allowed, given = _options(), words
    else:
        assert words[0] in _subcommands(), f"{where}: unknown command in {command!r}"
        allowed, given = _options(words[0]), words[1:]
    used = {word.split("=")[0] for word in given if word.startswith("-") and word != "-"}
    assert used <= allowed, f"{where}: {sorted(used - allowed)} not in `{words[0]} --help`"


def test_the_docs_cover_every_run_option() -> None:
    docs = "\n".join(path.read_text() for path in DOC_FILES)
    options = _options("run") - {"-h", "--help"}
    missing = sorted(option for option in options if f"`{option}" not in docs)
    assert missing == []


def test_jobs_md_covers_every_limit_and_section() -> None:
    text = (ROOT / "docs" / "jobs.md").read_text()
    for limit in dataclasses.fields(Limits):
        assert f"| `{limit.name}` |" in text, limit.name
    for heading in ("`[input]`", "`[params]`", "`[limits]`", "`[aws]`"):
        assert f"## {heading}" in text


def test_actions_md_has_a_row_per_action() -> None:
    rows = {
        line.split("|")[1].strip(): line
        for line in (ROOT / "docs" / "actions.md").read_text().splitlines()
        if line.startswith("| `")
    }
    for name, spec in ACTIONS.items():
        row = rows[f"`{name}`"]
        assert f"| {spec.operation} |" in row and f"| {spec.items_per_request}" in row, row
        if not spec.reads_account:
            assert all(f"`{key}`" in row for key in spec.keys), row


def test_plans_shown_in_the_docs_are_the_templates_plans() -> None:
    for path in DOC_FILES:
        for block in _code_blocks(path.read_text()):
            for line in block.splitlines():
                if line.startswith("plan: "):
                    assert line in EXPECTED_PLANS.values(), f"{path.name}: {line}"


def test_exit_code_tables_list_every_code() -> None:
    for path in (README, ROOT / "docs" / "exit-codes.md"):
        codes = re.findall(r"^\| (\d+) \|", path.read_text(), flags=re.MULTILINE)
        assert codes == ["0", "1", "2", "3", "130"], path.name


def test_readme_gives_exactly_the_two_setup_commands() -> None:
    setup = README.read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in _code_blocks(setup) if "pip install" in block]
    assert commands == ["pip install -e . && bulkchime demo", "pip install -e '.[test]' && pytest"]


def test_relative_links_resolve() -> None:
    for path in DOC_FILES:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            if target == "benchmarks/README.md":
                continue  # written alongside, by the benchmarks' owner
            assert (path.parent / target).exists(), f"{path.name}: {target}"
