"""The CheckpointStore contract: what every backend must do, run over each of them.

Every test takes a store from the one parametrized fixture, :func:`new_store`; a new
backend adds its name to that fixture's ``params`` and passes this suite unchanged.
Only what :class:`~bulkchime.store.CheckpointStore` promises is tested here (SQLite's
own files, locks and schema versions are in ``test_store_sqlite.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkchime.errors import CheckpointMismatch, InputError
from bulkchime.store import (
    CheckpointStore,
    ItemRecord,
    State,
    TaskOutcome,
    WorkItem,
    open_store,
)
from bulkchime.store._item_rows import ItemRows, item_row

from .servers import require_postgres, unique_name

NewStore = Callable[[], Awaitable[CheckpointStore]]

JOB = {"actions": ["logout", "suspend"], "input": "users.csv", "input_sha256": "1"}


@pytest.fixture(params=["sqlite", "postgres"])
async def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NewStore]:
    """Opens new, empty stores of the backend under test; closes them all afterwards.

    Each PostgreSQL store is a new job in the test database, deleted afterwards."""
    opened: list[CheckpointStore] = []
    database = require_postgres() if request.param == "postgres" else None

    async def new() -> CheckpointStore:
        if request.param == "sqlite":
            store = await open_store(tmp_path / f"contract-{len(opened)}.ckpt.sqlite")
        elif request.param == "postgres":
            store = await open_store(f"{database}?job={unique_name('contract')}")
        else:  # pragma: no cover - a backend named in params but not opened here
            raise AssertionError(request.param)
        opened.append(store)
        return store

    yield new
    for store in opened:
        await store.close()
    if database is not None:
        for location in {store.location for store in opened}:
            await (await open_store(location)).close(discard=True)


@pytest.fixture
async def store(new_store: NewStore) -> CheckpointStore:
    """One new, empty store."""
    return await new_store()


def user(
    key: str,
    line: int | None = None,
    account: str | None = "acc",
    *,
    rejection: str | None = None,
    result: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> ItemRecord:
    """An item keyed by user id."""
    return ItemRecord(
        line=line,
        key=key,
        raw_key=key.upper(),
        account_id=account,
        user_id=key or None,
        fields=fields,
        rejection=rejection,
        result=result,
    )


def email(address: str, line: int | None = None, account: str | None = "acc") -> ItemRecord:
    """An item keyed by email, its user id still to be found."""
    return ItemRecord(line=line, key=address, raw_key=address, account_id=account, email=address)


async def ingested(
    store: CheckpointStore, records: Sequence[ItemRecord], actions: Sequence[str] = ("suspend",)
) -> list[WorkItem]:
    """Ingest *records* for a new job; the first phase's pending work."""
    await store.check_job({**JOB, "actions": list(actions)})
    await store.ingest(actions, records)
    return await pending(store)


async def pending(
    store: CheckpointStore, phase: int = 0, account_id: str | None = None
) -> list[WorkItem]:
    """The claimable tasks of *phase* (of *account_id*), claimed and released again.

    This runner's claims are released first: a task a pending outcome kept its claim
    (a shared store's) is claimable again only then."""
    await store.release()
    items = await store.claim(phase, 1000, account_id)
    await store.release()
    return items


async def statuses(store: CheckpointStore) -> list[tuple[str, str, str]]:
    """``(key, action, report status)`` of every task, in report order."""
    return [(r.key, r.action, r.status) async for r in store.report_records()]


# -- lifecycle and the job ---------------------------------------------------------------


async def test_a_new_store_has_no_job_and_must_ingest(store: CheckpointStore) -> None:
    assert isinstance(store, CheckpointStore)
    assert await store.job_meta() is None
    assert await store.check_job(JOB) is True
    assert await store.job_meta() == JOB
    assert await store.counts() == {}
    assert await store.holder() == os.getpid()


async def test_the_same_job_resumes_without_reading_its_input_again(
    store: CheckpointStore,
) -> None:
    assert await store.check_job(JOB) is True
    await store.ingest(JOB["actions"], [user("a")])
    assert await store.check_job(dict(JOB)) is False


async def test_a_job_that_died_while_reading_its_input_reads_it_again(
    store: CheckpointStore,
) -> None:
    assert await store.check_job(JOB) is True
    await store.ingest_chunk(JOB["actions"], [user("a")])
    assert await store.check_job(JOB) is True


async def test_another_job_is_refused_naming_every_field_that_differs(
    store: CheckpointStore,
) -> None:
    await store.check_job(JOB)
    await store.ingest(JOB["actions"], [user("a")])
    other = {**JOB, "actions": ["suspend"], "input_sha256": "2", "params": {"x": 1}}
    with pytest.raises(CheckpointMismatch) as raised:
        await store.check_job(other)
    message = str(raised.value)
    for name in ("actions", "input_sha256", "params"):
        assert name in message
    assert "'1'" in message and "'2'" in message and "--force" in message
    assert "input:" not in message  # unchanged fields are not listed
    assert await store.job_meta() == JOB


async def test_force_takes_the_new_job_and_rereads_only_a_changed_input(
    store: CheckpointStore,
) -> None:
    await store.check_job(JOB)
    await store.ingest(JOB["actions"], [user("a")])
    assert await store.check_job({**JOB, "params": {"x": 1}}, force=True) is False
    assert (await store.job_meta() or {})["params"] == {"x": 1}
    assert await store.check_job({**JOB, "input_sha256": "2"}, force=True) is True


async def test_a_changed_input_adds_only_its_new_rows_and_keeps_outcomes(
    store: CheckpointStore,
) -> None:
    (a,) = await ingested(store, [user("a", 2)])
    await store.record([TaskOutcome(a.item_id, 0, State.DONE)])
    assert await store.check_job({**JOB, "actions": ["suspend"], "input_sha256": "2"}, force=True)
    added = await store.ingest(["suspend"], [user("a", 2), user("b", 3), user("b", 4)])
    assert added == 2  # b twice; a was there already
    assert await statuses(store) == [
        ("a", "suspend", "succeeded"),
        ("b", "suspend", "pending"),
        ("b", "suspend", "skipped"),
    ]
    assert await store.check_job({**JOB, "actions": ["suspend"], "input_sha256": "2"}) is False


async def test_a_changed_input_whose_reading_died_is_added_on_resume(
    store: CheckpointStore,
) -> None:
    (a,) = await ingested(store, [user("a", 2)])
    await store.record([TaskOutcome(a.item_id, 0, State.DONE)])
    changed = {**JOB, "actions": ["suspend"], "input_sha256": "2"}
    assert await store.check_job(changed, force=True)

    def dies() -> Iterator[ItemRecord]:
        yield user("b", 3)
        raise InputError("users.csv", "bad row", line=4)

    with pytest.raises(InputError):
        await store.ingest(["suspend"], dies())
    # The next run has the same job, but must still read its input.
    assert await store.check_job(changed) is True
    await store.ingest(["suspend"], [user("a", 2), user("b", 3), user("c", 4)])
    assert await statuses(store) == [
        ("a", "suspend", "succeeded"),
        ("b", "suspend", "pending"),
        ("c", "suspend", "pending"),
    ]


async def test_info_keeps_json_values_by_name(store: CheckpointStore) -> None:
    assert await store.info() == {}
    await store.set_info("started", 1700000000.5)
    await store.set_info("finished", None)
    await store.set_info("started", 1700000001.25)
    await store.set_info("requests", {"BatchSuspendUser": 3})
    assert await store.info() == {
        "started": 1700000001.25,
        "finished": None,
        "requests": {"BatchSuspendUser": 3},
    }


async def test_close_is_idempotent_and_what_was_written_survives(
    new_store: NewStore,
) -> None:
    store = await new_store()
    (a, b, c) = await ingested(store, [user("a"), user("b"), user("c")])
    await store.claim(0, 2)
    await store.mark_in_flight([a, b])
    await store.record([TaskOutcome(a.item_id, 0, State.DONE)])
    await store.close()
    await store.close()
    again = await open_store(store.location)
    try:
        assert await again.counts() == {"succeeded": 1, "in_flight": 1, "pending": 1}
        assert await again.take_over(0) == [b]
        assert await again.check_job({**JOB, "actions": ["suspend"]}) is False
    finally:
        await again.close()


async def test_close_with_discard_deletes_the_checkpoint(new_store: NewStore) -> None:
    store = await new_store()
    await ingested(store, [user("a")])
    await store.close(discard=True)
    await store.close(discard=True)
    again = await open_store(store.location)
    try:
        assert await again.job_meta() is None
        assert await again.counts() == {}
    finally:
        await again.close(discard=True)


# -- ingest ------------------------------------------------------------------------------


async def test_duplicates_are_skipped_and_rejections_kept(store: CheckpointStore) -> None:
    await store.check_job(JOB)
    count = await store.ingest(
        ["suspend", "logout"],
        [
            user("a", 2),
            user("b", 3),
            user("a", 4),
            user("", 5, rejection="empty user_id"),
            user("a", 6, account="other"),  # the same key in another account is another item
        ],
    )
    assert count == 5
    assert await statuses(store) == [
        ("a", "suspend", "pending"),
        ("a", "logout", "pending"),
        ("b", "suspend", "pending"),
        ("b", "logout", "pending"),
        ("a", "suspend", "skipped"),
        ("a", "logout", "skipped"),
        ("", "suspend", "rejected"),
        ("", "logout", "rejected"),
        ("a", "suspend", "pending"),
        ("a", "logout", "pending"),
    ]
    records = [r async for r in store.report_records()]
    assert {(r.error_code, r.message) for r in records[4:6]} == {
        ("Duplicate", "duplicate of line 2; sent once")
    }
    assert {(r.error_code, r.message) for r in records[6:8]} == {("Rejected", "empty user_id")}


async def test_rows_done_when_read_are_stored_done_with_their_result(
    store: CheckpointStore,
) -> None:
    await ingested(store, [user("a", result={"UserId": "a", "Email": "a@x"})], ["export"])
    (record,) = [r async for r in store.report_records()]
    assert record.status == "succeeded" and record.result == {"UserId": "a", "Email": "a@x"}
    assert await pending(store) == []


async def test_ingest_reads_a_generator_off_the_event_loop(store: CheckpointStore) -> None:
    threads: list[int] = []

    def rows() -> Iterator[ItemRecord]:
        for n in range(3):
            threads.append(threading.get_ident())
            yield user(f"u{n}", n + 2)

    await store.check_job(JOB)
    assert await store.ingest(["suspend"], rows()) == 3
    assert threads and threading.get_ident() not in threads


async def test_items_given_as_rows_are_stored_as_the_same_items_as_records(
    new_store: NewStore,
) -> None:
    records = [
        user("a", 2, fields={"license": "Pro"}),
        user("b", 3, rejection="malformed user_id 'b b'"),
        user("a", 4),
        user("c", 5, account=None),
        user("d", 6, result={"UserId": "d"}),
        ItemRecord(line=7, key="e", raw_key="E", account_id="acc", skip=("Changed", "why")),
        email("f@x", 8),
        email("f@x", 9, account="other"),
        user("c", 10, account=None),
    ]
    stored: list[list[Any]] = []
    for items in (records, ItemRows(item_row(record) for record in records)):
        store = await new_store()
        await store.check_job({**JOB, "actions": ["logout", "suspend"]})
        assert await store.ingest(["logout", "suspend"], items) == len(records)
        stored.append([r.as_dict() async for r in store.report_records()])
        stored.append(await store.rejected_rows())
    assert stored[0] == stored[2] and stored[1] == stored[3]
    assert [r["status"] for r in stored[0][::2]] == [
        "pending", "rejected", "skipped", "pending", "succeeded", "skipped", "pending",
        "pending", "skipped",
    ]  # fmt: skip


async def test_an_input_error_mid_way_ingests_nothing_and_the_next_ingest_starts_clean(
    store: CheckpointStore,
) -> None:
    def rows() -> Iterator[ItemRecord]:
        for n in range(12_000):  # more than one chunk, whatever a backend's chunk size
            yield user(f"u{n}", n + 2)
        raise InputError("users.csv", "not UTF-8", line=12_002)

    await store.check_job(JOB)
    with pytest.raises(InputError, match="users.csv:12002"):
        await store.ingest(["suspend"], rows())
    assert await store.check_job(JOB) is True
    assert await store.ingest(["suspend"], [user("a", 2), user("b", 3)]) == 2
    assert await store.counts() == {"pending": 2}
    assert await store.check_job(JOB) is False


async def test_chunks_then_finish_ingest_mark_duplicates_across_chunks(
    store: CheckpointStore,
) -> None:
    await store.check_job(JOB)
    assert await store.ingest_chunk(["suspend"], [user("a"), user("b")]) == 2
    assert await store.ingest_chunk(["suspend"], []) == 0
    assert await store.ingest_chunk(["suspend"], [user("a"), user("c")]) == 2
    assert await store.check_job(JOB) is True  # not finished yet
    await store.finish_ingest()
    assert await store.check_job(JOB) is False
    assert await statuses(store) == [
        ("a", "suspend", "pending"),
        ("b", "suspend", "pending"),
        ("a", "suspend", "skipped"),
        ("c", "suspend", "pending"),
    ]
    assert await store.rejected_rows() == [(None, "skipped", "duplicate of line ?; sent once")]


# -- the work queue --------------------------------------------------------------------------


async def test_pending_pages_go_in_item_order_by_phase_and_account(
    store: CheckpointStore,
) -> None:
    records = [user(f"u{n}", n + 2, "acc" if n % 2 else "other") for n in range(7)]
    page = await ingested(store, records, ["logout", "suspend"])
    ids = [item.item_id for item in page]
    assert ids == sorted(ids) and len(ids) == 7
    first = page[0]
    assert (first.phase, first.key, first.account_id, first.user_id, first.attempts) == (
        0,
        "u0",
        "other",
        "u0",
        0,
    )
    seen: list[int] = []
    while chunk := await store.claim(0, 3):  # each claim takes the next ones
        assert len(chunk) <= 3
        seen += [item.item_id for item in chunk]
    assert seen == ids
    await store.release()
    in_acc = await store.claim(0, 1, "acc")
    assert [item.key for item in in_acc] == ["u1"]
    assert [item.key for item in await store.claim(0, 100, "acc")] == ["u3", "u5"]
    await store.release()
    assert [item.key for item in await pending(store, 0, "acc")] == ["u1", "u3", "u5"]
    assert [item.phase for item in await pending(store, 1)] == [1] * 7
    assert await pending(store, 2) == []
    assert sorted(await store.accounts_pending(0), key=str) == ["acc", "other"]


async def test_work_items_carry_their_fields(store: CheckpointStore) -> None:
    item, bare = await ingested(store, [user("a", fields={"license": "Pro"}), user("b")])
    assert item.fields == {"license": "Pro"}
    assert bare.fields == {}


async def test_in_flight_tasks_are_not_claimed_and_the_next_runner_takes_them_over(
    new_store: NewStore,
) -> None:
    store = await new_store()
    a, b, c = await ingested(store, [user("a"), user("b"), user("c")])
    assert await store.claim(0, 10) == [a, b, c]
    await store.mark_in_flight([c, a])
    await store.release()
    assert await pending(store) == [b]
    assert await store.phase_counts(0) == {State.IN_FLIGHT: 2, State.PENDING: 1}
    assert await store.accounts_pending(0) == ["acc"]
    assert await store.others_busy(0) is False
    await store.close()  # the run stops with a and c cut off in flight
    again = await open_store(store.location)
    try:
        assert await again.take_over(1) == []
        assert await again.take_over(0) == [a, c]
        assert await again.take_over(0) == []
        assert await pending(again) == [b]  # a and c stay in flight: the taker's to settle
        await again.mark_in_flight([a, c])
        await again.record([TaskOutcome(a.item_id, 0, State.DONE)])
        assert await again.phase_counts(0) == {
            State.DONE: 1,
            State.IN_FLIGHT: 1,
            State.PENDING: 1,
        }
    finally:
        await again.close()


async def test_a_one_process_store_renews_and_needs_no_lock_held(store: CheckpointStore) -> None:
    await ingested(store, [user("a")])
    if store.shared:
        pytest.skip("the shared store's leases are tested with several runners")
    assert await store.renew_lease(0) is True
    async with store.exclusive("resolve"):
        assert await store.runners() == []


async def test_record_adds_sends_and_keeps_a_result_it_is_not_given(
    store: CheckpointStore,
) -> None:
    a, b = await ingested(store, [user("a"), user("b")])
    await store.mark_in_flight([a, b])
    await store.record(
        [
            TaskOutcome(a.item_id, 0, State.PENDING, "Throttled", "slow down", sends=3),
            TaskOutcome(b.item_id, 0, State.DONE, result={"UserId": "b"}),
        ]
    )
    await store.record(iter([TaskOutcome(b.item_id, 0, State.DONE, sends=0)]))
    (again,) = await pending(store)
    assert again.item_id == a.item_id and again.attempts == 3
    records = {r.key: r async for r in store.report_records()}
    assert records["a"].status == "pending" and records["a"].error_code == "Throttled"
    assert records["a"].message == "slow down" and records["a"].attempts == 3
    assert records["b"].result == {"UserId": "b"} and records["b"].attempts == 1
    assert records["b"].error_code is None and records["b"].message is None
    await store.record([])
    assert await store.total_attempts() == 4


async def test_a_phase_after_a_failure_is_skipped_and_retry_failed_requeues_both(
    store: CheckpointStore,
) -> None:
    a, b, _ = await ingested(
        store,
        [user("a", 2), user("b", 3), user("c", 4), user("", 5, rejection="no user id")],
        ["logout", "suspend"],
    )
    await store.record(
        [
            TaskOutcome(a.item_id, 0, State.FAILED, "Throttled", "gave up", sends=5),
            TaskOutcome(b.item_id, 0, State.DONE),
        ]
    )
    assert await store.skip_after_failed_phase(0) == 0
    assert await store.skip_after_failed_phase(1) == 1  # a's; the rejected row's is rejected
    records = [r async for r in store.report_records()]
    (skipped,) = [r for r in records if r.status == "skipped"]
    assert (skipped.key, skipped.action, skipped.error_code) == (
        "a",
        "suspend",
        "PreviousPhaseFailed",
    )
    assert "logout" in (skipped.message or "")
    assert await store.phase_counts(1) == {State.PENDING: 2, State.SKIPPED: 1, State.REJECTED: 1}
    assert await store.skip_after_failed_phase(1) == 0

    assert await store.retry_failed() == 1
    assert await store.phase_counts(0) == {State.PENDING: 2, State.DONE: 1, State.REJECTED: 1}
    assert await store.phase_counts(1) == {State.PENDING: 3, State.REJECTED: 1}
    (retried, *_) = await pending(store)
    assert retried.key == "a" and retried.attempts == 0
    assert await store.retry_failed() == 0


async def test_retry_failed_leaves_duplicates_skipped(store: CheckpointStore) -> None:
    a, _ = await ingested(store, [user("a", 2), user("b", 3), user("a", 4)])
    await store.record([TaskOutcome(a.item_id, 0, State.FAILED, "X", "x")])
    assert await store.retry_failed() == 1
    assert await store.counts() == {"pending": 2, "skipped": 1}


async def test_fail_account_fails_only_that_account_s_unfinished_tasks_of_the_phase(
    store: CheckpointStore,
) -> None:
    a, b, c, other = await ingested(
        store,
        [user("a"), user("b"), user("c"), user("d", account="other")],
        ["logout", "suspend"],
    )
    await store.mark_in_flight([b])
    await store.record([TaskOutcome(c.item_id, 0, State.DONE)])
    assert await store.fail_account(0, "acc", "AccountGone", "account acc was deleted") == 2
    counts = await store.phase_counts(0)
    assert counts == {State.FAILED: 2, State.DONE: 1, State.PENDING: 1}
    assert await pending(store) == [other]
    assert await store.phase_counts(1) == {State.PENDING: 4}
    assert sorted(await store.last_errors()) == [
        ("a", "AccountGone", "account acc was deleted"),
        ("b", "AccountGone", "account acc was deleted"),
    ]
    assert await store.fail_account(0, "nobody", "X", "x") == 0


# -- resolution --------------------------------------------------------------------------------


async def test_unresolved_items_are_counted_and_paged_per_account(
    store: CheckpointStore,
) -> None:
    records = [
        email("a@x", 2),
        email("b@x", 3),
        email("c@x", 4, account=None),
        user("u1", 5),
        email("d@x", 6),
    ]
    await ingested(store, records)
    assert await store.unresolved_counts(0) == {"acc": 3, None: 1}
    assert await store.unresolved_counts(1) == {}
    first = await store.unresolved_page(0, "acc", 0, 2)
    assert [item.email for item in first] == ["a@x", "b@x"]
    rest = await store.unresolved_page(0, "acc", first[-1].item_id, 2)
    assert [item.email for item in rest] == ["d@x"]
    (orphan,) = await store.unresolved_page(0, None, 0, 10)
    assert orphan.email == "c@x" and orphan.account_id is None and orphan.user_id is None


async def test_set_user_ids_resolves_items_and_their_account(store: CheckpointStore) -> None:
    a, b, c = await ingested(store, [email("a@x"), email("b@x"), email("c@x", account=None)])
    await store.set_user_ids([(a.item_id, "ua", None), (c.item_id, "uc", "found")])
    assert await store.unresolved_counts(0) == {"acc": 1}
    by_key = {item.key: item for item in await pending(store)}
    assert (by_key["a@x"].user_id, by_key["a@x"].account_id) == ("ua", "acc")
    assert (by_key["c@x"].user_id, by_key["c@x"].account_id) == ("uc", "found")
    assert by_key["b@x"].user_id is None
    assert await store.pending_by_account(0) == {"acc": 2, "found": 1}
    await store.set_user_ids(iter([]))


async def test_a_scanned_directory_resolves_its_account_once(store: CheckpointStore) -> None:
    await ingested(store, [email("a@x", 2), email("b@x", 3), email("a@x", 4, account="other")])
    await store.add_directory("acc", [("a@x", "ua"), ("z@x", "uz")])
    await store.add_directory("acc", [])
    assert await store.resolve_from_directory("other", 0) == 0
    assert await store.resolve_from_directory("acc", 0) == 1
    assert await store.unresolved_counts(0) == {"acc": 1, "other": 1}
    (a, *_) = await pending(store, 0, "acc")
    assert (a.email, a.user_id) == ("a@x", "ua")
    # The account's directory is forgotten: z@x arriving later is not resolved from it.
    changed = {**JOB, "actions": ["suspend"], "input_sha256": "2"}
    assert await store.check_job(changed, force=True)
    await store.ingest(["suspend"], [email("z@x", 5)])
    assert await store.resolve_from_directory("acc", 0) == 0


async def test_fail_unresolved_says_where_the_email_was_looked_for(
    store: CheckpointStore,
) -> None:
    a, _, _ = await ingested(store, [email("a@x"), email("b@x"), email("c@x", account=None)])
    await store.set_user_ids([(a.item_id, "ua", None)])
    assert await store.fail_unresolved(1) == 0
    assert await store.fail_unresolved(0) == 2
    messages = {r.key: (r.status, r.error_code, r.message) async for r in store.report_records()}
    assert messages == {
        "a@x": ("pending", None, None),
        "b@x": ("failed", "NotFound", "no user with email b@x in account acc"),
        "c@x": ("failed", "NotFound", "no account has a user with email c@x"),
    }
    assert await store.unresolved_counts(0) == {}


# -- reading -------------------------------------------------------------------------------------


async def test_counts_errors_and_rejected_rows_read_as_the_report_does(
    store: CheckpointStore,
) -> None:
    a, b, c, d, e = await ingested(
        store,
        [
            user("a", 2),
            user("b", 3),
            user("c", 4),
            user("d", 5),
            user("e", 6),
            user("a", 7),
            user("", 8, rejection="empty user_id"),
        ],
        ["logout", "suspend"],
    )
    await store.mark_in_flight([e])
    for outcome in [  # one at a time: last_errors goes by when each failed
        TaskOutcome(a.item_id, 0, State.DONE),
        TaskOutcome(b.item_id, 0, State.FAILED, "NotFound", "no such user"),
        TaskOutcome(c.item_id, 0, State.FAILED, "NotFound", "no such user", sends=2),
        TaskOutcome(d.item_id, 0, State.FAILED, "Forbidden", "not allowed"),
        TaskOutcome(a.item_id, 1, State.FAILED, "Throttled", "gave up"),
    ]:
        await store.record([outcome])
    assert await store.counts() == {
        "succeeded": 1,
        "failed": 4,
        "in_flight": 1,
        "pending": 4,
        "skipped": 2,
        "rejected": 2,
    }
    assert await store.phase_counts(0) == {
        State.DONE: 1,
        State.FAILED: 3,
        State.IN_FLIGHT: 1,
        State.SKIPPED: 1,
        State.REJECTED: 1,
    }
    errors = await store.error_counts()
    assert errors == {"NotFound": 2, "Rejected": 2, "Forbidden": 1, "Throttled": 1}
    assert list(errors.values()) == [2, 2, 1, 1]  # most frequent first
    assert await store.rejected_rows() == [
        (3, "failed", "no such user"),
        (4, "failed", "no such user"),
        (5, "failed", "not allowed"),
        (7, "skipped", "duplicate of line 2; sent once"),
        (8, "rejected", "empty user_id"),
    ]
    assert await store.pending_by_account(0) == {"acc": 1}
    assert await store.pending_by_account(1) == {"acc": 4}
    assert await store.total_attempts() == 6
    assert await store.last_errors() == [
        ("a", "Throttled", "gave up"),
        ("d", "Forbidden", "not allowed"),
        ("c", "NotFound", "no such user"),
        ("b", "NotFound", "no such user"),
    ]
    assert await store.last_errors(1) == [("a", "Throttled", "gave up")]


async def test_report_records_stream_every_task_in_input_then_phase_order(
    store: CheckpointStore,
) -> None:
    records = [user(f"u{n:05}", n + 2) for n in range(2500)]
    page = await ingested(store, records, ["logout", "suspend"])
    await store.record([TaskOutcome(page[1].item_id, 0, State.DONE, result={"ok": True})])
    report = [r async for r in store.report_records()]
    assert len(report) == 5000
    assert [(r.key, r.action) for r in report[:4]] == [
        ("u00000", "logout"),
        ("u00000", "suspend"),
        ("u00001", "logout"),
        ("u00001", "suspend"),
    ]
    assert [r.line for r in report[::2]] == list(range(2, 2502))
    assert report[2].as_dict() == {
        "line": 3,
        "key": "u00001",
        "action": "logout",
        "account_id": "acc",
        "user_id": "u00001",
        "email": None,
        "status": "succeeded",
        "error_code": None,
        "message": None,
        "attempts": 1,
        "result": {"ok": True},
    }
    assert "result" not in report[0].as_dict()


async def test_an_empty_store_reads_as_empty(store: CheckpointStore) -> None:
    assert [r async for r in store.report_records()] == []
    assert await store.rejected_rows() == []
    assert await store.error_counts() == {}
    assert await store.last_errors() == []
    assert await store.total_attempts() == 0
    assert await store.phase_counts(0) == {}
    assert await store.pending_by_account(0) == {}
    assert await store.accounts_pending(0) == []
    assert await store.take_over(0) == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(st.sampled_from("abcdef"), max_size=30))
async def test_each_key_is_sent_once_and_every_repeat_names_its_first_line(
    new_store: NewStore, keys: list[str]
) -> None:
    store = await new_store()
    try:
        await ingested(store, [user(key, line) for line, key in enumerate(keys, 2)])
        report = [r async for r in store.report_records()]
        first_line = {key: keys.index(key) + 2 for key in keys}
        assert [r.key for r in report] == keys
        for record in report:
            if record.line == first_line[record.key]:
                assert record.status == "pending"
            else:
                assert record.status == "skipped"
                assert record.message == f"duplicate of line {first_line[record.key]}; sent once"
    finally:
        await store.close()
