"""The dry run's plan lines: what a run would send per action and account, with the
accounts' names, the items an action that reads the account would read, and which
way emails were resolved."""

from __future__ import annotations

import dataclasses

from ..plan import PlanLine
from ..store import State
from ._context import RunContext
from .phases import plan_lines
from .resolve import resolution_info_key

__all__ = ["dry_run_lines"]


async def dry_run_lines(ctx: RunContext) -> list[PlanLine]:
    """The plan's lines, read from the store after ingest and resolution."""
    lines = [
        dataclasses.replace(line, account_name=ctx.account_names.get(line.account_id or ""))
        for line in await plan_lines(ctx)
    ]
    for phase, action in enumerate(ctx.actions):
        if not action.reads_account:
            continue
        # Read while planning, its items are done in the plan's store; a run reads them again.
        account_id = ctx.job_account
        read = (await ctx.store.phase_counts(phase)).get(State.DONE, 0)
        lines.append(
            PlanLine(
                action.name,
                account_id,
                read,
                action.items_per_request,
                account_name=ctx.account_names.get(account_id or ""),
                read_with=action.operation,
            )
        )
    info = await ctx.store.info()
    for phase, action in enumerate(ctx.actions):
        resolution = info.get(resolution_info_key(phase))
        if resolution:
            note = f"resolution: {resolution}"
            lines.append(PlanLine(action.name, None, 0, action.items_per_request, note=note))
    return lines
