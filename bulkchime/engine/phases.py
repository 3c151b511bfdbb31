"""The job's course: ingest, the job's account, then each action phase in order.

Per phase: skip the items the phase before failed, check accounts and resolve users
(one runner at a time, on a shared store: the next finds the work done), then send,
recovering first what a killed run left in flight (or, in a dry run, stop there: the
plan is read from the store).
"""

from __future__ import annotations

import time

import structlog

from ..actions import ActionSpec, Target
from ..plan import PlanLine
from ._context import RunContext
from .accounts import check_accounts, resolve_job_account
from .before_images import capture_before_send
from .dispatch import send_phase
from .ingest import ingest, job_identity
from .resolve import resolve_users

__all__ = ["plan_lines", "run_phases"]

log = structlog.get_logger("bulkchime")


async def run_phases(ctx: RunContext) -> None:
    """Ingest (if needed), then run every phase."""
    store = ctx.store
    needs_ingest = await store.check_job(job_identity(ctx.job), force=ctx.options.force)
    if ctx.options.retry_failed:
        log.info("retry_failed", requeued=await store.retry_failed())
    # An input file is checked before anything goes over the network, unless its rows
    # need the job's account id, which an account_name must first be resolved to.
    file_first = (
        needs_ingest
        and bool(ctx.job.input.path)
        and ctx.actions[0].target is Target.USER
        and not ctx.job.account_name
    )
    if file_first:
        await ingest(ctx)
    await resolve_job_account(ctx)
    if needs_ingest and not file_first:
        await ingest(ctx)
    if not needs_ingest:
        log.info("resume", checkpoint=store.location)
    await store.set_info("started", time.time())
    for phase, action in enumerate(ctx.actions):
        if ctx.health.stopping:
            break
        await _run_phase(ctx, phase, action)
    await store.set_info("finished", time.time())


async def _run_phase(ctx: RunContext, phase: int, action: ActionSpec) -> None:
    async with ctx.store.exclusive(f"prepare-{phase}"):
        skipped = await ctx.store.skip_after_failed_phase(phase)
        if skipped:
            log.info("phase.skipped_items", action=action.name, skipped=skipped)
        if action.reads_account:
            return
        if action.target is Target.USER:
            # Accounts first, so that look-ups are not spent on a missing or forbidden
            # account; then again for the accounts that resolution found.
            await check_accounts(ctx, phase)
            await resolve_users(ctx, phase, action)
            await check_accounts(ctx, phase)
        await capture_before_send(ctx, phase, action)
    if ctx.dry_run:
        return
    log.info("phase.start", action=action.name, phase=phase)
    await send_phase(ctx, phase, action)
    counts = await ctx.store.phase_counts(phase)
    log.info("phase.end", action=action.name, phase=phase, **{str(s): n for s, n in counts.items()})


async def plan_lines(ctx: RunContext) -> list[PlanLine]:
    """What a run would send, from the store after ingest and resolution."""
    lines: list[PlanLine] = []
    for phase, action in enumerate(ctx.actions):
        for account_id, count in (await ctx.store.pending_by_account(phase)).items():
            lines.append(PlanLine(action.name, account_id, count, action.items_per_request))
    return lines
