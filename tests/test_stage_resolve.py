"""The resolve stage on its own: emails to user ids against an in-process emulator.

Real SQLite store, real client and budget, virtual time (tests/stage_kit.py).
"""

from __future__ import annotations

from pathlib import Path

from bulkchime.actions import get_action
from bulkchime.engine.resolve import SCAN_THRESHOLD, resolve_users
from bulkchime.store import State

from . import stage_kit as kit
from .virtual_time import run_virtual


def _resolve(tmp_path: Path, em: kit.Emulator, records: list[kit.ItemRecord], action: str) -> dict:
    async def scenario() -> dict:
        async with kit.context(em, kit.job(action), tmp_path) as ctx:
            await kit.ingest_records(ctx, records)
            await resolve_users(ctx, 0, get_action(action))
            report = [r async for r in ctx.store.report_records()]
            return {
                "report": report,
                "failed": ctx.health.failed,
                "pending": await ctx.store.claim(0, 10_000),
            }

    return run_virtual(scenario())


def test_a_few_emails_are_looked_up_one_by_one(tmp_path: Path) -> None:
    em = kit.emulator()
    account = kit.accounts(em)[0]
    wanted = kit.users(em, account)[:5]
    emails = [u.primary_email.upper() for u in wanted] + ["nobody@example.com"]
    out = _resolve(tmp_path, em, kit.by_email(account, emails), "suspend")
    assert em.stats.requests["ListUsers"] == 6
    assert {item.user_id for item in out["pending"]} == {u.user_id for u in wanted}
    missing = [r for r in out["report"] if r.status == "failed"]
    assert [(r.key, r.error_code) for r in missing] == [("nobody@example.com", "NotFound")]
    assert missing[0].message == f"no user with email nobody@example.com in account {account}"
    assert out["failed"] == 1


def test_many_emails_in_one_account_cost_one_scan_of_its_pages(tmp_path: Path) -> None:
    em = kit.emulator(users_per_account=450)
    account = kit.accounts(em)[0]
    wanted = kit.users(em, account)[: SCAN_THRESHOLD + 50]
    records = kit.by_email(account, [u.primary_email for u in wanted])
    out = _resolve(tmp_path, em, records, "suspend")
    assert em.stats.requests["ListUsers"] == 3  # 450 users, 200 a page
    assert [item.user_id for item in out["pending"]] == [u.user_id for u in wanted]
    assert out["failed"] == 0


def test_emails_without_an_account_find_their_account(tmp_path: Path) -> None:
    em = kit.emulator()
    first, second = kit.accounts(em)
    people = [kit.users(em, first)[0], kit.users(em, second)[3]]
    records = kit.by_email(None, [u.primary_email for u in people] + ["ghost@example.com"])
    out = _resolve(tmp_path, em, records, "logout")
    assert em.stats.requests["ListAccounts"] == 3
    assert {(i.account_id, i.user_id) for i in out["pending"]} == {
        (u.account_id, u.user_id) for u in people
    }
    ghost = [r for r in out["report"] if r.status == "failed"]
    assert ghost[0].message == "no account has a user with email ghost@example.com"


def test_invites_send_emails_and_need_no_look_up(tmp_path: Path) -> None:
    em = kit.emulator()
    account = kit.accounts(em)[0]
    out = _resolve(tmp_path, em, kit.by_email(account, ["new@example.com"]), "invite")
    assert sum(em.stats.requests.values()) == 0
    assert [i.email for i in out["pending"]] == ["new@example.com"]
    assert all(r.status == State.PENDING.value for r in out["report"])
