"""The checkpoint store and the planner, without a server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkchime.actions import ACTIONS
from bulkchime.checkpoint import Checkpoint, ItemRecord, State, TaskOutcome, WorkItem
from bulkchime.errors import CheckpointInUse, CheckpointMismatch
from bulkchime.plan import batches, halves


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


def _record(key: str, **extra: object) -> ItemRecord:
    return ItemRecord(line=1, key=key, raw_key=key, account_id="acc", user_id=key, **extra)  # type: ignore[arg-type]


def test_duplicates_are_skipped_and_rejections_kept(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "c.sqlite") as store:
        store.ingest(
            ["suspend", "logout"],
            [_record("a"), _record("b"), _record("a"), _record("", rejection="empty user_id")],
        )
        states = [(r.key, r.action, r.status) for r in store.report_records()]
    assert states == [
        ("a", "suspend", "pending"),
        ("a", "logout", "pending"),
        ("b", "suspend", "pending"),
        ("b", "logout", "pending"),
        ("a", "suspend", "skipped"),
        ("a", "logout", "skipped"),
        ("", "suspend", "rejected"),
        ("", "logout", "rejected"),
    ]


def test_outcomes_and_in_flight_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Checkpoint(path) as store:
        store.ingest(["suspend"], [_record(k) for k in "abc"])
        page = store.pending_page(0, 0, 10)
        store.mark_in_flight(page[:2])
        store.record([TaskOutcome(page[0].item_id, 0, State.DONE)])
    with Checkpoint(path) as store:
        assert store.counts() == {"succeeded": 1, "in_flight": 1, "pending": 1}
        assert store.reset_in_flight(0) == 1
        assert [item.key for item in store.pending_page(0, 0, 10)] == ["b", "c"]
        assert store.total_attempts() == 1


def test_a_second_opener_is_refused_and_a_dead_holder_is_not(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    first = Checkpoint(path)
    with pytest.raises(CheckpointInUse, match=f"in use by pid {os.getpid()}"):
        Checkpoint(path)
    assert Checkpoint.lock_holder(path) == os.getpid()
    first.close()
    assert Checkpoint.lock_holder(path) is None
    Checkpoint(path).close()


def test_job_mismatch_is_refused_unless_forced(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "c.sqlite") as store:
        assert store.check_job({"actions": ["suspend"], "input_sha256": "1"}) is True
        store.ingest(["suspend"], [_record("a")])
        assert store.check_job({"actions": ["suspend"], "input_sha256": "1"}) is False
        with pytest.raises(CheckpointMismatch, match="input_sha256"):
            store.check_job({"actions": ["suspend"], "input_sha256": "2"})
        assert store.check_job({"actions": ["suspend"], "input_sha256": "2"}, force=True)


def test_files_are_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Checkpoint(path) as store:
        store.ingest(["suspend"], [_record("a")])
        for name in ("c.sqlite", "c.sqlite-wal", "c.sqlite.lock"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode & 0o077 == 0, (name, oct(mode))


def test_retry_failed_requeues_failures_and_the_phases_they_skipped(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "c.sqlite") as store:
        store.ingest(["logout", "suspend"], [_record("a")])
        store.record([TaskOutcome(1, 0, State.FAILED, "Throttled", "gave up")])
        assert store.skip_after_failed_phase(1) == 1
        assert store.retry_failed() == 1
        assert store.counts() == {"pending": 2}
