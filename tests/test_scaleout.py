"""Several runners on one job: the real CLI as subprocesses, real PostgreSQL and Redis.

Each test starts ``bulkchime`` processes on one shared checkpoint (a new job in the
test database) and, where the budget matters, one Redis budget key, against an
emulator on loopback. They assert what an administrator sees: exit codes, users
changed once on the emulator (``effects``), the emulator's 429 count, the report.
Servers: ``tests/servers.py`` (skip without them; fail under ``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bulkchime.emulator import RunningEmulator

from .conftest import read_report, run_cli, team_account, write_csv
from .servers import require_postgres, require_redis, unique_name

pytestmark = pytest.mark.slow

#: Every runner process ends within this many seconds, or the test fails.
RUNNER_TIMEOUT = 150.0


@dataclass
class Runner:
    process: subprocess.Popen[str]
    stdout: str = ""
    stderr: str = ""

    @property
    def code(self) -> int | None:
        return self.process.returncode

    def describe(self) -> str:
        return f"exit {self.code}\n{self.stdout}\n{self.stderr[-3000:]}"


@pytest.fixture
def runners() -> Iterator[Callable[..., Runner]]:
    """Start ``bulkchime ARGS`` processes; kill what is still running afterwards."""
    started: list[Runner] = []

    def start(args: Sequence[str], cwd: Path) -> Runner:
        env = {k: v for k, v in os.environ.items() if k != "BULKCHIME_CRASHPOINT"}
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkchime", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runner = Runner(process)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.process.poll() is None:
            runner.process.kill()
        runner.process.communicate()


def finish(runners: Sequence[Runner]) -> None:
    """Wait for every runner (bounded), collecting its output."""
    deadline = time.monotonic() + RUNNER_TIMEOUT
    for runner in runners:
        left = max(1.0, deadline - time.monotonic())
        runner.stdout, runner.stderr = runner.process.communicate(timeout=left)


def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def job_url(name: str) -> str:
    return f"{require_postgres()}?job={name}"


def budget_url(name: str) -> str:
    return f"{require_redis()}?key={name}"


def effects(emulator: RunningEmulator, operation: str) -> dict[str, int]:
    result: dict[str, int] = emulator.stats()["effects"][operation]
    return result


def suspend_args(
    emulator: RunningEmulator, account: str, source: Path, checkpoint: str, *extra: str
) -> list[str]:
    return [
        "suspend",
        "--account",
        account,
        "--input",
        str(source),
        "--key",
        "user_id",
        "--checkpoint",
        checkpoint,
        "--endpoint-url",
        emulator.url,
        "--log-format",
        "json",
        *extra,
    ]


def invite_args(
    emulator: RunningEmulator, account: str, source: Path, checkpoint: str, *extra: str
) -> list[str]:
    return [
        "invite",
        "--account",
        account,
        "--input",
        str(source),
        "--checkpoint",
        checkpoint,
        "--endpoint-url",
        emulator.url,
        "--log-format",
        "json",
        *extra,
    ]


def throttled_share(emulator: RunningEmulator) -> float:
    stats: dict[str, Any] = emulator.stats()
    total = sum(stats["requests"].values())
    return float(stats["throttled"]) / max(1, total)


# -- one job, several runners ---------------------------------------------------------------


def test_four_runners_share_one_job_and_one_budget(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path
) -> None:
    rate = 20.0
    emulator = emulator_factory(accounts=1, users_per_account=12_000, rate=rate, burst=20)
    (account,) = [a.account_id for a in emulator.state.accounts()]
    ids = [u.user_id for u in emulator.state.users(account)]
    source = write_csv(tmp_path / "leavers.csv", "user_id", ids)
    url = job_url(unique_name("four"))
    args = suspend_args(
        emulator, account, source, url, "--budget", budget_url(unique_name("b")),
        "--rate", str(rate), "--lease", "5",
    )  # fmt: skip

    started = time.monotonic()
    group = [runners([*args, "--report", f"r{i}.jsonl"], tmp_path) for i in range(4)]
    finish(group)
    elapsed = time.monotonic() - started

    for runner in group:
        assert runner.code == 0, runner.describe()
    assert effects(emulator, "BatchSuspendUser") == {"total": 12_000, "distinct": 12_000}
    assert all(u.registration_status == "Suspended" for u in emulator.state.users(account))
    # Together within the rate: the emulator's bucket turned away almost nothing, and the
    # requests it took could not have come faster than R (plus its burst).
    assert throttled_share(emulator) <= 0.02
    requests = sum(emulator.stats()["requests"].values())
    assert requests <= 20 + rate * elapsed
    report = read_report(tmp_path / "r0.jsonl")
    assert len(report) == 12_000 and {r["status"] for r in report} == {"succeeded"}
    status = run_cli(["status", url])
    assert status.exit_code == 0, status.stderr
    assert "runners: 0 running, 4 gone" in status.stdout
    assert "succeeded: 12000" in status.stdout


def test_a_runner_killed_mid_run_loses_nothing_and_no_invite_is_repeated(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path
) -> None:
    emulator = emulator_factory(latency_ms=150.0)
    account = team_account(emulator, tmp_path)
    emails = [f"joiner{i}@example.org" for i in range(3_000)]
    source = write_csv(tmp_path / "joiners.csv", "email", emails)
    url = job_url(unique_name("kill"))
    args = invite_args(emulator, account, source, url, "--lease", "3", "--concurrency", "4")

    group = [runners([*args, "--report", f"r{i}.jsonl"], tmp_path) for i in range(3)]
    wait_for(lambda: effects(emulator, "InviteUsers")["total"] >= 600)
    victim = group[0]
    victim.process.send_signal(signal.SIGKILL)
    finish(group)

    assert victim.code == -signal.SIGKILL
    for runner in group[1:]:
        assert runner.code == 0, runner.describe()
    assert effects(emulator, "InviteUsers") == {"total": 3_000, "distinct": 3_000}
    assert {u.primary_email for u in emulator.state.users(account)} == set(emails)
    report = read_report(tmp_path / "r1.jsonl")
    assert len(report) == 3_000 and {r["status"] for r in report} == {"succeeded"}


def test_a_runner_frozen_past_its_lease_sends_nothing_for_what_it_lost(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path
) -> None:
    emulator = emulator_factory(latency_ms=100.0)
    account = team_account(emulator, tmp_path)
    emails = [f"hire{i}@example.org" for i in range(2_000)]
    source = write_csv(tmp_path / "hires.csv", "email", emails)
    url = job_url(unique_name("fence"))
    args = invite_args(emulator, account, source, url, "--lease", "2", "--concurrency", "4")

    frozen, other = (runners([*args, "--report", f"r{i}.jsonl"], tmp_path) for i in range(2))
    wait_for(lambda: effects(emulator, "InviteUsers")["total"] >= 300)
    frozen.process.send_signal(signal.SIGSTOP)
    time.sleep(4.0)  # twice the lease: the other runner takes its claims over
    frozen.process.send_signal(signal.SIGCONT)
    finish([frozen, other])

    assert frozen.code == 0, frozen.describe()
    assert other.code == 0, other.describe()
    assert "lease.lost" in frozen.stderr
    # Nothing the frozen runner held was sent twice: every email was invited once.
    assert effects(emulator, "InviteUsers") == {"total": 2_000, "distinct": 2_000}
    assert {u.primary_email for u in emulator.state.users(account)} == set(emails)


def test_sigint_returns_a_runner_s_claims_at_once(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path
) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=1_500, latency_ms=50.0)
    (account,) = [a.account_id for a in emulator.state.accounts()]
    ids = [u.user_id for u in emulator.state.users(account)]
    source = write_csv(tmp_path / "leavers.csv", "user_id", ids)
    url = job_url(unique_name("sigint"))
    # A lease far longer than the test: only the returned claims let the other finish.
    args = suspend_args(emulator, account, source, url, "--lease", "600", "--rate", "30")

    leaving, staying = (runners([*args, "--report", f"r{i}.jsonl"], tmp_path) for i in range(2))
    wait_for(lambda: effects(emulator, "BatchSuspendUser")["total"] >= 300)
    leaving.process.send_signal(signal.SIGINT)
    finish([leaving, staying])

    assert leaving.code in (0, 130), leaving.describe()
    assert staying.code == 0, staying.describe()
    assert effects(emulator, "BatchSuspendUser")["distinct"] == 1_500
    assert all(u.registration_status == "Suspended" for u in emulator.state.users(account))


def test_a_changed_input_under_the_same_job_exits_2(
    emulator: RunningEmulator, runners: Callable[..., Runner], tmp_path: Path
) -> None:
    account = emulator.state.accounts()[0].account_id
    ids = [u.user_id for u in emulator.state.users(account)]
    url = job_url(unique_name("changed"))
    first = run_cli(
        suspend_args(emulator, account, write_csv(tmp_path / "a.csv", "user_id", ids[:10]), url)
    )
    assert first.exit_code == 0, first.stdout + first.stderr
    changed = write_csv(tmp_path / "b.csv", "user_id", ids[10:20])
    second = run_cli(suspend_args(emulator, account, changed, url))
    assert second.exit_code == 2
    assert "input" in second.stderr
    assert effects(emulator, "BatchSuspendUser")["total"] == 10


# -- one budget, several jobs -----------------------------------------------------------------


def test_two_jobs_sharing_one_budget_key_stay_within_the_rate_together(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path
) -> None:
    rate = 20.0
    emulator = emulator_factory(accounts=2, users_per_account=3_000, rate=rate, burst=20)
    key = budget_url(unique_name("shared"))
    group = []
    started = time.monotonic()
    for n, acc in enumerate(emulator.state.accounts()):
        ids = [u.user_id for u in emulator.state.users(acc.account_id)]
        source = write_csv(tmp_path / f"job{n}.csv", "user_id", ids)
        # One job on a file checkpoint, the other on PostgreSQL: the budget is the same.
        checkpoint = str(tmp_path / "job0.ckpt.sqlite") if n == 0 else job_url(unique_name("j"))
        args = suspend_args(
            emulator, acc.account_id, source, checkpoint, "--budget", key, "--rate", str(rate),
            "--report", f"r{n}.jsonl",
        )  # fmt: skip
        group.append(runners(args, tmp_path))
    finish(group)
    elapsed = time.monotonic() - started

    for runner in group:
        assert runner.code == 0, runner.describe()
    assert effects(emulator, "BatchSuspendUser") == {"total": 6_000, "distinct": 6_000}
    assert throttled_share(emulator) <= 0.02
    assert sum(emulator.stats()["requests"].values()) <= 20 + rate * elapsed


# -- the servers fail mid-run ----------------------------------------------------------------


def test_redis_stopped_mid_run_pauses_the_runners_and_loses_nothing(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path, private_redis: Any
) -> None:
    emulator = emulator_factory(accounts=1, users_per_account=3_000, latency_ms=20.0)
    (account,) = [a.account_id for a in emulator.state.accounts()]
    ids = [u.user_id for u in emulator.state.users(account)]
    source = write_csv(tmp_path / "leavers.csv", "user_id", ids)
    args = suspend_args(
        emulator, account, source, job_url(unique_name("redis-down")),
        "--budget", f"{private_redis.url}?key=down", "--rate", "15",
    )  # fmt: skip

    group = [runners([*args, "--report", f"r{i}.jsonl"], tmp_path) for i in range(2)]
    wait_for(lambda: effects(emulator, "BatchSuspendUser")["total"] >= 500)
    private_redis.stop()
    time.sleep(0.5)  # requests already admitted finish; then nothing more goes out
    during = effects(emulator, "BatchSuspendUser")["total"]
    time.sleep(2.0)
    assert effects(emulator, "BatchSuspendUser")["total"] == during  # paused, not unlimited
    private_redis.start()
    finish(group)

    for runner in group:
        assert runner.code == 0, runner.describe()
    # A runner waiting for a token says so (one idle, its claims done, may not have asked).
    assert any("budget.unreachable" in runner.stderr for runner in group)
    assert effects(emulator, "BatchSuspendUser") == {"total": 3_000, "distinct": 3_000}


def test_postgres_restarted_mid_run_loses_nothing(
    emulator_factory: Any, runners: Callable[..., Runner], tmp_path: Path, restart_postgres: Any
) -> None:
    emulator = emulator_factory(latency_ms=60.0)
    account = team_account(emulator, tmp_path)
    emails = [f"starter{i}@example.org" for i in range(2_000)]
    source = write_csv(tmp_path / "starters.csv", "email", emails)
    url = job_url(unique_name("pg-restart"))
    args = invite_args(emulator, account, source, url, "--lease", "10", "--concurrency", "4")

    group = [runners([*args, "--report", f"r{i}.jsonl"], tmp_path) for i in range(2)]
    wait_for(lambda: effects(emulator, "InviteUsers")["total"] >= 400)
    restart_postgres()
    finish(group)

    for runner in group:
        assert runner.code == 0, runner.describe()
    assert effects(emulator, "InviteUsers") == {"total": 2_000, "distinct": 2_000}
    report = read_report(tmp_path / "r0.jsonl")
    assert len(report) == 2_000 and {r["status"] for r in report} == {"succeeded"}


# -- fixtures: servers a test may stop -------------------------------------------------------


@dataclass
class PrivateRedis:
    """A Redis server of the test's own, on a free loopback port, that it may stop."""

    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port",
             str(self.port), "--save", "", "--appendonly", "no"],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        wait_for(self._answers, 10)

    def stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True, timeout=10,
        )  # fmt: skip
        wait_for(lambda: not self._answers(), 10)

    def _answers(self) -> bool:
        ping = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5
        )
        return ping.stdout.strip() == "PONG"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    require_redis()
    if not _has("redis-server") or not _has("redis-cli"):
        _unavailable("stopping Redis mid-run needs redis-server and redis-cli on PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = PrivateRedis(port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def restart_postgres() -> Callable[[], None]:
    """Restart the test PostgreSQL server (its cluster on this machine)."""
    require_postgres()
    clusters = Path("/etc/postgresql")
    if not _has("pg_ctlcluster") or not clusters.is_dir() or os.geteuid() != 0:
        _unavailable("restarting PostgreSQL mid-run needs pg_ctlcluster, run as root")
    version = sorted(p.name for p in clusters.iterdir())[0]

    def restart() -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    return restart


def _has(program: str) -> bool:
    return shutil.which(program) is not None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true)")
    pytest.skip(reason)
