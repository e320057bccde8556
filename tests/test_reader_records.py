"""Readers against the malformed logs a fuzz campaign found: records, line endings, quotes, page texts,
epoch units, visits without hits, untrimmed ids. Each case ends as a clear error or a counted skip."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenization.errors import DataFormatError
from tokenization.prepare import prepare
from tokenization.readers import read_events

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = "user_id,timestamp,page\n"


def read_all(path, format="events", **options):
    stream = read_events(path, format, **options)
    table = pa.Table.from_batches(list(stream), schema=stream.schema)
    return table, stream.report


def write(tmp_path: Path, text: str | bytes, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_cr_only_line_endings_are_read(tmp_path):
    path = write(tmp_path, b"user_id,timestamp,page\ru1,2024-01-01T00:00:00Z,home\ru1,2024-01-01T00:01:00Z,cart\r")
    table, report = read_all(path)
    assert table.column("page").to_pylist() == ["home", "cart"] and report == {}


def test_a_quoted_newline_is_one_record_and_lines_stay_exact(tmp_path):
    path = write(tmp_path, HEADER + 'u1,2024-01-01T00:00:00Z,"ho\nme"\nu1,2024-01-01T00:01:00Z,cart\nu1,soon,shop\n')
    with pytest.raises(DataFormatError, match="control or invisible character") as caught:
        read_all(path)
    assert caught.value.row == 2  # the record starts on line 2
    table, report = read_all(path, on_bad_rows="skip")
    assert table.column("page").to_pylist() == ["cart"]
    assert report == {"control or invisible character in page": 1, "unparsable timestamp": 1}
    # A quoted newline in another column is kept, and the lines after it are counted exactly.
    path = write(
        tmp_path,
        "user_id,session_id,timestamp,page\n"
        'u1,"s\n1",2024-01-01T00:00:00Z,home\n'
        "u1,s2,2024-01-01T00:01:00Z,cart\nu1,s2,soon,shop\n",
        "sessions.csv",
    )
    with pytest.raises(DataFormatError, match="unparsable timestamp") as caught:
        read_all(path)
    assert caught.value.row == 5


def test_an_unbalanced_quote_costs_one_line(tmp_path):
    rows = [f"u1,2024-01-0{day}T00:00:00Z,page-{day}" for day in range(1, 6)]
    rows[1] = 'u1,2024-01-02T00:00:00Z,"page-2'
    path = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match="unbalanced quote") as caught:
        read_all(path)
    assert caught.value.row == 3
    table, report = read_all(path, on_bad_rows="skip")
    assert table.column("page").to_pylist() == ["page-1", "page-3", "page-4", "page-5"]
    assert report == {"unbalanced quote": 1}


def test_a_skipped_wrong_field_count_keeps_later_line_numbers(tmp_path):
    path = write(
        tmp_path, HEADER + "u1,2024-01-01T00:00:00Z,home\nu1,2024,x,y\nu1,2024-01-01T00:02:00Z,a\nu1,soon,b\n"
    )
    table, report = read_all(path, on_bad_rows="skip")
    assert report == {"wrong number of fields": 1, "unparsable timestamp": 1}
    assert table.column("page").to_pylist() == ["home", "a"]
    with pytest.raises(DataFormatError, match="wrong number of fields") as caught:
        read_all(path)
    assert caught.value.row == 3


@pytest.mark.parametrize(
    "page, reason",
    [
        ("NaN", "null-like page"),
        ("null", "null-like page"),
        (" None ", "null-like page"),
        ("ca\u200brt", "control or invisible character in page"),
        ("ho\x00me", "control or invisible character in page"),
        ("x" * 1001, "page longer than 1000 characters"),
    ],
)
def test_page_texts_that_are_no_pages_are_counted_reasons(tmp_path, page, reason):
    path = tmp_path / "log.parquet"
    pq.write_table(
        pa.table({"user_id": ["u1", "u1"], "timestamp": ["2024-01-01T00:00:00Z"] * 2, "page": ["home", page]}), path
    )
    table, report = read_all(path, on_bad_rows="skip")
    assert table.column("page").to_pylist() == ["home"] and report == {reason: 1}
    with pytest.raises(DataFormatError, match=reason.split(" (")[0]) as caught:
        read_all(path)
    assert caught.value.row == 2 and caught.value.field == "page"


def test_page_length_limit_is_an_option(tmp_path):
    path = write(tmp_path, HEADER + "u1,2024-01-01T00:00:00Z," + "y" * 50 + "\n")
    assert read_all(path, max_page_length=50)[0].num_rows == 1
    assert read_all(path, max_page_length=49, on_bad_rows="skip")[1] == {"page longer than 49 characters": 1}


def test_epoch_microseconds_and_nanoseconds_in_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    micro, nano = 1_569_888_000_123_456, 1_569_888_000_123_456_789
    pq.write_table(
        pa.table({"user_id": ["u1", "u1"], "timestamp": pa.array([micro, nano], pa.int64()), "page": ["a", "b"]}), path
    )
    table, report = read_all(path)
    assert [str(value) for value in table.column("timestamp").to_pylist()] == ["2019-10-01 00:00:00.123456+00:00"] * 2


def test_user_and_session_ids_are_trimmed(tmp_path):
    path = write(
        tmp_path,
        "user_id,session_id,timestamp,page\n u000 , s1 ,2024-01-01T00:00:00Z,a\nu000,s1,2024-01-01T00:01:00Z,b\n",
    )
    table, _ = read_all(path)
    assert table.column("user_id").to_pylist() == ["u000", "u000"]
    assert table.column("session_id").to_pylist() == ["s1", "s1"]


def test_a_ga360_visit_without_hits_is_counted(tmp_path):
    visits = [json.loads(line) for line in (FIXTURES / "ga_sessions_sample.json").read_text().splitlines()]
    empty = {**visits[0], "visitId": "999", "hits": []}
    path = write(tmp_path, "\n".join(json.dumps(v) for v in [*visits, empty]) + "\n", "ga_sessions_20170801.json")
    _, report = read_all(path, "ga360")
    assert report["GA visits without any page view or outcome ignored"] == 1


def test_all_rows_bad_says_no_valid_rows_with_the_counts(tmp_path):
    path = write(tmp_path, HEADER + ",2024-01-01T00:00:00Z,home\nu1,soon,home\n")
    with pytest.raises(DataFormatError, match="no valid rows.*missing user_id: 1, unparsable timestamp: 1"):
        prepare(path, "events", tmp_path / "out", on_bad_rows="skip", progress=False)
