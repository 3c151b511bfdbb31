"""``bulkchime status``: what a checkpoint says about its run, readable at any time."""

from __future__ import annotations

import time
from pathlib import Path

from .store import STATUS_ORDER, RunnerInfo, open_store

__all__ = ["status_text"]


async def status_text(path: Path | str) -> str:
    """Counts by outcome, attempts, last errors, speed, ETA and the lock holder (the
    runners, of a shared checkpoint) of *path*."""
    store = await open_store(path, lock=False)
    try:
        runners = await store.runners()
        holder = await store.holder()
        meta = await store.job_meta() or {}
        counts = await store.counts()
        info = await store.info()
        errors = await store.error_counts()
        last = await store.last_errors()
        attempts = await store.total_attempts()
    finally:
        await store.close()
    total = sum(counts.values())
    lines = [f"checkpoint: {store.location}"]
    if meta:
        lines.append(
            f"job: {' -> '.join(meta.get('actions', []))} "
            f"(input {meta.get('input') or _query_text(meta.get('query')) or 'account'})"
        )
    lines.append(f"total: {total}")
    for status in STATUS_ORDER:
        if counts.get(status) or status in STATUS_ORDER[:4]:
            lines.append(f"  {status}: {counts.get(status, 0)}")
    lines.append(f"attempts: {attempts}")
    if errors:
        lines.append("errors: " + ", ".join(f"{code} {n}" for code, n in errors.items()))
    for key, code, message in last:
        lines.append(f"  last: {key}: {code}: {message}")
    started = info.get("started")
    finished = info.get("finished")
    left = counts.get("pending", 0) + counts.get("in_flight", 0)
    if started:
        # A stopped run's speed is its own, not one that falls while nothing runs.
        ran_to_an_end = (
            finished is not None and float(finished) >= float(started) and holder is None
        )
        end = float(finished) if finished is not None and ran_to_an_end else time.time()
        elapsed = max(end - float(started), 1e-9)
        done = counts.get("succeeded", 0) + counts.get("failed", 0)
        speed = done / elapsed
        lines.append(f"throughput: {speed:.1f} items/s over the last run ({elapsed:.0f} s)")
        if left:
            eta = f"{left / speed:.0f} s" if speed > 0 else "unknown"
            lines.append(f"eta: {eta} for {left} items left")
    lines += _runner_lines(runners)
    running = sum(1 for r in runners if r.state == "running")
    if running:
        lines.append(f"running: yes, {running} runner{'s' if running > 1 else ''}")
    elif holder is not None and not runners:
        lines.append(f"running: yes, pid {holder} holds the checkpoint")
    else:
        state = "finished" if not left else "stopped; run the same command again to resume"
        lines.append(f"running: no ({state})")
    return "\n".join(lines)


def _runner_lines(runners: list[RunnerInfo]) -> list[str]:
    """The runners of a shared checkpoint: who is still working, and how much each did."""
    if not runners:
        return []
    running = sum(1 for r in runners if r.state == "running")
    lines = [f"runners: {running} running, {len(runners) - running} gone"]
    for r in runners:
        lines.append(
            f"  {r.host} pid {r.pid}: {r.state}, heartbeat {r.heartbeat_age:.0f} s ago, "
            f"{r.items_done} items done"
        )
    return lines


def _query_text(query: dict[str, str] | None) -> str | None:
    """``license=Basic registration_status=Registered``, as ``--where`` takes it."""
    return " ".join(f"{name}={value}" for name, value in query.items()) if query else None
