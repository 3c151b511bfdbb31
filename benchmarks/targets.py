"""The first targets (rate, peers, streaming, overhead): ``python -m benchmarks.targets [--quick]``.

Each benchmark starts its own emulators and stops by itself; ``--quick`` shortens
each one (minutes instead of tens of minutes). Results: ``benchmarks/results/*.json``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from . import memory, overhead, peers, rate
from ._harness import print_table, write_result


def _scenario(results: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(s for s in results["scenarios"] if s["scenario"].startswith(prefix))


def targets(
    rates: dict[str, Any], peer: dict[str, Any], mem: dict[str, Any], over: dict[str, Any]
) -> list[list[Any]]:
    """One row per target of the issue: what was asked, what was measured, met or not."""
    quarter = next(s for s in rates["scenarios"] if s["scenario"].startswith("at R, burst ")
                   and "shared" not in s["scenario"] and s["engine_burst"] != 20)  # fmt: skip
    two_r = _scenario(rates, "at 2R (adaptive)")
    no_rate = _scenario(rates, "no rate given")
    retry = _scenario(rates, "Retry-After")
    rows: list[list[Any]] = []

    def row(target: str, asked: str, measured: str, met: bool) -> None:
        rows.append([target, asked, measured, "yes" if met else "NO"])

    steady = quarter["steady_share_of_R"] or 0.0
    row(
        "1 efficiency at R",
        "served ≥ 0.97 R, 429 ≤ 2%, none lost",
        f"served {quarter['served_share_of_R']:.3f} R (steady {steady:.3f}), "
        f"429 {quarter['throttled_share']:.1%}, lost {quarter['lost_users']}",
        min(quarter["served_share_of_R"], steady) >= 0.97
        and quarter["throttled_share"] <= 0.02
        and quarter["lost_users"] == 0,
    )
    for label, scenario in (("2 adaptive, at 2R", two_r), ("2 adaptive, no rate", no_rate)):
        steady = scenario["steady_share_of_R"] or 0.0
        row(
            label,
            "served ≥ 0.90 R, none lost",
            f"served {scenario['served_share_of_R']:.3f} R (steady {steady:.3f}), "
            f"429 {scenario['throttled_share']:.1%}, lost {scenario['lost_users']}",
            min(scenario["served_share_of_R"], steady) >= 0.9 and scenario["lost_users"] == 0,
        )
    served = retry["batch_requests_served"] / retry["phase_seconds"]
    row(
        "2 Retry-After honoured",
        "server 0.5/s, engine at 5/s",
        f"served {served:.2f}/s, {retry['throttled']} 429s of {retry['batch_requests_sent']}",
        retry["lost_users"] == 0 and served >= 0.4,
    )
    for setting in sorted({p["user_error_rate"] for p in peer["peers"]}):
        group = [p for p in peer["peers"] if p["user_error_rate"] == setting]
        a, b, c = group[0], group[1], group[2]
        row(
            f"3 peers ({setting:.0%} user throttles)",
            "429s (b) ≥ 3× (c), throughput (c) ≥ (b); (c) loses none",
            f"429s (b) {b['throttled']} vs (c) {c['throttled']}; served/R (b) "
            f"{b['served_share_of_R']:.3f} (c) {c['served_share_of_R']:.3f}; lost (a) "
            f"{a['users_lost']} (b) {b['users_lost']} (c) {c['users_lost']}",
            b["throttled"] >= 3 * c["throttled"]
            and b["throttled"] > c["throttled"]
            and c["served_share_of_R"] >= b["served_share_of_R"]
            and c["users_lost"] == 0,
        )
    largest = max(mem["runs"], key=lambda r: r["users"])
    peak = max(r["peak_rss_mb"] for r in mem["runs"])
    row(
        "4 streaming",
        "peak RSS < 150 MB, report complete",
        f"{largest['users']:,} rows: peak {largest['peak_rss_mb']:.1f} MB in "
        f"{largest['wall_seconds']:.0f} s; all runs ≤ {peak:.1f} MB; report "
        f"{largest['report_succeeded']:,}/{largest['users']:,} succeeded",
        peak < 150 and all(r["report_succeeded"] == r["users"] for r in mem["runs"]),
    )
    disk = [r for r in over["runs"] if r["checkpoint"] == "disk"]
    shm = [r for r in over["runs"] if r["checkpoint"] == "tmpfs"]
    best_disk = max(r["send_users_per_second"] for r in disk)
    best_shm = max(r["send_users_per_second"] for r in shm)
    row(
        "5 overhead",
        "users/s per core; checkpoint disk vs tmpfs",
        f"{max(r['users_per_engine_cpu_second'] for r in disk):,.0f} users per engine CPU-s; "
        f"best send users/s disk {best_disk:,.0f} vs tmpfs {best_shm:,.0f}",
        True,
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short version of each")
    options = parser.parse_args(argv)
    quick = ["--quick"] if options.quick else []
    started = time.monotonic()
    timings: dict[str, float] = {}
    outcomes: dict[str, Any] = {}
    for name, module in (("rate", rate), ("peers", peers), ("memory", memory),
                         ("overhead", overhead)):  # fmt: skip
        print(f"== {name} ==", flush=True)
        begin = time.monotonic()
        outcomes[name] = module.main(quick)
        timings[name] = round(time.monotonic() - begin, 1)
    rows = targets(outcomes["rate"], outcomes["peers"], outcomes["memory"], outcomes["overhead"])
    table = print_table(
        "targets" + (" (quick)" if options.quick else ""),
        ["target", "asked", "measured", "met"],
        rows,
    )
    total = round(time.monotonic() - started, 1)
    print(f"benchmark seconds: {timings}, total {total}")
    write_result(
        "targets" + ("-quick" if options.quick else ""),
        {"table": table, "rows": rows, "seconds": timings, "total_seconds": total},
    )


if __name__ == "__main__":
    main()
