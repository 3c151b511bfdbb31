"""Every goal in one side-by-side table: the engine, the peers, the goal, met or not.

``python -m benchmarks [--quick]`` (or ``python -m benchmarks.goals``). In one run:

* three server settings, each on a fresh emulator with a bucket of R = 20 requests/s
  (burst 20), each run by the engine and by the peer scripts of
  :mod:`benchmarks.peers` -- (a) a boto3 loop with its default retries, (b)
  ``asyncio.gather`` + tenacity under a semaphore of 8 -- suspending the same users
  (BatchSuspendUser, 50 a request):

  - *clean*: 429s only, 15,000 users;
  - *faults*: 3 % of requests answered 500/503 and 3 % of users a per-user
    ``Throttled`` inside a 200, 15,000 users;
  - *slow API*: every answer after 600 ms, 6,000 users;

  the engine runs as an administrator would: ``--rate 20``, no ``--concurrency``;
* the engine alone at 2R (``--rate 40`` against R = 20);
* two engine processes on one account with no shared budget (what a user without
  Redis gets), each at ``--rate 20``;
* resolving a leavers list of 3,000 emails across 5 accounts of 2,000 users
  (:mod:`benchmarks.resolve`);
* ingesting 1M rows (:mod:`benchmarks.ingest`) and a whole 1M-row run's peak RSS
  (:mod:`benchmarks.memory`; 100k rows with ``--quick``).

**Efficiency** is users changed per second of the server's sending window, as a share
of the budget in full batches (R × 50 users/s): 1.0 is every request a full batch, at
the whole budget. The server's bucket starts full (R requests), which a sender that
bursts at the start turns into a few percent above 1.0 in a short run. Users lost are
counted by the emulator (distinct users changed). ``--quick`` runs a third of the users.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import ingest, memory, peers, resolve, scaleout
from ._harness import (
    EmulatorProcess,
    print_table,
    read_column,
    slice_csv,
    use_bench_env,
    user_ids_csv,
    write_result,
)

RATE = 20.0
#: Setting: (emulator settings, answer latency ms, users in a full run).
SETTINGS: dict[str, tuple[dict[str, float], float, int]] = {
    "clean": ({}, 0.0, 15_000),
    "faults (3% 5xx, 3% user Throttled)": (
        {"error_rate": 0.03, "user_error_rate": 0.03},
        0.0,
        15_000,
    ),
    "slow API (600 ms answers)": ({}, 600.0, 6_000),
}
PEERS = ("engine", "(b) gather + tenacity", "(a) boto3 loop")
WORK = peers.SUSPEND

Runner = Callable[[EmulatorProcess], dict[str, Any]]


def _engine(account: str, ids: Path, workdir: Path, rate: float) -> Runner:
    """The engine as an administrator runs it: ``--rate``, no ``--concurrency``."""
    return peers.engine_runner(account, ids, workdir, ["--rate", f"{rate:g}"], WORK)


def side_by_side(quick: bool, temp: Path) -> list[dict[str, Any]]:
    """Each setting, run by the engine and both peers on fresh emulators."""
    most = max(users for _, _, users in SETTINGS.values())
    (account,), all_ids = user_ids_csv(most)
    user_ids = read_column(all_ids, most)
    results = []
    for number, (setting, (server, latency_ms, users)) in enumerate(SETTINGS.items()):
        count = users // 3 if quick else users
        chosen = user_ids[:count]
        source = slice_csv(all_ids, temp / f"users{number}.csv", count)
        runners: dict[str, Runner] = {
            "engine": _engine(account, source, temp / f"engine{number}", RATE),
            "(b) gather + tenacity": lambda e, c=chosen: peers.gather_tenacity(
                e.url, account, c, WORK
            ),
            "(a) boto3 loop": lambda e, c=chosen: peers.boto3_loop(e.url, account, c, WORK),
        }
        for name, runner in runners.items():
            print(f"[goals] {setting}: {name} ...", flush=True)
            result = peers.run_peer(name, runner, rate=RATE, users=count, server=server,
                                    latency_ms=latency_ms, workload=WORK)  # fmt: skip
            results.append({"setting": setting, **result})
    print("[goals] at 2R: engine ...", flush=True)
    count = most // 3 if quick else most
    source = slice_csv(all_ids, temp / "users-2r.csv", count)
    two_r = peers.run_peer("engine", _engine(account, source, temp / "engine-2r", 2 * RATE),
                           rate=RATE, users=count, workload=WORK)  # fmt: skip
    results.append({"setting": "at 2R (--rate 40)", **two_r})
    return results


def _figure(results: list[dict[str, Any]], setting: str, peer: str) -> dict[str, Any] | None:
    return next((r for r in results if r["setting"] == setting and r["peer"] == peer), None)


def _cells(
    results: list[dict[str, Any]], setting: str, show: Callable[[dict[str, Any]], str]
) -> list[str]:
    return ["-" if (r := _figure(results, setting, peer)) is None else show(r) for peer in PEERS]


def table_rows(runs: list[dict[str, Any]], extra: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """One row per figure: figure, goal, engine, (b), (a), met."""
    rows: list[list[Any]] = []

    def efficiency(r: dict[str, Any]) -> str:
        return f"{r['users_share_of_R']:.3f}"

    def lost_and_429(r: dict[str, Any]) -> str:
        return f"{r['users_lost']} lost, {r['throttled_share']:.1%} 429"

    goals = {
        "clean": (0.99, "≥ 0.99, none lost"),
        "faults (3% 5xx, 3% user Throttled)": (0.93, "≥ 0.93, none lost"),
        "slow API (600 ms answers)": (0.90, "≥ 0.90, none lost"),
    }
    for setting, (floor, asked) in goals.items():
        engine = _figure(runs, setting, "engine")
        assert engine is not None
        met = engine["users_share_of_R"] >= floor and engine["users_lost"] == 0
        rows.append(
            [f"{setting}: efficiency", asked, *_cells(runs, setting, efficiency), _met(met)]
        )
        rows.append(
            [
                f"{setting}: users lost, 429s",
                "none lost",
                *_cells(runs, setting, lost_and_429),
                _met(engine["users_lost"] == 0),
            ]
        )
    two_r = _figure(runs, "at 2R (--rate 40)", "engine")
    assert two_r is not None
    met = two_r["throttled_share"] <= 0.01 and two_r["users_share_of_R"] >= 0.97
    rows.append(
        [
            "at 2R: 429s, efficiency",
            "≤ 1% 429, ≥ 0.97",
            f"{two_r['throttled_share']:.1%} 429, {two_r['users_share_of_R']:.3f}",
            "no rate: n/a",
            "no rate: n/a",
            _met(met),
        ]
    )
    for label, row in extra.items():
        rows.append([label, row["asked"], row["measured"], "n/a", "n/a", row["met"]])
    return rows


def _met(ok: bool | None) -> str:
    return "—" if ok is None else "yes" if ok else "NO"


def two_processes(quick: bool, temp: Path) -> dict[str, Any]:
    """Two engine processes, one per account of one emulator, no shared budget."""
    users = 3000 if quick else 12_000
    workdir = temp / "two"
    workdir.mkdir()
    result = scaleout.two_jobs(users, RATE, workdir, shared=False)
    return {
        "asked": "measured and documented (no goal)",
        "measured": f"{result['efficiency']:.2f} of R together, "
        f"{result['throttled_share']:.1%} 429, {result['lost_users']} lost",
        "met": _met(None),
        "raw": result,
    }


def memory_peak(quick: bool, temp: Path) -> dict[str, Any]:
    users = 100_000 if quick else 1_000_000
    result = memory.run_size(users, "user_id", temp / "memory", timeout=1800.0)
    return {
        "asked": "≤ 76 MB (1M rows)",
        "measured": f"{result['peak_rss_mb']:.1f} MB for {users:,} rows, "
        f"{result['report_succeeded']:,} succeeded",
        "met": _met(result["peak_rss_mb"] <= 76 and result["report_succeeded"] == users),
        "raw": result,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer users everywhere (~8 min)")
    options = parser.parse_args(argv)
    use_bench_env()
    started = time.monotonic()
    extra: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bulkchime-bench-goals-") as name:
        temp = Path(name)
        runs = side_by_side(options.quick, temp)
        print_table("side by side", ["figure", "goal", *PEERS, "met"], table_rows(runs, {}))
        print("[goals] two processes, no shared budget ...", flush=True)
        extra["two processes, no shared budget"] = two_processes(options.quick, temp)
        extra.update(other_goals(options.quick, temp))
    rows = table_rows(runs, extra)
    table = print_table(
        "goals, side by side" + (" (quick)" if options.quick else ""),
        ["figure", "goal", *PEERS, "met"],
        rows,
    )
    total = round(time.monotonic() - started, 1)
    print(f"benchmark seconds: {total}")
    raw = {label: row.get("raw") for label, row in extra.items()}
    data = {"table": table, "rows": rows, "runs": runs, "extra": raw, "total_seconds": total}
    path = write_result("goals" + ("-quick" if options.quick else ""), data)
    print(f"results: {path}")
    return data


def other_goals(quick: bool, temp: Path) -> dict[str, dict[str, Any]]:
    """The engine-only goals: resolution, ingest, memory."""
    found: dict[str, dict[str, Any]] = {}
    print("[goals] resolving 3,000 emails with no account ...", flush=True)
    cases = {c["case"]: c for c in resolve.main(["--server-rate", f"{RATE:g}"])["cases"]}
    big, few = cases["dry run"], cases["dry run, a handful"]
    found["resolve 3,000 emails, 5 accounts"] = {
        "asked": "≤ 150 read requests, every row resolved; a handful still per email",
        "measured": f"{big['read_only_total']} reads ({big['resolution']}); "
        f"{few['emails']} emails: {few['read_only_total']} reads ({few['resolution']})",
        "met": _met(
            big["read_only_total"] <= 150
            and big["returncode"] == 0
            and not big["not_sent"]
            and few["resolution"].startswith("per-email")
        ),
        "raw": cases,
    }
    rows = 100_000 if quick else 1_000_000
    print(f"[goals] ingest of {rows:,} rows ...", flush=True)
    runs = ingest.main(["--rows", str(rows), "--backends", "sqlite,postgres", "--rounds", "1"])
    for backend, (found_runs,) in runs["runs"]["this"].items():
        found[f"ingest {rows:,} rows ({backend})"] = {
            "asked": "< 10 s (1M rows), peak RSS ≤ 76 MB",
            "measured": f"{found_runs['seconds']:.1f} s from start to `ingested` "
            f"({found_runs['ingest_seconds']:.1f} s for the rows), "
            f"peak {found_runs['peak_rss_mb']:.1f} MB",
            "met": _met(found_runs["seconds"] < 10 and found_runs["peak_rss_mb"] <= 76),
            "raw": found_runs,
        }
    print("[goals] peak RSS ...", flush=True)
    found["whole run: peak RSS"] = memory_peak(quick, temp)
    return found


if __name__ == "__main__":
    main()
