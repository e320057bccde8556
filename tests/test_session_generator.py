"""The one batched generator (inference/session_generator.py): greedy sessions, S sampled sessions per
user grouped per user, prompts encoded once, for a plain causal LM and for HeTLM."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from inference.prompts import build_prompt
from inference.session_generator import ModelSessionGenerator
from modeling_fixtures import USERS, prompt_batch, tiny_model
from tokenization.page_tokenizer import build_page_tokenizer

NUM_SAMPLES = 4


def tiny_llama(vocab_size: int, positions: int = 64) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=positions,
    )
    return LlamaForCausalLM(config).eval()


def hetlm_generator() -> ModelSessionGenerator:
    # Routed to the nearest of three users' embeddings, so the users spread over the clusters.
    model = tiny_model("opt", num_clusters=3, seed=1, routing="centroids")
    model.set_centroids(model.embed_users(*prompt_batch(model.page_tokenizer, [USERS[0], USERS[2], USERS[4]])))
    return ModelSessionGenerator(model, model.page_tokenizer, max_new_tokens=5)


@pytest.fixture(scope="module", params=["causal-lm", "hetlm"])
def generator(request) -> ModelSessionGenerator:
    if request.param == "hetlm":
        return hetlm_generator()
    tokenizer = tiny_model("llama").page_tokenizer
    return ModelSessionGenerator(tiny_llama(len(tokenizer)), tokenizer, max_new_tokens=5)


def test_top_1_samples_are_each_users_greedy_session_in_the_users_order(generator):
    greedy, greedy_clusters = generator(USERS)
    assert len({tuple(session) for session in greedy}) > 1, "the planted users must differ"
    for per_call in (None, NUM_SAMPLES + 1, 1):  # one call, one user per call, fewer rows than samples
        samples, clusters = generator.sample(USERS, NUM_SAMPLES, top_k=1, max_sequences_per_call=per_call)
        assert samples == [[session] * NUM_SAMPLES for session in greedy]
        assert clusters == greedy_clusters
    if generator.model.config.model_type == "hetlm":
        assert len(set(greedy_clusters)) > 1
    else:
        assert greedy_clusters is None


def test_samples_are_random_and_seeded(generator):
    torch.manual_seed(3)
    first, _ = generator.sample(USERS, NUM_SAMPLES, temperature=2.0, max_sequences_per_call=6)
    torch.manual_seed(3)
    second, _ = generator.sample(USERS, NUM_SAMPLES, temperature=2.0, max_sequences_per_call=6)
    assert first == second
    assert [len(user_samples) for user_samples in first] == [NUM_SAMPLES] * len(USERS)
    assert any(len({tuple(session) for session in user_samples}) > 1 for user_samples in first)


def test_an_encoded_batch_is_reused_by_greedy_and_sampling(generator):
    batch = generator.encode(USERS)
    length = generator.max_prompt_length
    assert batch.prompts == [build_prompt(generator.tokenizer, sessions, length) for sessions in USERS]
    assert batch.input_ids[:, -1].tolist() == [generator.tokenizer.bos_token_id] * len(USERS)
    assert (batch.clusters is not None) == (generator.model.config.model_type == "hetlm")
    assert generator.greedy(batch) == generator(USERS)
    torch.manual_seed(0)
    from_batch = generator.sample(batch, 2)
    torch.manual_seed(0)
    assert from_batch == generator.sample(USERS, 2)


def test_hetlm_is_routed_once_and_each_sampling_call_runs_one_predictor(monkeypatch):
    """Cut by position, a call would hold a user or two of each cluster: one tiny batch per predictor."""
    generator = hetlm_generator()
    model = generator.model
    batch = generator.encode(USERS)
    routes, calls = [], []
    real_route, real_generate = model.route, model.generate
    monkeypatch.setattr(model, "route", lambda *a, **k: routes.append(1) or real_route(*a, **k))
    monkeypatch.setattr(
        model, "generate", lambda *a, **k: calls.append(k["clusters"].tolist()) or real_generate(*a, **k)
    )
    samples, clusters = generator.sample(batch, NUM_SAMPLES, max_sequences_per_call=2 * NUM_SAMPLES)
    assert not routes and clusters == batch.clusters.tolist() and len(set(clusters)) > 1
    assert all(len(set(call)) == 1 and len(call) <= 2 for call in calls)
    assert sorted(sum(calls, [])) == sorted(clusters) and len(samples) == len(USERS)


def test_prompts_cut_to_fit_are_counted():
    tokenizer = build_page_tokenizer(["home", "shoes"])
    generator = ModelSessionGenerator(tiny_llama(len(tokenizer)), tokenizer, max_new_tokens=4, max_prompt_length=6)
    batch = generator.encode([[["home"], ["shoes"]], [["home", "shoes"]], [["home"] * 9]])
    assert batch.truncated == [True, False, True] and generator.truncated_prompts == 2
    assert [len(prompt) for prompt in batch.prompts] == [4, 5, 6]


def test_bad_settings_are_refused():
    tokenizer = build_page_tokenizer(["home"])
    model = tiny_llama(len(tokenizer), positions=16)
    with pytest.raises(ValueError, match="max_new_tokens=16 leaves no room for a prompt in the model's 16 positions"):
        ModelSessionGenerator(model, tokenizer, max_new_tokens=16)
    assert ModelSessionGenerator(model, tokenizer, max_new_tokens=10).max_prompt_length == 6
    generator = ModelSessionGenerator(model, tokenizer, max_new_tokens=4)
    with pytest.raises(ValueError, match="num_samples must be at least 1"):
        generator.sample([[["home"]]], 0)
    with pytest.raises(ValueError, match="no users"):
        generator.encode([])
