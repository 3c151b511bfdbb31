"""The dispatch and attempt stages on their own, against an in-process emulator.

Real SQLite store, real client and budget, virtual time (tests/stage_kit.py): what
the emulator holds afterwards, and each item's recorded outcome.
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from typing import Any

import pytest

from bulkchime.actions import get_action
from bulkchime.engine.dispatch import send_phase
from bulkchime.errors import JobAborted
from bulkchime.store import ItemRecord

from . import stage_kit as kit
from .virtual_time import run_virtual


def _send(
    tmp_path: Path,
    em: kit.Emulator,
    records: list[ItemRecord],
    action: str,
    *,
    in_flight: int = 0,
    **limits: Any,
) -> dict[str, Any]:
    """Ingest *records*, mark the first *in_flight* as sent by a dead run, run the phase."""

    async def scenario() -> dict[str, Any]:
        spec = kit.job(action, **limits)
        async with kit.context(em, spec, tmp_path) as ctx:
            await kit.ingest_records(ctx, records)
            if in_flight:
                await ctx.store.mark_in_flight(await ctx.store.claim(0, in_flight))
                await ctx.store.release()
            aborted = None
            try:
                await send_phase(ctx, 0, get_action(action))
            except JobAborted as error:
                aborted = str(error)
            report = {r.key: r async for r in ctx.store.report_records()}
            return {"report": report, "aborted": aborted, "stats": ctx.stats}

    return run_virtual(scenario())


def test_every_item_is_sent_in_full_batches_and_applied(tmp_path: Path) -> None:
    em = kit.emulator(users_per_account=120)
    account = kit.accounts(em)[0]
    ids = [u.user_id for u in kit.users(em, account)]
    out = _send(tmp_path, em, kit.by_user_id(account, ids), "suspend")
    assert em.stats.requests["BatchSuspendUser"] == 3  # 50 + 50 + 20
    assert all(u.registration_status == "Suspended" for u in kit.users(em, account))
    assert {r.status for r in out["report"].values()} == {"succeeded"}
    assert {r.attempts for r in out["report"].values()} == {1}


def test_users_throttled_inside_a_200_are_retried_until_done(tmp_path: Path) -> None:
    em = kit.emulator(users_per_account=300, user_error_rate=0.2)
    account = kit.accounts(em)[0]
    ids = [u.user_id for u in kit.users(em, account)]
    out = _send(tmp_path, em, kit.by_user_id(account, ids), "suspend")
    assert {r.status for r in out["report"].values()} == {"succeeded"}
    effects = em.stats.snapshot()["effects"]["BatchSuspendUser"]
    assert effects["distinct"] == 300
    assert max(r.attempts for r in out["report"].values()) > 1
    # Retried users ride in full batches: far fewer requests than one per throttled user.
    assert em.stats.requests["BatchSuspendUser"] < 300 / 50 + em.stats.user_throttled / 5


def test_a_batch_refused_whole_is_bisected_to_the_bad_item(tmp_path: Path) -> None:
    em = kit.emulator(users_per_account=50)
    account = kit.accounts(em)[0]
    ids = [u.user_id for u in kit.users(em, account)][:16]
    ids[11] = " "  # the model's NonEmptyString refuses it: 400 for the whole batch
    out = _send(tmp_path, em, kit.by_user_id(account, ids), "suspend")
    bad = out["report"][" "]
    assert (bad.status, bad.error_code) == ("failed", "BadRequest")
    assert sum(r.status == "succeeded" for r in out["report"].values()) == 15
    # 16 -> 8 + 8 -> the bad eight: 4 + 4 -> 2 + 2 -> 1 + 1
    assert em.stats.requests["BatchSuspendUser"] == 1 + 2 + 2 + 2 + 2


def test_server_faults_are_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    em = kit.emulator(users_per_account=200, error_rate=0.3)
    account = kit.accounts(em)[0]
    ids = [u.user_id for u in kit.users(em, account)]
    out = _send(tmp_path, em, kit.by_user_id(account, ids), "suspend", max_attempts=20)
    assert {r.status for r in out["report"].values()} == {"succeeded"}
    assert em.stats.faults > 0


def test_an_item_out_of_attempts_fails_with_the_last_error(tmp_path: Path) -> None:
    em = kit.emulator(users_per_account=10, error_rate=1.0)
    account = kit.accounts(em)[0]
    ids = [u.user_id for u in kit.users(em, account)]
    out = _send(tmp_path, em, kit.by_user_id(account, ids), "suspend", max_attempts=3)
    assert em.stats.requests["BatchSuspendUser"] == 3
    for record in out["report"].values():
        assert record.status == "failed"
        assert record.attempts == 3
        assert record.message.startswith("gave up after 3 attempts: Injected fault")


def test_invites_left_in_flight_are_verified_not_sent_twice(tmp_path: Path) -> None:
    em = kit.emulator()
    emails = [f"new{n}@example.com" for n in range(6)]

    async def a_team_with_three_invited() -> str:
        created = await em.apply("CreateAccount", {"Name": "Team Stage"})
        team = str(created["Account"]["AccountId"])
        # A run that died after its first request of four was applied:
        await em.apply("InviteUsers", {"AccountId": team, "UserEmailList": emails[:3]})
        return team

    team = run_virtual(a_team_with_three_invited())
    out = _send(tmp_path, em, kit.by_email(team, emails), "invite", in_flight=4)
    invites = em.stats.snapshot()["effects"]["InviteUsers"]
    assert invites == {"total": 6, "distinct": 6}
    assert all(r.status == "succeeded" for r in out["report"].values())
    assert out["report"]["new0@example.com"].message.startswith("already invited")


def test_a_pin_reset_left_in_flight_is_not_repeated(tmp_path: Path) -> None:
    em = kit.emulator()
    account = kit.accounts(em)[0]
    ids = [u.user_id for u in kit.users(em, account)][:3]
    out = _send(tmp_path, em, kit.by_user_id(account, ids), "reset-pin", in_flight=1)
    assert em.stats.requests["ResetPersonalPIN"] == 2
    unknown = out["report"][ids[0]]
    assert (unknown.status, unknown.error_code) == ("failed", "OutcomeUnknown")


@pytest.mark.parametrize("threshold", [0.1])
def test_the_failure_threshold_stops_the_phase(tmp_path: Path, threshold: float) -> None:
    em = kit.emulator(users_per_account=100)
    account = kit.accounts(em)[0]
    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(100)]  # nobody
    out = _send(
        tmp_path,
        em,
        kit.by_user_id(account, ids),
        "logout",
        failure_threshold=threshold,
        concurrency=2,
    )
    assert out["aborted"] is not None and "failure_threshold of 10%" in out["aborted"]
    statuses = [r.status for r in out["report"].values()]
    assert statuses.count("pending") > 50  # stopped early: the rest are left to resume


def _send_paced(
    tmp_path: Path, em: kit.Emulator, user_ids: list[str], rate: float
) -> tuple[list[list[str]], float]:
    """Suspend *user_ids* at *rate* requests/s: each request's users, in the order sent,
    and the seconds from the phase's first request to its last."""
    sent: list[tuple[float, list[str]]] = []
    apply = em.apply

    async def recording(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "BatchSuspendUser":
            sent.append((asyncio.get_running_loop().time(), list(params["UserIdList"])))
        return await apply(operation, params)

    async def scenario() -> None:
        spec = kit.job("suspend")
        async with kit.context(em, spec, tmp_path, rate=rate, burst=1) as ctx:
            await kit.ingest_records(ctx, kit.by_user_id(kit.accounts(em)[0], user_ids))
            await send_phase(ctx, 0, get_action("suspend"))

    em.apply = recording  # type: ignore[method-assign]
    run_virtual(scenario())
    return [users for _, users in sent], sent[-1][0] - sent[0][0]


@pytest.mark.parametrize("seed", [0, 2, 3, 4])
def test_the_end_of_a_phase_does_not_wait_on_stragglers(tmp_path: Path, seed: int) -> None:
    random.seed(seed)  # the backoffs' jitter
    em = kit.emulator(users_per_account=3000, user_error_rate=0.03, accounts=1, seed=seed)
    ids = [u.user_id for u in kit.users(em, kit.accounts(em)[0])]
    requests, seconds = _send_paced(tmp_path, em, ids, rate=20.0)
    assert em.stats.snapshot()["effects"]["BatchSuspendUser"]["distinct"] == 3000
    # The users throttled inside a 200 ride with others: about one request per 50
    # sends, the last ones in one or two part batches, not one each.
    sends = 3000 + em.stats.user_throttled
    assert len(requests) <= math.ceil(sends / 50) + 2
    # Each request takes a 20th of a second of the budget; after the last full batch,
    # its throttled users cost a first backoff (0.25 s), a request, and perhaps a second
    # round (0.5 s) -- no waiting for stragglers beyond that.
    assert seconds - (len(requests) - 1) / 20.0 <= 0.6
