"""Each browsing-log reader on small fixture files written in the public schemas."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenization.constants import EVENT_SCHEMA, OUTCOME_CART, OUTCOME_PURCHASE
from tokenization.page_rules import PageRules
from tokenization.readers import FORMATS, EventStream, read_events

FIXTURES = Path(__file__).parent / "fixtures"
REES46 = FIXTURES / "rees46_sample.csv"
GA360 = FIXTURES / "ga_sessions_sample.json"
EVENTS_CSV = FIXTURES / "events_sample.csv"
EVENTS_JSONL = FIXTURES / "events_sample.jsonl"


def read_table(stream: EventStream) -> pa.Table:
    batches = list(stream)
    for batch in batches:
        assert batch.schema.names == stream.schema.names
        assert batch.schema.field("timestamp").type == EVENT_SCHEMA.field("timestamp").type
    return pa.Table.from_batches(batches, schema=stream.schema)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- REES46 -------------------------------------------------------------------------------------


def test_rees46_product_pages_outcomes_and_sessions():
    stream = read_events(REES46, "rees46")
    table = read_table(stream)
    rows = table.to_pylist()
    assert stream.report == {"remove_from_cart ignored": 1}
    assert stream.synthetic is False
    assert len(rows) == 12
    assert rows[0] == {
        "user_id": "541312140",
        "session_id": "72d76fde-8bb3-4e00-8c23-a032dfed738c",
        "timestamp": utc(2019, 10, 1),
        "page": "product/2103807459595387724/44600062",  # empty category_code -> category_id
    }
    assert rows[1]["page"] == "product/electronics.smartphone/1004237"
    buying = [r["page"] for r in rows if r["session_id"] == "0e2b5c3f-5d9c-4b43-9a5e-1f1f7a7d1c11"]
    assert buying == ["product/electronics.smartphone/1004239", OUTCOME_CART, OUTCOME_PURCHASE]
    assert rows[-3]["timestamp"] == utc(2019, 10, 2, 9, 17, 45)


def test_rees46_category_granularity():
    pages = read_table(read_events(REES46, "rees46", granularity="category")).column("page").to_pylist()
    assert pages[:2] == ["category/2103807459595387724", "category/electronics.smartphone"]
    assert OUTCOME_CART in pages and not any(p.startswith("product/") for p in pages)


def test_rees46_both_adds_category_page_when_the_category_changes():
    rows = read_table(read_events(REES46, "rees46", granularity="both")).to_pylist()
    session = [r["page"] for r in rows if r["session_id"] == "c6bd7419-2748-4c56-95b4-8cec9ff8b80d"]
    assert session == [
        "category/electronics.smartphone",
        "product/electronics.smartphone/1004237",
        "product/electronics.smartphone/1004239",  # same category: no second category page
        OUTCOME_CART,
        "category/computers.notebook",
        "product/computers.notebook/1307067",
    ]


def _write_rees46(path: Path, num_rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    header = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
    lines = []
    for i in range(num_rows):
        session = int(rng.integers(0, 6))
        category = int(rng.integers(0, 3))
        kind = rng.choice(["view", "view", "view", "cart", "remove_from_cart", "purchase"])
        lines.append(
            f"2019-10-01 00:{i // 60:02d}:{i % 60:02d} UTC,{kind},{100 + category * 10 + i % 4},{category},"
            f"{'' if category == 2 else f'cat.{category}'},,1.0,{session % 3},sess-{session}\n"
        )
    path.write_text(header + "".join(lines))


def test_rees46_both_is_the_same_whatever_the_batch_size(tmp_path):
    path = tmp_path / "rees46.csv"
    _write_rees46(path, 400)
    whole = read_table(read_events(path, "rees46", granularity="both"))
    in_pieces = read_events(path, "rees46", granularity="both", batch_size=8)
    batches = list(in_pieces)
    assert len(batches) > 5 and max(b.num_rows for b in batches) <= 8
    assert pa.Table.from_batches(batches).equals(whole)


# --- GA360 --------------------------------------------------------------------------------------


GA_EXPECTED = [
    ("0723041510287433245:1501583974", "/home"),
    ("0723041510287433245:1501583974", "/google+redesign/apparel/men++s/men++s+t+shirts"),
    (
        "0723041510287433245:1501583974",
        "/google+redesign/apparel/men++s/men++s+t+shirts/google+mens+100+cotton+short+sleeve+hero+tee+white.axd",
    ),
    ("0723041510287433245:1501583974", OUTCOME_CART),
    ("0723041510287433245:1501583974", "/basket.html"),
    ("0723041510287433245:1501670374", "/basket.html"),
    ("0723041510287433245:1501670374", "/yourinfo.html"),
    ("0723041510287433245:1501670374", "/payment.html"),
    ("0723041510287433245:1501670374", "/ordercompleted.html"),
    ("0723041510287433245:1501670374", OUTCOME_PURCHASE),
    ("9674781571160116268:1501591568", "/google+redesign/bags"),
    ("9674781571160116268:1501591568", "/google+redesign/bags"),
    ("9674781571160116268:1501602000", "/google+redesign/drinkware"),
    ("9674781571160116268:1501602000", OUTCOME_CART),
]


def test_ga360_pages_outcomes_and_timestamps():
    stream = read_events(GA360, "ga360")
    rows = read_table(stream).to_pylist()
    # The reader keeps pagePath as exported; the one URL rule of every reader normalises it.
    assert [(r["session_id"], PageRules().page(r["page"])) for r in rows] == GA_EXPECTED
    assert {r["user_id"] for r in rows} == {"0723041510287433245", "9674781571160116268"}
    # visitStartTime (s) + hits.time (ms)
    assert rows[1]["timestamp"] == datetime.fromtimestamp(1501583974 + 15.234, tz=timezone.utc)
    assert rows[3]["timestamp"] == datetime.fromtimestamp(1501583974 + 41.002, tz=timezone.utc)
    # the EVENT hit without add-to-cart is neither a page view nor an outcome
    assert stream.report == {"GA hits without page view or outcome ignored": 1}


def _visits_with_numbers(path: Path) -> list[dict]:
    visits = [json.loads(line) for line in path.read_text().splitlines()]
    for visit in visits:
        visit["visitStartTime"] = int(visit["visitStartTime"])
        visit["visitId"] = int(visit["visitId"])
        for hit in visit["hits"]:
            hit["time"] = int(hit["time"])
    return visits


def test_ga360_plain_numbers_gzip_and_folders(tmp_path):
    expected = read_table(read_events(GA360, "ga360"))
    folder = tmp_path / "export"
    folder.mkdir()
    visits = _visits_with_numbers(GA360)
    (folder / "ga_sessions_20170801.json").write_text("\n".join(json.dumps(v) for v in visits[:2]) + "\n")
    with gzip.open(folder / "ga_sessions_20170802.json.gz", "wt") as file:
        file.write("\n".join(json.dumps(v) for v in visits[2:]) + "\n")
    (folder / "README.txt").write_text("not an export file")
    assert read_table(read_events(folder, "ga360")).equals(expected)
    assert read_table(read_events(str(folder / "ga_sessions_*.json*"), "ga360")).equals(expected)


# --- generic event logs -------------------------------------------------------------------------


def test_events_csv_keeps_ids_as_text_and_parses_every_timestamp_form():
    stream = read_events(EVENTS_CSV, "events")
    rows = read_table(stream).to_pylist()
    assert stream.report == {}
    assert [r["user_id"] for r in rows[:1]] == ["0042"]
    assert [r["session_id"] for r in rows] == ["s1", "s1", "s1", "s2", "s2", None, None, None]
    assert [r["timestamp"] for r in rows] == [
        utc(2024, 3, 1, 10, 0, 0),
        utc(2024, 3, 1, 10, 0, 30),
        utc(2024, 3, 1, 10, 1, 15),  # no zone: UTC
        utc(2024, 3, 2, 17, 20, 0),  # +01:00
        utc(2024, 3, 2, 17, 21, 0, 500000),
        utc(2024, 3, 1, 11, 0, 0),  # epoch seconds
        utc(2024, 3, 1, 11, 1, 0),  # epoch milliseconds
        utc(2024, 3, 2, 9, 0, 0),  # trailing UTC
    ]


def test_events_jsonl_with_mixed_id_types_and_blank_lines():
    rows = read_table(read_events(EVENTS_JSONL, "events")).to_pylist()
    assert [(r["user_id"], r["session_id"], r["page"]) for r in rows] == [
        ("0042", "s1", "home"),
        ("0042", "s1", "category/shoes"),
        ("0042", "s2", "home"),
        ("7", None, "home"),
        ("7", None, "search"),
    ]
    assert rows[4]["timestamp"] == utc(2024, 3, 1, 11, 1, 0)


def test_events_parquet_with_native_types(tmp_path):
    path = tmp_path / "log.parquet"
    table = pa.table(
        {
            "user_id": pa.array([10, 10, 11], pa.int64()),
            "timestamp": pa.array(
                [datetime(2024, 1, 1, 8), datetime(2024, 1, 1, 8, 5), datetime(2024, 1, 2)], pa.timestamp("ms")
            ),
            "page": pa.array(["home", "cart", "home"]).dictionary_encode(),
            "extra": [1.0, 2.0, 3.0],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    stream = read_events(path, "events", batch_size=2)
    batches = list(stream)
    assert [b.num_rows for b in batches] == [2, 1]
    rows = pa.Table.from_batches(batches).to_pylist()
    assert rows[1] == {"user_id": "10", "session_id": None, "timestamp": utc(2024, 1, 1, 8, 5), "page": "cart"}


def test_events_custom_column_names_epoch_unit_and_forced_format(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text("visitor,ts,url,visit\nA,1700000000000,/x,v1\nA,1700000060000,/y,v1\n")
    stream = read_events(
        path,
        "csv",
        user_column="visitor",
        timestamp_column="ts",
        page_column="url",
        session_column="visit",
        timestamp_unit="ms",
    )
    rows = read_table(stream).to_pylist()
    assert [(r["user_id"], r["session_id"], r["page"]) for r in rows] == [("A", "v1", "/x"), ("A", "v1", "/y")]
    assert rows[0]["timestamp"] == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)


def test_events_folder_of_mixed_formats(tmp_path):
    shutil.copy(EVENTS_CSV, tmp_path / "a.csv")
    shutil.copy(EVENTS_JSONL, tmp_path / "b.jsonl")
    assert read_table(read_events(tmp_path, "events")).num_rows == 8 + 5


# --- simulator and the stream -------------------------------------------------------------------


def test_simulator_stream_is_synthetic_deterministic_and_has_segments():
    first = read_events("simulator", "simulator", num_users=30, seed=4, batch_size=50)
    table = read_table(first)
    assert first.synthetic is True
    assert table.schema.names == [*EVENT_SCHEMA.names, "segment"]
    assert max(b.num_rows for b in first) <= 50
    assert table.equals(read_table(read_events("simulator", "simulator", num_users=30, seed=4)))


def test_stream_can_be_read_twice_with_the_same_report():
    stream = read_events(REES46, "rees46")
    first = read_table(stream)
    assert read_table(stream).equals(first)
    assert stream.report == {"remove_from_cart ignored": 1}


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(ValueError, match="granularity"):
        read_events(REES46, "rees46", granulrity="both")
    with pytest.raises(ValueError, match="granularity must be one of"):
        read_events(REES46, "rees46", granularity="brand")
    assert set(FORMATS) >= {"events", "csv", "parquet", "jsonl", "ga360", "rees46", "simulator"}
