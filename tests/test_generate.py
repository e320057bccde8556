"""Routed generation: each row equals its cluster's predictor generating that row alone, in the caller's order."""

from __future__ import annotations

import pytest
import torch

from modeling_fixtures import FAMILIES, USERS, prompt_batch, tiny_model
from modeling_hetlm import HeTLMForBrowsing

GREEDY = {"max_new_tokens": 5, "do_sample": False}


def route_rows_to_distinct_clusters(model: HeTLMForBrowsing, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set a linear selector whose cluster k is the direction of row k's embedding: rows 0..K-1 go to clusters
    0..K-1."""
    z = model.embed_users(ids, mask)
    with torch.no_grad():
        model.selector[-1].weight.copy_(z[: model.config.num_clusters] * 50)
        model.selector[-1].bias.zero_()
    return z


@pytest.mark.parametrize("family", FAMILIES)
def test_routed_generation_equals_each_predictor_alone(family):
    model = tiny_model(family, num_clusters=3, selector_hidden_sizes=[])
    ids, mask = prompt_batch(model.page_tokenizer)
    route_rows_to_distinct_clusters(model, ids, mask)
    new_tokens, clusters = model.generate(ids, mask, return_clusters=True, **GREEDY)
    assert clusters[:3].tolist() == [0, 1, 2]
    assert len(set(mask.sum(dim=1).tolist())) > 1  # rows of different lengths: left padding matters
    for row in range(ids.shape[0]):
        prompt = ids[row : row + 1, mask[row].bool()]
        alone = model.predictors[int(clusters[row])].generate(prompt, eos_token_id=3, pad_token_id=0, **GREEDY)[
            0, prompt.shape[1] :
        ]
        assert new_tokens[row, : alone.shape[0]].tolist() == alone.tolist()
        assert (new_tokens[row, alone.shape[0] :] == 0).all()


def test_rows_come_back_in_the_callers_order():
    model = tiny_model("llama", num_clusters=3, selector_hidden_sizes=[])
    ids, mask = prompt_batch(model.page_tokenizer)
    route_rows_to_distinct_clusters(model, ids, mask)
    forward, clusters = model.generate(ids, mask, return_clusters=True, **GREEDY)
    order = torch.tensor([4, 2, 0, 3, 1])
    permuted, permuted_clusters = model.generate(ids[order], mask[order], return_clusters=True, **GREEDY)
    assert torch.equal(permuted_clusters, clusters[order])
    assert torch.equal(permuted[:, : forward.shape[1]], forward[order][:, : permuted.shape[1]])


def test_precomputed_embeddings_and_centroid_routing():
    model = tiny_model("opt", num_clusters=3)
    ids, mask = prompt_batch(model.page_tokenizer)
    z = model.embed_users(ids, mask)
    assert torch.equal(model.generate(ids, mask, **GREEDY), model.generate(ids, mask, user_embeddings=z, **GREEDY))
    model.config.routing = "centroids"
    model.set_centroids(z[[2, 0, 1]])
    _, clusters = model.generate(ids, mask, return_clusters=True, **GREEDY)
    assert clusters[:3].tolist() == [1, 2, 0]


def test_a_given_routing_is_used_as_is_and_checked(monkeypatch):
    model = tiny_model("llama", num_clusters=3, selector_hidden_sizes=[])
    ids, mask = prompt_batch(model.page_tokenizer)
    route_rows_to_distinct_clusters(model, ids, mask)
    routed, clusters = model.generate(ids, mask, return_clusters=True, **GREEDY)
    monkeypatch.setattr(model, "embed_users", lambda *a, **k: pytest.fail("a given routing needs no embedding"))
    given, same = model.generate(ids, mask, clusters=clusters, return_clusters=True, **GREEDY)
    assert torch.equal(given, routed) and torch.equal(same, clusters)
    other = (clusters + 1) % 3
    _, moved = model.generate(ids, mask, clusters=other, return_clusters=True, **GREEDY)
    assert torch.equal(moved, other)
    log_probs = model.first_page_log_probs(ids, mask, clusters=other)
    for row in range(ids.shape[0]):
        alone = model.first_page_log_probs(ids[row : row + 1], mask[row : row + 1], clusters=other[row : row + 1])
        assert torch.allclose(log_probs[row], alone[0], atol=1e-5)
    for bad, message in (
        (clusters[:2], r"clusters must be a \[5\] integer tensor"),
        (clusters.float(), "integer"),
        (clusters + 3, r"clusters must lie in \[0, 3\)"),
    ):
        with pytest.raises(ValueError, match=message):
            model.generate(ids, mask, clusters=bad, **GREEDY)


def test_generation_uses_the_kv_cache_though_training_turned_it_off(monkeypatch):
    """The predictors' configs say use_cache=False (as training leaves them); sampling without the cache measured
    2.7x slower."""
    model = tiny_model("llama", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer)
    model.predictors[0].config.use_cache = model.predictors[1].config.use_cache = False
    seen = []
    for predictor in model.predictors:
        real = predictor.generate
        monkeypatch.setattr(
            predictor,
            "generate",
            lambda *a, real=real, **k: seen.append(k["generation_config"].use_cache) or real(*a, **k),
        )
    model.generate(ids, mask, **GREEDY)
    model.generate(ids, mask, use_cache=False, **GREEDY)
    calls = len(seen) // 2
    assert seen[:calls] == [True] * calls and seen[calls:] == [False] * calls


def test_likelihood_routing_needs_no_embedding(monkeypatch):
    model = tiny_model("llama", num_clusters=3, routing="likelihood")
    ids, mask = prompt_batch(model.page_tokenizer)
    with_embeddings = model.route(ids, mask, model.embed_users(ids, mask))
    real = model.embed_users
    monkeypatch.setattr(model, "embed_users", lambda *a, **k: pytest.fail("likelihood routing embedded the users"))
    assert torch.equal(model.route(ids, mask), with_embeddings)
    monkeypatch.setattr(model, "embed_users", real)
    bos_only = prompt_batch(model.page_tokenizer, [*USERS, []])  # the last user has no session: nothing to score
    with pytest.raises(ValueError, match="row 5 has no page before its last"):  # nor to embed for the selector
        model.route(*bos_only)
    model.config.routing = "selector"
    assert torch.equal(model.route(ids, mask), model.assign_clusters(real(ids, mask)))


def test_generation_stops_at_eos_and_pads():
    model = tiny_model("qwen2", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer)
    eos_first = model.generate(ids, mask, sequence_bias={(3,): 100.0}, **GREEDY)
    assert eos_first.tolist() == [[3]] * ids.shape[0]
    new_tokens = model.generate(ids, mask, **GREEDY)
    for row in new_tokens.tolist():
        if 3 in row:
            assert set(row[row.index(3) + 1 :]) <= {0}
        else:
            assert len(row) == GREEDY["max_new_tokens"]


def test_unseen_user_with_unknown_pages_is_served():
    model = tiny_model("opt", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer, [[["never/seen-a", "never/seen-b"]], *USERS[:2]])
    assert ids[0, mask[0].bool()].tolist() == [2, 1, 1, 3, 2]
    new_tokens, clusters = model.generate(ids, mask, return_clusters=True, **GREEDY)
    assert new_tokens.shape[0] == 3 and 0 <= int(clusters[0]) < 2


def test_right_padded_prompts_are_refused():
    model = tiny_model("opt", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer)
    with pytest.raises(ValueError, match="left-padded"):
        model.generate(ids.flip(1), mask.flip(1))
    with pytest.raises(ValueError, match="user_embeddings"):
        model.generate(ids, mask, user_embeddings=torch.zeros(2, 16))


def test_sampling_several_sequences_per_row():
    model = tiny_model("opt", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer)
    torch.manual_seed(0)
    samples = model.generate(ids, mask, do_sample=True, num_return_sequences=2, max_new_tokens=4)
    assert samples.shape[0] == 2 * ids.shape[0] and samples.shape[1] <= 4
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(ids, mask, max_length=20)
