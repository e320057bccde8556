"""Ranking metrics and BLEU against hand-computed cases and their edge cases."""

import math

import numpy as np
import pytest
from sacrebleu.metrics import BLEU

from evaluation.bleu import bleu_score, sentence_bleu_scores
from evaluation.ranking import ranking_scores, target_ranks


def test_ranks_recall_ndcg_mrr_by_hand():
    scores = np.array(
        [
            [0.0, 0.9, 0.5, 0.1, 0.3],  # target 1 has the top score        -> rank 1
            [0.0, 0.9, 0.5, 0.1, 0.3],  # target 4: 0.9 and 0.5 above it     -> rank 3
            [0.0, 0.9, 0.5, 0.1, 0.3],  # target 3: 0.9, 0.5, 0.3 above it   -> rank 4
        ]
    )
    targets = np.array([1, 4, 3])
    assert target_ranks(scores, targets).tolist() == [1, 3, 4]
    results = ranking_scores(scores, targets, ks=(1, 3, 5))
    assert results["Recall@1"] == pytest.approx(1 / 3)
    assert results["Recall@3"] == pytest.approx(2 / 3)
    assert results["Recall@5"] == 1.0
    # NDCG@3 = (1/log2(2) + 1/log2(4) + 0) / 3 = (1 + 0.5) / 3.
    assert results["NDCG@3"] == pytest.approx(1.5 / 3)
    # NDCG@5 adds 1/log2(5) for the rank-4 target.
    assert results["NDCG@5"] == pytest.approx((1 + 0.5 + 1 / math.log2(5)) / 3)
    # MRR@3 = (1 + 1/3 + 0) / 3; MRR@5 = (1 + 1/3 + 1/4) / 3.
    assert results["MRR@3"] == pytest.approx((1 + 1 / 3) / 3)
    assert results["MRR@5"] == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)
    assert results["n_users"] == 3


def test_excluded_ids_are_not_candidates():
    # Excluding id 0 (score 0.0, below the target) changes nothing; excluding ids 1 and 2 lifts
    # the rank-4 target 3 to rank 2 (only 0.3 of id 4 is above 0.1 among ids 3, 4).
    scores = np.array([[0.0, 0.9, 0.5, 0.1, 0.3]])
    assert target_ranks(scores, np.array([3]), exclude_ids=[0]).tolist() == [4]
    assert target_ranks(scores, np.array([3]), exclude_ids=[0, 1, 2]).tolist() == [2]
    with pytest.raises(ValueError, match=r"targets\[0\] = 1 is one of exclude_ids"):
        target_ranks(scores, np.array([1]), exclude_ids=[0, 1])


def test_ties_count_against_the_target():
    # A constant scorer: every candidate ties with the target, which is ranked last whatever its id.
    scores = np.zeros((2, 6))
    assert target_ranks(scores, np.array([0, 5])).tolist() == [6, 6]
    assert ranking_scores(scores, np.array([0, 5]), ks=(5,))["Recall@5"] == 0.0
    # One tie: the target shares 0.5 with id 2 and is placed after it, behind id 1 -> rank 3.
    assert target_ranks(np.array([[0.1, 0.9, 0.5, 0.5]]), np.array([3])).tolist() == [3]


def test_minus_infinity_scores_are_allowed():
    scores = np.array([[-np.inf, 1.0, -np.inf, 0.5]])
    assert target_ranks(scores, np.array([3])).tolist() == [2]
    # A target masked to -inf ranks with every other -inf id: last.
    assert target_ranks(scores, np.array([0])).tolist() == [4]


def test_large_inputs_are_ranked_in_chunks():
    # More rows than one chunk: compare with a direct argsort rank (no ties with continuous scores).
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5000, 30)).astype(np.float32)
    targets = rng.integers(0, 30, size=5000)
    order_rank = (np.argsort(np.argsort(-scores, axis=1), axis=1) + 1)[np.arange(5000), targets]
    assert np.array_equal(target_ranks(scores, targets), order_rank)


def test_ranking_bad_input_is_an_error():
    scores = np.zeros((2, 4))
    with pytest.raises(ValueError, match="shape"):
        ranking_scores(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="targets must have shape"):
        ranking_scores(scores, np.array([0]))
    with pytest.raises(ValueError, match=r"targets\[1\] = 4"):
        ranking_scores(scores, np.array([0, 4]))
    with pytest.raises(TypeError, match="integer"):
        ranking_scores(scores, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"scores\[1\] contains NaN"):
        ranking_scores(np.array([[0.0, 1.0], [np.nan, 1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="ks must be positive"):
        ranking_scores(scores, np.array([0, 1]), ks=(0,))


def test_ranking_of_no_user_is_nan():
    results = ranking_scores(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), ks=(5,))
    assert math.isnan(results["Recall@5"]) and results["n_users"] == 0


def test_bleu_identical_and_disjoint_sessions():
    # Identical 4-page sessions: every n-gram precision 1 and no brevity penalty -> 1.
    # Disjoint sessions: no unigram in common -> 0. Sentence mean over the two users: 0.5.
    generated = [["home", "shoes", "cart", "purchase"], ["bags"]]
    actual = [["home", "shoes", "cart", "purchase"], ["hats"]]
    assert sentence_bleu_scores(generated, actual) == pytest.approx([1.0, 0.0])
    assert bleu_score(generated, actual) == pytest.approx(0.5)


def test_bleu_effective_order_and_brevity_penalty_by_hand():
    # Hypothesis "home shoes" vs reference "home shoes cart": effective order keeps the 1- and
    # 2-gram precisions (both 1, no 3- or 4-gram exists); brevity penalty exp(1 - 3/2).
    expected = math.exp(1 - 3 / 2)
    assert bleu_score([["home", "shoes"]], [["home", "shoes", "cart"]], level="corpus") == pytest.approx(expected)
    assert bleu_score([["home", "shoes"]], [["home", "shoes", "cart"]]) == pytest.approx(expected)


def test_bleu_matches_sacrebleu_and_drops_specials():
    generated = [["[BOS]", "home", "shoes", "[UNK]", "bags", "[EOS]"], ["home", "cart"]]
    actual = [["home", "shoes", "hats", "bags"], ["home", "cart", "purchase"]]
    bleu = BLEU(tokenize="none", effective_order=True)
    hypotheses, references = ["home shoes bags", "home cart"], ["home shoes hats bags", "home cart purchase"]
    corpus = bleu.corpus_score(hypotheses, [references]).score / 100
    sentences = [bleu.sentence_score(h, [r]).score / 100 for h, r in zip(hypotheses, references)]
    assert bleu_score(generated, actual, level="corpus") == pytest.approx(corpus)
    assert bleu_score(generated, actual) == pytest.approx(np.mean(sentences))


def test_bleu_edge_cases():
    # An empty generation scores 0; a user without an actual page is excluded (NaN per user).
    assert sentence_bleu_scores([[], ["a"]], [["a"], []])[0] == 0.0
    assert math.isnan(sentence_bleu_scores([[], ["a"]], [["a"], []])[1])
    assert bleu_score([["a", "b"], ["x"]], [["a", "b"], ["[EOS]"]]) == pytest.approx(1.0)
    assert math.isnan(bleu_score([["a"]], [[]]))
    assert math.isnan(bleu_score([["a"]], [[]], level="corpus"))
    with pytest.raises(ValueError, match="whitespace"):
        bleu_score([["home page"]], [["home"]])
    with pytest.raises(ValueError, match="level"):
        bleu_score([["a"]], [["a"]], level="document")


def test_corpus_bleu_matches_sacrebleu_corpus_score_on_random_sessions():
    # bleu_score sums the per-sentence statistics; sacrebleu's corpus_score must agree.
    rng = np.random.default_rng(0)
    pages = [f"p{i}" for i in range(15)]
    generated = [list(rng.choice(pages, size=rng.integers(0, 8))) for _ in range(200)]
    actual = [list(rng.choice(pages, size=rng.integers(1, 8))) for _ in range(200)]
    expected = BLEU(tokenize="none", effective_order=True).corpus_score(
        [" ".join(pages) for pages in generated], [[" ".join(pages) for pages in actual]]
    )
    assert bleu_score(generated, actual, level="corpus") == pytest.approx(expected.score / 100)
