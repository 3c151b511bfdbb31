"""``bulkchime demo``: a license migration against an in-process emulator, with faults."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .emulator import EmulatorConfig, emulator_in_thread
from .engine import RunOptions, run_job
from .job import job_from_dict

__all__ = ["run_demo"]

#: The demo's emulator: two seeded accounts, a server rate limit and a few faults.
DEMO_EMULATOR = EmulatorConfig(
    accounts=2,
    users_per_account=10_000,
    seed=0,
    rate=50.0,
    burst=50,
    error_rate=0.03,
    user_error_rate=0.02,
)


def run_demo(workdir: Path, out: Callable[[str], None] = print) -> int:
    """Migrate every Basic user of ``Example Corp 1`` to Pro; return the exit code."""
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / "demo.ckpt.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{checkpoint}{suffix}").unlink(missing_ok=True)
    # The emulator accepts only its own test keys; never send real ones to it.
    os.environ["AWS_ACCESS_KEY_ID"] = DEMO_EMULATOR.access_key_id
    os.environ["AWS_SECRET_ACCESS_KEY"] = DEMO_EMULATOR.secret_access_key
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    with emulator_in_thread(DEMO_EMULATOR) as emulator:
        out(
            f"emulator: {emulator.url} ({DEMO_EMULATOR.accounts} accounts x "
            f"{DEMO_EMULATOR.users_per_account} users, server limit {DEMO_EMULATOR.rate:g} req/s, "
            f"{DEMO_EMULATOR.error_rate:.0%} 5xx, "
            f"{DEMO_EMULATOR.user_error_rate:.0%} per-user throttles)"
        )
        out("job: update-license Basic -> Pro for every Basic user of 'Example Corp 1'")
        job = job_from_dict(
            {
                "name": "demo",
                "action": "update-license",
                "account_name": "Example Corp 1",
                "input": {"query": {"license": "Basic"}},
                "params": {"license": "Pro"},
                "limits": {"rate": 100.0, "burst": 20, "concurrency": 8},
                "aws": {"endpoint_url": emulator.url, "region": "us-east-1"},
            }
        )
        result = run_job(
            job,
            RunOptions(checkpoint=checkpoint, report=workdir / "demo.report.csv", out=out),
        )
        stats = emulator.stats()
        effects = stats["effects"]["BatchUpdateUser"]
        out(
            f"emulator saw: {sum(stats['requests'].values())} requests, "
            f"{stats['throttled']} throttled, {stats['faults']} faults, "
            f"{effects['distinct']} users changed"
        )
    out(f"next: bulkchime status {checkpoint}   (counts, errors, speed)")
    out(f"      bulkchime report {checkpoint} --format csv   (one row per user)")
    return result.exit_code
