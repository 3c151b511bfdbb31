"""The resolve stage on its own: emails to user ids against an in-process emulator.

Real SQLite store, real client and budget, virtual time (tests/stage_kit.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkchime.actions import get_action
from bulkchime.engine import _resolve_no_account
from bulkchime.engine.resolve import SCAN_THRESHOLD, resolution_info_key, resolve_users
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
                "imaged": {subject async for _, subject, _ in ctx.store.before_images()},
                "resolution": (await ctx.store.info()).get(resolution_info_key(0)),
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
    assert em.stats.requests["ListAccounts"] == 3  # too few to list the accounts
    assert em.stats.requests["GetAccount"] == 0  # ListAccounts has described them
    assert out["resolution"] == "per-email look-ups (3 emails, 5 read requests)"
    assert {(i.account_id, i.user_id) for i in out["pending"]} == {
        (u.account_id, u.user_id) for u in people
    }
    ghost = [r for r in out["report"] if r.status == "failed"]
    assert ghost[0].message == "no account has a user with email ghost@example.com"


# --- items with no account: per-email look-ups or a scan, by what each costs ------------


def _placed(out: dict[str, Any]) -> set[tuple[str | None, str | None]]:
    return {(item.account_id, item.user_id) for item in out["pending"]}


def test_emails_found_in_the_first_pages_stop_the_scan_there(tmp_path: Path) -> None:
    em = kit.emulator(accounts=3, users_per_account=450)  # 3 pages an account
    people = [u for account in kit.accounts(em) for u in kit.users(em, account)[:10]]
    out = _resolve(tmp_path, em, kit.by_email(None, [u.primary_email for u in people]), "suspend")
    assert em.stats.requests["ListAccounts"] == 1
    assert em.stats.requests["ListUsers"] == 3  # the first page of each account, not 9
    assert _placed(out) == {(u.account_id, u.user_id) for u in people}
    assert out["imaged"] == {u.user_id for u in people}  # undo's before-images, no more
    assert out["resolution"] == (
        "scanned the users of 3 accounts (4 read requests) instead of ~60 per-email look-ups"
    )


def test_a_scan_samples_every_account_before_judging_leavers_in_one_of_them(
    tmp_path: Path,
) -> None:
    em = kit.emulator(accounts=3, users_per_account=450)
    last = kit.accounts(em)[-1]
    people = kit.users(em, last)[150:210]  # 50 on its first page, 10 on its second
    out = _resolve(tmp_path, em, kit.by_email(None, [u.primary_email for u in people]), "logout")
    # The list, every first page, the other accounts' 2 more pages each, then its second.
    assert em.stats.requests["ListAccounts"] == 1
    assert em.stats.requests["ListUsers"] == 3 + 2 + 2 + 1
    assert _placed(out) == {(last, u.user_id) for u in people}


def test_a_few_leavers_in_large_accounts_are_looked_up_one_by_one_after_a_sample(
    tmp_path: Path,
) -> None:
    em = kit.emulator(accounts=2, users_per_account=1000)  # 5 pages an account
    people = [u for account in kit.accounts(em) for u in kit.users(em, account)[-6:]]
    out = _resolve(tmp_path, em, kit.by_email(None, [u.primary_email for u in people]), "suspend")
    # Listing and one page of each (3) find none: the scan stops; 2 look-ups an email.
    assert em.stats.requests["ListAccounts"] == 1 + 12
    assert em.stats.requests["ListUsers"] == 2 + 12
    assert _placed(out) == {(u.account_id, u.user_id) for u in people}
    assert out["imaged"] == {u.user_id for u in people}
    assert out["resolution"] == (
        "sampled the users of 2 accounts (3 read requests; too few matches), "
        "then per-email look-ups (12 emails, 24 read requests)"
    )


def test_a_long_list_is_scanned_a_window_at_a_time_with_one_account_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_resolve_no_account, "WINDOW", 40)
    em = kit.emulator()  # 2 accounts x 100 users: a page each
    people = [u for account in kit.accounts(em) for u in kit.users(em, account)[:50]]
    records = kit.by_email(None, [u.primary_email for u in people] + ["ghost@example.com"])
    out = _resolve(tmp_path, em, records, "logout")
    assert em.stats.requests["ListAccounts"] == 1
    # Windows of 40, 40 and 21 emails: the first is all in the first account, whose one
    # page finds every email; the others read both accounts' pages.
    assert em.stats.requests["ListUsers"] == 1 + 2 + 2
    assert _placed(out) == {(u.account_id, u.user_id) for u in people}
    assert out["failed"] == 1


def test_invites_send_emails_and_need_no_look_up(tmp_path: Path) -> None:
    em = kit.emulator()
    account = kit.accounts(em)[0]
    out = _resolve(tmp_path, em, kit.by_email(account, ["new@example.com"]), "invite")
    assert sum(em.stats.requests.values()) == 0
    assert [i.email for i in out["pending"]] == ["new@example.com"]
    assert all(r.status == State.PENDING.value for r in out["report"])
