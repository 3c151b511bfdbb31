"""The lease on a shared store's claims: renewed by a heartbeat, fenced by time, lost when refused.

A store stand-in answers the heartbeat (the real stores' leases are tested in
``tests/test_store_postgres.py`` and, end to end, in ``tests/test_scaleout.py``); the
lease is short, so each test takes well under two seconds of real time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bulkchime.engine.lease import Lease
from bulkchime.errors import JobAborted

LEASE = 0.5  # usable for 0.4 s after each renewal; a heartbeat every 1/6 s


class Store:
    """Answers ``renew_lease`` as told: True, False (taken over) or an exception."""

    def __init__(self, shared: bool = True) -> None:
        self.shared = shared
        self.answer: bool | BaseException = True
        self.renewals = 0
        self.rejoined = 0

    async def renew_lease(self, items_done: int) -> bool:
        self.renewals += 1
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def rejoin(self) -> None:
        self.rejoined += 1


def _lease(store: Store, aborts: list[JobAborted]) -> Lease:
    lease_store: Any = store
    return Lease(lease_store, LEASE, lambda: 0, aborts.append)


async def test_a_renewed_lease_stays_valid() -> None:
    store, aborts = Store(), []
    lease = _lease(store, aborts)
    lease.start()
    try:
        for _ in range(10):
            await asyncio.sleep(0.1)
            assert lease.valid()
    finally:
        await lease.stop()
    assert store.renewals >= 5 and not aborts


async def test_a_lease_the_store_cannot_renew_stops_sends_but_is_not_lost() -> None:
    store, aborts = Store(), []
    store.answer = ConnectionError("the database is restarting")
    lease = _lease(store, aborts)
    lease.start()
    try:
        await asyncio.sleep(LEASE)
        assert not lease.valid() and not lease.lost.is_set()
        store.answer = True  # the store answers again: sends resume
        await asyncio.wait_for(lease.wait_valid(), timeout=1.0)
        assert lease.valid()
    finally:
        await lease.stop()
    assert not aborts


async def test_a_refused_renewal_loses_the_claims_and_rejoin_starts_afresh() -> None:
    store, aborts = Store(), []
    lease = _lease(store, aborts)
    lease.start()
    try:
        store.answer = False  # another runner saw the lease lapse
        await asyncio.wait_for(lease.lost.wait(), timeout=1.0)
        assert not lease.valid()
        await lease.wait_valid()  # returns at once: the caller checks `lost`
        store.answer = True
        await lease.rejoin()
        assert store.rejoined == 1 and lease.valid() and not lease.lost.is_set()
    finally:
        await lease.stop()


async def test_a_store_one_process_holds_has_no_heartbeat_and_never_fences() -> None:
    store, aborts = Store(shared=False), []
    store.answer = ConnectionError("never asked")
    lease = _lease(store, aborts)
    lease.start()
    try:
        await asyncio.sleep(LEASE)
        assert lease.valid() and store.renewals == 0
    finally:
        await lease.stop()
