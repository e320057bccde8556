"""``prepare`` (and ``read_events``) on in-memory event tables: a pandas DataFrame, a pyarrow Table and a
``datasets.Dataset`` give the examples the same events give from a CSV file, with the same column options and
row checks."""

from __future__ import annotations

import datasets
import pandas as pd
import pyarrow as pa
import pytest

from tokenization.errors import DataFormatError
from tokenization.examples import ExampleOptions
from tokenization.prepare import prepare
from tokenization.readers import read_events

OPTIONS = ExampleOptions(test_fraction=0.0, validation_fraction=0.0)


def _visits() -> pd.DataFrame:
    """Three users, three sessions each (two hours apart), three page views per session."""
    rows = []
    for user in ("u1", "u2", "u3"):
        for session in range(3):
            for step, page in enumerate(("home", f"product/{user}-{session}", "cart" if session else "search")):
                rows.append(
                    {"visitor": user, "timestamp": f"2024-03-01T{10 + 2 * session:02d}:0{step}:00Z", "page": page}
                )
    return pd.DataFrame(rows)


def _prepared_rows(folder) -> list[dict]:
    return datasets.load_from_disk(str(folder / "dataset" / "train")).to_list()


@pytest.mark.parametrize("kind", ["pandas", "arrow", "datasets", "pandas-datetime"])
def test_an_in_memory_table_prepares_like_the_same_events_in_a_file(tmp_path, kind):
    frame = _visits()
    frame.to_csv(tmp_path / "visits.csv", index=False)
    options = {
        "on_bad_rows": "error",
        "reader_options": {"user_column": "visitor"},
        "progress": False,
        "show_summary": False,
    }
    from_file = prepare(str(tmp_path / "visits.csv"), "events", tmp_path / "file", OPTIONS, **options)
    source = {
        "pandas": frame,
        "arrow": pa.Table.from_pandas(frame),
        "datasets": datasets.Dataset.from_pandas(frame),
        "pandas-datetime": frame.assign(timestamp=pd.to_datetime(frame["timestamp"])),
    }[kind]
    summary = prepare(source, "events", tmp_path / kind, OPTIONS, **options)
    assert summary["source"].startswith("<in-memory ") and summary["source"].endswith(": 27 rows>")
    assert summary["events"] == from_file["events"] and summary["events"]["kept"] == 27
    rows = _prepared_rows(tmp_path / kind)
    assert rows == _prepared_rows(tmp_path / "file")
    assert len(rows) == 6  # every session after a user's first
    first_of_u1 = next(row for row in rows if row["user_id"] == "u1")
    assert first_of_u1["input_sessions"] == [["home", "product/u1-0", "search"]]
    assert first_of_u1["target_session"] == ["home", "product/u1-1", "cart"]


def test_a_bad_row_of_a_frame_is_named_by_its_row_or_skipped_and_counted(tmp_path):
    frame = _visits()
    frame.loc[4, "page"] = None
    with pytest.raises(DataFormatError, match=r"^<in-memory pandas.DataFrame: 27 rows>, row 5, field 'page': "):
        prepare(
            frame,
            "events",
            tmp_path / "error",
            OPTIONS,
            reader_options={"user_column": "visitor"},
            progress=False,
            show_summary=False,
        )
    summary = prepare(
        frame,
        "events",
        tmp_path / "skip",
        OPTIONS,
        on_bad_rows="skip",
        reader_options={"user_column": "visitor"},
        progress=False,
        show_summary=False,
    )
    assert summary["events"]["kept"] == 26 and summary["events"]["skipped_by_reader"] == 1


def test_a_frame_missing_a_column_or_given_another_format_is_refused_in_one_line():
    frame = _visits()
    with pytest.raises(
        DataFormatError,
        match=r"missing column 'user_id' \(an event table needs user_id, timestamp, "
        r"page; found visitor, timestamp, page\)",
    ):
        read_events(frame, "events")
    with pytest.raises(DataFormatError, match="use format 'events', not 'rees46'"):
        read_events(frame, "rees46")
    with pytest.raises(ValueError, match="format 'events' has no option 'colour'"):
        read_events(frame, "events", colour="red")
    with pytest.raises(DataFormatError, match="cannot read a list: a source is a path") as error:
        read_events([1, 2], "events")
    assert "\n" not in str(error.value)
