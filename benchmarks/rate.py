"""Efficiency and adaptation: how much of the server's rate budget the engine uses.

The emulator enforces a token bucket of R requests/s (burst R). The engine, run as a
user runs it (``bulkchime update-license`` in its own process), migrates users in
batches of 20 while this script polls the emulator's counters. Each scenario gets a
fresh emulator, so every one starts from a full server bucket.

Figures, per scenario:

* ``served/R``: batch requests the server accepted per second of the sending phase
  (phase start to the last batch), divided by R. A start with full buckets lets a
  run exceed R slightly (the server's burst is spent once).
* ``steady/R``: the same over the middle 80% of the phase, from the server's own
  counters: the rate with the initial burst and the tail left out.
* ``429 share``: requests answered 429 / requests sent.
* ``lost``: users not migrated (report status other than succeeded).

Usage: ``python -m benchmarks.rate [--quick] [--rate R]``
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._harness import (
    FIGURES,
    RESULTS,
    EmulatorProcess,
    StatsPoller,
    print_table,
    read_engine_log,
    run_engine,
    slice_csv,
    user_ids_csv,
    write_result,
)

OPERATION = "BatchUpdateUser"
USERS_PER_BATCH = 20


@dataclass(frozen=True)
class Scenario:
    """One engine configuration against one server bucket."""

    name: str
    #: Engine --rate as a multiple of R (None: no --rate, the engine's adaptive default).
    rate_factor: float | None
    #: Engine --burst (None: the engine's default for the rate).
    burst: int | None
    batches: int
    #: Server tokens another client spends the moment the engine starts sending.
    shared_spend: int = 0
    #: Server rate override (requests/s) for the Retry-After scenario.
    server_rate: float | None = None
    concurrency: int = 8


def scenarios(rate: float, batches: int) -> list[Scenario]:
    """The side-by-side set: bursts at R, a shared budget, 2R, no rate, Retry-After."""
    r = int(rate)
    quarter = max(2, math.ceil(rate / 4))
    return [
        Scenario(f"at R, burst {r} (= server's)", 1.0, r, batches),
        Scenario(f"at R, burst {quarter}", 1.0, quarter, batches),
        Scenario(f"at R, burst {r}, budget shared at start", 1.0, r, batches, shared_spend=r - 2),
        Scenario(
            f"at R, burst {quarter}, budget shared at start",
            1.0,
            quarter,
            batches,
            shared_spend=r - 2,
        ),
        Scenario("at 2R (adaptive)", 2.0, max(2, math.ceil(2 * rate / 4)), batches),
        Scenario("at 2R, default burst", 2.0, None, batches),
        Scenario("no rate given (adaptive)", None, None, batches),
        Scenario("Retry-After: server 0.5/s, engine 5/s", 10.0, 1, 8, server_rate=0.5),
    ]


def _spend_when_sending(log_path: Path, emulator: EmulatorProcess, tokens: int) -> None:
    """Wait for the engine's phase.start, then spend *tokens* of the server's bucket.

    Another tool of the same account (the admin console, a second pipeline, the run
    just killed) spends the budget the engine's fresh bucket does not know about.
    """
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config

    client = boto3.client(
        "chime",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),  # spend, do not insist
    )
    account_id = client.list_accounts()["Accounts"][0]["AccountId"]  # made before the run
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log_path.exists() and b'"phase.start"' in log_path.read_bytes():
            break
        time.sleep(0.005)
    for _ in range(tokens):
        try:
            client.get_account(AccountId=account_id)
        except client.exceptions.ClientError:
            pass


def run_scenario(scenario: Scenario, rate: float, workdir: Path) -> dict[str, Any]:
    """Run one scenario with a fresh emulator; return its figures and time series."""
    server_rate = scenario.server_rate or rate
    users = scenario.batches * USERS_PER_BATCH
    workdir.mkdir(parents=True, exist_ok=True)
    (account_id,), all_ids = user_ids_csv(max(users, 1000))
    ids = slice_csv(all_ids, workdir / "users.csv", users)
    args = [
        "update-license", "--account", account_id, "--input", str(ids), "--key", "user_id",
        "--license", "Pro", "--concurrency", str(scenario.concurrency),
        "--checkpoint", str(workdir / "run.ckpt.sqlite"), "--report", str(workdir / "report.jsonl"),
    ]  # fmt: skip
    if scenario.rate_factor is not None:
        args += ["--rate", f"{scenario.rate_factor * server_rate:g}"]
    if scenario.burst is not None:
        args += ["--burst", str(scenario.burst)]
    server_burst = max(1, math.ceil(server_rate))
    timeout = 60 + 4 * scenario.batches / server_rate
    with EmulatorProcess(users=max(users, 1000), rate=server_rate, burst=server_burst) as emulator:
        args += ["--endpoint-url", emulator.url]
        spender = None
        if scenario.shared_spend:
            spender = threading.Thread(
                target=_spend_when_sending,
                args=(workdir / "engine.log.jsonl", emulator, scenario.shared_spend),
                daemon=True,
            )
            spender.start()
            time.sleep(1.0)  # its ListAccounts, then the bucket refills before the engine starts
        with StatsPoller(emulator, OPERATION) as poller:
            run = run_engine(args, workdir=workdir, timeout=timeout)
        if spender is not None:
            spender.join(timeout=10)
        stats = emulator.stats()
    events = list(read_engine_log(run.log_path))
    starts = [e["t"] for e in events if e.get("event") == "phase.start"]
    batch_events = [e for e in events if e.get("event") == "batch"]
    t0 = starts[0] if starts else run_start(poller.samples)
    t1 = batch_events[-1]["t"] if batch_events else t0
    sent = stats["requests"][OPERATION]
    engine_throttled = int(run.summary.get("throttled", 0))
    other_requests = sum(n for op, n in stats["requests"].items() if op != OPERATION)
    # The engine's own count: another client's 429s (the shared-budget scenarios) are not
    # the engine's. Its look-ups (one GetAccount) are never throttled in practice.
    throttled = engine_throttled if run.summary else stats["throttled"]
    served = sent - min(throttled, sent)
    duration = max(t1 - t0, 1e-9)
    steady = _steady_rate(poller.samples, t0, t1)
    counts = run.summary.get("counts", {})
    lost = users - int(counts.get("succeeded", 0))
    series = _series(poller.samples, batch_events, t0)
    return {
        "scenario": scenario.name,
        "server_rate": server_rate,
        "engine_rate": None if scenario.rate_factor is None else scenario.rate_factor * server_rate,
        "engine_burst": scenario.burst,
        "users": users,
        "batch_requests_sent": sent,
        "batch_requests_served": served,
        "throttled": throttled,
        "engine_saw_throttled": engine_throttled,
        "other_requests": other_requests,
        "phase_seconds": round(duration, 3),
        "served_per_second": round(served / duration, 3),
        "served_share_of_R": round(served / duration / server_rate, 4),
        "steady_share_of_R": None if steady is None else round(steady / server_rate, 4),
        "throttled_share": round(throttled / max(sent, 1), 4),
        "lost_users": lost,
        "exit_code": run.returncode,
        "timed_out": run.timed_out,
        "final_rate": batch_events[-1].get("rate") if batch_events else None,
        "retry_after_gaps": _retry_after_gaps(events) if scenario.server_rate else None,
        "series": series,
    }


def run_start(samples: list[Any]) -> float:
    for sample in samples:
        if sample.requests > 0:
            return float(sample.t)
    return float(samples[0].t) if samples else time.time()


def _steady_rate(samples: list[Any], t0: float, t1: float) -> float | None:
    """Served batch requests per second between 10% and 90% of the phase (server counters)."""
    if t1 - t0 < 5 or len(samples) < 10:
        return None
    a, b = t0 + 0.1 * (t1 - t0), t0 + 0.9 * (t1 - t0)
    first = min(samples, key=lambda s: abs(s.t - a))
    last = min(samples, key=lambda s: abs(s.t - b))
    if last.t <= first.t:
        return None
    served = (last.requests - last.throttled) - (first.requests - first.throttled)
    return float(served / (last.t - first.t))


def _series(samples: list[Any], batch_events: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    """Per-second served and 429 rates (server) and the limiter's rate (engine log)."""
    served_t: list[float] = []
    served_rate: list[float] = []
    throttled_rate: list[float] = []
    window = 1.0
    index = 0
    for later in samples:
        while index < len(samples) and samples[index].t < later.t - window:
            index += 1
        earlier = samples[index]
        span = later.t - earlier.t
        if span < 0.5 * window:
            continue
        served = (later.requests - later.throttled) - (earlier.requests - earlier.throttled)
        served_t.append(round(later.t - t0, 3))
        served_rate.append(round(served / span, 3))
        throttled_rate.append(round((later.throttled - earlier.throttled) / span, 3))
    limiter_t = [round(e["t"] - t0, 3) for e in batch_events if "rate" in e]
    limiter_rate = [float(e["rate"]) for e in batch_events if "rate" in e]
    return {
        "t": served_t,
        "served_per_second": served_rate,
        "throttled_per_second": throttled_rate,
        "limiter_t": limiter_t,
        "limiter_rate": limiter_rate,
    }


def _retry_after_gaps(events: list[dict[str, Any]]) -> list[float]:
    """Seconds between successive batch completions (to see Retry-After pauses)."""
    times = [e["t"] for e in events if e.get("event") == "batch"]
    return [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)]


#: Scenarios in the small committed figure (benchmarks/figures/rate.png).
FIGURE_SCENARIOS = ("at R, burst 5", "at 2R (adaptive)", "no rate given (adaptive)")


def plot(
    results: list[dict[str, Any]],
    rate: float,
    path: Path,
    *,
    only: tuple[str, ...] = (),
    dpi: int = 90,
) -> None:
    """Rate over time per scenario: the limiter's rate, what the server served, 429s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r["server_rate"] == rate and (not only or r["scenario"] in only)]
    if not shown:
        return
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.1 * len(shown)), sharex=True)
    for ax, result in zip(axes if len(shown) > 1 else [axes], shown, strict=True):
        series = result["series"]
        ax.step(
            series["limiter_t"], series["limiter_rate"], where="post",
            label="engine limiter rate", color="tab:blue",
        )  # fmt: skip
        ax.plot(
            series["t"], series["served_per_second"], label="served/s (server)", color="tab:green"
        )
        ax.plot(series["t"], series["throttled_per_second"], label="429/s", color="tab:red")
        ax.axhline(rate, color="grey", linestyle="--", linewidth=0.8, label="R")
        ax.set_ylim(0, rate * 2.3)
        ax.set_ylabel("req/s")
        ax.set_title(
            f"{result['scenario']}: served {result['served_share_of_R']:.1%} of R, "
            f"429 {result['throttled_share']:.1%}, lost {result['lost_users']}",
            fontsize=9,
        )
    (axes[-1] if len(shown) > 1 else axes).set_xlabel("seconds since the sending phase started")
    handles, labels = (axes[0] if len(shown) > 1 else axes).get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (2.1 * len(shown))))  # room for the legend
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 batch requests per scenario")
    parser.add_argument("--rate", type=float, default=20.0, help="the server's R (default 20)")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    options = parser.parse_args(argv)
    rate = options.rate
    batches = 300 if options.quick else 600
    chosen = [s for s in scenarios(rate, batches) if not options.only or options.only in s.name]
    results = []
    with tempfile.TemporaryDirectory(prefix="bulkchime-bench-rate-") as temp:
        for number, scenario in enumerate(chosen):
            print(f"[rate] {scenario.name} ...", flush=True)
            results.append(run_scenario(scenario, rate, Path(temp) / f"s{number}"))
    rows = [
        [
            r["scenario"],
            "-" if r["engine_rate"] is None else f"{r['engine_rate']:g}",
            "-" if r["engine_burst"] is None else r["engine_burst"],
            r["batch_requests_sent"],
            r["served_share_of_R"] if r["server_rate"] == rate else "-",
            "-" if r["steady_share_of_R"] is None else r["steady_share_of_R"],
            f"{r['throttled']} ({r['throttled_share']:.1%})",
            r["lost_users"],
            f"{r['phase_seconds']:.1f}",
        ]
        for r in results
    ]
    table = print_table(
        f"rate: engine vs a server bucket of R = {rate:g} req/s (burst {math.ceil(rate)})",
        ["scenario", "--rate", "--burst", "batches sent", "served/R", "steady/R", "429s",
         "lost", "phase s"],
        rows,
    )  # fmt: skip
    for r in results:
        if r["retry_after_gaps"]:
            served = r["batch_requests_served"] / r["phase_seconds"]
            print(
                f"{r['scenario']}: served {served:.2f}/s vs server {r['server_rate']}/s, "
                f"{r['throttled']} 429s, gaps between batches {r['retry_after_gaps']}"
            )
    name = "rate" + ("-quick" if options.quick else "")
    png = RESULTS / f"{name}.png"
    plot(results, rate, png)
    if not options.only and not options.quick:
        plot(results, rate, FIGURES / "rate.png", only=FIGURE_SCENARIOS, dpi=72)
    data = {"rate": rate, "batches": batches, "table": table, "scenarios": results}
    path = write_result(name, data)
    print(f"results: {path}\nplot: {png}")
    return data


if __name__ == "__main__":
    main()
