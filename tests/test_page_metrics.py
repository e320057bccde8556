"""Page-generation metrics against hand-computed cases and every edge case of their definitions (the README's
Metrics section and the docstring of evaluation/metrics/page_generation/page_metrics.py)."""

import math

import numpy as np
import pytest

from evaluation.page_metrics import (
    PAGE_MEAN_METRICS,
    PAGE_VARIANCE_METRICS,
    aggregate_page_scores,
    page_generation_scores,
    per_user_page_scores,
)

VOCABULARY = {"home", "shoes", "bags", "hats", "cart", "purchase"}


def per_user(generated, actual, inputs, vocabulary=None):
    scores = per_user_page_scores([generated], [actual], [inputs], vocabulary)
    return {name: float(values[0]) for name, values in scores.items() if name != "evaluated"}


def test_hand_computed_single_user():
    # G = {home, shoes, hats} (the repeated "home" and [EOS] do not count), A = {shoes, bags, hats, cart},
    # I = {home, bags}. G∩A = {shoes, hats} (2), G∪A = {home, shoes, bags, hats, cart} (5).
    scores = per_user(
        ["home", "shoes", "home", "hats", "[EOS]"], ["shoes", "bags", "hats", "cart"], ["home", "bags"], VOCABULARY
    )
    assert scores["hr"] == 1.0
    assert scores["ioa"] == pytest.approx(2 / 4)
    assert scores["iop"] == pytest.approx(2 / 3)
    assert scores["iou"] == pytest.approx(2 / 5)
    # Val-P over the 5 generated tokens: home, shoes, home, hats valid; [EOS] is not a page -> 4/5.
    assert scores["valp"] == pytest.approx(4 / 5)
    # New-P over the set of valid generated pages {home, shoes, hats}: shoes and hats are not in I -> 2/3.
    assert scores["newp"] == pytest.approx(2 / 3)


def test_no_overlap_scores_zero():
    # G = {hats}, A = {bags}: no common page, so HR = IoA = IoP = IoU = 0; hats is valid and new.
    scores = per_user(["hats"], ["bags"], ["home"], VOCABULARY)
    assert [scores[name] for name in ("hr", "ioa", "iop", "iou", "valp", "newp")] == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_empty_generation_gives_zero_iop_and_valp():
    # Empty G: IoP = 0 and Val-P = 0 by definition (not 0/0); IoU = 0 / |A| = 0; New-P = 0 (no valid page).
    scores = per_user([], ["bags", "cart"], ["home"], VOCABULARY)
    assert [scores[name] for name in ("hr", "ioa", "iop", "iou", "valp", "newp")] == [0.0] * 6


def test_only_specials_generated():
    # ["[UNK]", "[EOS]"]: G is empty (specials are not pages), 2 tokens and none valid -> Val-P = 0/2.
    scores = per_user(["[UNK]", "[EOS]"], ["bags"], [], VOCABULARY)
    assert scores["iop"] == 0.0 and scores["valp"] == 0.0 and scores["newp"] == 0.0


def test_unk_and_unknown_pages_are_invalid():
    # Tokens: shoes (valid), [UNK] (special, invalid), ghost (not in the vocabulary, invalid), shoes (valid).
    # Val-P = 2/4. G = {shoes, ghost} (ghost is a generated page, just not a real one): IoP = 1/2.
    # The valid set is {shoes}, which is in I -> New-P = 0/1.
    scores = per_user(["shoes", "[UNK]", "ghost", "shoes"], ["shoes"], ["shoes"], VOCABULARY)
    assert scores["valp"] == pytest.approx(2 / 4)
    assert scores["iop"] == pytest.approx(1 / 2)
    assert scores["newp"] == 0.0


def test_without_vocabulary_every_non_special_string_is_valid():
    # vocabulary=None: ghost counts as valid, [UNK] still does not -> Val-P = 3/4; valid set {shoes, ghost},
    # ghost not in I -> New-P = 1/2.
    scores = per_user(["shoes", "[UNK]", "ghost", "shoes"], ["shoes"], ["shoes"], None)
    assert scores["valp"] == pytest.approx(3 / 4)
    assert scores["newp"] == pytest.approx(1 / 2)


def test_specials_in_vocabulary_are_still_invalid():
    # A tokenizer's vocabulary contains the specials; they must not become valid pages.
    scores = per_user(["[UNK]", "shoes"], ["shoes"], [], VOCABULARY | {"[PAD]", "[UNK]", "[BOS]", "[EOS]"})
    assert scores["valp"] == pytest.approx(1 / 2)


def test_specials_in_actual_and_inputs_are_not_pages():
    # A = {shoes} once [BOS]/[EOS] are dropped; I = {} once [UNK] is dropped, so shoes is new.
    scores = per_user(["shoes"], ["[BOS]", "shoes", "[EOS]"], ["[UNK]"], VOCABULARY)
    assert scores["ioa"] == 1.0 and scores["iou"] == 1.0 and scores["newp"] == 1.0


def test_empty_actual_user_is_excluded_and_counted():
    generated = [["shoes"], ["shoes"], ["bags"]]
    actual = [["shoes"], ["[BOS]", "[EOS]"], []]  # users 1 and 2 have no actual page
    inputs = [[], [], []]
    per_user_scores = per_user_page_scores(generated, actual, inputs)
    assert per_user_scores["evaluated"].tolist() == [True, False, False]
    assert np.isnan(per_user_scores["hr"][1]) and np.isnan(per_user_scores["newp"][2])
    scores = page_generation_scores(generated, actual, inputs)
    # Only user 0 is scored: every mean is 1 and every variance 0.
    assert scores["n_users"] == 1 and scores["n_excluded_empty_actual"] == 2
    assert scores["HR"] == 1.0 and scores["IoU"] == 1.0 and scores["HR-var"] == 0.0


def test_means_and_population_variances_across_users():
    generated = [["a", "b"], ["a"], ["c"], ["a", "b", "c", "d"]]
    actual = [["a", "b"], ["a", "b"], ["d"], ["a"]]
    inputs = [["a"], [], ["c"], ["a", "b"]]
    scores = page_generation_scores(generated, actual, inputs)
    # Per user: HR = 1, 1, 0, 1          -> mean 3/4, var = 3/4 * 1/4 = 3/16 (population)
    #           IoA = 1, 1/2, 0, 1       -> mean 5/8
    #           IoP = 1, 1, 0, 1/4       -> mean 9/16
    #           IoU = 1, 1/2, 0, 1/4     -> mean 7/16
    #           Val-P = 1, 1, 1, 1       -> mean 1
    #           New-P = 1/2, 1, 0, 2/4   -> mean 1/2
    assert scores["HR"] == pytest.approx(3 / 4)
    assert scores["HR-var"] == pytest.approx(3 / 16)
    assert scores["IoA"] == pytest.approx(5 / 8)
    # IoA-var: mean of squares (1 + 1/4 + 0 + 1) / 4 = 9/16, minus (5/8)^2 = 25/64 -> 11/64.
    assert scores["IoA-var"] == pytest.approx(11 / 64)
    assert scores["IoP"] == pytest.approx(9 / 16)
    assert scores["IoP-var"] == pytest.approx(np.var([1, 1, 0, 0.25]))
    assert scores["IoU"] == pytest.approx(7 / 16)
    assert scores["IoU-var"] == pytest.approx(np.var([1, 0.5, 0, 0.25]))
    assert scores["Val-P"] == 1.0
    assert scores["New-P"] == pytest.approx(1 / 2)
    assert list(scores) == [*PAGE_MEAN_METRICS, *PAGE_VARIANCE_METRICS, "n_users", "n_excluded_empty_actual"]


def test_population_variance_matches_the_papers_table_3():
    # OPT-350M HeTLM (alpha=5, beta=9), cluster 3: N = 151, HR = 0.57 and HR-var = 0.245 in Tables 2/3.
    # With 86 hits of 151 (HR 0.5695): population variance 0.2452 -> 0.245; the sample one is 0.2468.
    generated = [["a"]] * 86 + [["b"]] * 65
    scores = page_generation_scores(generated, [["a"]] * 151, [[]] * 151)
    assert round(scores["HR"], 2) == 0.57
    assert round(scores["HR-var"], 3) == 0.245


def test_aggregate_of_a_slice_matches_scoring_the_slice():
    rng = np.random.default_rng(0)
    pages = [f"p{i}" for i in range(12)]
    generated = [list(rng.choice(pages, size=rng.integers(0, 5))) for _ in range(40)]
    actual = [list(rng.choice(pages, size=rng.integers(0, 4))) for _ in range(40)]
    inputs = [list(rng.choice(pages, size=6)) for _ in range(40)]
    per_user_scores = per_user_page_scores(generated, actual, inputs)
    cluster = np.arange(40) % 3 == 0
    sliced = aggregate_page_scores({name: values[cluster] for name, values in per_user_scores.items()})
    members = np.flatnonzero(cluster)
    direct = page_generation_scores(*([users[i] for i in members] for users in (generated, actual, inputs)))
    assert sliced == pytest.approx(direct, nan_ok=True)


def test_no_evaluated_user_gives_nan():
    scores = page_generation_scores([["a"]], [[]], [[]])
    assert scores["n_users"] == 0 and scores["n_excluded_empty_actual"] == 1
    assert all(math.isnan(scores[name]) for name in (*PAGE_MEAN_METRICS, *PAGE_VARIANCE_METRICS))
    assert page_generation_scores([], [], [])["n_users"] == 0


def test_bad_input_is_an_error_naming_field_and_user():
    with pytest.raises(ValueError, match="generated: 2, actual: 1, inputs: 1"):
        page_generation_scores([["a"], ["b"]], [["a"]], [["a"]])
    with pytest.raises(TypeError, match=r"generated\[1\]"):
        page_generation_scores([["a"], "b"], [["a"], ["b"]], [[], []])
    # Nested input sessions instead of the flattened page list.
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        page_generation_scores([["a"]], [["a"]], [[["a", "b"]]])
    # Token ids instead of page names.
    with pytest.raises(TypeError, match=r"actual\[1\]"):
        page_generation_scores([["a"], ["b"]], [["a"], [5]], [[], []])
