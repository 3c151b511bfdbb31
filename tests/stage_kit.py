"""The engine's stages on their own: the real SQLite store and budget, in virtual time.

:class:`InProcessChime` stands where the aiobotocore client stands and hands each
request to an emulator in this process (no HTTP, no signature): same state, same
faults, same errors, as botocore's ``ClientError`` with the server's status and
headers. Everything above it is real: :class:`~bulkchime.client.Client` and its
error classification, the budget, the stores, the stages.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError

from bulkchime.budget import LocalBudget
from bulkchime.client import Client, RequestStats
from bulkchime.emulator import ChimeError, Emulator, EmulatorConfig, service_model
from bulkchime.engine import RunContext, RunOptions
from bulkchime.engine.health import Health
from bulkchime.job import JobSpec, Limits, job_from_dict
from bulkchime.lookups import Lookups
from bulkchime.store import ItemRecord, open_store

from .virtual_time import VirtualClockLoop

_OPERATIONS = {xform_name(name): name for name in service_model().operation_names}


class _Meta:
    service_model = service_model()


class InProcessChime:
    """An aiobotocore-like Chime client answered by *emulator* in this process."""

    meta = _Meta()

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def __getattr__(self, method: str) -> Any:
        operation = _OPERATIONS[method]

        async def call(**params: Any) -> dict[str, Any]:
            try:
                return await self.emulator.apply(operation, params)
            except ChimeError as error:
                body = error.body()
                response: Any = {
                    "Error": {"Code": body["Code"], "Message": body["Message"]},
                    "ResponseMetadata": {
                        "HTTPStatusCode": error.status,
                        "HTTPHeaders": {k.lower(): v for k, v in error.headers.items()},
                    },
                }
                raise ClientError(response, operation) from None

        return call


def emulator(**settings: Any) -> Emulator:
    """A seeded emulator (2 accounts x 100 users unless told otherwise)."""
    return Emulator(EmulatorConfig(**settings))


def accounts(em: Emulator) -> list[str]:
    """The emulator's account ids, in seed order."""
    return em.state.account_ids()


def users(em: Emulator, account_id: str) -> list[Any]:
    """The users of *account_id*, in seed order."""
    return list(em.state.users(account_id))


def job(action: str | Sequence[str], **limits: Any) -> JobSpec:
    """A job of *action* on a file (never read: the tests ingest records themselves)."""
    spec = job_from_dict({"action": action, "input": {"path": "users.csv"}})
    return dataclasses.replace(spec, limits=Limits(**limits) if limits else spec.limits)


@asynccontextmanager
async def context(
    em: Emulator, spec: JobSpec, tmp_path: Path, *, rate: float = 1000.0, burst: int = 100
) -> AsyncIterator[RunContext]:
    """A run's context over *em*: a fresh SQLite store, a budget, the real client."""
    store = await open_store(tmp_path / "stage.ckpt.sqlite")
    _track_store_thread(store)
    health = Health(spec.limits.failure_threshold)
    stats = RequestStats()
    budget = LocalBudget(rate, burst, ceiling=rate)
    client = Client(InProcessChime(em), budget, stats, health.stop_event)  # type: ignore[arg-type]
    lookups = Lookups(client, max_attempts=spec.limits.max_attempts, sleep=health.sleep)
    options = RunOptions(checkpoint=tmp_path / "stage.ckpt.sqlite", handle_signals=False)
    try:
        yield RunContext(spec, options, store, budget, stats, health, client, lookups)
    finally:
        await budget.close()
        await store.close()


def _track_store_thread(store: Any) -> None:
    """On a virtual clock, the store's thread work takes no virtual time (see
    :meth:`~tests.virtual_time.VirtualClockLoop.track`): durations are the rate's."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualClockLoop):
        return
    submit = store._executor.submit

    def tracked(*args: Any, **kwargs: Any) -> Any:
        future = submit(*args, **kwargs)
        loop.track(future)
        return future

    store._executor.submit = tracked


async def ingest_records(ctx: RunContext, records: Sequence[ItemRecord]) -> None:
    """Store *records* as the job's items."""
    await ctx.store.check_job({"test": True})
    await ctx.store.ingest(ctx.job.actions, records)


def by_email(account_id: str | None, emails: Sequence[str]) -> list[ItemRecord]:
    """Items keyed by email (lower-cased as ingest does)."""
    return [
        ItemRecord(line=n, key=e.lower(), raw_key=e, account_id=account_id, email=e.lower())
        for n, e in enumerate(emails, 2)
    ]


def by_user_id(account_id: str, user_ids: Sequence[str]) -> list[ItemRecord]:
    """Items keyed by user id."""
    return [
        ItemRecord(line=n, key=u, raw_key=u, account_id=account_id, user_id=u)
        for n, u in enumerate(user_ids, 2)
    ]


async def settle() -> None:
    """Let tasks that were just woken run."""
    for _ in range(5):
        await asyncio.sleep(0)
