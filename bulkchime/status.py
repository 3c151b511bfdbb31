"""``bulkchime status``: what a checkpoint says about its run, readable at any time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._text import count
from .actions import ACTIONS
from .store import STATUS_ORDER, RunnerInfo, open_store

__all__ = ["status_text"]

#: Accounts named one by one before "… and N more".
_ACCOUNTS_SHOWN = 5


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
        lines.append(f"job: {_job_text(meta)}")
        lines += _account_lines(meta, info.get("accounts") or {})
    lines.append(f"total: {total}")
    for status in STATUS_ORDER:
        if counts.get(status) or status in STATUS_ORDER[:4]:
            lines.append(f"  {status}: {counts.get(status, 0)}")
    lines.append(f"attempts: {attempts}")
    if errors:
        lines.append("errors: " + ", ".join(f"{code} {n}" for code, n in errors.items()))
    for key, code, message in last:
        lines.append(f"  last: {key}: {code}: {message}")
    left = counts.get("pending", 0) + counts.get("in_flight", 0)
    running = sum(1 for r in runners if r.state == "running")
    held = holder is not None and not runners
    lines += _speed_lines(info, counts, left, running=bool(running) or held, holder=holder)
    lines += _runner_lines(runners)
    if running:
        lines.append(f"running: yes, {running} runner{'s' if running > 1 else ''}")
    elif held:
        lines.append(f"running: yes, pid {holder} holds the checkpoint")
    else:
        state = "finished" if not left else "stopped; run the same command again to resume"
        lines.append(f"running: no ({state})")
    return "\n".join(lines)


def _job_text(meta: Mapping[str, Any]) -> str:
    """``update-license → Pro (input users.csv)``: the phases, their parameters, the items."""
    params: Mapping[str, Any] = meta.get("params") or {}
    phases = []
    for name in meta.get("actions", []):
        spec = ACTIONS.get(name)
        own = {p: params[p] for p in (spec.params if spec else ()) if p in params}
        if len(own) == 1 and not isinstance(next(iter(own.values())), bool):
            phases.append(f"{name} → {next(iter(own.values()))}")
        elif own:
            phases.append(f"{name} → " + ", ".join(f"{p} {_value(v)}" for p, v in own.items()))
        else:
            phases.append(name)
    source = meta.get("input") or _query_text(meta.get("query")) or "account"
    return f"{' -> '.join(phases)} (input {source})"


def _value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _account_lines(meta: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """The job's account, its id and name; or the accounts its rows named."""
    account_id, account_name = meta.get("account_id"), meta.get("account_name")
    if account_name and not account_id:
        account_id = next((i for i, n in names.items() if n == account_name), None)
    if account_id:
        name = account_name or names.get(account_id)
        return [f"account: {account_id}" + (f" ({name})" if name else "")]
    if account_name:
        return [f"account: {account_name!r} (not found yet)"]
    if not names:
        return []
    shown = [f"{i} ({n})" for i, n in list(names.items())[:_ACCOUNTS_SHOWN]]
    if len(names) > _ACCOUNTS_SHOWN:
        shown.append(f"… and {len(names) - _ACCOUNTS_SHOWN} more")
    return [f"accounts: {', '.join(shown)}"]


def _speed_lines(
    info: Mapping[str, Any],
    counts: Mapping[str, int],
    left: int,
    *,
    running: bool,
    holder: int | None,
) -> list[str]:
    """This run's speed (the last run's, when none is going) and the ETA of what is left.

    The speed is the items a run finished over that run's time, as its summary printed
    it; items that earlier runs of a resumed job finished are not this run's.
    """
    run, started = info.get("run"), info.get("started")
    if isinstance(run, dict) and (started is None or float(run["at"]) >= float(started)):
        items, seconds = int(run["items"]), float(run["seconds"])
        speed = items / seconds if seconds > 0 else 0.0
        if running:
            where = "in this run so far"
        elif run.get("ended"):
            where = "over the last run"
        else:
            where = "in the last run, until it stopped"
        lines = [
            f"throughput: {speed:.1f} items/s {where} ({count(items, 'item')} in {seconds:.1f} s)"
        ]
    elif running:
        speed, lines = 0.0, ["throughput: not measured yet (no item finished in this run)"]
    elif started:  # a checkpoint written before runs kept their own record
        finished = info.get("finished")
        ended = finished is not None and float(finished) >= float(started) and holder is None
        end = float(finished) if finished is not None and ended else time.time()
        elapsed = max(end - float(started), 1e-9)
        speed = (counts.get("succeeded", 0) + counts.get("failed", 0)) / elapsed
        lines = [f"throughput: {speed:.1f} items/s over the last run ({elapsed:.0f} s)"]
    else:
        return []
    if left:
        eta = f"{left / speed:.0f} s" if speed > 0 else "unknown"
        lines.append(f"eta: {eta} for {count(left, 'item')} left")
    return lines


def _runner_lines(runners: list[RunnerInfo]) -> list[str]:
    """The runners of a shared checkpoint: who is still working, and how much each did."""
    if not runners:
        return []
    running = sum(1 for r in runners if r.state == "running")
    lines = [f"runners: {running} running, {len(runners) - running} gone"]
    for r in runners:
        lines.append(
            f"  {r.host} pid {r.pid}: {r.state}, heartbeat {r.heartbeat_age:.0f} s ago, "
            f"{count(r.items_done, 'item')} done"
        )
    return lines


def _query_text(query: dict[str, str] | None) -> str | None:
    """``license=Basic registration_status=Registered``, as ``--where`` takes it."""
    return " ".join(f"{name}={value}" for name, value in query.items()) if query else None
