"""Progress while a phase sends: a ``progress`` event every few seconds, the live bar more often."""

from __future__ import annotations

import asyncio
import time

import structlog

from ..actions import ActionSpec
from ..progress import ProgressSnapshot
from ..store import State
from ._context import RunContext

__all__ = ["PROGRESS_INTERVAL", "report_progress"]

log = structlog.get_logger("bulkchime")

#: Seconds between progress events.
PROGRESS_INTERVAL = 5.0
#: Seconds between updates of the live bar.
_BAR_INTERVAL = 0.25


async def report_progress(ctx: RunContext, action: ActionSpec, phase: int) -> None:
    """Report until cancelled; the bar's last update shows every recorded outcome."""
    counts = await ctx.store.phase_counts(phase)
    health = ctx.health
    base_ok, base_failed = health.succeeded, health.failed
    done_before = counts.get(State.DONE, 0)
    failed_before = counts.get(State.FAILED, 0)
    total = sum(
        counts.get(state, 0) for state in (State.DONE, State.FAILED, State.PENDING, State.IN_FLIGHT)
    )
    phase_started = time.monotonic()
    bar = ctx.options.progress_bar

    def snapshot() -> ProgressSnapshot:
        elapsed = time.monotonic() - phase_started
        ran = health.succeeded - base_ok + health.failed - base_failed
        return ProgressSnapshot(
            action=action.name,
            total=total,
            succeeded=done_before + health.succeeded - base_ok,
            failed=failed_before + health.failed - base_failed,
            items_per_second=ran / elapsed if elapsed > 0 else 0.0,
            rate=ctx.budget.rate,
            throttled=ctx.stats.throttled,
        )

    last_event = phase_started
    try:
        while True:
            await asyncio.sleep(_BAR_INTERVAL if bar is not None else PROGRESS_INTERVAL)
            now = snapshot()
            if bar is not None:
                bar.update(now)
                if time.monotonic() - last_event < PROGRESS_INTERVAL:
                    continue
            last_event = time.monotonic()
            _log_progress(ctx, now)
    finally:
        if bar is not None:
            bar.update(snapshot())


def _log_progress(ctx: RunContext, now: ProgressSnapshot) -> None:
    left = now.total - now.succeeded - now.failed
    speed = now.items_per_second
    log.info(
        "progress",
        action=now.action,
        total=now.total,
        succeeded=now.succeeded,
        failed=now.failed,
        requests=ctx.stats.total,
        throttled=ctx.stats.throttled,
        rate=round(now.rate, 2),
        items_per_second=round(speed, 1),
        eta_seconds=round(left / speed) if speed > 0 else None,
    )
