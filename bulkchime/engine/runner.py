"""The runner: open the store, the budget and the client, run the job, wrap up, exit code.

:func:`run_job` is the library's entry point. A dry run works on a throw-away store
and prints the plan; a real run works on the job's checkpoint, writes the report and
the summary, and maps how it ended to the exit-code contract.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

from ..budget import LocalBudget, RateBudget, client_burst
from ..client import Client, RequestStats, open_client
from ..constants import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    EXIT_ABORTED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
)
from ..errors import AuthError, DiskFull, JobAborted, JobError
from ..job import JobSpec, Limits
from ..lookups import Lookups
from ..plan import plan_text
from ..report import Summary, write_report
from ..store import CheckpointStore, open_store
from ._context import RunContext, RunOptions, RunResult, new_lease
from .health import Health
from .phases import run_phases
from .planning import dry_run_lines
from .run_record import RunRecord
from .signals import Interrupts

log = structlog.get_logger("bulkchime")

__all__ = ["default_report_path", "run_job"]


def run_job(job: JobSpec, options: RunOptions) -> RunResult:
    """Run *job* to the end (or to an abort or interrupt) and return how it ended.

    Job-level problems raise :class:`~bulkchime.errors.JobError` before anything
    mutating is sent.
    """
    if (
        options.handle_signals
        and not options.dry_run
        and threading.current_thread() is threading.main_thread()
    ):
        with Interrupts() as interrupts:
            return asyncio.run(_run(job, options, interrupts))
    return asyncio.run(_run(job, options, None))


def default_report_path(checkpoint_path: Path) -> Path:
    """``<checkpoint stem>.report.jsonl`` beside the checkpoint (for a shared checkpoint,
    beside where the file would be: each runner writes the whole job's report)."""
    return checkpoint_path.with_name(_job_name(checkpoint_path) + ".report.jsonl")


def _job_name(checkpoint_path: Path) -> str:
    """A shared job's default name: the default checkpoint's stem."""
    return checkpoint_path.name.removesuffix(".sqlite").removesuffix(".ckpt")


async def open_budget(limits: Limits, url: str | None = None) -> RateBudget:
    """The job's rate budget, starting at (and capped by) the job's rate: in-process, or
    shared through Redis at *url*."""
    rate = limits.rate
    # A quarter second of burst, not the server's full second: a fresh bucket must not
    # overrun a server bucket someone else has half spent (benchmarks.rate).
    burst = limits.burst or (client_burst(rate) if rate else DEFAULT_BURST)
    if url is not None:
        from ..budget.redis import RedisBudget

        return await RedisBudget.connect(url, rate=rate or DEFAULT_RATE, burst=burst, ceiling=rate)
    return LocalBudget(rate or DEFAULT_RATE, burst, ceiling=rate)


async def _run(job: JobSpec, options: RunOptions, interrupts: Interrupts | None) -> RunResult:
    if options.dry_run:
        with tempfile.TemporaryDirectory(prefix="bulkchime-plan-") as temp_dir:
            store = await open_store(Path(temp_dir) / "plan.ckpt.sqlite")
            try:
                return await _dry_run(job, options, store)
            finally:
                await store.close()
    location = options.checkpoint_url or options.checkpoint
    created = options.checkpoint_url is None and not options.checkpoint.exists()
    store = await open_store(
        location, lease_seconds=options.lease_seconds, default_job=_job_name(options.checkpoint)
    )
    discard = False
    try:
        return await _real_run(job, options, store, interrupts)
    except JobError:
        # Nothing was sent; a checkpoint this run created holds nothing worth keeping.
        discard = created
        raise
    finally:
        await store.close(discard=discard)


def open_job_client(job: JobSpec) -> AbstractAsyncContextManager[Any]:
    """The aiobotocore client *job* sends with: its region, endpoint, profile, pool size
    (the concurrency ceiling) and timeout."""
    return open_client(
        region=job.region,
        endpoint_url=job.endpoint_url,
        profile=job.profile,
        concurrency=job.limits.concurrency,
        timeout=job.limits.timeout,
    )


@asynccontextmanager
async def _session(
    job: JobSpec, options: RunOptions, store: CheckpointStore, health: Health, stats: RequestStats
) -> AsyncIterator[RunContext]:
    """The run's context, with its budget, client and lease open."""
    budget = await open_budget(job.limits, None if options.dry_run else options.budget_url)
    lease = new_lease(store, options, health)
    lease.start()
    try:
        async with open_job_client(job) as raw:
            client = Client(raw, budget, stats, health.stop_event, lease.valid)
            lookups = Lookups(client, max_attempts=job.limits.max_attempts, sleep=health.sleep)
            yield RunContext(job, options, store, budget, stats, health, client, lookups, lease)
    finally:
        await lease.stop()
        await budget.close()


async def _run_phases(ctx: RunContext) -> None:
    try:
        await run_phases(ctx)
    except AuthError as error:  # the credentials, not one account: nothing more can be sent
        raise JobAborted(f"authentication failed: {error}") from error


async def _dry_run(job: JobSpec, options: RunOptions, store: CheckpointStore) -> RunResult:
    stats = RequestStats()
    async with _session(job, options, store, Health(job.limits.failure_threshold), stats) as ctx:
        await _run_phases(ctx)
        lines = await dry_run_lines(ctx)
    rejected = await store.rejected_rows()
    options.out(plan_text(lines, rejected, stats.requests, job.limits.rate or DEFAULT_RATE))
    summary = await Summary.from_store(store, stats, 0.0)
    return RunResult(EXIT_OK, summary, None, Path(store.location))


async def _real_run(
    job: JobSpec, options: RunOptions, store: CheckpointStore, interrupts: Interrupts | None
) -> RunResult:
    started = time.monotonic()
    health = Health(job.limits.failure_threshold)
    stats = RequestStats()
    if interrupts is not None:
        interrupts.attach(health)
    message: str | None = None
    exit_code = EXIT_OK
    record = RunRecord(store, health, started)
    record.start()
    try:
        async with _session(job, options, store, health, stats) as ctx:
            await _run_phases(ctx)
    except JobAborted as error:
        exit_code, message = EXIT_ABORTED, _aborted(health, error)
    except AuthError as error:
        error_text = f"authentication failed: {error}"
        exit_code, message = EXIT_ABORTED, _aborted(health, JobAborted(error_text))
    finally:
        await record.stop()
    if interrupts is not None and interrupts.count and exit_code == EXIT_OK:
        exit_code = EXIT_INTERRUPTED
    elapsed = time.monotonic() - started
    try:
        await record.finish(elapsed)
    except DiskFull as error:  # the run's figures are for status only: the job is safe
        if message is None:
            exit_code, message = EXIT_ABORTED, _aborted(health, error)
    summary = await Summary.from_store(store, stats, elapsed, health.finished_this_run)
    return await _wrap_up(options, store, summary, exit_code, message)


def _aborted(health: Health, error: JobAborted) -> str:
    """Log the abort (an error event, once) and return its message."""
    health.fail_job(error)
    return str(error)


async def _wrap_up(
    options: RunOptions,
    store: CheckpointStore,
    summary: Summary,
    exit_code: int,
    message: str | None,
) -> RunResult:
    if options.progress_bar is not None:
        options.progress_bar.stop()
    report_path = options.report or default_report_path(options.checkpoint)
    report_line = f"report: {report_path}"
    try:
        await write_report(store, report_path)
    except DiskFull as error:
        log.error("report.not_written", path=str(report_path), reason=error.reason)
        report_line = f"report: not written ({report_path}: disk full)"
        exit_code, message = EXIT_ABORTED, message or str(error)
    if exit_code == EXIT_INTERRUPTED and not summary.unfinished:
        exit_code = EXIT_OK  # interrupted after the last item: nothing is left to resume
    if exit_code == EXIT_OK:
        exit_code = EXIT_OK if summary.all_succeeded else EXIT_PARTIAL
    for line in summary.lines():
        options.out(line)
    options.out(report_line)
    options.out(f"checkpoint: {store.location}")
    if exit_code == EXIT_INTERRUPTED:
        options.out("interrupted: run the same command again to resume")
    if message:
        options.out(f"aborted: {message}")
    if options.summary_json:
        summary.write_json(options.summary_json, exit_code=exit_code, report=report_path)
    return RunResult(exit_code, summary, report_path, options.checkpoint, message)
