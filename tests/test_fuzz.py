"""Fuzz cases (seeded): malformed logs, corrupted model folders and bad tensors for `generate`.

Each case must end in a clear error (DataFormatError / ValueError / OSError with a one-line message
naming what is wrong) or a counted skip, never a traceback from inside a library or silent garbage.
For the readers, every planted bad record is counted (rows in = rows kept + rows skipped) and the kept
rows are exactly the good rows written. A prompt longer than the context is no error: `generate` keeps
its latest sessions.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file

from application.cli import main
from inference.loading import load_model_folder, save_causal_lm
from modeling_fixtures import PAGES, USERS, prompt_batch, tiny_model
from modeling_hetlm import HeTLMForBrowsing
from modeling_hetlm.weights_integrity_hetlm import WEIGHTS_CHECKSUMS_FILE, write_weights_checksums
from tokenization.errors import DataFormatError
from tokenization.page_tokenizer import build_page_tokenizer
from tokenization.prepare import prepare
from tokenization.readers import read_events
from trainers.pretrain import build_language_model

FIXTURES = Path(__file__).parent / "fixtures"
COLUMNS = ("user_id", "timestamp", "page")
RNG_SEED = 13
CLEAR_ERRORS = (DataFormatError, ValueError, OSError)


def good_rows(count: int = 12, seed: int = RNG_SEED) -> list[tuple[str, str, str]]:
    """`count` valid (user_id, timestamp, page) rows of four users."""
    rng = random.Random(seed)
    return [(f"u{index % 4}", f"2024-01-01T00:{index:02d}:00Z", rng.choice(PAGES)) for index in range(count)]


def assert_clear(error: BaseException) -> None:
    """A clear error: one of ours (or OSError/ValueError) with a one-line, non-empty message."""
    assert isinstance(error, CLEAR_ERRORS), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message, message


def read_log(path: Path, fmt: str = "events", on_bad_rows: str = "skip", **options) -> tuple[list[tuple], dict]:
    """(user_id, page) of every kept event, and the skip report."""
    stream = read_events(path, fmt, on_bad_rows=on_bad_rows, **options)
    table = pa.Table.from_batches(list(stream), schema=stream.schema)
    kept = list(zip(table.column("user_id").to_pylist(), table.column("page").to_pylist()))
    return kept, dict(stream.report)


def expect_counted(path: Path, good: list[tuple], bad: int, fmt: str = "events", **options) -> None:
    """Skip mode keeps exactly the good rows and counts `bad` records; error mode stops with a clear error
    when there is a bad record, else reads every row."""
    kept, report = read_log(path, fmt, **options)
    assert kept == [(user, page) for user, _, page in good], report
    assert sum(report.values()) == bad, report
    if bad:
        with pytest.raises(DataFormatError) as caught:
            read_log(path, fmt, on_bad_rows="error", **options)
        assert_clear(caught.value)
    else:
        assert read_log(path, fmt, on_bad_rows="error", **options) == (kept, {})


# ---------------------------------------------------------------- logs: one bad record among good ones
# (user_id, timestamp, page) of a record that must be counted as bad; None is a missing value.
BAD_RECORDS = {
    "missing user": (None, "2024-01-01T01:00:00Z", "home"),
    "empty user": ("", "2024-01-01T01:00:00Z", "home"),
    "blank user": ("   ", "2024-01-01T01:00:00Z", "home"),
    "missing timestamp": ("u1", None, "home"),
    "words timestamp": ("u1", "soon", "home"),
    "impossible date": ("u1", "2024-13-45T00:00:00Z", "home"),
    "timestamp with letters": ("u1", "2024-01-01Tnoon", "home"),
    "missing page": ("u1", "2024-01-01T01:00:00Z", None),
    "page NaN": ("u1", "2024-01-01T01:00:00Z", "NaN"),
    "page null": ("u1", "2024-01-01T01:00:00Z", "null"),
    "page None": ("u1", "2024-01-01T01:00:00Z", "None"),
    "page with NUL": ("u1", "2024-01-01T01:00:00Z", "ho\x00me"),
    "page with zero-width space": ("u1", "2024-01-01T01:00:00Z", "ca\u200brt"),
    "page with bell": ("u1", "2024-01-01T01:00:00Z", "a\x07b"),
    "page with newline": ("u1", "2024-01-01T01:00:00Z", "ho\nme"),
    "page with CR": ("u1", "2024-01-01T01:00:00Z", "ho\rme"),
    "huge page": ("u1", "2024-01-01T01:00:00Z", "p" * 5000),
}
# Records that are valid although odd: kept as (user_id, page).
ODD_GOOD_RECORDS = {
    "page with comma and quote": (("u1", "2024-01-01T01:00:00Z", 'a,"b'), ("u1", 'a,"b')),
    "non-ASCII page": (("u1", "2024-01-01T01:00:00Z", "/café/über"), ("u1", "/café/über")),
    "untrimmed user id": ((" u1 ", "2024-01-01T01:00:00Z", "home"), ("u1", "home")),
    "epoch seconds": (("u1", "1704067200", "home"), ("u1", "home")),
    "offset timestamp": (("u1", "2024-01-01T01:00:00+05:00", "home"), ("u1", "home")),
}
FORMATS = ("csv", "jsonl", "parquet")


def write_log(tmp_path: Path, fmt: str, rows: list[tuple], name: str = "log") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        text = io.StringIO()
        # Every value quoted: a bare CR outside quotes ends a line (old Mac files), one inside is a value's.
        writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(COLUMNS)
        writer.writerows([["" if value is None else value for value in row] for row in rows])
        path.write_text(text.getvalue(), encoding="utf-8")
    elif fmt == "jsonl":
        lines = [json.dumps({k: v for k, v in zip(COLUMNS, row) if v is not None}) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        pq.write_table(
            pa.table({name: pa.array([row[i] for row in rows], pa.string()) for i, name in enumerate(COLUMNS)}), path
        )
    return path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_one_bad_record_is_counted(tmp_path, fmt, case):
    good = good_rows()
    rows = good[:5] + [BAD_RECORDS[case]] + good[5:]
    expect_counted(write_log(tmp_path, fmt, rows), good, bad=1)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(ODD_GOOD_RECORDS))
def test_odd_but_valid_record_is_kept(tmp_path, fmt, case):
    record, kept = ODD_GOOD_RECORDS[case]
    good = good_rows()
    expect_counted(write_log(tmp_path, fmt, good + [record]), good + [(kept[0], None, kept[1])], bad=0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_all_bad_file_says_no_valid_rows(tmp_path, fmt):
    path = write_log(tmp_path, fmt, [BAD_RECORDS[case] for case in sorted(BAD_RECORDS)])
    kept, report = read_log(path)
    assert kept == [] and sum(report.values()) == len(BAD_RECORDS)
    with pytest.raises(DataFormatError, match="no valid rows") as caught:
        prepare(str(path), "events", tmp_path / "out", on_bad_rows="skip", progress=False, show_summary=False)
    assert_clear(caught.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_file_is_a_clear_error(tmp_path, fmt):
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(b"")
    with pytest.raises(CLEAR_ERRORS) as caught:
        read_log(path)
    assert_clear(caught.value)


# ---------------------------------------------------------------- logs: CSV and JSON-lines specific damage
RAW_CSV_CASES = {
    # name: (text after the header and the good rows, bad records in it)
    "missing field": ("u1,2024-01-01T01:00:00Z\n", 1),
    "extra field": ("u1,2024-01-01T01:00:00Z,home,extra\n", 1),
    "empty line": ("\n", 0),
    "unbalanced quote": ('u1,2024-01-01T01:00:00Z,"home\n', 1),
    "quoted newline in page": ('u1,2024-01-01T01:00:00Z,"ho\nme"\n', 1),
    "NUL byte line": ("\x00\x00\x00\n", 1),
    "only commas": (",,\n", 1),
}


@pytest.mark.parametrize("case", sorted(RAW_CSV_CASES))
def test_raw_csv_damage_is_counted(tmp_path, case):
    good = good_rows()
    text, bad = RAW_CSV_CASES[case]
    path = write_log(tmp_path, "csv", good)
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    expect_counted(path, good, bad=bad)


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_csv_line_endings(tmp_path, ending):
    good = good_rows()
    path = write_log(tmp_path, "csv", good)
    path.write_bytes(path.read_bytes().replace(b"\n", ending.encode()))
    expect_counted(path, good, bad=0)


RAW_JSONL_CASES = {
    "truncated object": '{"user_id": "u1", "timestamp": "2024-01-01T01',
    "array line": "[1, 2, 3]",
    "null line": "null",
    "number line": "42",
    "timestamp bool": '{"user_id": "u1", "timestamp": true, "page": "home"}',
    "page object": '{"user_id": "u1", "timestamp": "2024-01-01T01:00:00Z", "page": {"path": "home"}}',
    "page list": '{"user_id": "u1", "timestamp": "2024-01-01T01:00:00Z", "page": ["home"]}',
    "user null": '{"user_id": null, "timestamp": "2024-01-01T01:00:00Z", "page": "home"}',
}


@pytest.mark.parametrize("case", sorted(RAW_JSONL_CASES))
def test_raw_jsonl_damage_is_counted(tmp_path, case):
    good = good_rows()
    path = write_log(tmp_path, "jsonl", good)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:3] + [RAW_JSONL_CASES[case]] + lines[3:]) + "\n", encoding="utf-8")
    expect_counted(path, good, bad=1)


def records_in(text: str) -> int:
    """Data records of a CSV text without quoted newlines: its non-empty lines after the header."""
    return sum(1 for line in text.split("\n")[1:] if line)


@pytest.mark.parametrize("seed", range(16))
def test_random_byte_flips_in_csv(tmp_path, seed):
    rng = random.Random(seed)
    path = write_log(tmp_path, "csv", good_rows(20, seed))
    data = bytearray(path.read_bytes())
    header = data.index(b"\n") + 1
    structure = b'"\n\r'  # quotes and line ends stay: the records are still the lines (see the stray-quote test)
    positions = [index for index in range(header, len(data)) if data[index] not in structure]
    allowed = [byte for byte in range(256) if byte not in structure]
    for _ in range(rng.randint(1, 6)):
        data[rng.choice(positions)] = rng.choice(allowed)
    path.write_bytes(bytes(data))
    kept, report = read_log(path)
    assert len(kept) + sum(report.values()) == records_in(bytes(data).decode("utf-8", errors="replace")), report


@pytest.mark.parametrize("seed", range(16))
def test_random_byte_flips_anywhere_in_csv(tmp_path, seed):
    """Quotes and line ends may be hit too: the records are unknown, but the outcome is counted or a clear error,
    and never more rows than lines."""
    rng = random.Random(1000 + seed)
    path = write_log(tmp_path, "csv", good_rows(20, seed))
    data = bytearray(path.read_bytes())
    header = data.index(b"\n") + 1
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(header, len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))
    try:
        kept, report = read_log(path)
    except DataFormatError as error:
        assert_clear(error)
        return
    assert 0 < len(kept) + sum(report.values()) <= bytes(data).count(b"\n") + 1, report


@pytest.mark.parametrize("seed", range(12))
def test_stray_quotes_cost_their_lines_only(tmp_path, seed):
    """A quote replaced by another byte (or a stray one added) leaves a line with an odd number of quotes,
    which joins it to the next such line for the record splitter: only the damaged lines are lost."""
    rng = random.Random(seed)
    good = good_rows(20, seed)
    path = write_log(tmp_path, "csv", good)
    lines = path.read_bytes().split(b"\n")
    damaged = sorted(rng.sample(range(1, len(good) + 1), rng.randint(1, 3)))
    for index in damaged:
        line = bytearray(lines[index])
        quotes = [position for position, byte in enumerate(line) if byte == ord('"')]
        line[rng.choice(quotes)] = rng.choice(b"}x\xbb'")
        lines[index] = bytes(line)
    path.write_bytes(b"\n".join(lines))
    kept, report = read_log(path)
    assert len(kept) + sum(report.values()) == len(good), report
    survivors = [(user, page) for index, (user, _, page) in enumerate(good, 1) if index not in damaged]
    assert [row for row in kept if row in survivors] == survivors


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_truncated_text_log(tmp_path, fmt, seed):
    rng = random.Random(seed)
    path = write_log(tmp_path, fmt, good_rows(20, seed))
    data = path.read_bytes()
    first_line = data.index(b"\n") + 1
    cut = data[: rng.randrange(first_line + 1, len(data))]
    path.write_bytes(cut)
    text = cut.decode("utf-8", errors="replace")
    records = records_in(text) if fmt == "csv" else sum(1 for line in text.split("\n") if line)
    try:
        kept, report = read_log(path)
    except DataFormatError as error:
        assert_clear(error)
        return
    assert len(kept) + sum(report.values()) == records, report


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_parquet_is_a_clear_error(tmp_path, damage):
    path = write_log(tmp_path, "parquet", good_rows())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-10:-6] = b"\xff\xff\xff\xff"  # inside the footer length / magic
    else:
        data = bytearray(b"not a parquet file at all" * 4)
    path.write_bytes(bytes(data))
    with pytest.raises(CLEAR_ERRORS) as caught:
        read_log(path)
    assert_clear(caught.value)
    assert path.name in str(caught.value)


@pytest.mark.parametrize(
    "values, reason",
    [
        (pa.array([True, False]), "wrong type bool"),
        (pa.array([[1], [2]]), "wrong type"),
    ],
)
def test_parquet_timestamp_of_a_wrong_type(tmp_path, values, reason):
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": ["u1", "u2"], "timestamp": values, "page": ["a", "b"]}), path)
    for mode in ("error", "skip"):
        with pytest.raises(DataFormatError, match=reason) as caught:
            read_log(path, on_bad_rows=mode)
        assert_clear(caught.value)


@pytest.mark.parametrize("unit, scale", [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_parquet_epoch_integers(tmp_path, unit, scale):
    path = tmp_path / "log.parquet"
    seconds = [1704067200, 1704067260]
    pq.write_table(
        pa.table(
            {
                "user_id": ["u1", "u1"],
                "timestamp": pa.array([s * scale for s in seconds], pa.int64()),
                "page": ["a", "b"],
            }
        ),
        path,
    )
    stream = read_events(path, "events")
    table = pa.Table.from_batches(list(stream), schema=stream.schema)
    assert [value.timestamp() for value in table.column("timestamp").to_pylist()] == seconds


# ---------------------------------------------------------------- logs: GA360 and REES46
def ga_visits() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "ga_sessions_sample.json").read_text().splitlines()]


def ga_damage(visit: dict, case: str) -> dict | str:
    visit = json.loads(json.dumps(visit))
    visit["visitId"] = "999"
    if case == "no hits":
        visit["hits"] = []
    elif case == "hits missing":
        del visit["hits"]
    elif case == "hits not a list":
        visit["hits"] = "oops"
    elif case == "visit start words":
        visit["visitStartTime"] = "soon"
    elif case == "no visitor":
        visit["fullVisitorId"] = None
    elif case == "null page paths":
        for hit in visit["hits"]:
            hit["page"]["pagePath"] = None
    elif case == "null-like page paths":
        for hit in visit["hits"]:
            hit["page"]["pagePath"] = "null"
    elif case == "truncated line":
        return json.dumps(visit)[:200]
    return visit


GA_CASES = (
    "no hits",
    "hits missing",
    "hits not a list",
    "visit start words",
    "no visitor",
    "null page paths",
    "null-like page paths",
    "truncated line",
)


@pytest.mark.parametrize("case", GA_CASES)
def test_ga360_damaged_visit_is_counted(tmp_path, case):
    visits = ga_visits()
    clean = tmp_path / "ga_sessions_20170801.json"
    clean.write_text("\n".join(json.dumps(visit) for visit in visits) + "\n")
    kept_clean, report_clean = read_log(clean, "ga360")
    damaged = ga_damage(visits[0], case)
    lines = [json.dumps(visit) for visit in visits] + [damaged if isinstance(damaged, str) else json.dumps(damaged)]
    path = tmp_path / "damaged" / "ga_sessions_20170801.json"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    try:
        kept, report = read_log(path, "ga360")
    except DataFormatError as error:  # a whole-file problem
        assert_clear(error)
        return
    assert kept == kept_clean
    assert sum(report.values()) > sum(report_clean.values()), report


REES46_CASES = {
    "words event time": "soon,view,1,2,electronics.phone,apple,10.0,5,s1",
    "unknown event type": "2019-10-01 00:00:09 UTC,teleport,1,2,electronics.phone,apple,10.0,5,s1",
    "missing user": "2019-10-01 00:00:09 UTC,view,1,2,electronics.phone,apple,10.0,,s1",
    "missing field": "2019-10-01 00:00:09 UTC,view,1,2,electronics.phone,apple,10.0,5",
    "extra field": "2019-10-01 00:00:09 UTC,view,1,2,electronics.phone,apple,10.0,5,s1,extra",
    "unbalanced quote": '2019-10-01 00:00:09 UTC,view,1,2,"electronics.phone,apple,10.0,5,s1',
}


@pytest.mark.parametrize("case", sorted(REES46_CASES))
def test_rees46_damaged_row_is_counted(tmp_path, case):
    text = (FIXTURES / "rees46_sample.csv").read_text()
    clean = tmp_path / "clean.csv"
    clean.write_text(text)
    kept_clean, report_clean = read_log(clean, "rees46")
    path = tmp_path / "damaged.csv"
    path.write_text(text.rstrip("\n") + "\n" + REES46_CASES[case] + "\n")
    kept, report = read_log(path, "rees46")
    assert kept == kept_clean
    assert sum(report.values()) == sum(report_clean.values()) + 1, report


# ---------------------------------------------------------------- prepare: users the examples cannot use
@pytest.mark.parametrize("case", ["one-session users", "empty users"])
def test_prepare_counts_users_it_cannot_use(tmp_path, case):
    rows = [
        (f"u{user}", f"2024-01-0{session + 1}T00:0{page}:00Z", f"p{page}")
        for user in range(12)
        for session in range(3)
        for page in range(3)
    ]
    if case == "one-session users":
        rows += [("solo", "2024-01-01T00:00:00Z", "p1"), ("solo", "2024-01-01T00:01:00Z", "p2")]
    else:
        rows += [("", "2024-01-01T00:00:00Z", "p1"), ("   ", "2024-01-01T00:00:00Z", "p1")]
    path = write_log(tmp_path, "csv", rows)
    summary = prepare(str(path), "events", tmp_path / "out", on_bad_rows="skip", progress=False, show_summary=False)
    assert summary["events"]["read"] + summary["events"]["skipped_by_reader"] == len(rows)
    assert summary["users"]["with_events"] == 12 + (case == "one-session users")


# ---------------------------------------------------------------- corrupted model folders
@pytest.fixture(scope="module")
def hetlm_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz_hetlm")
    tiny_model("opt", num_clusters=2).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz_lm")
    torch.manual_seed(0)
    tokenizer = build_page_tokenizer(PAGES)
    save_causal_lm(build_language_model(tokenizer, "llama", "tiny"), tokenizer, folder)
    return folder


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def rewrite_weights(folder: Path, change) -> None:
    """Apply `change` to the tensors of model.safetensors and record the new file's sha256 (a consistent but
    bad folder: the checks after the hash must catch it)."""
    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    write_weights_checksums(folder)


def first_float_tensor(tensors: dict) -> str:
    return sorted(name for name, tensor in tensors.items() if tensor.is_floating_point())[0]


def set_first_value(value: float):
    def change(tensors):
        tensors[first_float_tensor(tensors)].view(-1)[0] = value

    return change


def widen_first_tensor(tensors):
    name = first_float_tensor(tensors)
    tensors[name] = torch.zeros(*tensors[name].shape[:-1], tensors[name].shape[-1] + 1)


def drop_first_tensor(tensors):
    del tensors[first_float_tensor(tensors)]


def flip_bytes(seed: int):
    def damage(folder: Path) -> None:
        rng = random.Random(seed)
        path = folder / "model.safetensors"
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 64)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))

    return damage


def truncate(fraction: float):
    def damage(folder: Path) -> None:
        path = folder / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return damage


def pickle_instead(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / WEIGHTS_CHECKSUMS_FILE).unlink()
    torch.save({"weight": torch.ones(2)}, folder / "pytorch_model.bin")


def permuted_tokenizer(folder: Path) -> None:
    """The same pages with other ids (the counts set the order: here the reverse of the model's)."""
    counts = Counter({page: index + 1 for index, page in enumerate(sorted(PAGES))})
    build_page_tokenizer(counts).save_pretrained(folder)


def other_tokenizer(folder: Path) -> None:
    build_page_tokenizer([f"/other/{index}" for index in range(len(PAGES))]).save_pretrained(folder)


def edit_config(**changes):
    def damage(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))

    return damage


def unlink(name: str):
    return lambda folder: (folder / name).unlink()


def rewrite(change):
    return lambda folder: rewrite_weights(folder, change)


def write_text(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


# name: (damage, expected error type, a regular expression the message must match)
FOLDER_CASES = {
    **{f"flipped bits {seed}": (flip_bytes(seed), OSError, "sha256 differs") for seed in range(6)},
    **{
        f"truncated to {fraction:.0%}": (truncate(fraction), OSError, "sha256 differs")
        for fraction in (0.0, 0.01, 0.5, 0.99)
    },
    "NaN weight": (rewrite(set_first_value(float("nan"))), OSError, "non-finite"),
    "inf weight": (rewrite(set_first_value(float("inf"))), OSError, "non-finite"),
    "shape-mismatched weight": (rewrite(widen_first_tensor), OSError, "do not match|size|shape"),
    "missing weight": (rewrite(drop_first_tensor), OSError, "do not match|missing"),
    "pickle .bin instead of safetensors": (pickle_instead, OSError, "pickled weights are refused"),
    "weights file missing": (unlink("model.safetensors"), OSError, "missing"),
    "checksums not JSON": (write_text(WEIGHTS_CHECKSUMS_FILE, '{"model.safe'), OSError, "not valid JSON"),
    "checksums of another file": (
        write_text(WEIGHTS_CHECKSUMS_FILE, '{"other.safetensors": "00"}'),
        OSError,
        "not recorded",
    ),
    "tokenizer missing": (unlink("tokenizer.json"), FileNotFoundError, "no page tokenizer"),
    "tokenizer pages in another order": (permuted_tokenizer, OSError, "does not match"),
    "tokenizer of another data set": (other_tokenizer, OSError, "does not match"),
    "config not JSON": (write_text("config.json", "{"), ValueError, "not valid JSON"),
    "config outcome pages differ": (
        edit_config(outcome_pages={"cart": ["/basket"], "purchase": ["/order"]}),
        ValueError,
        "outcome pages",
    ),
}
# The plain causal LM loader: the same integrity checks (its tokenizer check is load_model_folder's).
LM_FOLDER_CASES = {
    **{
        name: FOLDER_CASES[name]
        for name in (
            "flipped bits 0",
            "flipped bits 1",
            "truncated to 50%",
            "pickle .bin instead of safetensors",
            "weights file missing",
            "shape-mismatched weight",
            "missing weight",
            "tokenizer missing",
        )
    },
    "NaN weight": (rewrite(set_first_value(float("nan"))), OSError, "non-finite"),
    "tokenizer pages in another order": (permuted_tokenizer, ValueError, "does not match"),
    "tokenizer of another data set": (other_tokenizer, ValueError, "does not match"),
    "config outcome pages differ": (
        edit_config(outcome_pages={"cart": ["/basket"], "purchase": []}),
        ValueError,
        "outcome pages",
    ),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_corrupted_hetlm_folder_is_refused(hetlm_folder, tmp_path, case):
    damage, error_type, pattern = FOLDER_CASES[case]
    folder = copy_folder(hetlm_folder, tmp_path / "model")
    damage(folder)
    with pytest.raises(error_type, match=pattern) as caught:
        load_model_folder(folder, hetlm_only=True)
    assert_clear(caught.value)
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize("case", list(LM_FOLDER_CASES))
def test_corrupted_causal_lm_folder_is_refused(lm_folder, tmp_path, case):
    damage, error_type, pattern = LM_FOLDER_CASES[case]
    folder = copy_folder(lm_folder, tmp_path / "model")
    damage(folder)
    with pytest.raises(error_type, match=pattern) as caught:
        load_model_folder(folder)
    assert_clear(caught.value)


@pytest.mark.parametrize("case", ["flipped bits 2", "NaN weight", "tokenizer of another data set"])
def test_corrupted_folder_through_remote_code_class(hetlm_folder, tmp_path, case):
    damage, _, pattern = FOLDER_CASES[case]
    folder = copy_folder(hetlm_folder, tmp_path / "model")
    damage(folder)
    with pytest.raises(CLEAR_ERRORS, match=pattern.replace("non-finite", "non-finite values")) as caught:
        HeTLMForBrowsing.from_pretrained(folder)
    assert_clear(caught.value)


@pytest.mark.parametrize(
    "case",
    [
        "flipped bits 3",
        "truncated to 50%",
        "shape-mismatched weight",
        "pickle .bin instead of safetensors",
        "tokenizer pages in another order",
        "NaN weight",
    ],
)
def test_corrupted_folder_in_hetlm_generate_is_one_line_and_exit_2(hetlm_folder, tmp_path, capsys, case):
    damage, _, pattern = FOLDER_CASES[case]
    folder = copy_folder(hetlm_folder, tmp_path / "model")
    damage(folder)
    out = tmp_path / "predictions.jsonl"
    code = main(
        [
            "generate",
            str(folder),
            str(FIXTURES / "events_sample.csv"),
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and error[0].startswith("hetlm generate: error: "), error
    assert not out.exists()


@pytest.fixture(scope="module")
def prepared_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz_data")
    prepare(
        "simulator", "simulator", out, reader_options={"num_users": 40, "seed": 0}, progress=False, show_summary=False
    )
    return out


@pytest.mark.parametrize(
    "case", ["flipped bits 4", "NaN weight", "tokenizer of another data set", "pickle .bin instead of safetensors"]
)
def test_corrupted_folder_in_hetlm_evaluate_is_one_line_and_exit_2(
    hetlm_folder, prepared_data, tmp_path, capsys, case
):
    damage, _, pattern = FOLDER_CASES[case]
    folder = copy_folder(hetlm_folder, tmp_path / "model")
    damage(folder)
    code = main(
        [
            "evaluate",
            str(folder),
            "--data",
            str(prepared_data),
            "--out",
            str(tmp_path / "evaluation"),
            "--max-users",
            "4",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    # transformers' own "Loading weights" progress bar (stderr) is not part of the error.
    error = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("Loading weights")]
    assert code == 2 and len(error) == 1 and error[0].startswith("hetlm evaluate: error: "), error
    assert str(folder) in error[0]


def test_intact_folders_load_and_checksums_are_written(hetlm_folder, lm_folder):
    for folder in (hetlm_folder, lm_folder):
        checksums = json.loads((folder / WEIGHTS_CHECKSUMS_FILE).read_text())
        assert list(checksums) == ["model.safetensors"]
        model, tokenizer = load_model_folder(folder)
        assert len(tokenizer) == len(PAGES) + 4
        assert model.config.outcome_pages == {"cart": [], "purchase": []}


# ---------------------------------------------------------------- bad tensors for generate
@pytest.fixture(scope="module")
def model() -> HeTLMForBrowsing:
    return tiny_model("opt", num_clusters=2)


def good_prompts(model):
    return prompt_batch(model.page_tokenizer, USERS[:3])


def case_ids_1d(ids, mask):
    return ids[0], mask[0]


def case_ids_3d(ids, mask):
    return ids.unsqueeze(0), mask.unsqueeze(0)


def case_float_ids(ids, mask):
    return ids.float(), mask


def case_bool_ids(ids, mask):
    return ids.bool(), mask


def case_negative_id(ids, mask):
    ids = ids.clone()
    ids[0, -2] = -3
    return ids, mask


def case_id_too_large(ids, mask):
    ids = ids.clone()
    ids[1, -2] = 10_000
    return ids, mask


def case_mask_shape(ids, mask):
    return ids, mask[:, 1:]


def case_mask_not_tensor(ids, mask):
    return ids, mask.tolist()


def case_empty_batch(ids, mask):
    return ids[:0], mask[:0]


def case_empty_length(ids, mask):
    return ids[:, :0], mask[:, :0]


def case_all_padding_row(ids, mask):
    ids, mask = ids.clone(), mask.clone()
    ids[0], mask[0] = 0, 0
    return ids, mask


def case_right_padded(ids, mask):
    return ids.flip(1), mask.flip(1)


def case_ids_not_tensor(ids, mask):
    return ids.tolist(), mask


def case_no_history(ids, mask):
    bos = torch.full((1, 1), 2)
    return bos, torch.ones_like(bos)


GENERATE_CASES = [
    case_ids_1d,
    case_ids_3d,
    case_float_ids,
    case_bool_ids,
    case_negative_id,
    case_id_too_large,
    case_mask_shape,
    case_mask_not_tensor,
    case_empty_batch,
    case_empty_length,
    case_all_padding_row,
    case_right_padded,
    case_ids_not_tensor,
    case_no_history,
]


@pytest.mark.parametrize("case", GENERATE_CASES, ids=lambda case: case.__name__)
def test_bad_generate_input_is_a_clear_error(model, case):
    ids, mask = case(*good_prompts(model))
    with pytest.raises(ValueError) as caught:
        model.generate(ids, mask, max_new_tokens=4)
    assert_clear(caught.value)


def case_mask_two(ids, mask):
    return ids, mask * 2


def case_mask_negative(ids, mask):
    mask = mask.clone()
    mask[0, -1] = -1
    return ids, mask


def case_mask_hole(ids, mask):
    mask = mask.clone()
    mask[2, -3] = 0
    return ids, mask


def case_prompt_longer_than_context(ids, mask):
    """One user whose history (a row's sessions, 40 times over) is longer than the predictors' context."""
    row = int(mask.sum(dim=1).argmax())
    history = ids[row, mask[row].bool()][:-1]  # without the open [BOS]
    long = torch.cat([history] * 40 + [ids[row, -1:]]).unsqueeze(0)
    return long, torch.ones_like(long)


MASK_CASES = [case_mask_two, case_mask_negative, case_mask_hole]


@pytest.mark.parametrize("case", MASK_CASES, ids=lambda case: case.__name__)
def test_bad_attention_mask_is_a_clear_error(model, case):
    ids, mask = case(*good_prompts(model))
    with pytest.raises(ValueError, match="attention_mask") as caught:
        model.generate(ids, mask, max_new_tokens=4)
    assert_clear(caught.value)


def test_a_prompt_longer_than_the_context_keeps_its_latest_sessions(model):
    ids, mask = case_prompt_longer_than_context(*good_prompts(model))
    assert ids.shape[1] + 4 > model.config.predictor_config.max_position_embeddings
    new_tokens = model.generate(ids, mask, max_new_tokens=4)
    assert new_tokens.shape[0] == ids.shape[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_user_embeddings_are_a_clear_error(model, value):
    ids, mask = good_prompts(model)
    embeddings = torch.zeros(ids.shape[0], model.config.embedding_dim)
    embeddings[1, 0] = value
    with pytest.raises(ValueError) as caught:
        model.generate(ids, mask, user_embeddings=embeddings, max_new_tokens=4)
    assert_clear(caught.value)


@pytest.mark.parametrize("shape", [(3,), (2, 16), (3, 15), (3, 16, 1)])
def test_user_embeddings_of_a_wrong_shape(model, shape):
    ids, mask = good_prompts(model)
    with pytest.raises(ValueError, match="user_embeddings must have shape") as caught:
        model.generate(ids, mask, user_embeddings=torch.zeros(shape), max_new_tokens=4)
    assert_clear(caught.value)
