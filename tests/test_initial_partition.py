"""HeTLM's starting partition (trainers/initial_partition.py): browsing statistics computed by hand, and a planted case
each way for the likelihood's choice between the encoder's K-means and a K-means on browsing statistics.

The planted users: two groups. In ``behaviour`` the groups differ only in how they browse (group A: one short
session after another, each a category page then a product; group B: long sessions of products), the pages they
use are the same, and the encoder start is a random split. In ``surface`` the groups browse the same way but on
disjoint pages, and the encoder start is the groups.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from application.experiment_report import cluster_dynamics_lines
from test_cluster_dynamics import DIM, planted_model
from tokenization.page_tokenizer import build_page_tokenizer
from trainers.clustering import KMeansClusters
from trainers.hetlm_training import routed_nll
from trainers.initial_partition import apply_partition, browsing_statistics, choose_initial_partition, page_groups
from trainers.initialization import ClusterwiseStart
from trainers.training_arguments import ClusterwiseTrainingArguments

PAGES = [f"category/c{index}" for index in range(4)] + [f"product/p{index}" for index in range(12)]
TOKENIZER = build_page_tokenizer(PAGES)


def test_browsing_statistics_by_hand():
    tokenizer = build_page_tokenizer(["category/a", "product/x", "product/y", "cart"])
    ids = tokenizer.get_vocab()
    groups = page_groups(tokenizer)
    group = {
        name: groups[ids[page]]
        for name, page in (("category", "category/a"), ("product", "product/x"), ("cart", "cart"))
    }
    assert groups[ids["[BOS]"]] == groups[ids["[EOS]"]] == 0 and groups[ids["product/y"]] == group["product"]
    assert sorted(group.values()) == [1, 2, 3]
    # user 0: 1 session of 4 pages, x seen twice (revisit share 1/4); categories 1/4, products 3/4, cart 0
    # user 1: 2 sessions of 1 page: 1 page per session, no revisit; category 1/2, products 0, cart 1/2
    streams = [
        [2, ids["category/a"], ids["product/x"], ids["product/y"], ids["product/x"], 3],
        [2, ids["category/a"], 3, 2, ids["cart"], 3],
    ]
    shares = [{"category": 0.25, "product": 0.75, "cart": 0.0}, {"category": 0.5, "product": 0.0, "cart": 0.5}]
    by_group = [[user[name] for name in sorted(group, key=group.get)] for user in shares]
    raw = np.array([[np.log1p(4), 0.25, *by_group[0]], [np.log1p(1), 0.0, *by_group[1]]])
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(browsing_statistics(streams, groups, bos_token_id=2), expected)


def planted_users(kind: str, users: int, seed: int) -> tuple[list[list[int]], np.ndarray]:
    """``users`` streams of ``kind`` (see the module docstring) and their groups (half each)."""
    rng = np.random.default_rng(seed)
    ids = TOKENIZER.get_vocab()
    groups = np.arange(users) % 2
    streams = []
    for group in groups:
        stream = []
        if kind == "behaviour":
            sessions = [[f"category/c{rng.integers(4)}", f"product/p{rng.integers(12)}"] for _ in range(4)]
            if group == 1:
                sessions = [[f"product/p{page}" for page in rng.integers(12, size=8)]]
        else:
            offset = 0 if group == 0 else 6
            sessions = [[f"product/p{offset + page}" for page in rng.integers(6, size=4)] for _ in range(2)]
        for session in sessions:
            stream += [2, *(ids[page] for page in session), 3]
        streams.append(stream)
    return streams, groups


def planted_start(kind: str) -> tuple[ClusterwiseStart, np.ndarray]:
    """A :class:`ClusterwiseStart` of 40 training and 16 validation planted users, a tiny Llama for every
    predictor (``test_cluster_dynamics.planted_model``), random embeddings, and as the encoder's K-means labels a
    random split (``behaviour``) or the groups (``surface``)."""
    rng = np.random.default_rng(0)
    splits = {}
    for name, users, seed in (("train", 40, 1), ("validation", 16, 2)):
        streams, groups = planted_users(kind, users, seed)
        splits[name] = Dataset.from_dict(
            {
                "input_ids": streams,
                "labels": streams,
                "user_index": list(range(users)),
                "user_embeddings": rng.normal(size=(users, DIM)).astype(np.float32).tolist(),
            }
        )
        if name == "train":
            truth = groups
    model = planted_model(num_clusters=2)
    model.config.routing = "likelihood"
    embeddings = np.asarray(splits["train"]["user_embeddings"])
    start_labels = rng.permutation(truth) if kind == "behaviour" else truth.copy()
    centers = np.stack([embeddings[start_labels == cluster].mean(axis=0) for cluster in (0, 1)])
    clusters = KMeansClusters(labels=start_labels, centers=centers)
    return ClusterwiseStart(model, DatasetDict(splits), clusters, embeddings), truth


def planted_arguments(tmp_path, partition: str) -> ClusterwiseTrainingArguments:
    return ClusterwiseTrainingArguments(
        output_dir=str(tmp_path),
        num_clusters=2,
        initial_partition=partition,
        initial_partition_epochs=8,
        learning_rate=5e-3,
        per_device_train_batch_size=8,
        selector_pretrain_epochs=50,
        seed=0,
        report_to=[],
        use_cpu=True,
    )


@pytest.mark.parametrize(("kind", "expected"), [("behaviour", "browsing"), ("surface", "encoder")])
def test_the_likelihood_chooses_the_start_that_fits(tmp_path, kind, expected):
    start, truth = planted_start(kind)
    before = [state.clone() for state in start.model.predictors[0].state_dict().values()]
    choice = choose_initial_partition(
        start,
        TOKENIZER,
        planted_arguments(tmp_path, "likelihood"),
        tmp_path / "start",
        lambda model: routed_nll(model, start.users["validation"]),
    )
    assert choice.name == expected, choice.to_dict()
    assert abs(choice.validation_nll["browsing"] - choice.validation_nll["encoder"]) > 0.02
    if kind == "behaviour":  # the browsing K-means finds the groups, which the random start does not
        assert abs(choice.agreement_with_kmeans["browsing"]) < 0.2
        assert np.array_equal(choice.labels, truth) or np.array_equal(choice.labels, 1 - truth)
    after = list(start.model.predictors[0].state_dict().values())
    assert all(torch.equal(old, new) for old, new in zip(before, after))  # the predictors are the single LM again
    assert start.model.config.routing == "likelihood"


def test_apply_partition_restarts_from_the_labels(tmp_path):
    start, truth = planted_start("behaviour")
    apply_partition(start, truth, planted_arguments(tmp_path, "browsing"))
    assert np.array_equal(start.clusters.labels, truth)
    embeddings = start.train_user_embeddings
    np.testing.assert_allclose(start.clusters.centers[1], embeddings[truth == 1].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(start.model.centroids[1].numpy(), embeddings[truth == 1].mean(axis=0), rtol=1e-5)
    assert start.selector is not None


def test_browsing_start_needs_no_fine_tuning(tmp_path):
    start, truth = planted_start("behaviour")
    choice = choose_initial_partition(start, TOKENIZER, planted_arguments(tmp_path, "browsing"), tmp_path, None)
    assert choice.name == "browsing" and choice.validation_nll == {"encoder": None, "browsing": None}
    assert np.array_equal(choice.labels, truth) or np.array_equal(choice.labels, 1 - truth)


def test_unknown_partition_is_refused():
    with pytest.raises(ValueError, match="initial_partition must be one of"):
        ClusterwiseTrainingArguments(initial_partition="random")


def test_the_report_says_when_hetlm_started_elsewhere():
    row = {
        "epoch": 1.0,
        "num_clusters": 2,
        "cluster_sizes": [6, 4],
        "users_moved_since_kmeans": 1,
        "users_moved_since_last": 1,
        "validation_nll": 2.8,
    }
    partition = {
        "chosen": "browsing",
        "sizes": [5, 5],
        "validation_nll": {"encoder": 2.9, "browsing": 2.8},
        "ari_with_encoder_kmeans": {"encoder": 1.0, "browsing": 0.0},
    }
    result = {
        "num_clusters": 2,
        "cluster_sizes": [6, 4],
        "kmeans": {"k": 2, "sizes": [5, 5]},
        "dynamics": [row],
        "initial_partition": partition,
    }
    lines = cluster_dynamics_lines({"hetlm-a5-b9": result})
    assert lines[2].startswith(
        "**hetlm-a5-b9**: started from the browsing partition (routed validation NLL 2.800 vs 2.900 for the encoder "
        "K-means; ARI with the encoder K-means 0.000); 1 of 10 training users moved from it (10.0%); K 2 -> 2"
    )
    assert "| Moved since start |" in "\n".join(lines)
