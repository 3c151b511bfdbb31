"""Streaming: peak memory of the engine on inputs of 100k and 1M rows (and email keys).

The engine runs as a user runs it, in its own process::

    bulkchime update-license --account ID --input big.csv --key user_id --license Pro \\
        --endpoint-url URL --rate 100000 --concurrency 16

against ``bulkchime emulator --users-per-account N --accounts 1`` (no rate limit) in
another process. Its peak RSS is the kernel's high-water mark for the process
(``VmHWM`` in ``/proc/self/status``, read by the engine's process as it exits; not
``ru_maxrss``, which Linux inflates with the parent's RSS at fork), and its RSS is
polled every 0.25 s for the plot.
With ``--key email`` the engine first scans the account (ListUsers, 200 a page)
into its SQLite checkpoint to resolve emails to ids.

Usage: ``python -m benchmarks.memory [--quick]`` (quick: 10k and 100k rows, email at 10k;
full: 100k and 1M rows, email at 100k; the 1M run takes several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from ._harness import (
    FIGURES,
    RESULTS,
    EmulatorProcess,
    print_table,
    read_engine_log,
    run_engine,
    slice_csv,
    user_ids_csv,
    write_result,
)

#: Peak RSS the issue allows the engine, in MB.
RSS_LIMIT_MB = 150.0


def run_size(users: int, key: str, workdir: Path, timeout: float) -> dict[str, Any]:
    """One engine run over *users* rows keyed by *key*; its memory, phases and report."""
    workdir.mkdir(parents=True, exist_ok=True)
    (account_id,), all_rows = user_ids_csv(users, key=key)
    source = slice_csv(all_rows, workdir / f"input-{users}.csv", users, key=key)
    report = workdir / "report.jsonl"
    with EmulatorProcess(users=users, accounts=1) as emulator:
        run = run_engine(
            [
                "update-license",
                "--account",
                account_id,
                "--input",
                str(source),
                "--key",
                key,
                "--license",
                "Pro",
                "--endpoint-url",
                emulator.url,
                "--rate",
                "100000",
                "--concurrency",
                "16",
                "--checkpoint",
                str(workdir / "run.ckpt.sqlite"),
                "--report",
                str(report),
            ],  # fmt: skip
            workdir=workdir,
            timeout=timeout,
        )
        effects = emulator.stats()["effects"]["BatchUpdateUser"]
    events = list(read_engine_log(run.log_path))
    marks = {e.get("event"): e["t"] for e in events if "t" in e}
    first = run.started_at
    records = succeeded = 0
    if report.exists():
        with report.open(encoding="utf-8") as handle:
            for line in handle:
                records += 1
                succeeded += '"status":"succeeded"' in line
    input_mb = source.stat().st_size / 2**20
    ingest = marks.get("ingested", first) - first
    resolve = marks.get("phase.start", first) - marks.get("ingested", first)
    send = marks.get("phase.end", first) - marks.get("phase.start", first)
    return {
        "users": users,
        "key": key,
        "input_mb": round(input_mb, 1),
        "exit_code": run.returncode,
        "timed_out": run.timed_out,
        "wall_seconds": round(run.wall_seconds, 1),
        "ingest_seconds": round(ingest, 1),
        "resolve_seconds": round(resolve, 1),
        "send_seconds": round(send, 1),
        # The report and the summary, written from the checkpoint after the last batch.
        "after_send_seconds": round(run.wall_seconds - (marks.get("phase.end", first) - first), 1),
        "users_per_second": round(users / run.wall_seconds, 1),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "cpu_seconds": round(run.cpu_seconds, 1),
        "report_records": records,
        "report_succeeded": succeeded,
        "emulator_distinct_users": effects["distinct"],
        "rss_series": [(round(t, 2), round(m, 1)) for t, m in run.rss_series],
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """RSS over the run, per input size (time as a share of each run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    for result in results:
        series = result["rss_series"]
        if not series:
            continue
        end = series[-1][0] or 1.0
        ax.plot(
            [t / end for t, _ in series],
            [m for _, m in series],
            label=f"{result['users']:,} rows, key {result['key']} ({result['wall_seconds']:.0f} s)",
        )
    ax.axhline(RSS_LIMIT_MB, color="grey", linestyle="--", linewidth=0.8, label="150 MB")
    ax.set_ylim(0, RSS_LIMIT_MB * 1.2)
    ax.set_xlabel("share of the run (ingest, send, report)")
    ax.set_ylabel("engine RSS (MB)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows (email at 10k)")
    options = parser.parse_args(argv)
    if options.quick:
        runs = [(10_000, "user_id"), (100_000, "user_id"), (10_000, "email")]
    else:
        runs = [(100_000, "user_id"), (1_000_000, "user_id"), (100_000, "email")]
    results = []
    with tempfile.TemporaryDirectory(prefix="bulkchime-bench-memory-") as temp:
        for number, (users, key) in enumerate(runs):
            print(f"[memory] {users:,} rows, key {key} ...", flush=True)
            timeout = 120 + users * 0.003  # ~3 ms a row: far above what it takes
            results.append(run_size(users, key, Path(temp) / f"m{number}", timeout))
    rows = [
        [
            f"{r['users']:,}",
            r["key"],
            f"{r['input_mb']:.1f}",
            f"{r['peak_rss_mb']:.1f}",
            f"{r['wall_seconds']:.1f}",
            f"{r['ingest_seconds']:.1f} / {r['resolve_seconds']:.1f} / {r['send_seconds']:.1f} "
            f"/ {r['after_send_seconds']:.1f}",
            f"{r['users_per_second']:,.0f}",
            f"{r['report_succeeded']:,} / {r['report_records']:,}",
            r["exit_code"],
        ]
        for r in results
    ]
    table = print_table(
        "memory: engine peak RSS (VmHWM) by input size",
        ["rows", "key", "input MB", "peak RSS MB", "wall s",
         "start+ingest / resolve / send / report s", "users/s", "report: succeeded / records",
         "exit"],
        rows,
    )  # fmt: skip
    by_key = [r for r in results if r["key"] == "user_id"]
    if len(by_key) >= 2:
        small, large = by_key[0], by_key[-1]
        growth = large["peak_rss_mb"] - small["peak_rss_mb"]
        print(
            f"{large['users'] // small['users']}x the rows: peak RSS {small['peak_rss_mb']:.1f} -> "
            f"{large['peak_rss_mb']:.1f} MB ({growth:+.1f} MB)"
        )
    png = RESULTS / ("memory" + ("-quick" if options.quick else "") + ".png")
    plot(results, png)
    if not options.quick:
        plot(results, FIGURES / "memory.png")
    data = {"rss_limit_mb": RSS_LIMIT_MB, "table": table, "runs": results}
    path = write_result("memory" + ("-quick" if options.quick else ""), data)
    print(f"results: {path}\nplot: {png}")
    return data


if __name__ == "__main__":
    main()
