"""The user-embedding cache: a second run over the same users reuses the stored embeddings, and a
different encoder never gets another encoder's embeddings."""

from __future__ import annotations

import numpy as np
import torch

from modeling_hetlm import build_hetlm
from trainers.data import tokenize_users
from trainers.initialization import add_user_embeddings
from trainers.pretrain import build_language_model
from training_fixtures import simulated_splits, tiny_encoder


def test_cached_embeddings_equal_fresh_ones_and_are_keyed_by_the_encoder(tmp_path):
    splits, tokenizer = simulated_splits(num_users=60)
    users = tokenize_users(splits, tokenizer, 512, "stream")["train"]
    encoder_tokenizer, encoder_config = tiny_encoder(tokenizer)
    lm = build_language_model(tokenizer, "opt", "tiny")
    torch.manual_seed(0)
    model = build_hetlm(tokenizer, lm, encoder_tokenizer, encoder_config=encoder_config, num_clusters=2)

    fresh = np.asarray(add_user_embeddings(users, model)["user_embeddings"])
    first = np.asarray(add_user_embeddings(users, model, cache_dir=tmp_path)["user_embeddings"])
    assert len(list(tmp_path.glob("*.npy"))) == 1
    cached = np.asarray(add_user_embeddings(users, model, cache_dir=tmp_path)["user_embeddings"])
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(cached, fresh)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    torch.manual_seed(1)
    other = build_hetlm(tokenizer, lm, encoder_tokenizer, encoder_config=encoder_config, num_clusters=2)
    other_embeddings = np.asarray(add_user_embeddings(users, other, cache_dir=tmp_path)["user_embeddings"])
    assert len(list(tmp_path.glob("*.npy"))) == 2
    assert not np.allclose(other_embeddings, fresh)
