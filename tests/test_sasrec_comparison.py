"""benchmarks/sasrec_comparison.py: our prepared data -> RecBole's benchmark files, and SASRec scored by our
ranking definitions. The conversion is checked against a hand-built prepared folder; the RecBole part runs
only where RecBole is installed (its own venv, see the script), never in the main CI env."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from evaluation.ranking import ranks_in_lists, scores_from_ranks
from tokenization.page_tokenizer import build_page_tokenizer

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sasrec_comparison.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("benchmarks_sasrec_comparison", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


comparison = _load_script()


def _split(rows: list[tuple[str, list[list[str]], list[str]]]) -> Dataset:
    return Dataset.from_dict(
        {
            "user_id": [user for user, _, _ in rows],
            "input_sessions": [inputs for _, inputs, _ in rows],
            "target_session": [target for _, _, target in rows],
        }
    )


def _write_prepared(folder: Path, train: Dataset, validation: Dataset, test: Dataset) -> Path:
    """A prepared folder laid out as `hetlm prepare` writes it, the page tokenizer fitted on the train pages."""
    DatasetDict({"train": train, "validation": validation, "test": test}).save_to_disk(str(folder / "dataset"))
    pages = [page for sessions in train["input_sessions"] for session in sessions for page in session]
    pages += [page for session in train["target_session"] for page in session]
    build_page_tokenizer(pages).save_pretrained(str(folder / "tokenizer"))
    (folder / "summary.json").write_text(json.dumps({"synthetic": False}))
    return folder


@pytest.fixture()
def prepared(tmp_path) -> Path:
    """Train rows one per session after a user's first, validation and test one row per user."""
    train = _split(
        [
            ("a", [["home", "shoes"]], ["home", "cart"]),
            ("a", [["home", "shoes"], ["home", "cart"]], ["bags"]),
            ("b", [["bags"]], ["shoes", "purchase"]),
        ]
    )
    validation = _split([("v", [["home"], ["bags", "cart"]], ["shoes"])])
    test = _split(
        [
            ("t1", [["home", "unknown-page"], ["shoes"]], ["bags", "home"]),  # an unseen page in the history
            ("t2", [["bags"]], ["unknown-target", "home"]),  # the first target page unseen in train: a miss
            ("t3", [["shoes"]], []),  # empty next session: excluded
            ("t4", [["unknown-page"]], ["home"]),  # no known page in the history: a miss
        ]
    )
    return _write_prepared(tmp_path, train, validation, test)


def _ids(data, pages: list[str]) -> list[str]:
    """Item tokens of page names, ``|`` standing for the session boundary."""
    return [data.boundary if page == "|" else str(data.page_ids[page]) for page in pages]


def test_train_users_sessions_become_one_sequence_with_a_boundary_after_each_session(prepared):
    data = comparison.convert(prepared, session_boundaries=True, max_seq_len=4)
    assert data.boundary == "3" and data.train_users == 2 and data.vocabulary_size == 4 + 5
    # a: home shoes | home cart | bags |   (8 items -> 7 rows);  b: bags | shoes purchase |   (5 items -> 4 rows)
    expected = [
        ("a", "home", "shoes"),
        ("a", "home shoes", "|"),
        ("a", "home shoes |", "home"),
        ("a", "home shoes | home", "cart"),
        ("a", "shoes | home cart", "|"),  # the last max_seq_len = 4 items
        ("a", "| home cart |", "bags"),
        ("a", "home cart | bags", "|"),
        ("b", "bags", "|"),
        ("b", "bags |", "shoes"),
        ("b", "bags | shoes", "purchase"),
        ("b", "bags | shoes purchase", "|"),
    ]
    assert data.train.user_ids == [user for user, _, _ in expected]
    assert data.train.histories == [_ids(data, history.split()) for _, history, _ in expected]
    assert data.train.targets == [_ids(data, [target])[0] for _, _, target in expected]


def test_evaluation_rows_are_the_input_sessions_and_the_next_sessions_first_page(prepared):
    data = comparison.convert(prepared, session_boundaries=True, max_seq_len=50)
    assert data.valid.histories == [_ids(data, "home | bags cart |".split())]
    assert data.valid.targets == _ids(data, ["shoes"])
    assert data.test.user_ids == ["t1"]
    assert data.test.histories == [_ids(data, "home | shoes |".split())]
    assert data.test.targets == _ids(data, ["bags"])
    assert data.test.counts == {"unseen_history_pages": 2, "unseen_target": 1, "empty_target": 1, "empty_history": 1}
    assert data.test_first_pages == ["bags", "unknown-target", "", "home"]


def test_without_boundaries_sessions_are_plainly_concatenated(prepared):
    data = comparison.convert(prepared, session_boundaries=False, max_seq_len=50)
    assert data.boundary is None
    assert (
        data.train.histories[-1] == _ids(data, ["bags", "shoes"])
        and data.train.targets[-1] == _ids(data, ["purchase"])[0]
    )
    assert len(data.train.targets) == (5 - 1) + (3 - 1)
    assert data.test.histories == [_ids(data, ["home", "shoes"])]


def test_benchmark_files_are_recbole_atomic_files(prepared, tmp_path):
    data = comparison.convert(prepared)
    path = comparison.write_benchmark_file(data.valid, tmp_path / "hetlm.valid.inter")
    header, row = path.read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    assert row.split("\t") == ["v", " ".join(data.valid.histories[0]), data.valid.targets[0]]


def test_scores_are_ranked_by_the_reports_definition(prepared):
    """Random scores: the ranks of our_ranking_metrics equal the report's ranks of each user's ranked pages,
    with the users left out of the rows counted as misses and the empty next session excluded."""
    data = comparison.convert(prepared)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(len(data.test.targets), data.vocabulary_size))
    figures = comparison.our_ranking_metrics(scores, data)
    pages = {index: page for page, index in data.page_ids.items()}
    ranked = [[pages[index] for index in np.argsort(-row) if index in pages] for row in scores]
    ranks = np.concatenate([ranks_in_lists(ranked, ["bags"]), [np.inf, np.inf]])
    assert figures == scores_from_ranks(ranks, (10, 20))
    assert figures["n_users"] == 3


def test_the_table_sets_sasrec_beside_the_runs_models():
    figures = {"Recall@10": 0.5, "Recall@20": 0.75, "NDCG@10": 0.25, "NDCG@20": 0.3, "MRR@10": 0.2, "n_users": 4}
    models = {"markov": {"Combined": {**figures, "N": 4, "Recall@10": 0.125}}}
    lines = comparison.comparison_table(figures, models).splitlines()
    assert lines[2] == "| SASRec (RecBole) | 4 | 0.5000 | 0.7500 | 0.2500 | 0.3000 | 0.2000 |"
    assert lines[3] == "| markov | 4 | 0.1250 | 0.7500 | 0.2500 | 0.3000 | 0.2000 |"


def test_recbole_trains_sasrec_on_the_converted_files(tmp_path):
    pytest.importorskip("recbole")
    catalogue = [f"page-{index}" for index in range(30)]  # more pages than the largest cut-off, 20
    train = _split([(f"u{user}", [catalogue[user : user + 3]], catalogue[user + 3 : user + 6]) for user in range(24)])
    validation = _split([("v", [catalogue[:3]], catalogue[3:5])])
    test = _split([("t1", [catalogue[5:8]], catalogue[8:9]), ("t2", [["unseen"]], ["page-0"])])
    data = comparison.convert(_write_prepared(tmp_path / "data", train, validation, test))
    result = comparison.train_sasrec(data, tmp_path / "work", epochs=2, stopping_step=2, batch_size=32)
    assert result.scores.shape == (1, data.vocabulary_size) and result.epochs_run == 2
    assert np.isinf(result.scores[0, [0, 1, 2]]).all() and np.isfinite(result.scores[0, 3:]).all()
    figures = comparison.our_ranking_metrics(result.scores, data)
    assert figures["n_users"] == 2 and figures["Recall@20"] <= 0.5  # t2 has no known history page: a miss
    assert set(result.recbole_test) >= {"recall@10", "ndcg@10", "mrr@10"}
    budgeted = comparison.train_sasrec(data, tmp_path / "budget", epochs=3, batch_size=32, max_train_minutes=0.0)
    assert budgeted.epochs_run == 1 and budgeted.best_epoch == 0
