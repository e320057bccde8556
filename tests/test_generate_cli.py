"""Tests of ``hetlm generate`` (application/commands/generate.py, inference/batch_generation.py).

A tiny HeTLM (3 clusters, 2-layer 16-d Llama predictors, 2-layer BERT encoder) over the pages of a
small simulator run, minus one held-out page so that unknown pages occur; the event log is the
same simulator run written to CSV (with its session ids).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import torch

from application.cli import main
from evaluation.cluster_profiles import compute_cluster_profiles, save_cluster_profiles
from inference.batch_generation import BatchGenerationOptions, NextSessionPredictor, SessionizedLog
from modeling_fixtures import predictor_config
from modeling_hetlm import HeTLMForBrowsing, build_encoder_tokenizer, build_hetlm
from tokenization.constants import EVENT_SCHEMA, UNK_TOKEN
from tokenization.page_tokenizer import PageTokenizer, build_page_tokenizer, decode_session, encode_sessions
from tokenization.simulator import SimulatorConfig, simulate_events

NUM_CLUSTERS = 3
MAX_NEW_TOKENS = 8
NUM_SAMPLES = 3
SIMULATOR = SimulatorConfig(
    num_users=20,
    seed=0,
    num_categories=3,
    subcategories_per_category=2,
    products_per_subcategory=4,
    sessions_per_user=(2, 5),
    max_session_length=8,
)


@pytest.fixture(scope="module")
def events() -> pa.Table:
    return simulate_events(SIMULATOR)


@pytest.fixture(scope="module")
def held_out_page(events) -> str:
    """The most frequent product page: left out of the model's vocabulary."""
    counts = Counter(page for page in events.column("page").to_pylist() if page.startswith("product/"))
    return counts.most_common(1)[0][0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, events, held_out_page):
    pages = Counter(page for page in events.column("page").to_pylist() if page != held_out_page)
    page_tokenizer = build_page_tokenizer(pages)
    torch.manual_seed(0)
    model = build_hetlm(
        page_tokenizer,
        encoder_tokenizer=build_encoder_tokenizer(pages, vocab_size=80),
        num_clusters=NUM_CLUSTERS,
        selector_hidden_sizes=[8],
        encoder_max_length=64,
        predictor_config={**predictor_config("llama", len(page_tokenizer)), "max_position_embeddings": 128},
        encoder_config={
            "model_type": "bert",
            "vocab_size": 80,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
        },
    )
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory, events):
    path = tmp_path_factory.mktemp("log") / "events.csv"
    pa_csv.write_csv(events.select(["user_id", "session_id", "timestamp", "page"]), path)
    return path


@pytest.fixture(scope="module")
def sessions_per_user(events) -> dict[str, list[list[str]]]:
    """Each user's sessions (pages), oldest first, straight from the simulator's session ids."""
    sessions: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for row in events.sort_by([("user_id", "ascending"), ("timestamp", "ascending")]).to_pylist():
        sessions[row["user_id"]].setdefault(row["session_id"], []).append(row["page"])
    return {user: list(by_id.values()) for user, by_id in sessions.items()}


def run_cli(*argv: str) -> int:
    return main(["generate", *map(str, argv), "--no-progress", "--device", "cpu"])


@pytest.fixture(scope="module")
def jsonl_run(tmp_path_factory, model_dir, log_csv):
    out = tmp_path_factory.mktemp("out") / "predictions.jsonl"
    code = run_cli(
        model_dir,
        log_csv,
        "--out",
        out,
        "--batch-size",
        8,
        "--max-new-tokens",
        MAX_NEW_TOKENS,
        "--num-samples",
        NUM_SAMPLES,
        "--seed",
        3,
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    summary = json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))
    return code, rows, summary


def test_one_valid_row_per_user(jsonl_run, model_dir, sessions_per_user):
    code, rows, summary = jsonl_run
    assert code == 0
    assert sorted(row["user_id"] for row in rows) == sorted(sessions_per_user)
    vocabulary = set(PageTokenizer.from_pretrained(str(model_dir)).get_vocab())
    for row in rows:
        assert 0 <= row["cluster"] < NUM_CLUSTERS
        assert all(page in vocabulary or page == UNK_TOKEN for page in row["predicted_session"])
        assert not {"[PAD]", "[BOS]", "[EOS]"} & set(row["predicted_session"])
        assert row["num_input_sessions"] == min(3, len(sessions_per_user[row["user_id"]]))
        assert 0 <= row["cart_probability"] <= 1 and 0 <= row["purchase_probability"] <= 1
    # The model's own probabilities along the samples, not shares of NUM_SAMPLES sessions.
    assert any(not round(row["cart_probability"] * NUM_SAMPLES, 6).is_integer() for row in rows)
    assert summary["users_predicted"] == summary["users_seen"] == len(rows)
    assert summary["users_skipped"] == {}
    assert sum(summary["users_per_cluster"].values()) == len(rows)
    # A model saved without cluster profiles: no label column, and the summary says why.
    assert "cluster_label" not in rows[0] and summary["cluster_labels"].startswith("none: ")


def test_each_user_carries_its_clusters_label_from_the_saved_profiles(model_dir, log_csv, tmp_path):
    labelled = tmp_path / "labelled"
    shutil.copytree(model_dir, labelled)
    planted = [[["category/a"]], [["category/b"]], [["category/c", "cart"]]]
    profiles = compute_cluster_profiles(planted, list(range(NUM_CLUSTERS)))
    save_cluster_profiles(profiles, labelled)
    out = tmp_path / "predictions.csv"
    assert run_cli(labelled, log_csv, "--out", out, "--batch-size", 8, "--max-new-tokens", 2) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["user_id", "predicted_session", "cluster", "cluster_label"]
    assert all(row["cluster_label"] == profiles[int(row["cluster"])]["label"] for row in rows)
    assert profiles[2]["label"] == "category/c browsers, cart 100%, purchase 0%"
    summary = json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))
    assert summary["cluster_labels"] == {str(profile["cluster"]): profile["label"] for profile in profiles}


def test_unknown_pages_are_counted(jsonl_run, sessions_per_user, held_out_page, capsys):
    _, rows, summary = jsonl_run
    expected = {
        user: sum(session.count(held_out_page) for session in sessions[-3:])
        for user, sessions in sessions_per_user.items()
    }
    assert {row["user_id"]: row["unknown_input_pages"] for row in rows} == expected
    assert summary["unknown_input_pages"] == sum(expected.values()) > 0
    assert summary["unknown_pages_most_common"] == {held_out_page: sum(expected.values())}
    assert summary["input_pages"] == sum(
        len(page) for sessions in sessions_per_user.values() for page in sessions[-3:]
    )


def test_csv_output_matches_and_sampling_is_seeded(jsonl_run, model_dir, log_csv, tmp_path, capsys):
    _, jsonl_rows, _ = jsonl_run
    out = tmp_path / "predictions.csv"
    assert (
        run_cli(
            model_dir,
            log_csv,
            "--out",
            out,
            "--batch-size",
            8,
            "--max-new-tokens",
            MAX_NEW_TOKENS,
            "--num-samples",
            NUM_SAMPLES,
            "--seed",
            3,
        )
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"hetlm generate: predicted {len(jsonl_rows)} users -> {out}")
    assert "unknown pages ([UNK]):" in line
    with open(out, newline="", encoding="utf-8") as file:
        csv_rows = list(csv.DictReader(file))
    expected = {row["user_id"]: row for row in jsonl_rows}
    assert len(csv_rows) == len(jsonl_rows)
    for row in csv_rows:
        reference = expected[row["user_id"]]
        assert row["predicted_session"].split() == reference["predicted_session"]
        assert int(row["cluster"]) == reference["cluster"]
        assert float(row["cart_probability"]) == reference["cart_probability"]
        assert float(row["purchase_probability"]) == reference["purchase_probability"]


def test_greedy_session_equals_model_generate(jsonl_run, model_dir, sessions_per_user):
    _, rows, _ = jsonl_run
    model = HeTLMForBrowsing.from_pretrained(model_dir).eval()
    tokenizer = PageTokenizer.from_pretrained(str(model_dir))
    for row in rows[:3]:
        prompt = encode_sessions(tokenizer, sessions_per_user[row["user_id"]][-3:], open_next_session=True)
        new_tokens, clusters = model.generate(
            torch.tensor([prompt]), return_clusters=True, max_new_tokens=MAX_NEW_TOKENS
        )
        assert decode_session(tokenizer, new_tokens[0].tolist()) == row["predicted_session"]
        assert int(clusters[0]) == row["cluster"]


def test_users_without_usable_session_are_skipped_and_counted(model_dir, log_csv, tmp_path, sessions_per_user):
    out = tmp_path / "predictions.jsonl"
    assert (
        run_cli(
            model_dir,
            log_csv,
            "--out",
            out,
            "--max-new-tokens",
            4,
            "--min-session-length",
            3,
            "--max-input-sessions",
            1,
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    summary = json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))
    usable = {user for user, sessions in sessions_per_user.items() if any(len(s) >= 3 for s in sessions)}
    assert {row["user_id"] for row in rows} == usable
    assert summary["users_skipped"] == (
        {"no_session_of_min_length": len(sessions_per_user) - len(usable)}
        if len(usable) < len(sessions_per_user)
        else {}
    )
    assert summary["short_sessions_unused"] == sum(
        len(s) < 3 for sessions in sessions_per_user.values() for s in sessions
    )
    assert all(row["num_input_sessions"] == 1 for row in rows)


def test_simulator_source_is_labelled_synthetic_and_keeps_segments(model_dir, tmp_path, capsys):
    out = tmp_path / "simulated.jsonl"
    assert (
        run_cli(
            model_dir,
            "simulator",
            "--out",
            out,
            "--max-new-tokens",
            2,
            "--simulator-users",
            6,
            "--format-option",
            "num_segments=2",
        )
        == 0
    )
    assert "SYNTHETIC" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 and all(row["segment"] in (0, 1) for row in rows)
    assert json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))["synthetic"] is True


def test_users_whose_rows_are_all_dropped_are_counted(tmp_path):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    table = pa.table(
        {
            "user_id": ["a", "a", "b"],
            "session_id": [None, None, None],
            "timestamp": [t0, t0 + dt.timedelta(minutes=1), None],
            "page": ["home", "cart", "home"],
        },
        schema=EVENT_SCHEMA,
    )
    log = SessionizedLog([table], BatchGenerationOptions(), work_dir=tmp_path)
    histories = [history for batch in log.histories(batch_size=10) for history in batch]
    assert [(h.user_id, h.sessions) for h in histories] == [("a", [["home", "cart"]])]
    assert log.users_seen == 2
    assert log.skipped_users["no_valid_event"] == 1
    assert log.dropped_rows == {"missing_timestamp": 1}


@pytest.mark.parametrize(
    "problem",
    [
        "missing model",
        "not hetlm",
        "no tokenizer",
        "missing source",
        "missing column",
        "output extension",
        "bad option",
    ],
)
def test_bad_inputs_exit_2_with_one_clear_line(problem, model_dir, log_csv, tmp_path, capsys):
    model, source, out, extra = model_dir, log_csv, tmp_path / "p.jsonl", []
    expected = {
        "missing model": "no such folder",
        "not hetlm": "not a HeTLM model",
        "no tokenizer": "no page tokenizer",
        "missing source": "no such file",
        "missing column": "'page'",
        "output extension": "'.txt'",
        "bad option": "num_samples",
    }[problem]
    if problem == "missing model":
        model = tmp_path / "nowhere"
    elif problem in ("not hetlm", "no tokenizer"):
        model = tmp_path / "model"
        model.mkdir()
        config = json.loads((model_dir / "config.json").read_text())
        (model / "config.json").write_text(
            json.dumps({**config, "model_type": "llama"} if problem == "not hetlm" else config)
        )
    elif problem == "missing source":
        source = tmp_path / "missing.csv"
    elif problem == "missing column":
        source = tmp_path / "no_page.csv"
        source.write_text("user_id,timestamp\nu1,2026-01-01T00:00:00\n")
    elif problem == "output extension":
        out = tmp_path / "p.txt"
    else:
        extra = ["--num-samples", "-1"]
    assert run_cli(model, source, "--out", out, *extra) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("hetlm generate: error: ") and "\n" not in error
    assert expected in error
    assert not out.exists()


@pytest.mark.parametrize(
    "failure, code, message",
    [
        (OSError(28, "No space left on device"), 2, "hetlm generate: error: [Errno 28] No space left on device"),
        (KeyboardInterrupt(), 130, "hetlm generate: interrupted"),
    ],
)
def test_a_failure_mid_run_leaves_the_previous_file_whole(
    model_dir, log_csv, tmp_path, capsys, monkeypatch, failure, code, message
):
    out = tmp_path / "predictions.jsonl"
    out.write_text("previous run\n")
    original, batches = NextSessionPredictor.predict, []

    def fail_on_the_third_batch(self, histories):
        batches.append(len(histories))
        if len(batches) == 3:
            raise failure
        return original(self, histories)

    monkeypatch.setattr(NextSessionPredictor, "predict", fail_on_the_third_batch)
    assert run_cli(model_dir, log_csv, "--out", out, "--batch-size", 2) == code
    assert capsys.readouterr().err.strip() == message
    assert out.read_text() == "previous run\n" and sorted(path.name for path in tmp_path.iterdir()) == [out.name]
