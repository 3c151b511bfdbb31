"""Shared fixtures: a real emulator on loopback, and the CLI run as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from click.testing import CliRunner

from bulkchime.cli import cli
from bulkchime.emulator import EmulatorConfig, RunningEmulator, emulator_in_thread


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The emulator's test keys, and nothing from the machine's own AWS set-up."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CHIME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator_factory() -> Iterator[Any]:
    """Start emulators (in a thread each) with the given settings; stop them afterwards."""
    stack: list[Any] = []

    def start(**settings: Any) -> RunningEmulator:
        manager = emulator_in_thread(EmulatorConfig(**settings))
        running = manager.__enter__()
        stack.append(manager)
        return running

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def emulator(emulator_factory: Any) -> RunningEmulator:
    """A default emulator: 2 accounts x 100 users, no faults."""
    return emulator_factory()  # type: ignore[no-any-return]


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(args: Sequence[str], *, input: bytes | BinaryIO | None = None) -> CliResult:
    """Run ``bulkchime ARGS`` in-process, as the console script would."""
    runner = CliRunner()
    result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def read_report(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL report."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mutations(stats: dict[str, Any]) -> int:
    """Mutating requests the emulator received (look-ups excluded)."""
    readonly = {"ListUsers", "ListAccounts", "GetAccount", "GetUser", "GetAccountSettings"}
    return sum(n for op, n in stats["requests"].items() if op not in readonly)


def write_csv(path: Path, header: str, values: Sequence[str]) -> Path:
    """A one-column-or-more CSV input file."""
    path.write_text(header + "\n" + "".join(f"{value}\n" for value in values))
    return path


def team_account(emulator: RunningEmulator, tmp_path: Path) -> str:
    """A new Team account, ``Joiners Team``, created through the CLI (invites need one)."""
    names = write_csv(tmp_path / "team.csv", "name", ["Joiners Team"])
    result = run_cli(
        [
            "create-account",
            "--input",
            str(names),
            "--endpoint-url",
            emulator.url,
            "--checkpoint",
            str(tmp_path / "team.ckpt.sqlite"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    return emulator.state.find_accounts_by_name("Joiners Team")[0].account_id
