"""K-means on embeddings, the selector mimicking it, and the exogenous clusterwise baseline end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from evaluation.cluster_profiles import load_cluster_profiles
from inference.prompts import pad_sequences
from modeling_hetlm import HeTLMForBrowsing
from tokenization.page_tokenizer import encode_sessions
from trainers.clustering import fit_kmeans, pretrain_selector
from trainers.kmeans_baseline import train_kmeans_baseline
from trainers.pretrain import build_language_model
from trainers.training_arguments import ClusterwiseTrainingArguments
from training_fixtures import simulated_splits, tiny_encoder


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    return np.concatenate([centre + 0.2 * rng.normal(size=(40, 3)) for centre in centres]).astype(np.float32)


def test_silhouette_picks_the_planted_k_and_fixed_k_is_respected():
    points = blobs()
    chosen = fit_kmeans(points, "auto", k_range=(2, 5))
    assert chosen.k == 2 and set(chosen.silhouette_by_k) == {2, 3, 4, 5}
    assert len(set(chosen.labels[:40])) == 1 and chosen.labels[0] != chosen.labels[-1]
    assert fit_kmeans(points, 4).k == 4
    with pytest.raises(ValueError, match="K-means needs"):
        fit_kmeans(points[:3], 5)


class _LinearSelector(nn.Module):
    """The two methods pretrain_selector relies on, over a linear selector."""

    def __init__(self, dim: int, k: int):
        super().__init__()
        self.selector = nn.Sequential(nn.Linear(dim, k))

    def cluster_probabilities(
        self, user_embeddings: torch.Tensor, active_clusters: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = self.selector(user_embeddings)
        if active_clusters is not None:
            logits = logits.masked_fill(~active_clusters, float("-inf"))
        return torch.softmax(logits, dim=-1)


def test_selector_pretraining_mimics_kmeans_labels():
    torch.manual_seed(0)
    points = blobs()
    clusters = fit_kmeans(points, 2)
    result = pretrain_selector(_LinearSelector(3, 2), points, clusters.labels, epochs=30, learning_rate=5e-2)
    assert result.accuracy == 1.0
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_label_smoothing_keeps_the_selector_soft():
    """Smoothed by e over K clusters, the target confidence is 1 - e + e/K: the selector stops there, not at 1."""
    torch.manual_seed(0)
    points = blobs()
    clusters = fit_kmeans(points, 2)
    sharp = pretrain_selector(_LinearSelector(3, 2), points, clusters.labels, epochs=60, learning_rate=5e-2)
    soft = pretrain_selector(
        _LinearSelector(3, 2), points, clusters.labels, epochs=60, learning_rate=5e-2, label_smoothing=0.4
    )
    assert sharp.mean_max_probability > 0.97
    assert soft.accuracy == 1.0 and abs(soft.mean_max_probability - 0.8) < 0.03
    three = np.where(clusters.labels == 0, 0, 2)  # cluster 1 retired: no target mass, probability 0
    active = torch.tensor([True, False, True])
    masked = pretrain_selector(
        _LinearSelector(3, 3),
        points,
        three,
        epochs=60,
        learning_rate=5e-2,
        label_smoothing=0.4,
        active_clusters=active,
    )
    assert masked.accuracy == 1.0 and abs(masked.mean_max_probability - 0.8) < 0.03


def test_kmeans_baseline_saves_loads_and_generates(tmp_path):
    torch.manual_seed(0)
    splits, tokenizer = simulated_splits(num_users=160, num_segments=2)
    lm = build_language_model(tokenizer, "opt", "tiny", max_length=96)
    encoder_tokenizer, encoder_config = tiny_encoder(tokenizer)
    settings = ClusterwiseTrainingArguments(
        kmeans_k="auto",
        kmeans_k_range=(2, 3),
        num_train_epochs=1,
        per_device_train_batch_size=32,
        max_length=96,
        selector_hidden_sizes=(16,),
        selector_pretrain_epochs=5,
        bf16=False,
        logging_steps=100,
        disable_tqdm=True,
    )
    result = train_kmeans_baseline(
        splits,
        tokenizer,
        lm,
        tmp_path / "kmeans",
        settings,
        encoder_tokenizer=encoder_tokenizer,
        encoder_config=encoder_config,
    )
    history = json.loads((tmp_path / "kmeans" / "training_history.json").read_text())
    k = history["kmeans"]["k"]
    print(f"K by silhouette: {k} ({history['kmeans']['silhouette_by_k']}); segment ARI {history['segment_ari']:.3f}")
    assert k in (2, 3) and len(history["clusters"]) == k
    # Clusters hold users; each user's every example follows it.
    assert sum(entry["train_users"] for entry in history["clusters"]) == len(set(splits["train"]["user_id"]))
    assert sum(entry["train_examples"] for entry in history["clusters"]) == len(splits["train"])
    assert sum(history["kmeans"]["sizes"]) == len(set(splits["train"]["user_id"])) < len(splits["train"])
    assert all(
        entry["final_eval_loss"] < entry["initial_eval_loss"]
        for entry in history["clusters"]
        if entry["validation_users"]
    )

    # The clusters' profiles are saved with the model, computed over every training user.
    profiles = load_cluster_profiles(tmp_path / "kmeans")
    assert sum(profile["users"] for profile in profiles.values()) == len(set(splits["train"]["user_id"]))
    assert set(profiles) <= set(range(k)) and all(profile["label"] for profile in profiles.values())

    reloaded = HeTLMForBrowsing.from_pretrained(tmp_path / "kmeans")
    assert reloaded.config.routing == "centroids" and reloaded.config.num_clusters == k
    assert torch.allclose(reloaded.centroids, result.model.centroids)
    prompts = [encode_sessions(tokenizer, s, open_next_session=True) for s in splits["test"]["input_sessions"][:3]]
    prompt_ids, _ = pad_sequences(prompts, tokenizer.pad_token_id, side="left")
    new_tokens, clusters = reloaded.generate(
        prompt_ids, (prompt_ids != 0).long(), return_clusters=True, max_new_tokens=6
    )
    assert new_tokens.shape[0] == 3 and set(clusters.tolist()) <= set(range(k))
