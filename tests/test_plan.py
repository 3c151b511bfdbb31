"""The planner: batches of the API's per-request limits, halves of a batch refused whole,
and the dry run's text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bulkchime.actions import ACTIONS
from bulkchime.plan import PlanLine, batches, halves, plan_text
from bulkchime.store import WorkItem


def _items(count: int) -> list[WorkItem]:
    return [WorkItem(i, 0, f"k{i}", "acc", None, f"u{i}", {}, 0) for i in range(1, count + 1)]


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 500), action=st.sampled_from(sorted(ACTIONS)))
def test_batches_cover_every_item_once_within_the_limit(count: int, action: str) -> None:
    spec = ACTIONS[action]
    cut = list(batches(spec, 0, "acc", _items(count)))
    flat = [item.item_id for batch in cut for item in batch.items]
    assert flat == list(range(1, count + 1))
    assert all(1 <= len(batch) <= spec.items_per_request for batch in cut)
    assert len(cut) == -(-count // spec.items_per_request)


@given(count=st.integers(2, 50))
def test_halves_split_a_batch_in_two_non_empty_parts(count: int) -> None:
    (batch,) = batches(ACTIONS["suspend"], 0, "acc", _items(count))
    left, right = halves(batch)
    assert left.items + right.items == batch.items
    assert left.items and right.items and left.bisected and right.bisected


def test_the_plan_text_counts_requests_look_ups_and_rows_not_sent() -> None:
    lines = [PlanLine("suspend", "acc-1", 120, 50), PlanLine("suspend", None, 3, 50)]
    rejected = [(7, "rejected", "malformed email 'x'")] * 52
    text = plan_text(lines, rejected, {"ListUsers": 4, "GetAccount": 1}, 20.0).splitlines()
    assert text[0] == "plan: 123 items in 4 batches (4 requests)"
    assert text[1] == (
        "look-ups: 5 read-only requests made while planning (GetAccount 1, ListUsers 4)"
    )
    assert text[2] == "  suspend account acc-1: 120 items, 3 requests of up to 50"
    assert text[3] == "  suspend account -: 3 items, 1 request of up to 50"
    assert text[4] == "not sent: 52 rows (rejected 52)"
    assert text[-2] == "  … and 2 more (see the report after a real run)"
    assert text[-1] == "estimated duration: 0.2 s at 20 requests/s"


def test_the_plan_text_speaks_english_for_one_and_names_accounts() -> None:
    lines = [
        PlanLine("logout", "acc-1", 4, 1, account_name="Example Corp 1"),
        PlanLine("suspend", "acc-1", 1, 50, account_name="Example Corp 1"),
        PlanLine("reset-pin", "acc-2", 1, 1),
    ]
    text = plan_text(lines, [(6, "failed", "no user")], {"ListAccounts": 1}, 10.0).splitlines()
    assert text[0] == "plan: 6 items in 6 batches (6 requests)"
    assert text[1] == "look-ups: 1 read-only request made while planning (ListAccounts 1)"
    assert text[2] == "  logout account acc-1 (Example Corp 1): 4 items, 4 requests, one item each"
    assert text[3] == "  suspend account acc-1 (Example Corp 1): 1 item, 1 request of up to 50"
    assert text[4] == "  reset-pin account acc-2: 1 item, 1 request"
    assert text[5] == "not sent: 1 row (failed 1)"
    single = plan_text([PlanLine("suspend", "a", 1, 50)], [], {}, 10.0).splitlines()
    assert single[0] == "plan: 1 item in 1 batch (1 request)"


def test_the_plan_says_which_way_emails_were_resolved_after_the_accounts() -> None:
    note = "resolution: scanned the users of 5 accounts (51 read requests)"
    lines = [
        PlanLine("logout", "acc-1", 600, 1),
        PlanLine("logout", None, 0, 1, note=note),
        PlanLine("logout", "acc-2", 400, 1),
    ]
    text = plan_text(lines, [], {"ListAccounts": 1, "ListUsers": 50}, 10.0).splitlines()
    assert text[0] == "plan: 1000 items in 1000 batches (1000 requests)"
    assert text[2:5] == [
        "  logout account acc-1: 600 items, 600 requests, one item each",
        "  logout account acc-2: 400 items, 400 requests, one item each",
        note,
    ]
