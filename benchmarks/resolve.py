"""Resolution: a leavers list of emails with no account, across several accounts.

``python -m benchmarks.resolve [--accounts 5 --users-per-account 2000 --emails 3000]``
starts ``bulkchime emulator --accounts A --users-per-account U`` in its own process,
writes an ``email``-only CSV of E users drawn from every account, and runs, as a user
runs it::

    bulkchime logout --input leavers.csv --dry-run --endpoint-url URL

It prints the read-only requests the emulator counted, by operation, the seconds spent
resolving (log: ``ingested`` to ``resolve.way``) and in all, and which way resolution
took; then the same for a handful of emails (``--small``, default 5), which must still
be looked up one by one. ``--before`` also runs the big case the way every version
before this one did (two look-ups per email: forced here by switching the scan off in
the engine's process). ``--real-run`` runs the big case for real as well (E LogoutUser
requests). ``--server-rate R`` gives the emulator a rate limit, as the service has one
(with R = 20, the per-email path takes about 5 minutes). Results:
``benchmarks/results/resolve.json``.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._harness import (
    EmulatorProcess,
    bench_env,
    print_table,
    read_engine_log,
    run_engine,
    user_ids_csv,
    write_result,
)

#: Read-only operations (everything else changes something).
READ_ONLY = ("ListAccounts", "ListUsers", "GetAccount", "GetUser", "GetAccountSettings")

#: The engine with the scan switched off: every email looked up on its own, as before.
_PER_EMAIL_ENGINE = (
    "import bulkchime.engine._resolve_no_account as resolution\n"
    "resolution.worth_listing = lambda emails: False\n"
    "from bulkchime.cli import main; main()"
)


def leavers_csv(source: Path, target: Path, emails: int, seed: int = 1) -> Path:
    """An ``email``-only CSV of *emails* users drawn at random from every account."""
    with source.open(newline="") as handle:
        reader = csv.reader(handle)
        column = next(reader).index("email")
        every = [row[column] for row in reader]
    chosen = random.Random(seed).sample(every, emails)
    target.write_text("email\n" + "".join(f"{email}\n" for email in chosen))
    return target


def _read_only(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {
        op: after["requests"].get(op, 0) - before["requests"].get(op, 0)
        for op in READ_ONLY
        if after["requests"].get(op, 0) - before["requests"].get(op, 0)
    }


def _plan_line(stdout: str, prefix: str) -> str:
    return next((line for line in stdout.splitlines() if line.startswith(prefix)), "")


def measure(
    emulator: EmulatorProcess,
    leavers: Path,
    workdir: Path,
    timeout: float,
    *,
    dry_run: bool = True,
    per_email: bool = False,
) -> dict[str, Any]:
    """One ``bulkchime logout`` over *leavers*: read-only requests, seconds, the plan."""
    args = ["logout", "--input", str(leavers), "--endpoint-url", emulator.url]
    args += ["--checkpoint", str(workdir / "leavers.ckpt.sqlite")]
    if dry_run:
        args.append("--dry-run")
    workdir.mkdir(parents=True, exist_ok=True)
    before = emulator.stats()
    if per_email:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", _PER_EMAIL_ENGINE, *args, "--log-format", "json"],
            cwd=workdir, env=bench_env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        seconds, returncode, stdout = time.monotonic() - started, done.returncode, done.stdout
        log = workdir / "engine.log.jsonl"
        log.write_text(done.stderr)
    else:
        run = run_engine(args, workdir=workdir, timeout=timeout)
        seconds, returncode, stdout, log = (
            run.wall_seconds,
            run.returncode,
            run.stdout,
            run.log_path,
        )
    reads = _read_only(before, emulator.stats())
    events = {event["event"]: event for event in read_engine_log(log)}
    way = events.get("resolve.way", {})
    resolve_seconds = None
    if "ingested" in events and way:
        resolve_seconds = way["t"] - events["ingested"]["t"]
    return {
        "dry_run": dry_run,
        "returncode": returncode,
        "seconds": seconds,
        "resolve_seconds": resolve_seconds,
        "read_only": reads,
        "read_only_total": sum(reads.values()),
        "plan": _plan_line(stdout, "plan:"),
        "resolution": way.get("how", ""),
        "not_sent": _plan_line(stdout, "not sent:"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resolve", description=__doc__)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--users-per-account", type=int, default=2000)
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--small", type=int, default=5, help="emails of the small case")
    parser.add_argument("--before", action="store_true", help="also run the per-email path")
    parser.add_argument("--real-run", action="store_true", help="also run the big case for real")
    parser.add_argument(
        "--server-rate", type=float, default=0.0, help="the emulator's rate limit (0: none)"
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    options = parser.parse_args(argv)
    accounts, users = options.accounts, options.users_per_account
    _, every = user_ids_csv(users, accounts=accounts, key="email")
    cases: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bulkchime-resolve-") as temp,
        EmulatorProcess(
            users=users, accounts=accounts, rate=options.server_rate, burst=int(options.server_rate)
        ) as emulator,
    ):
        workdir = Path(temp)
        big = leavers_csv(every, workdir / "leavers.csv", options.emails)
        small = leavers_csv(every, workdir / "few.csv", options.small, seed=2)
        runs = [("dry run", big, {}), ("dry run, a handful", small, {})]
        if options.real_run:
            runs.append(("real run", big, {"dry_run": False}))
        if options.before:
            runs.append(("dry run, per-email (before)", big, {"per_email": True}))
        for label, leavers, how in runs:
            emails = options.emails if leavers == big else options.small
            folder = workdir / "".join(c if c.isalnum() else "-" for c in label)
            case = measure(emulator, leavers, folder, options.timeout, **how)
            cases.append({"case": label, "emails": emails, **case})
    title = f"Resolving emails with no account: {accounts} accounts x {users} users"
    print_table(
        title,
        ["case", "emails", "read-only requests", "by operation", "resolving s", "run s", "exit",
         "resolution"],
        [
            [c["case"], c["emails"], c["read_only_total"],
             ", ".join(f"{op} {n}" for op, n in sorted(c["read_only"].items())),
             c["resolve_seconds"] if c["resolve_seconds"] is not None else "-",
             c["seconds"], c["returncode"], c["resolution"] or "-"]
            for c in cases
        ],
    )  # fmt: skip
    for case in cases:
        print(f"{case['case']}: {case['plan']} {case['not_sent']}".rstrip())
    result = {
        "server_rate": options.server_rate,
        "accounts": accounts,
        "users_per_account": users,
        "emails": options.emails,
        "per_email_requests_estimate": 2 * options.emails,
        "cases": cases,
    }
    path = write_result("resolve", result)
    print(f"written: {path}")
    return result


if __name__ == "__main__":
    main()
