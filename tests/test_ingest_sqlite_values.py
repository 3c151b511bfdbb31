"""What a SQLite ingest stores, whatever way each row's values travel.

Plain items (a key and an account, their email or user id the key itself) are bound
as five values and SQLite makes their other columns; any other item binds all nine.
Rejected and skipped items' tasks are held until the ingest's last transaction. The
file must hold, column for column, what storing each item by itself stores.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkchime._row_checks import check_key, valid_key
from bulkchime.errors import InputError
from bulkchime.store import open_store
from bulkchime.store._item_rows import ItemRow, ItemRows
from bulkchime.store._sqlite_ingest import INGEST_CHUNK

JOB = {"actions": ["suspend", "logout"], "input": "users.csv", "input_sha256": "1"}

#: The email rule as first written: the pattern the faster one must agree with.
_EMAIL_AS_WRITTEN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="ab.@ \t\n\x1c\x85\xa0\u2028\u3000é", max_size=10))
def test_the_email_check_accepts_exactly_what_the_written_rule_does(text: str) -> None:
    valid = valid_key("email")
    assert valid is not None
    assert bool(valid(text)) == bool(_EMAIL_AS_WRITTEN.fullmatch(text))
    assert (check_key("email", text)[1] is None) == bool(text and valid(text))


def _query(path: Path, statement: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(statement).fetchall()
    finally:
        db.close()


_keys = st.sampled_from(["a@x.co", "b@x.co", "id-1", "id-2"])


@st.composite
def _item_rows(draw: st.DrawFn) -> ItemRow:
    """An item of any shape: its email and user id the key itself, an equal copy of it,
    or none; with or without an account, fields, a rejection, a skip or a result."""
    key = draw(_keys)
    copy = "".join(key)  # equal, not the same object
    return (
        draw(st.one_of(st.none(), st.integers(2, 99))),
        key,
        key.upper(),
        draw(st.sampled_from([None, "", "acc-1", "acc-2", key])),
        draw(st.sampled_from([None, key, copy])),
        draw(st.sampled_from([None, None, key, copy, "u-9"])),
        draw(st.sampled_from([None, None, None, {"license": "Pro"}, {}])),
        draw(st.sampled_from([None, None, None, None, "malformed", ""])),
        draw(st.sampled_from([None, None, None, None, {"UserId": "u-1"}])),
        draw(st.sampled_from([None, None, None, None, ("Changed", "changed since")])),
    )


def _expected_item(item_id: int, row: ItemRow) -> tuple[Any, ...]:
    """The ``items`` row that storing *row* by itself stores."""
    line, key, raw_key, account_id, email, user_id, fields, rejection, _, skip = row
    dedupe = None if rejection or skip is not None else f"{account_id or ''}|{key}"
    fields_text = json.dumps(fields, separators=(",", ":"), sort_keys=True) if fields else None
    return (item_id, line, key, raw_key, account_id, email, user_id, fields_text, dedupe)


def _expected_states(rows: list[ItemRow]) -> list[tuple[int, int, str, str | None]]:
    """``(item id, phase, state, message)`` of every task, duplicates marked."""
    first: dict[str, int | None] = {}
    tasks: list[tuple[int, int, str, str | None]] = []
    for item_id, row in enumerate(rows, 1):
        key, account_id, rejection, result, skip = row[1], row[3], row[7], row[8], row[9]
        state, message = "pending", None
        if rejection:
            state, message = "rejected", rejection
        elif skip is not None:
            state, message = "skipped", skip[1]
        elif result is not None:
            state = "done"
            first.setdefault(f"{account_id or ''}|{key}", row[0])
        elif (dedupe := f"{account_id or ''}|{key}") in first:
            state, message = "skipped", f"duplicate of line {first[dedupe] or '?'}; sent once"
        else:
            first[dedupe] = row[0]
        tasks += [(item_id, phase, state, message) for phase in (0, 1)]
    return tasks


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_item_rows(), max_size=30))
async def test_every_item_is_stored_as_storing_it_alone_would(
    tmp_path: Path, rows: list[ItemRow]
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.ckpt.sqlite"
    store = await open_store(path)
    try:
        await store.check_job(JOB)
        assert await store.ingest(JOB["actions"], ItemRows(rows)) == len(rows)
    finally:
        await store.close()
    items = _query(path, "SELECT * FROM items ORDER BY id")
    assert items == [_expected_item(item_id, row) for item_id, row in enumerate(rows, 1)]
    tasks = _query(path, "SELECT item_id, phase, state, message FROM tasks ORDER BY 1, 2")
    expected = _expected_states(rows)
    # A done item's duplicates name its line: the rule above, as the store marks them.
    assert [task[:3] for task in tasks] == [task[:3] for task in expected]
    assert [t[3] for t in tasks if t[2] != "skipped"] == [
        t[3] for t in expected if t[2] != "skipped"
    ]


async def test_rejected_tasks_are_stored_with_the_last_chunk_and_a_stopped_ingest_has_none(
    tmp_path: Path,
) -> None:
    def rows(fail: bool) -> Iterator[ItemRow]:
        for n in range(2 * INGEST_CHUNK + 10):
            rejection = "malformed email 'x'" if n % 100 == 7 else None
            yield (n + 2, f"u{n}@x.co", f"U{n}@x.co", "acc", f"u{n}@x.co", None, None,
                   rejection, None, None)  # fmt: skip
        if fail:
            raise InputError("users.csv", "is not UTF-8 text", line=2 * INGEST_CHUNK + 12)

    path = tmp_path / "c.ckpt.sqlite"
    store = await open_store(path)
    try:
        await store.check_job(JOB)
        with pytest.raises(InputError):
            await store.ingest(["suspend"], ItemRows(rows(fail=True)))
        # The chunks stored so far, their pending tasks only: the ingest starts again.
        assert await store.counts() == {"pending": 2 * INGEST_CHUNK - 100}
        assert await store.check_job(JOB) is True
        count = await store.ingest(["suspend"], ItemRows(rows(fail=False)))
        assert count == 2 * INGEST_CHUNK + 10
        assert await store.counts() == {"pending": count - 101, "rejected": 101}
        rejected = await store.rejected_rows()
        assert rejected[0] == (9, "rejected", "malformed email 'x'") and len(rejected) == 101
    finally:
        await store.close()


async def test_an_ingest_leaves_the_connection_s_settings_as_it_found_them(
    tmp_path: Path,
) -> None:
    from bulkchime.store import _sqlite_ingest

    seen: list[tuple[int, int]] = []
    finish = _sqlite_ingest.Ingester.finish

    def settings_then_finish(self: Any, db: Any) -> None:
        finish(self, db)
        seen.append(
            (
                db.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
                db.execute("PRAGMA cache_size").fetchone()[0],
            )
        )

    rows = [(n + 2, f"u{n}", f"u{n}", "acc", None, f"u{n}", None, None, None, None)
            for n in range(INGEST_CHUNK + 1)]  # fmt: skip
    store = await open_store(tmp_path / "c.ckpt.sqlite")
    try:
        await store.check_job(JOB)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_sqlite_ingest.Ingester, "finish", settings_then_finish)
            await store.ingest(["suspend"], ItemRows(rows))
    finally:
        await store.close()
    assert seen == [(1000, -2000)]
