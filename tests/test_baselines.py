"""The simple baselines on tiny hand-made datasets with hand-checked outputs."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from evaluation.baselines import (
    BASELINES,
    MarkovChainBaseline,
    MostPopularPagesBaseline,
    PersonalPopularityBaseline,
    RepeatLastSessionBaseline,
    SessionKNNBaseline,
    fit_baseline,
    page_score_matrix,
)
from evaluation.ranking import ranking_scores


def make_train(inputs: list, targets: list) -> Dataset:
    return Dataset.from_dict(
        {"user_id": [f"u{i}" for i in range(len(targets))], "input_sessions": inputs, "target_session": targets}
    )


def assert_ranking(scores, expected):
    """``scores`` (best first) holds exactly the expected (page, score) pairs, in order."""
    assert list(scores) == [page for page, _ in expected]
    assert list(scores.values()) == pytest.approx([score for _, score in expected], abs=1e-5)


@pytest.fixture()
def train() -> Dataset:
    # Sessions: [a b], [a c], [a b], [b a], [a b], [c], [c], [c a] and [d c c e].
    return make_train(
        inputs=[[["a", "b"]], [["a", "b"], ["b", "a"]], [["c"]], [["c", "a"]]],
        targets=[["a", "c"], ["a", "b"], ["c"], ["d", "c", "c", "e"]],
    )


def test_registry_names():
    assert sorted(BASELINES) == ["markov", "most-popular", "personal-popular", "repeat-last", "sknn"]
    assert all(BASELINES[name].name == name for name in BASELINES)


def test_repeat_last_session(train):
    baseline = fit_baseline("repeat-last", train)
    assert isinstance(baseline, RepeatLastSessionBaseline)
    sessions, clusters = baseline([[["a"], ["b", "c", "b"]], [["d"]], []])
    assert sessions == [["b", "c", "b"], ["d"], []]
    assert clusters is None


def test_most_popular_counts_sessions_and_uses_median_length(train):
    # Target sessions containing each page: c 3, a 2, b 1, d 1, e 1; lengths 2, 2, 1, 4 -> median 2.
    baseline = fit_baseline("most-popular", train)
    assert isinstance(baseline, MostPopularPagesBaseline)
    assert baseline.pages == ["c", "a"]
    assert baseline([[["x"]], [["y"]]]) == ([["c", "a"], ["c", "a"]], None)


def test_most_popular_rounds_half_median_up_and_breaks_ties_by_name():
    # Lengths 2 and 3 -> median 2.5 -> 3 pages; every page is in one session except z (2).
    train = make_train(inputs=[[["q"]], [["q"]]], targets=[["z", "y"], ["z", "x", "w"]])
    assert MostPopularPagesBaseline.fit(train).pages == ["z", "w", "x"]


def test_markov_starts_from_the_last_page_of_each_user(train):
    chain = MarkovChainBaseline.fit(train)
    # Streams: u0 a b a c; u1 a b b a a b; u2 c c; u3 c a d c c e (sessions joined, each once).
    assert chain.transitions["a"] == {"b": 3, "c": 1, "a": 1, "d": 1}
    assert chain.transitions["c"] == {"c": 2, "a": 1, "e": 1}
    # Sessions containing a page (of 9): a 6, c 5, b 4, d 1, e 1 -> share = count / 10.
    assert chain.popularity.share == pytest.approx({"a": 0.6, "c": 0.5, "b": 0.4, "d": 0.1, "e": 0.1})
    predictions = chain.predict([[["x", "c"]], [["q"]]])
    # L = 2 steps from c: step 1 c 1/2, a 1/4, e 1/4; step 2 c 1/4 + 1/24, a 1/8 + 1/24, e 1/8, b 1/8, d 1/24.
    assert_ranking(
        predictions.page_scores[0], [("c", 19 / 24), ("a", 5 / 12), ("e", 3 / 8), ("b", 1 / 8), ("d", 1 / 24)]
    )
    # L = the user's mean distinct pages per session: 2 and 1; an unknown last page gets the popular pages.
    assert predictions.sessions == [["c", "a"], ["a"]]
    assert predictions.outcome_probabilities is None


def test_markov_counts_each_session_once_however_many_windows_repeat_it():
    one_row = make_train(inputs=[[["a", "b"], ["b", "a"]]], targets=[["a", "b"]])
    windows = Dataset.from_dict(
        {
            "user_id": ["u", "u"],
            "input_sessions": [[["a", "b"]], [["a", "b"], ["b", "a"]]],
            "target_session": [["b", "a"], ["a", "b"]],
        }
    )
    assert MarkovChainBaseline.fit(windows).transitions == MarkovChainBaseline.fit(one_row).transitions
    assert MarkovChainBaseline.fit(windows).popularity == MarkovChainBaseline.fit(one_row).popularity


def test_markov_sampling_is_seeded_and_draws_distinct_successors(train):
    first = MarkovChainBaseline.fit(train, do_sample=True, seed=3)
    second = MarkovChainBaseline.fit(train, do_sample=True, seed=3)
    users = [[["x", "a"]]] * 50
    sessions, _ = first(users)
    assert sessions == second(users)[0]
    assert len({tuple(session) for session in sessions}) > 1
    # From a in 2 steps the chain reaches a, b, c, d and e.
    assert all(
        len(session) == len(set(session)) == 2 and set(session) <= {"a", "b", "c", "d", "e"} for session in sessions
    )


def test_personal_popularity_ranks_the_users_own_pages_then_popular_ones(train):
    baseline = fit_baseline("personal-popular", train)
    assert isinstance(baseline, PersonalPopularityBaseline)
    predictions = baseline.predict([[["a", "b"], ["b"]], [["cart", "a"], ["a"], ["z"]]])
    # Own session counts: b 2, a 1, plus the global share (a 0.6, c 0.5, b 0.4, d 0.1, e 0.1).
    assert_ranking(predictions.page_scores[0], [("b", 2.4), ("a", 1.6), ("c", 0.5), ("d", 0.1), ("e", 0.1)])
    assert predictions.sessions == [["b", "a"], ["a"]]  # L = round(1.5) = 2 and round(4 / 3) = 1
    # No train session has a cart: P(cart) = (sessions with cart + 0) / (sessions + 1).
    assert predictions.outcome_probabilities["cart"].tolist() == pytest.approx([0.0, 1 / 4])


@pytest.fixture()
def knn_train() -> Dataset:
    return Dataset.from_dict(
        {
            "user_id": ["u", "u", "v", "w"],
            "input_sessions": [[["a", "b"]], [["a", "b"], ["c"]], [["b"]], [["e"]]],
            "target_session": [["c"], ["a"], ["d", "cart"], ["f"]],
        }
    )


def test_sknn_neighbours_are_users_by_recency_weighted_cosine(knn_train):
    knn = fit_baseline("sknn", knn_train, k=2)
    assert isinstance(knn, SessionKNNBaseline)
    # Query b a: weights b 1/2, a 1. Rows: u {a b} 1.5 / (sqrt 2 sqrt 2) = 0.75; u {a b c} 1.5 / (sqrt 3 sqrt 2)
    # = 0.612 (u's worse row: dropped); v {b} 0.5 / sqrt 2 = 0.354; w {e} 0.
    rows, similarity = knn.neighbours([["b", "a"]])
    assert rows.tolist() == [0, 2]
    assert similarity.tolist() == pytest.approx([0.75, 0.5 / 2**0.5])
    predictions = knn.predict([[["b", "a"]]])
    assert dict(list(predictions.page_scores[0].items())[:3]) == pytest.approx(
        {"c": 0.75, "cart": 0.5 / 2**0.5, "d": 0.5 / 2**0.5}
    )
    assert predictions.sessions == [["c", "cart"]]
    assert predictions.outcome_probabilities["cart"].tolist() == pytest.approx([0.3536 / (0.75 + 0.3536)], abs=1e-4)
    nearest = fit_baseline("sknn", knn_train, k=1).predict([[["b", "a"]]])
    assert nearest.outcome_probabilities["cart"].tolist() == [0.0]
    # A user sharing no page with any train history: popular pages and the global outcome rate.
    alone = knn.predict([[["zz"]]])
    assert alone.sessions == [["a"]]
    assert alone.outcome_probabilities["cart"].tolist() == pytest.approx([1 / 7])  # 7 sessions, 1 with a cart


def test_baseline_scores_rank_pages_for_the_ranking_metrics(knn_train):
    vocabulary = {"[PAD]": 0, "a": 1, "b": 2, "c": 3, "d": 4, "cart": 5, "e": 6, "f": 7}
    predictions = fit_baseline("sknn", knn_train, k=2).predict([[["b", "a"]], [["b", "a"]]])
    scores = page_score_matrix(predictions.page_scores, vocabulary)
    results = ranking_scores(scores, np.array([3, 4]), ks=(1, 3), exclude_ids=[0])
    # c ranks 1st; d ties with cart (ties count against the target): rank 3.
    assert (results["Recall@1"], results["Recall@3"], results["MRR@3"]) == pytest.approx((0.5, 1.0, (1 + 1 / 3) / 2))
    for name in BASELINES:
        baseline = fit_baseline(name, knn_train)
        predictions = baseline.predict([[["b", "a"]]])
        assert len(predictions.sessions) == len(predictions.page_scores) == 1
        assert set(predictions.sessions[0]) <= set(predictions.page_scores[0]) or name == "most-popular"


def test_fit_errors_name_the_problem(train):
    with pytest.raises(ValueError, match="unknown baseline 'lstm'"):
        fit_baseline("lstm", train)
    with pytest.raises(ValueError, match="empty train dataset"):
        fit_baseline("markov", make_train([], []))
    with pytest.raises(ValueError, match="target_session"):
        fit_baseline("most-popular", Dataset.from_dict({"input_sessions": [[["a"]]]}))
    with pytest.raises(ValueError, match="k and num_scored"):
        fit_baseline("sknn", train, k=0)
