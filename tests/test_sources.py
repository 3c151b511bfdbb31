"""Input files as an administrator writes them: CSV and JSONL, messy, large, or broken."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import string
import types
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkchime import sources
from bulkchime.errors import InputError
from bulkchime.sources import SourceRow, file_fingerprint, read_source


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def rows(path: str | os.PathLike[str], key: str = "email", **kwargs: object) -> list[SourceRow]:
    return list(read_source(path, key, **kwargs))  # type: ignore[arg-type]


def error(path: str | os.PathLike[str], key: str = "email", **kwargs: object) -> InputError:
    with pytest.raises(InputError) as info:
        rows(path, key, **kwargs)
    return info.value


# --- CSV ----------------------------------------------------------------------------------


def test_csv_rows_are_normalized_and_numbered(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "users.csv",
        " Email ,Display Name,LICENSE\n"
        '  Alice@Example.COM ,"Smith, Alice",Basic\n'
        "\n"
        'bob@example.com,"Bob\nJones",Pro\n'
        "carol@example.com,Carol,\n",
    )
    got = rows(path)
    assert [(r.line, r.key, r.raw_key) for r in got] == [
        (2, "alice@example.com", "Alice@Example.COM"),
        (4, "bob@example.com", "bob@example.com"),
        (6, "carol@example.com", "carol@example.com"),
    ]
    assert got[0].fields == {"display name": "Smith, Alice", "license": "Basic"}
    assert got[1].fields["display name"] == "Bob\nJones"
    assert got[2].fields == {"display name": "Carol", "license": ""}
    assert all(r.rejection is None and r.account_id is None for r in got)


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", b"\xef\xbb\xbfemail,name\r\na@b.co,A\r\n\r\nC@D.co,C\r\n")
    got = rows(path)
    assert [(r.line, r.key, dict(r.fields)) for r in got] == [
        (2, "a@b.co", {"name": "A"}),
        (4, "c@d.co", {"name": "C"}),
    ]


def test_mixed_case_duplicates_are_both_yielded_with_one_key(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "email\nBob@Example.com\n  bob@example.COM\t\n")
    got = rows(path)
    assert [r.key for r in got] == ["bob@example.com", "bob@example.com"]
    assert [r.raw_key for r in got] == ["Bob@Example.com", "bob@example.COM"]


def test_account_id_column(tmp_path: Path) -> None:
    path = write(
        tmp_path, "users.csv", "user_id,account_id,note\nu-1, acc-1 ,x\nu-2,,y\nu-3,acc 3,z\n"
    )
    got = rows(path, "user_id")
    assert [(r.key, r.account_id, dict(r.fields)) for r in got] == [
        ("u-1", "acc-1", {"note": "x"}),
        ("u-2", None, {"note": "y"}),
        ("u-3", "acc 3", {"note": "z"}),
    ]
    assert got[2].rejection is not None and "malformed account_id 'acc 3'" in got[2].rejection


def test_account_id_as_key(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "account_id,name\nacc-1,New Name\n")
    (row,) = rows(path, "account_id")
    assert (row.key, row.account_id, dict(row.fields)) == ("acc-1", None, {"name": "New Name"})


def test_user_ids_keep_their_case(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.csv", "user_id\n  ABC-def \n")
    (row,) = rows(path, "user_id")
    assert (row.key, row.raw_key, row.rejection) == ("ABC-def", "ABC-def", None)


def test_row_with_more_fields_than_the_header_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "email,name\na@b.co,Smith, J\nc@d.co,C,,\n")
    first, second = rows(path)
    assert first.rejection is not None
    assert first.rejection.startswith("row has 3 fields, header has 2")
    assert first.key == "a@b.co"
    assert second.rejection is None  # trailing empty fields are a spreadsheet's stray commas


def test_row_with_fewer_fields_gets_empty_values(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "name,email,license\nBob\n")
    (row,) = rows(path)
    assert row.fields == {"name": "Bob", "license": ""}
    assert row.rejection == "empty email"


def test_unnamed_columns_are_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "email,,name,\na@b.co,x,A,\n")
    (row,) = rows(path)
    assert row.fields == {"name": "A"}


def test_blank_and_comma_only_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "\n\n  \nemail,name\n\n,\n  ,  \na@b.co,A\n")
    (row,) = rows(path)
    assert row.line == 8


@pytest.mark.parametrize(
    ("key", "value", "rejection"),
    [
        ("email", "", "empty email"),
        ("email", "   ", "empty email"),
        ("email", "bob.example.com", "malformed email 'bob.example.com'"),
        ("email", "bob@example", "malformed email 'bob@example'"),
        ("email", "bob smith@example.com", "malformed email 'bob smith@example.com'"),
        ("email", "a@@b.co", "malformed email 'a@@b.co'"),
        ("user_id", "", "empty user_id"),
        ("user_id", "abc def", "malformed user_id 'abc def'"),
        ("account_id", "", "empty account_id"),
        ("account_id", "acc\t1", "malformed account_id 'acc\\t1'"),
        ("name", "", "empty name"),
        ("name", "x" * 101, "name is 101 characters long"),
    ],
)
def test_row_level_rejections(tmp_path: Path, key: str, value: str, rejection: str) -> None:
    path = write(tmp_path, "in.csv", f'{key},other\n"{value}",x\n')
    (row,) = rows(path, key)
    assert row.rejection is not None and row.rejection.startswith(rejection)
    assert row.fields == {"other": "x"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("email", "a.b+c@mail.example.co.uk"), ("name", "x" * 100), ("name", "Example Corp 1")],
)
def test_row_level_accepts(tmp_path: Path, key: str, value: str) -> None:
    path = write(tmp_path, "in.csv", f"{key}\n{value}\n")
    (row,) = rows(path, key)
    assert row.rejection is None


def test_missing_key_column(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "Mail, Name\na@b.co,A\n")
    err = error(path)
    assert str(err) == (
        f"{path}:1: email: no 'email' column; the header has: mail, name. HINT: name the "
        'column that holds the emails: --key-column mail (column = "mail" under [input] in '
        "a job file), or rename that column to 'email'"
    )
    assert (err.file, err.line, err.field) == (str(path), 1, "email")


def test_the_hint_for_a_missing_column_can_be_followed(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "Mail, Name\na@b.co,A\n")
    (row,) = rows(path, column="mail")
    assert (row.key, row.fields) == ("a@b.co", {"name": "A"})
    jsonl = write(tmp_path, "users.jsonl", '{"Mail": "a@b.co"}\n{"email": "c@d.co"}\n')
    first, second = rows(jsonl, column="mail")
    assert (first.key, first.rejection) == ("a@b.co", None)
    assert second.rejection is not None and "--key-column" in second.rejection


def test_a_header_with_no_column_like_the_key_asks_for_one(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.csv", "who,name\na@b.co,A\n"))
    assert '--key-column COLUMN (column = "COLUMN" under [input]' in str(err)


def test_a_file_of_emails_read_by_user_id_is_told_to_use_key_email(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.csv", "email,name\na@b.co,A\n"), "user_id")
    assert "HINT: the header has an 'email' column: --key email reads the rows by it" in str(err)


@pytest.mark.parametrize(("delimiter", "called"), [(";", "semicolon"), ("\t", "tab")])
def test_a_header_split_by_another_delimiter_gets_a_hint_about_it(
    tmp_path: Path, delimiter: str, called: str
) -> None:
    path = write(tmp_path, "users.csv", f"email{delimiter}name\na@b.co{delimiter}A\n")
    err = error(path)
    assert f"HINT: the header looks {called}-separated" in str(err)
    assert "save it as CSV with commas" in str(err)


def test_missing_header_is_explained(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.csv", "a@b.co\nc@d.co\n"))
    assert "looks like data, not a header" in str(err)


def test_header_naming_a_column_twice(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.csv", "email,Email\na@b.co,c@d.co\n"))
    assert (err.line, err.field) == (1, "email")
    assert "twice" in str(err)


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n"])
@pytest.mark.parametrize("name", ["users.csv", "users.jsonl", "users.txt"])
def test_empty_input(tmp_path: Path, content: bytes, name: str) -> None:
    path = write(tmp_path, name, content)
    err = error(path)
    assert str(err).startswith(f"{path}: is empty")


def test_header_but_no_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "\nemail,name\n\n,\n")
    err = error(path)
    assert str(err).startswith(f"{path}:2: has a header but no rows")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", b"email,name\na@b.co,A\nc@d.co,Andr\xe9\n")
    err = error(path)
    assert str(err).startswith(f"{path}:3: is not UTF-8 text")
    assert err.line == 3


def test_not_utf8_far_into_the_file(tmp_path: Path) -> None:
    # Well past the first read chunks, and a multi-byte character split across them.
    body = "".join(f"user{i}@example.com,Zoë\n" for i in range(2, 9000)).encode()
    path = write(tmp_path, "users.csv", b"email,name\n" + body + b"bad@example.com,\x80\n")
    assert error(path).line == 9000


def test_not_utf8_after_all_ascii_reads(tmp_path: Path) -> None:
    # ASCII reads are passed on without decoding; the line count must stay right.
    body = "".join(f"user{i}@example.com,U\n" for i in range(2, 20_000)).encode()
    path = write(tmp_path, "users.csv", b"email,name\n" + body + b"bad@example.com,\xe9\n")
    assert error(path).line == 20_000


@pytest.mark.parametrize("shift", range(-14, 2))
def test_a_character_split_between_two_reads_is_read_whole(tmp_path: Path, shift: int) -> None:
    # The first read (8 KiB) is ASCII up to a character whose bytes it cuts in two.
    head = b"email,name\n"
    rows = b"".join(f"u{i:05d}@example.com,U\n".encode() for i in range(600))
    filler = b"a@b.co," + b"x" * (8182 + shift - len(head) - len(rows) - 8) + b"\n"
    path = write(tmp_path, "users.csv", head + rows + filler + "z@b.co,Zoë €\n".encode())
    *_, last = read_source(path, "email")
    assert (last.line, last.key, last.fields["name"]) == (603, "z@b.co", "Zoë €")


def test_truncated_multibyte_character_at_the_end(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", b"email,name\na@b.co,Zo\xc3")
    err = error(path)
    assert err.line == 2 and "is not UTF-8 text" in str(err)


def test_unreadable_inputs(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    assert str(error(missing)).startswith(f"{missing}: cannot read: No such file or directory")
    assert str(error(tmp_path)).startswith(f"{tmp_path}: cannot read: ")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "email\na@b.co\n")
    path.chmod(0)
    assert str(error(path)).startswith(f"{path}: cannot read: Permission denied")


def test_unbalanced_quote_is_a_job_error(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", 'email,name\na@b.co,A\nc@d.co,"oops\ne@f.co,E\n')
    err = error(path)
    assert err.line == 3
    assert "is not valid CSV" in str(err)


def test_stray_quote_after_a_quoted_field(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.csv", 'email,name\na@b.co,"Smith" J\n'))
    assert err.line == 2


def test_unknown_key_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_source(tmp_path / "x.csv", "mail")
    assert info.value.field == "key"


def test_display_name_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "name\nx\n")
    err = error(path, display_name="given/users.csv")
    assert str(err).startswith("given/users.csv:1: email: no 'email' column")


# --- JSONL --------------------------------------------------------------------------------


def test_jsonl_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "users.jsonl",
        '{"Email": " Alice@Example.com ", "License": "Pro", "account_id": "acc-1"}\n'
        "\n"
        '{"email": "bob@example.com", "age": 42, "admin": true, "x": 1.5, "note": null}\r\n',
    )
    first, second = rows(path)
    assert (first.line, first.key, first.raw_key, first.account_id) == (
        1,
        "alice@example.com",
        "Alice@Example.com",
        "acc-1",
    )
    assert first.fields == {"license": "Pro"}
    assert second.line == 3
    assert second.fields == {"age": "42", "admin": "true", "x": "1.5", "note": ""}


def test_jsonl_non_string_key(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.jsonl", '{"user_id": 12345}\n{"user_id": null}\n')
    first, second = rows(path, "user_id")
    assert (first.key, first.rejection) == ("12345", None)
    assert second.rejection == "empty user_id"


def test_jsonl_row_rejections(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "users.jsonl",
        '{"mail": "a@b.co"}\n'
        '{"email": ["a@b.co"]}\n'
        '{"email": "a@b.co", "tags": {"x": 1}}\n'
        '{"email": "a@b.co", "EMAIL": "c@d.co"}\n'
        '{"email": "not-an-email"}\n'
        "{}\n",
    )
    got = rows(path)
    reasons = [r.rejection or "" for r in got]
    assert reasons[0].startswith("no 'email' field")
    assert reasons[1].startswith("email is a JSON array")
    assert reasons[2].startswith("tags is a JSON object")
    assert "same field" in reasons[3]
    assert reasons[4].startswith("malformed email 'not-an-email'")
    assert reasons[5].startswith("no 'email' field")
    assert [r.line for r in got] == [1, 2, 3, 4, 5, 6]


def test_jsonl_invalid_line(tmp_path: Path) -> None:
    path = write(tmp_path, "users.jsonl", '{"email": "a@b.co"}\n{"email": "c@d.co",}\n')
    err = error(path)
    assert str(err).startswith(f"{path}:2: invalid JSON: ")
    assert "cut short" not in str(err)


def test_jsonl_truncated_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, "users.jsonl", '{"email": "a@b.co"}\n\n{"email": "c@d')
    err = error(path)
    assert err.line == 3
    assert str(err).startswith(f"{path}:3: invalid JSON: ")
    assert "cut short" in str(err)


@pytest.mark.parametrize(("line", "kind"), [('"a@b.co"', "string"), ("[1]", "array")])
def test_jsonl_value_that_is_not_an_object(tmp_path: Path, line: str, kind: str) -> None:
    path = write(tmp_path, "users.jsonl", '{"email": "a@b.co"}\n' + line + "\n")
    err = error(path)
    assert err.line == 2
    assert f"JSON {kind}, not an object" in str(err)


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.jsonl", b'{"email": "a@b.co"}\n{"email": "\xff"}\n'))
    assert err.line == 2 and "not UTF-8" in str(err)


# --- formats, stdin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("users.txt", '\n  {"email": "a@b.co", "n": "x"}\n', ("a@b.co", 2, {"n": "x"})),
        ("users", "email,n\na@b.co,x\n", ("a@b.co", 2, {"n": "x"})),
        ("users.ndjson", '{"email": "a@b.co", "n": "x"}\n', ("a@b.co", 1, {"n": "x"})),
        ("USERS.CSV", "email,n\na@b.co,x\n", ("a@b.co", 2, {"n": "x"})),
    ],
)
def test_format_by_suffix_or_sniffing(
    tmp_path: Path, name: str, content: str, expected: tuple[str, int, dict[str, str]]
) -> None:
    (row,) = rows(write(tmp_path, name, content))
    assert (row.key, row.line, dict(row.fields)) == expected


def test_csv_suffix_wins_over_sniffing(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.csv", '{"email": "a@b.co"}\n'))
    assert "no 'email' column" in str(err)


def test_json_array_is_explained(tmp_path: Path) -> None:
    err = error(write(tmp_path, "users.json", '\n[{"email": "a@b.co"}]\n'))
    assert err.line == 2 and "JSON Lines" in str(err)


@pytest.mark.parametrize("content", [b"email\r\nA@B.co\r\n", b'\xef\xbb\xbf{"email": "A@B.co"}\n'])
def test_stdin(content: bytes) -> None:
    stdin = io.BytesIO(content)
    (row,) = rows("-", stdin=stdin)
    assert row.key == "a@b.co"
    assert not stdin.closed  # the caller's stream is left open


def test_stdin_errors_name_stdin() -> None:
    err = error("-", stdin=io.BytesIO(b"name\nx\n"))
    assert str(err).startswith("<stdin>:1: email: no 'email' column")
    assert str(error("-", stdin=io.BytesIO(b""))).startswith("<stdin>: is empty")


# --- streaming ----------------------------------------------------------------------------


class CountingStream(io.RawIOBase):
    """A byte stream that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._data.readinto(buffer)
        self.bytes_read += n
        return n


ROWS = 200_000


def test_large_file_is_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("email,name\n")
        f.writelines(f"User{i}@Example.com,U {i}\n" for i in range(ROWS))
    size = path.stat().st_size
    opened: list[IO[Any]] = []

    def recording_open(file: str, mode: str) -> IO[Any]:
        handle = open(file, mode)
        opened.append(handle)
        return handle

    monkeypatch.setattr(sources, "open", recording_open, raising=False)
    reader = read_source(path, "email")
    assert isinstance(reader, types.GeneratorType)
    assert not opened  # nothing is opened before the first row is asked for
    first = next(reader)
    assert (first.line, first.key) == (2, "user0@example.com")
    assert 0 < opened[0].tell() < size // 20  # the first row came long before the end
    count, last = 1, first
    for row in reader:
        count, last = count + 1, row
    assert count == ROWS
    assert (last.line, last.key) == (ROWS + 1, f"user{ROWS - 1}@example.com")
    assert opened[0].closed


def test_stdin_is_streamed() -> None:
    lines = 20_000
    data = "".join(json.dumps({"user_id": f"id-{i}"}) + "\n" for i in range(lines)).encode()
    stream = CountingStream(data)
    reader = read_source("-", "user_id", stdin=io.BufferedReader(stream))
    assert next(reader).key == "id-0"
    assert 0 < stream.bytes_read < len(data) // 2
    assert sum(1 for _ in reader) == lines - 1
    assert stream.bytes_read == len(data)


def test_closing_the_reader_early_closes_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "email\na@b.co\nc@d.co\n")
    reader = read_source(path, "email")
    next(reader)
    reader.close()  # with filterwarnings = error, a leaked file would fail the run


# --- fingerprint --------------------------------------------------------------------------


def test_file_fingerprint(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = write(tmp_path, "users.csv", data)
    assert file_fingerprint(path) == "sha256:" + hashlib.sha256(data).hexdigest()
    other = write(tmp_path, "other.csv", data + b"\n")
    assert file_fingerprint(other) != file_fingerprint(path)


def test_file_fingerprint_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        file_fingerprint(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="stdin"):
        file_fingerprint("-")


# --- properties ---------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
emails = st.builds(
    "{}@{}.{}".format,
    st.text(_ALNUM + "._%+-", min_size=1, max_size=12),
    st.text(_ALNUM + "-", min_size=1, max_size=12),
    st.text(string.ascii_letters, min_size=2, max_size=6),
)
padding = st.sampled_from(["", " ", "  ", "\t", " \t "])
casing = st.sampled_from([str, str.upper, str.lower, str.swapcase])
# A bare CR in a field that the writer leaves unquoted (its line terminator is "\n") is
# a line break to every CSV reader, so the round trip excludes it.
values = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"),
    max_size=20,
)


@settings(max_examples=80, deadline=None)
@given(
    users=st.lists(st.tuples(emails, padding, padding, casing, values), min_size=1, max_size=30),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    terminator=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    blank_lines=st.booleans(),
)
def test_csv_round_trips_to_normalized_keys(
    users: list[tuple[str, str, str, object, str]],
    quoting: Any,
    terminator: str,
    bom: bool,
    blank_lines: bool,
) -> None:
    text = io.StringIO()
    writer = csv.writer(text, quoting=quoting, lineterminator=terminator)
    writer.writerow([" Email ", "Note"])
    for email, before, after, case, note in users:
        writer.writerow([before + case(email) + after, note])  # type: ignore[operator]
        if blank_lines:
            text.write(terminator)
    data = (b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode()
    got = list(read_source("-", "email", stdin=io.BytesIO(data), display_name="users.csv"))
    assert [r.key for r in got] == [email.lower() for email, *_ in users]
    assert [r.fields["note"] for r in got] == [note.strip() for *_, note in users]
    assert all(r.rejection is None for r in got)
    assert got[0].line == 2


@settings(max_examples=80, deadline=None)
@given(
    users=st.lists(st.tuples(emails, padding, padding, casing, values), min_size=1, max_size=30),
    terminator=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    ascii_only=st.booleans(),
)
def test_jsonl_round_trips_to_normalized_keys(
    users: list[tuple[str, str, str, object, str]], terminator: str, bom: bool, ascii_only: bool
) -> None:
    lines = [
        json.dumps({"email": before + case(email) + after, "note": note}, ensure_ascii=ascii_only)  # type: ignore[operator]
        for email, before, after, case, note in users
    ]
    data = (b"\xef\xbb\xbf" if bom else b"") + terminator.join(lines).encode()
    got = list(read_source("-", "email", stdin=io.BytesIO(data)))
    assert [r.key for r in got] == [email.lower() for email, *_ in users]
    assert [r.fields["note"] for r in got] == [note.strip() for *_, note in users]
    assert [r.line for r in got] == list(range(1, len(users) + 1))
