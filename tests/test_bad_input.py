"""Bad input gives a DataFormatError naming file, row and field, or a counted, logged skip."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenization.errors import DataFormatError
from tokenization.readers import read_events

FIXTURES = Path(__file__).parent / "fixtures"
REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
REES46_ROW = "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde\n"


def read_all(path, format, **options):
    stream = read_events(path, format, **options)
    return pa.Table.from_batches(list(stream), schema=stream.schema), stream.report


def raises(path, format, *, row=None, field=None, match=None, **options) -> DataFormatError:
    with pytest.raises(DataFormatError, match=match) as caught:
        read_all(path, format, **options)
    error = caught.value
    assert error.file is not None and Path(error.file).name in str(error)
    assert (error.row, error.field) == (row, field), str(error)
    return error


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# --- missing column -----------------------------------------------------------------------------


def test_missing_column_in_every_source(tmp_path):
    csv = write(tmp_path, "log.csv", "user_id,timestamp\n1,2024-01-01\n")
    error = raises(csv, "events", field="page", match="missing column 'page'")
    assert "found user_id, timestamp" in str(error)
    rees = write(
        tmp_path, "rees.csv", REES46_HEADER.replace(",user_session", "") + REES46_ROW.rsplit(",", 1)[0] + "\n"
    )
    raises(rees, "rees46", field="user_session", match="missing column")
    jsonl = write(tmp_path, "log.jsonl", '{"user_id": "1", "page": "home"}\n')
    raises(jsonl, "events", field="timestamp", match="missing column")
    parquet = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": ["1"], "page": ["home"]}), parquet)
    raises(parquet, "events", field="timestamp", match="missing column")
    visit = json.loads((FIXTURES / "ga_sessions_sample.json").read_text().splitlines()[0])
    del visit["visitStartTime"]
    ga = write(tmp_path, "ga_sessions_20170801.json", json.dumps(visit) + "\n")
    raises(ga, "ga360", field="visitStartTime", match="missing column")


def test_missing_column_is_an_error_even_when_skipping(tmp_path):
    csv = write(tmp_path, "log.csv", "user_id,timestamp\n1,2024-01-01\n")
    raises(csv, "events", field="page", on_bad_rows="skip")


# --- wrong type ---------------------------------------------------------------------------------


def test_wrong_column_type_in_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    pq.write_table(
        pa.table({"user_id": [1.5, 2.5], "timestamp": ["2024-01-01", "2024-01-02"], "page": ["a", "b"]}), path
    )
    raises(path, "events", field="user_id", match="wrong type double")
    pq.write_table(pa.table({"user_id": ["1"], "timestamp": [[1, 2]], "page": ["a"]}), path)
    raises(path, "events", field="timestamp", match="wrong type list")


def test_wrong_value_type_in_json_lines(tmp_path):
    path = write(
        tmp_path,
        "log.jsonl",
        '{"user_id": "1", "timestamp": 1700000000, "page": "a"}\n'
        '{"user_id": "1", "timestamp": 1700000060, "page": ["b", "c"]}\n',
    )
    raises(path, "events", row=2, field="page", match="wrong type list")
    table, report = read_all(path, "events", on_bad_rows="skip")
    assert table.num_rows == 1 and report == {"wrong type list": 1}


def test_ga360_number_fields_that_are_not_numbers(tmp_path):
    lines = (FIXTURES / "ga_sessions_sample.json").read_text().splitlines()
    visit = json.loads(lines[1])
    visit["visitStartTime"] = "yesterday"
    path = write(tmp_path, "ga_sessions_20170801.json", "\n".join([lines[0], json.dumps(visit), *lines[2:]]) + "\n")
    raises(path, "ga360", row=2, field="visitStartTime", match="'yesterday'")
    visit = json.loads(lines[2])
    visit["hits"][1]["time"] = {"ms": 5}
    path = write(tmp_path, "ga_sessions_20170802.json", "\n".join([lines[0], json.dumps(visit)]) + "\n")
    raises(path, "ga360", row=2, field="hits.time", match="wrong type dict")
    table, report = read_all(path, "ga360", on_bad_rows="skip")
    assert set(table.column("session_id").to_pylist()) == {"0723041510287433245:1501583974"}
    assert report["wrong type dict"] == 1


# --- unparsable timestamp -----------------------------------------------------------------------


def test_unparsable_timestamp_names_the_line(tmp_path):
    path = write(
        tmp_path, "log.csv", "user_id,timestamp,page\n1,2024-01-01T10:00:00Z,a\n1,2024-13-45 10:00,b\n1,not a time,c\n"
    )
    error = raises(path, "events", row=3, field="timestamp", match="unparsable timestamp: '2024-13-45 10:00'")
    assert "on_bad_rows='skip'" in str(error)


def test_skipped_rows_are_counted_and_logged(tmp_path, caplog):
    path = write(
        tmp_path,
        "log.csv",
        (
            "user_id,timestamp,page\n1,2024-01-01T10:00:00Z,a\n1,2024-13-45 10:00,b\n1,not a time,c\n"
            ",2024-01-01,d\n2,2024-01-01,\n"
        ),
    )
    with caplog.at_level(logging.WARNING):
        table, report = read_all(path, "events", on_bad_rows="skip")
    assert table.column("page").to_pylist() == ["a"]
    assert report == {"unparsable timestamp": 2, "missing user_id": 1, "missing page": 1}
    assert "log.csv" in caplog.text and "unparsable timestamp: 2" in caplog.text


def test_rees46_bad_rows(tmp_path):
    bad_time = REES46_ROW.replace("2019-10-01 00:00:00 UTC", "01/10/2019")
    unknown = REES46_ROW.replace(",view,", ",wishlist,")
    no_session = REES46_ROW.replace(",72d76fde", ",")
    path = write(tmp_path, "rees.csv", REES46_HEADER + REES46_ROW + bad_time + unknown + no_session)
    raises(path, "rees46", row=3, field="event_time", match="'01/10/2019'")
    table, report = read_all(path, "rees46", on_bad_rows="skip")
    assert table.num_rows == 1
    assert report == {
        "unparsable timestamp": 1,
        "unknown event_type (expected one of view, cart, remove_from_cart, purchase)": 1,
        "missing user_session": 1,
    }


# --- empty file ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, format",
    [
        ("log.csv", "events"),
        ("log.jsonl", "events"),
        ("log.parquet", "events"),
        ("rees.csv", "rees46"),
        ("ga_sessions_20170801.json", "ga360"),
    ],
)
def test_empty_file_is_always_an_error(tmp_path, name, format):
    path = write(tmp_path, name, b"")
    raises(path, format, match="empty file", on_bad_rows="skip")


def test_header_only_and_blank_files(tmp_path):
    raises(write(tmp_path, "rees.csv", REES46_HEADER), "rees46", match="no data rows")
    raises(write(tmp_path, "log.jsonl", "\n\n"), "events", match="no line is a JSON object")
    path = tmp_path / "log.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([], pa.string()),
                "timestamp": pa.array([], pa.string()),
                "page": pa.array([], pa.string()),
            }
        ),
        path,
    )
    raises(path, "events", match="no data rows")


# --- non-UTF-8 byte -----------------------------------------------------------------------------


def test_non_utf8_byte_in_csv(tmp_path):
    path = write(tmp_path, "log.csv", b"user_id,timestamp,page\n1,2024-01-01,caf\xc3\xa9\n1,2024-01-02,caf\xe9\n")
    raises(path, "events", row=3, field="page", match="invalid UTF-8")
    table, report = read_all(path, "events", on_bad_rows="skip")
    assert table.column("page").to_pylist() == ["café"] and report == {"invalid UTF-8": 1}
    header = write(tmp_path, "header.csv", b"user_id,timestamp,p\xe4ge\n1,2024-01-01,a\n")
    raises(header, "events", row=1, match="invalid UTF-8")


def test_non_utf8_byte_in_json_lines(tmp_path):
    path = write(
        tmp_path,
        "log.jsonl",
        b'{"user_id": "1", "timestamp": 1700000000, "page": "a"}\n'
        b'{"user_id": "1", "timestamp": 1700000060, "page": "caf\xe9"}\n',
    )
    raises(path, "events", row=2, match="invalid UTF-8")
    table, report = read_all(path, "events", on_bad_rows="skip")
    assert table.num_rows == 1 and report == {"invalid UTF-8": 1}


# --- structure: fields per line, malformed JSON -------------------------------------------------


def test_wrong_number_of_fields_in_csv(tmp_path):
    path = write(tmp_path, "rees.csv", REES46_HEADER + REES46_ROW + "2019-10-01 00:00:01 UTC,view,1\n" + REES46_ROW)
    raises(path, "rees46", row=3, match="expected 9, found 3")
    table, report = read_all(path, "rees46", on_bad_rows="skip")
    assert table.num_rows == 2 and report == {"wrong number of fields": 1}


def test_malformed_json_line(tmp_path):
    good = (FIXTURES / "ga_sessions_sample.json").read_text().splitlines()
    path = write(
        tmp_path, "ga_sessions_20170801.json", "\n".join([good[0], '{"fullVisitorId": "1", "hits": [', good[1]]) + "\n"
    )
    raises(path, "ga360", row=2, match="malformed JSON")
    table, report = read_all(path, "ga360", on_bad_rows="skip")
    assert report["malformed JSON"] == 1 and table.num_rows == 10


# --- unknown format / file type -----------------------------------------------------------------


def test_unknown_format_and_unreadable_files(tmp_path):
    path = shutil.copy(FIXTURES / "events_sample.csv", tmp_path / "log.csv")
    raises(path, "xlsx", match="unknown format 'xlsx'")
    raises(tmp_path / "nothing.csv", "events", match="no such file")
    raises(write(tmp_path, "log.xml", "<log/>"), "events", match="unknown file type ..xml.")
    raises(write(tmp_path, "fake.parquet", "user_id,timestamp,page\n"), "events", match="not a readable Parquet file")
    truncated = gzip.compress((FIXTURES / "rees46_sample.csv").read_bytes())[:300]
    raises(write(tmp_path, "rees.csv.gz", truncated), "rees46", match="corrupt or truncated")
    with pytest.raises(DataFormatError, match="unknown file format"):
        read_events(path, "events", file_format="xml")
