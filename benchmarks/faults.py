"""Full batches under faults: suspends against a server that fails 5xx and throttles users.

``python -m benchmarks.faults [--users N] [--rate R] [--faults F] [--latency-ms MS]
[--before DIR] [--rounds K]``

The emulator (bucket R, burst R) answers a share of requests 500/503 (``--error-rate``)
and a share of batch items with a per-user ``Throttled`` (``--user-error-rate``), 3 %
each by default; the engine suspends N users at ``--rate R``. Efficiency is the users
suspended, in full batches' worth (÷ 50), per second of the sending window (first to
last BatchSuspendUser at the emulator), as a share of R: 1.0 would be every request a
full batch, at the whole budget. With ``--before DIR`` another checkout's engine runs
the same scenario in the same run, alternated, for a side-by-side figure.
``--faults 0 --latency-ms 600`` is the slow-API scenario (requests in flight).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._harness import (
    ENGINE_CODE_VARIABLE,
    EmulatorProcess,
    print_table,
    read_engine_log,
    run_engine,
    slice_csv,
    user_ids_csv,
    write_result,
)
from .scaleout import Window

BATCH = 50


def run_once(
    users: int, rate: float, faults: float, workdir: Path, latency_ms: float = 0.0
) -> dict[str, Any]:
    """One engine run of *users* suspends under the faults; its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    (account,), source = user_ids_csv(users, accounts=1, seed=21)
    ids = slice_csv(source, workdir / "users.csv", users)
    with EmulatorProcess(
        users=users, accounts=1, rate=rate, burst=int(rate), seed=21, latency_ms=latency_ms
    ) as emu:
        emu.configure(error_rate=faults, user_error_rate=faults)
        args = ["suspend", "--account", account, "--input", str(ids), "--key", "user_id",
                "--endpoint-url", emu.url, "--rate", str(rate),
                "--checkpoint", str(workdir / "f.ckpt.sqlite")]  # fmt: skip
        with Window(emu, "BatchSuspendUser") as window:
            run = run_engine(args, workdir=workdir, timeout=600)
        stats = emu.stats()
    if run.returncode != 0:
        print(f"[faults] engine exit {run.returncode}:\n{run.stdout[-1500:]}", flush=True)
    events = read_engine_log(run.log_path)
    sizes = [e["size"] for e in events if e.get("event") == "batch" and "size" in e]
    done = stats["effects"]["BatchSuspendUser"]["distinct"]
    return {
        "exit_code": run.returncode,
        "efficiency": done / BATCH / window.seconds / rate if window.seconds else 0.0,
        "requests": stats["requests"].get("BatchSuspendUser", 0),
        "batches_not_full": sum(1 for size in sizes if size < BATCH),
        "users_suspended": done,
        "lost_users": users - done,
        "seconds": window.seconds,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=15_000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--faults", type=float, default=0.03)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the emulator's answer time")
    parser.add_argument("--before", type=Path, help="another checkout, measured alongside")
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args(argv)
    versions: list[tuple[str, Path | None]] = [("this", None)]
    if options.before:
        versions.insert(0, ("before", options.before))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in versions}
    with tempfile.TemporaryDirectory(prefix="bulkchime-faults-") as temp:
        for round_number in range(options.rounds):
            order = versions if round_number % 2 == 0 else versions[::-1]
            for name, tree in order:
                if tree is not None:
                    os.environ[ENGINE_CODE_VARIABLE] = str(tree)
                try:
                    workdir = Path(temp) / f"{name}-{round_number}"
                    results[name].append(
                        run_once(
                            options.users,
                            options.rate,
                            options.faults,
                            workdir,
                            options.latency_ms,
                        )  # fmt: skip
                    )
                finally:
                    os.environ.pop(ENGINE_CODE_VARIABLE, None)
    rows = [
        [name, r["exit_code"], r["efficiency"], r["requests"], r["batches_not_full"],
         r["users_suspended"], r["lost_users"], r["seconds"]]
        for name, runs in results.items() for r in runs
    ]  # fmt: skip
    print_table(
        f"{options.users} suspends at R={options.rate:g}, {options.faults:.0%} 5xx and "
        f"{options.faults:.0%} per-user Throttled, answers after {options.latency_ms:g} ms",
        ["engine", "exit", "efficiency (full batches/s ÷ R)", "requests", "batches not full",
         "suspended", "lost", "seconds"],
        rows,
    )  # fmt: skip
    write_result("faults", results)
    return results


if __name__ == "__main__":
    main()
