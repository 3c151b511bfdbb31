"""Two versions side by side: the same benchmarks, alternated in one run on one machine.

The machine is shared and noisy, so figures of two versions are only comparable when
measured together: each round runs every figure for both versions, in alternating
order, against the same emulator code. The other version is any checkout, e.g.
``git worktree add ../before <commit>``.

Figures: the rate benchmark's efficiency at R (the default burst) and at 2R (adaptive,
the default burst), and the memory benchmark's 1M-row run (peak RSS, wall time).

Usage: ``python -m benchmarks.compare --before DIR [--rounds N] [--rows N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from . import memory, rate
from ._harness import ENGINE_CODE_VARIABLE, ROOT, print_table, write_result

#: R of the emulator's bucket in the rate scenarios (the rate benchmark's default).
SERVER_RATE = 20.0


def _scenarios(batches: int) -> list[rate.Scenario]:
    wanted = ("at R, burst 5", "at 2R (adaptive)")
    return [s for s in rate.scenarios(SERVER_RATE, batches) if s.name in wanted]


def _measure(tree: Path, workdir: Path, batches: int, rows: int) -> dict[str, float]:
    os.environ[ENGINE_CODE_VARIABLE] = str(tree)
    figures: dict[str, float] = {}
    try:
        for number, scenario in enumerate(_scenarios(batches)):
            print(f"[compare] {tree.name}: rate {scenario.name} ...", flush=True)
            result = rate.run_scenario(scenario, SERVER_RATE, workdir / f"r{number}")
            figures[f"{scenario.name}: served/R"] = result["served_share_of_R"]
            figures[f"{scenario.name}: steady/R"] = result["steady_share_of_R"] or 0.0
            figures[f"{scenario.name}: 429 share"] = result["throttled_share"]
            figures[f"{scenario.name}: lost users"] = result["lost_users"]
        if rows:
            print(f"[compare] {tree.name}: memory {rows:,} rows ...", flush=True)
            run = memory.run_size(rows, "user_id", workdir / "m", 120 + rows * 0.003)
            figures[f"{rows:,} rows: peak RSS MB"] = run["peak_rss_mb"]
            figures[f"{rows:,} rows: wall s"] = run["wall_seconds"]
            figures[f"{rows:,} rows: start+ingest s"] = run["ingest_seconds"]
            figures[f"{rows:,} rows: report succeeded"] = run["report_succeeded"]
    finally:
        os.environ.pop(ENGINE_CODE_VARIABLE, None)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the other version")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (each runs both versions)")
    parser.add_argument("--batches", type=int, default=600, help="batch requests per scenario")
    parser.add_argument("--rows", type=int, default=1_000_000, help="memory run rows; 0 skips")
    options = parser.parse_args(argv)
    trees = {"before": options.before.resolve(), "after": ROOT}
    samples: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory(prefix="bulkchime-bench-compare-") as temp:
        for round_number in range(options.rounds):
            order = ["before", "after"] if round_number % 2 == 0 else ["after", "before"]
            for label in order:
                workdir = Path(temp) / f"{label}{round_number}"
                figures = _measure(trees[label], workdir, options.batches, options.rows)
                for name, value in figures.items():
                    samples[label].setdefault(name, []).append(value)
    rows = []
    for name in samples["after"]:
        before = statistics.median(samples["before"].get(name, [0.0]))
        after = statistics.median(samples["after"][name])
        ratio = f"{after / before:.3f}" if before else "-"
        rows.append([name, f"{before:g}", f"{after:g}", ratio])
    table = print_table(
        f"compare: median of {options.rounds} rounds, before = {trees['before']}",
        ["figure", "before", "after", "after / before"],
        rows,
    )
    data = {"before": str(trees["before"]), "rounds": options.rounds, "table": table,
            "samples": samples}  # fmt: skip
    print(f"results: {write_result('compare', data)}")
    return data


if __name__ == "__main__":
    main()
