"""Overhead: the engine's own cost per user, where it goes, and what the checkpoint costs.

A zero-latency emulator with no rate limit runs in its own process; the engine (in
its own process, ``--rate 100000 --concurrency 16``) migrates N users through it.
The figures:

* users/s over the send phase and over the whole run (start, ingest, send, report);
* the engine's CPU seconds (``ru_utime + ru_stime`` from ``wait4``) and users per
  engine CPU-second ("per core": the engine is one event loop plus one checkpoint
  thread); the share of all CPU used by the engine vs. the emulator;
* CPU per thread: the event loop (main thread) vs. the others (the checkpoint's
  SQLite thread, the resolver);
* the same with the checkpoint (and report) on ``/dev/shm`` (tmpfs), which bounds
  what the checkpoint's disk writes cost: runs alternate disk, tmpfs, tmpfs, disk, ...;
* a cProfile of the engine's main thread: top costs, and time per library.

Usage: ``python -m benchmarks.overhead [--quick]`` (quick: 20k users, two runs each;
full: 100k users, four runs each), after one warm-up run.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from ._harness import (
    PROCESS,
    EmulatorProcess,
    print_table,
    read_engine_log,
    run_engine,
    slice_csv,
    user_ids_csv,
    write_result,
)

SHM = Path("/dev/shm")


def engine_run(
    emulator: EmulatorProcess,
    account_id: str,
    source: Path,
    users: int,
    workdir: Path,
    checkpoint_dir: Path,
    *,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for stale in checkpoint_dir.glob("run.*"):
        stale.unlink()
    cpu_before = emulator.cpu_seconds()
    run = run_engine(
        [
            "update-license",
            "--account",
            account_id,
            "--input",
            str(source),
            "--key",
            "user_id",
            "--license",
            "Pro",
            "--endpoint-url",
            emulator.url,
            "--rate",
            "100000",
            "--concurrency",
            "16",
            "--checkpoint",
            str(checkpoint_dir / "run.ckpt.sqlite"),
            "--report",
            str(checkpoint_dir / "run.report.jsonl"),
        ],  # fmt: skip
        workdir=workdir,
        timeout=120 + users * 0.01,
        profile_to=profile_to,
    )
    emulator_cpu = emulator.cpu_seconds() - cpu_before
    marks = {e.get("event"): e["t"] for e in read_engine_log(run.log_path) if "t" in e}
    send = marks.get("phase.end", 0.0) - marks.get("phase.start", 0.0)
    main_cpu = run.thread_cpu.get(run.pid, 0.0)
    other_cpu = run.thread_cpu.get(PROCESS, 0.0) - main_cpu
    send_main, send_other = _send_phase_cpu(
        run.thread_series, run.pid, marks.get("phase.start", 0.0), marks.get("phase.end", 0.0)
    )
    done = int(run.summary.get("counts", {}).get("succeeded", 0))
    return {
        "exit_code": run.returncode,
        "users_done": done,
        "wall_seconds": round(run.wall_seconds, 2),
        "send_seconds": round(send, 2),
        "send_users_per_second": round(users / send, 1) if send > 0 else None,
        "run_users_per_second": round(users / run.wall_seconds, 1),
        "engine_cpu_seconds": round(run.cpu_seconds, 2),
        "emulator_cpu_seconds": round(emulator_cpu, 2),
        "users_per_engine_cpu_second": round(users / run.cpu_seconds, 1),
        "engine_cpu_share": round(run.cpu_seconds / (run.cpu_seconds + emulator_cpu), 3),
        "main_thread_cpu_seconds": round(main_cpu, 2),
        "other_threads_cpu_seconds": round(other_cpu, 2),
        "send_main_thread_cpu_seconds": round(send_main, 2),
        "send_other_threads_cpu_seconds": round(send_other, 2),
        "checkpoint_share_of_send_cpu": round(send_other / max(send_main + send_other, 1e-9), 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
    }


def _send_phase_cpu(
    series: list[tuple[float, dict[int, float]]], pid: int, start: float, end: float
) -> tuple[float, float]:
    """CPU seconds of the main thread and of the others between two moments (polled)."""
    if not series or end <= start:
        return 0.0, 0.0
    before = min(series, key=lambda sample: abs(sample[0] - start))[1]
    after = min(series, key=lambda sample: abs(sample[0] - end))[1]
    main = after.get(pid, 0.0) - before.get(pid, 0.0)
    total = after.get(PROCESS, 0.0) - before.get(PROCESS, 0.0)
    return main, total - main


def _group(path: str, name: str) -> str:
    """The library a profiled function belongs to."""
    if path == "~":
        if "epoll" in name or "select" in name:
            return "event loop waiting (idle)"
        if "socket" in name:
            return "socket send/recv"
        if "sqlite3" in name:
            return "sqlite3 (main thread)"
        return "other C functions"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/bulkchime/" in path:
        return "bulkchime"
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 2)[1]
        return f"stdlib {module.removesuffix('.py')}"
    return "other"


def profile_summary(profile: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by own time, and own time per library, from a cProfile dump."""
    stats = pstats.Stats(str(profile))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    groups: dict[str, float] = defaultdict(float)
    functions = []
    for (path, line, name), (_cc, calls, own, cumulative, _callers) in raw.items():
        groups[_group(path, name)] += own
        functions.append((own, cumulative, calls, f"{Path(path).name}:{line}({name})"))
    functions.sort(reverse=True)
    busy = total - groups.get("event loop waiting (idle)", 0.0)
    return {
        "profiled_seconds": round(total, 2),
        "busy_seconds": round(busy, 2),
        "by_library": {
            name: {"seconds": round(seconds, 3), "share_of_busy": round(seconds / busy, 3)}
            for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "top_functions": [
            {
                "function": where,
                "own_seconds": round(own, 3),
                "cumulative_seconds": round(c, 3),
                "calls": calls,
            }
            for own, c, calls, where in functions[:top]
        ],  # fmt: skip
    }


def cumulative_of(profile: Path, needles: dict[str, str]) -> dict[str, float]:
    """Cumulative seconds of named functions (``label -> 'file.py:function'``)."""
    raw: dict[Any, Any] = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for label, needle in needles.items():
        file_part, func = needle.split(":")
        out[label] = round(
            max(
                (v[3] for (p, _l, n), v in raw.items() if p.endswith(file_part) and n == func),
                default=0.0,
            ),
            3,
        )
    return out


#: Where a request's time goes, as cumulative time of the functions that do it.
_STAGES = {
    "engine: send_batch (all of a batch)": "bulkchime/engine/attempt.py:send_batch",
    "aiobotocore: _make_api_call (one request)": "aiobotocore/client.py:_make_api_call",
    "botocore: validate parameters": "botocore/validate.py:validate",
    "botocore: serialize request": "botocore/serialize.py:serialize_to_request",
    "botocore: sign (SigV4)": "botocore/auth.py:add_auth",
    "botocore: user agent": "botocore/useragent.py:to_string",
    "aiobotocore: send over aiohttp": "aiobotocore/httpsession.py:send",
    "aiobotocore: parse response": "aiobotocore/parsers.py:parse",
    "structlog: log events": "structlog/_native.py:meth",
    "bulkchime: write the report": "bulkchime/report.py:write_report",
    "bulkchime: ingest (read + parse rows)": "bulkchime/engine/ingest.py:_records",
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k users, two runs per variant")
    parser.add_argument("--users", type=int, help="users per run (default 20k quick, 100k)")
    parser.add_argument("--repeats", type=int, help="runs per variant (default 2 quick, 4)")
    options = parser.parse_args(argv)
    users = options.users or (20_000 if options.quick else 100_000)
    repeats = options.repeats or (2 if options.quick else 4)
    (account_id,), all_ids = user_ids_csv(users)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bulkchime-bench-overhead-") as temp,
        tempfile.TemporaryDirectory(prefix="bulkchime-bench-", dir=SHM) as shm,
    ):
        source = slice_csv(all_ids, Path(temp) / "users.csv", users)
        with EmulatorProcess(users=users, accounts=1) as emulator:
            # A first run pays for cold caches (the emulator's, the OS's): warm up, untimed.
            print("[overhead] warm-up run (not counted) ...", flush=True)
            engine_run(
                emulator, account_id, source, users, Path(temp) / "warm", Path(temp) / "warm"
            )
            variants = [("disk", Path(temp)), ("tmpfs", Path(shm))]
            for number in range(repeats):
                # Alternate the order too (disk, tmpfs, tmpfs, disk, ...) against drift.
                for variant, directory in variants if number % 2 == 0 else variants[::-1]:
                    print(f"[overhead] {users:,} users, checkpoint on {variant} ...", flush=True)
                    result = engine_run(
                        emulator, account_id, source, users,
                        Path(temp) / f"{variant}{number}", directory / f"ckpt{number}",
                    )  # fmt: skip
                    runs.append({"checkpoint": variant, **result})
                    shutil.rmtree(directory / f"ckpt{number}", ignore_errors=True)
            print("[overhead] profiling (cProfile, main thread) ...", flush=True)
            profile = Path(temp) / "engine.prof"
            profiled = engine_run(
                emulator, account_id, source, users,
                Path(temp) / "profile", Path(temp) / "ckpt-profile", profile_to=profile,
            )  # fmt: skip
            summary = profile_summary(profile)
            stages = cumulative_of(profile, _STAGES)
            results_profile = Path(__file__).parent / "results" / "overhead.prof"
            results_profile.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(profile, results_profile)

    def median(variant: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs if r["checkpoint"] == variant))

    keys = [
        ("send_users_per_second", "users/s (send phase)"),
        ("run_users_per_second", "users/s (whole run)"),
        ("engine_cpu_seconds", "engine CPU s"),
        ("emulator_cpu_seconds", "emulator CPU s"),
        ("users_per_engine_cpu_second", "users per engine CPU-s"),
        ("engine_cpu_share", "engine share of CPU"),
        ("main_thread_cpu_seconds", "event-loop thread CPU s (whole run)"),
        ("other_threads_cpu_seconds", "checkpoint thread CPU s (whole run, incl. ingest)"),
        ("send_main_thread_cpu_seconds", "event-loop thread CPU s (send phase)"),
        ("send_other_threads_cpu_seconds", "checkpoint thread CPU s (send phase)"),
        ("checkpoint_share_of_send_cpu", "checkpoint share of engine CPU (send)"),
        ("peak_rss_mb", "peak RSS MB"),
    ]
    rows = [[label, median("disk", key), median("tmpfs", key)] for key, label in keys]
    speedup = median("tmpfs", "send_users_per_second") / median("disk", "send_users_per_second")
    rows.append(["tmpfs ÷ disk (users/s, send)", "1.000", f"{speedup:.3f}"])
    table = print_table(
        f"overhead: {users:,} users, unlimited zero-latency emulator "
        f"(median of {repeats} run{'s' if repeats > 1 else ''} each, alternating, after a warm-up)",
        ["", "checkpoint on disk", "checkpoint on /dev/shm"],
        rows,
    )
    busy = summary["busy_seconds"]
    lib_rows = [
        [name, f"{v['seconds']:.2f}", f"{v['share_of_busy']:.1%}"]
        for name, v in list(summary["by_library"].items())[:14]
    ]
    lib_table = print_table(
        f"profile: engine main thread, own time per library (busy {busy:.1f} s of "
        f"{summary['profiled_seconds']:.1f} s; the run took {profiled['wall_seconds']:.1f} s "
        "under cProfile)",
        ["library", "own s", "share of busy"],
        lib_rows,
    )
    stage_rows = [
        [label, f"{seconds:.2f}", f"{seconds / busy:.1%}"] for label, seconds in stages.items()
    ]
    stage_table = print_table(
        "profile: where a request's time goes (cumulative, main thread)",
        ["stage", "cumulative s", "share of busy"],
        stage_rows,
    )
    top_rows = [
        [f["function"], f"{f['own_seconds']:.3f}", f"{f['cumulative_seconds']:.3f}", f["calls"]]
        for f in summary["top_functions"]
    ]
    top_table = print_table(
        "profile: top functions by own time",
        ["function", "own s", "cumulative s", "calls"],
        top_rows,
    )
    data = {
        "users": users,
        "repeats": repeats,
        "tables": [table, lib_table, stage_table, top_table],
        "runs": runs,
        "profile": {**summary, "stages": stages, "run": profiled},
    }
    path = write_result("overhead" + ("-quick" if options.quick else ""), data)
    print(f"results: {path}\nprofile: {results_profile} (python -m pstats)")
    return data


if __name__ == "__main__":
    main()
