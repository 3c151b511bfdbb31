"""Scale-out: several runners and jobs against one emulator bucket of R requests/s.

``python -m benchmarks.scaleout [--users N] [--rate R]``

Scenarios, measured side by side in one run against emulators with a server bucket
of R (burst R):

- (a) 4 runners on one job (PostgreSQL checkpoint, Redis budget);
- (b) two jobs (one account each) sharing one Redis budget key;
- (c) the same two jobs without a shared budget: each paces itself, for comparison;
- takeover: 2 runners, one SIGKILLed mid-run; seconds from the kill until the other
  takes over the victim's claims (``runner.took_over``; the lease is 5 s);

Ingest into PostgreSQL against SQLite is :mod:`benchmarks.store_ingest`.

Efficiency is the emulator's accepted mutating requests per second over the window
from the first to the last of them, as a share of R; 429 share is the emulator's
throttled count over every request it received. Needs PostgreSQL and Redis at
``BULKCHIME_TEST_POSTGRES_URL`` / ``BULKCHIME_TEST_REDIS_URL`` (defaults: loopback).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._harness import (
    EmulatorProcess,
    bench_env,
    engine_command,
    print_table,
    read_engine_log,
    slice_csv,
    user_ids_csv,
    write_result,
)

POSTGRES = os.environ.get(
    "BULKCHIME_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("BULKCHIME_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Every engine process is killed after this long.
TIMEOUT = 600.0


def _name(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


class Window:
    """Polls the emulator: when mutating requests were first and last accepted."""

    def __init__(self, emulator: EmulatorProcess, operation: str) -> None:
        self.emulator = emulator
        self.operation = operation
        self.first: float | None = None
        self.last: float | None = None
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            count = self.emulator.stats()["requests"].get(self.operation, 0)
            if count > self._seen:
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                self._seen = count

    def __enter__(self) -> Window:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def seconds(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return max(self.last - self.first, 1e-9)


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    workdir: Path


def _start(args: Sequence[str], workdir: Path) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "engine.log.jsonl").open("wb")
    process = subprocess.Popen(
        engine_command([*args, "--log-format", "json"]),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=bench_env(),
    )
    log.close()
    return Proc(process, workdir)


def _wait(procs: Sequence[Proc]) -> list[int]:
    deadline = time.monotonic() + TIMEOUT
    codes = []
    for proc in procs:
        try:
            codes.append(proc.process.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.process.kill()
            codes.append(proc.process.wait())
    return codes


def _suspend(url: str, account: str, source: Path, *extra: str) -> list[str]:
    return ["suspend", "--account", account, "--input", str(source), "--key", "user_id",
            "--endpoint-url", url,
            *extra]  # fmt: skip


def _measure(
    emulator: EmulatorProcess, rate: float, jobs: list[list[str]], workdir: Path, users: int
) -> dict[str, Any]:
    burst = int(rate)
    with Window(emulator, "BatchSuspendUser") as window:
        procs = [_start(args, workdir / f"p{n}") for n, args in enumerate(jobs)]
        codes = _wait(procs)
    stats = emulator.stats()
    sent = stats["requests"].get("BatchSuspendUser", 0)
    throttled = stats["throttled"]
    accepted = sent - throttled
    effects = stats["effects"]["BatchSuspendUser"]
    seconds = window.seconds or 1e-9
    return {
        "exit_codes": codes,
        "efficiency": accepted / seconds / rate,
        # The server's bucket starts full: its burst is not the rate's doing.
        "efficiency_net_of_burst": (accepted - burst) / seconds / rate,
        "throttled_share": throttled / max(1, sum(stats["requests"].values())),
        "throttled": throttled,
        "requests": sum(stats["requests"].values()),
        "seconds": window.seconds,
        "lost_users": users - effects["distinct"],
        "repeats": effects["total"] - effects["distinct"],
    }


def four_runners(users: int, rate: float, workdir: Path) -> dict[str, Any]:
    """(a) 4 runners on one job, one Redis budget."""
    (account,), source = user_ids_csv(users, accounts=1, seed=11)
    ids = slice_csv(source, workdir / "a.csv", users)
    with EmulatorProcess(users=users, accounts=1, rate=rate, burst=int(rate), seed=11) as emu:
        job = f"{POSTGRES}?job={_name('a')}"
        args = _suspend(emu.url, account, ids, "--checkpoint", job, "--budget",
                        f"{REDIS}?key={_name('a')}", "--rate", str(rate))  # fmt: skip
        return _measure(emu, rate, [args] * 4, workdir / "a", users)


def two_jobs(users: int, rate: float, workdir: Path, *, shared: bool) -> dict[str, Any]:
    """(b) two jobs sharing one budget key, or (c) the same two without."""
    half = users // 2
    accounts, source = user_ids_csv(half, accounts=2, seed=12)
    tag = "b" if shared else "c"
    with EmulatorProcess(users=half, accounts=2, rate=rate, burst=int(rate), seed=12) as emu:
        key = ["--budget", f"{REDIS}?key={_name(tag)}"] if shared else []
        jobs = []
        for n, account in enumerate(accounts):
            ids = slice_csv(source, workdir / f"{tag}{n}.csv", half, skip=n * half)
            checkpoint = str(workdir / f"{tag}{n}.ckpt.sqlite")
            jobs.append(_suspend(emu.url, account, ids, "--checkpoint", checkpoint, "--rate",
                                 str(rate), *key))  # fmt: skip
        return _measure(emu, rate, jobs, workdir / tag, users)


def takeover(workdir: Path, lease: float = 5.0) -> dict[str, Any]:
    """Seconds from a runner's SIGKILL until another resumes its in-flight items."""
    users = 3000
    (account,), source = user_ids_csv(users, accounts=1, seed=13)
    ids = slice_csv(source, workdir / "t.csv", users)
    with EmulatorProcess(users=users, accounts=1, latency_ms=300.0, seed=13) as emu:
        job = f"{POSTGRES}?job={_name('t')}"
        args = _suspend(emu.url, account, ids, "--checkpoint", job, "--lease", str(lease),
                        "--rate", "20", "--concurrency", "4")  # fmt: skip
        victim, other = (_start(args, workdir / f"t{n}") for n in range(2))
        deadline = time.monotonic() + 60
        while emu.stats()["effects"]["BatchSuspendUser"]["total"] < 500:
            assert time.monotonic() < deadline, "the runners did not start"
            time.sleep(0.05)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        codes = _wait([victim, other])
        effects = emu.stats()["effects"]["BatchSuspendUser"]
    resumed = [
        e["t"] for e in read_engine_log(other.workdir / "engine.log.jsonl")
        if e.get("event") == "runner.took_over" and e.get("t", 0) > killed_at
    ]  # fmt: skip
    return {
        "lease": lease,
        "exit_codes": codes,
        "takeover_seconds": (min(resumed) - killed_at) if resumed else None,
        "lost_users": users - effects["distinct"],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=12_000)
    parser.add_argument("--rate", type=float, default=20.0)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bulkchime-scaleout-") as temp:
        workdir = Path(temp)
        results: dict[str, Any] = {
            "a_four_runners": four_runners(options.users, options.rate, workdir),
            "b_two_jobs_shared_budget": two_jobs(options.users, options.rate, workdir, shared=True),
            "c_two_jobs_own_budgets": two_jobs(options.users, options.rate, workdir, shared=False),
            "takeover": takeover(workdir),
        }
    rows = [
        [name, r["exit_codes"], r["efficiency"], r["efficiency_net_of_burst"],
         f"{r['throttled_share']:.2%}", r["throttled"],
         r["requests"], r["seconds"], r["lost_users"], r["repeats"]]
        for name, r in results.items() if "efficiency" in r
    ]  # fmt: skip
    print_table(
        f"Scale-out at R={options.rate:g}, {options.users} suspends",
        ["scenario", "exit codes", "efficiency (of R)", "net of the server's burst",
         "429 share", "429s", "requests", "seconds", "lost", "repeats"],
        rows,
    )  # fmt: skip
    take = results["takeover"]
    print(f"takeover after SIGKILL (lease {take['lease']:g} s): {take['takeover_seconds']} s, "
          f"exit codes {take['exit_codes']}, lost {take['lost_users']}\n")  # fmt: skip
    write_result("scaleout", results)
    return results


if __name__ == "__main__":
    main()
