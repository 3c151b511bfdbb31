"""The fast ingest path: rows as tuples from the file to SQLite, the same items as before.

A million-row input is read as tuples (``read_rows``), made items as tuples
(``engine.ingest``), and stored without a record per row (``ItemRows``), its
duplicates found through a filter of the keys seen. What the checkpoint holds must be
what the per-row objects made: the engine's rules are checked here against the
per-row function they replaced (kept as the oracle), the store's against a filter
that takes every key for a repeat.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkchime.actions import Target, get_action
from bulkchime.constants import LICENSES
from bulkchime.engine import ingest as engine_ingest
from bulkchime.errors import InputError
from bulkchime.sources import read_rows, read_source
from bulkchime.store import ItemRecord, open_store
from bulkchime.store import _sqlite_chunks as chunks
from bulkchime.store._item_rows import ItemRow, ItemRows, item_row
from bulkchime.store._sqlite_ingest import INGEST_CHUNK

JOB = {"actions": ["suspend"], "input": "users.csv", "input_sha256": "1"}


# -- the engine: a source row as an item ---------------------------------------------------


def _old_record(ctx: Any, row: tuple[Any, ...]) -> ItemRow | str:
    """The per-row rule the engine had (``_record``), as the oracle: the item, or the
    message of the job error the row raises."""
    line, key, raw_key, row_account, row_fields, row_rejection = row
    job = ctx.job
    key_kind = job.input.key
    account_id = row_account or ctx.job_account
    fields = {name: row_fields[name] for name in engine_ingest._ITEM_FIELDS if row_fields.get(name)}
    rejection = row_rejection
    if rejection is None and "license" in fields and fields["license"] not in LICENSES:
        rejection = f"license {fields['license']!r} is not one of {', '.join(LICENSES)}"
    if ctx.actions[0].target is Target.USER and not account_id and not rejection:
        try:
            engine_ingest._require_account(ctx, line, "users.csv")
        except InputError as error:
            return str(error)
    skip_reason = row_fields.get("skip_reason")
    for spec in ctx.actions:
        for param in spec.required_params:
            if skip_reason or rejection or fields.get(param) or job.params.get(param):
                continue
            rejection = f"no {param}: the {param!r} cell is empty and the job has no params.{param}"
    skip = (row_fields.get("skip_code") or "Skipped", skip_reason) if skip_reason else None
    return item_row(
        ItemRecord(
            line=line,
            key=key,
            raw_key=raw_key,
            account_id=key if key_kind == "account_id" else account_id,
            email=key if key_kind == "email" else None,
            user_id=key if key_kind == "user_id" else None,
            fields=fields or None,
            rejection=rejection,
            skip=skip,
        )
    )


def _new_record(ctx: Any, row: tuple[Any, ...]) -> ItemRow | str:
    try:
        return next(engine_ingest._item_rows(ctx, iter([row]), "users.csv"))
    except InputError as error:
        return str(error)


_cells = st.sampled_from(["", "Pro", "Basic", "Gold", "pro", "x", "Changed"])
_source_rows = st.tuples(
    st.integers(2, 99),
    st.sampled_from(["a@x.co", "id-1"]),
    st.sampled_from(["A@x.co", "id-1"]),
    st.sampled_from([None, "acc-1"]),
    st.dictionaries(
        st.sampled_from(["license", "skip_reason", "skip_code", "user_type", "other"]), _cells
    ),
    st.sampled_from([None, "malformed email"]),
)


@settings(max_examples=300, deadline=None)
@given(
    row=_source_rows,
    key=st.sampled_from(["email", "user_id"]),
    job_account=st.sampled_from([None, "acc-0"]),
    actions=st.sampled_from(
        [["suspend"], ["update-license"], ["logout", "update-license"], ["invite"]]
    ),
    params=st.sampled_from([{}, {"license": "Pro"}]),
)
def test_each_source_row_becomes_the_item_the_per_row_rule_made(
    row: tuple[Any, ...],
    key: str,
    job_account: str | None,
    actions: list[str],
    params: dict[str, Any],
) -> None:
    job = types.SimpleNamespace(input=types.SimpleNamespace(key=key), params=params)
    specs = [get_action(name) for name in actions]
    ctx = types.SimpleNamespace(job=job, job_account=job_account, actions=specs)
    assert _new_record(ctx, row) == _old_record(ctx, row)


# -- sources: tuples and rows ----------------------------------------------------------------


def test_read_rows_are_the_rows_of_read_source_as_tuples(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "email,license,account_id\nA@x.co,Pro,acc-1\nbad,,\n\nb@x.co,Gold,acc 2\nc@x.co,Basic\n"
    )
    rows = list(read_rows(path, "email"))
    records = list(read_source(path, "email"))
    assert [
        (r.line, r.key, r.raw_key, r.account_id, dict(r.fields), r.rejection) for r in records
    ] == [(*row[:4], dict(row[4]), row[5]) for row in rows]
    assert [row[0] for row in rows] == [2, 3, 5, 6]


def test_rows_without_other_columns_share_one_read_only_mapping_but_not_in_read_source(
    tmp_path: Path,
) -> None:
    path = tmp_path / "users.csv"
    path.write_text("email\na@x.co\nb@x.co\n")
    first, second = (row[4] for row in read_rows(path, "email"))
    assert first is second and not first
    with pytest.raises(TypeError):
        first["x"] = "y"  # type: ignore[index]
    records = list(read_source(path, "email"))
    assert records[0].fields == {} and records[0].fields is not records[1].fields


# -- the store: rows as tuples, duplicates through the filter -----------------------------


def _rows(keys: list[str]) -> list[ItemRow]:
    """Items keyed by *keys*; ``!`` rejects one, ``~`` skips one."""
    rows: list[ItemRow] = []
    for line, key in enumerate(keys, 2):
        bare = key.strip("!~")
        record = ItemRecord(
            line=line,
            key=bare,
            raw_key=bare.upper(),
            account_id="acc" if len(bare) % 2 else None,
            user_id=bare,
            fields={"license": "Pro"} if line % 3 else None,
            rejection="bad" if key.endswith("!") else None,
            skip=("Changed", "changed since") if key.endswith("~") else None,
        )
        rows.append(item_row(record))
    return rows


def _expected(rows: list[ItemRow]) -> list[tuple[int | None, str, str | None]]:
    """``(line, status, message)`` per item, as the duplicate rule says."""
    first: dict[str, int | None] = {}
    out: list[tuple[int | None, str, str | None]] = []
    for row in rows:
        line, key, account, rejection, skip = row[0], row[1], row[3], row[7], row[9]
        if rejection:
            out.append((line, "rejected", rejection))
        elif skip is not None:
            out.append((line, "skipped", skip[1]))
        elif (dedupe := f"{account or ''}|{key}") in first:
            out.append((line, "skipped", f"duplicate of line {first[dedupe]}; sent once"))
        else:
            first[dedupe] = line
            out.append((line, "pending", None))
    return out


async def _ingest(path: Path, records: Any) -> list[tuple[int | None, str, str | None]]:
    store = await open_store(path)
    try:
        await store.check_job(JOB)
        await store.ingest(["suspend"], records)
        return [(r.line, r.status, r.message) async for r in store.report_records()]
    finally:
        await store.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(st.sampled_from(["a", "b", "cc", "dd", "e!", "a!", "b~", "cc~"]), max_size=40))
async def test_a_filter_that_sees_every_key_twice_marks_the_same_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: list[str]
) -> None:
    rows = _rows(keys)
    expected = _expected(rows)
    tmp_path = tmp_path / uuid.uuid4().hex  # a directory per example
    tmp_path.mkdir()
    assert await _ingest(tmp_path / "a.sqlite", ItemRows(rows)) == expected
    # Eight bits: almost every key looks like a repeat (false positives, no misses).
    with monkeypatch.context() as patch:
        patch.setattr(chunks, "_FILTER_BITS", 8)
        got = await _ingest(tmp_path / "b.sqlite", ItemRows(rows))
    assert got == expected
    # Records, not tuples: the same items.
    records = [ItemRecord(*row) for row in rows]
    assert await _ingest(tmp_path / "c.sqlite", records) == expected


async def test_duplicates_across_chunks_name_their_first_line(tmp_path: Path) -> None:
    keys = [f"u{n % 1500}" for n in range(2 * INGEST_CHUNK + 700)]
    rows = _rows(keys)
    assert await _ingest(tmp_path / "c.sqlite", ItemRows(iter(rows))) == _expected(rows)


async def test_item_rows_iterate_as_records_for_any_store() -> None:
    rows = _rows(["a", "b!", "c~"])
    records = list(ItemRows(rows))
    assert all(isinstance(record, ItemRecord) for record in records)
    assert [item_row(record) for record in records] == rows


async def test_an_input_error_mid_chunk_stores_nothing_of_that_chunk(tmp_path: Path) -> None:
    def rows() -> Iterator[ItemRow]:
        yield from _rows([f"u{n}" for n in range(INGEST_CHUNK + 10)])
        raise InputError("users.csv", "is not UTF-8 text", line=INGEST_CHUNK + 12)

    path = tmp_path / "c.sqlite"
    store = await open_store(path)
    try:
        await store.check_job(JOB)
        with pytest.raises(InputError):
            await store.ingest(["suspend"], ItemRows(rows()))
        assert await store.counts() == {"pending": INGEST_CHUNK}  # the first chunk only
        assert await store.check_job(JOB) is True  # to be read again
        assert await store.ingest(["suspend"], ItemRows(_rows(["a", "a"]))) == 2
        assert await store.counts() == {"pending": 1, "skipped": 1}
    finally:
        await store.close()


def test_seen_keys_is_a_power_of_two_bits() -> None:
    seen = chunks.SeenKeys(64)
    assert len(seen.bits) == 8 and seen.mask == 63
    chunk = chunks.ChunkValues(7, seen)
    chunk.add(_rows(["a", "a", "b!"]))
    # The second row is plain (its user id the key, no fields): five values, the others'
    # all nine columns.
    assert chunk.shape == (False, True) and chunk.plain == [8, 3, "a", "A", "acc"]
    assert chunk.others[0::9] == [7, 9]  # ids
    assert chunk.others[8::9] == ["acc|a", None]  # dedupe keys
    assert chunk.maybe == [("acc|a",)] and [item_id for item_id, _ in chunk.final] == [9]
