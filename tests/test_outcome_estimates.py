"""The outcome estimates of sampled decoding (inference/outcome_estimates.py): R along a sampled session, by hand;
unbiased against the exact P(cart in the next session) of a tiny LM, enumerated over every path; lower variance than
the share of samples; and served by the generator for a plain causal LM and for HeTLM (clusters merged)."""

from __future__ import annotations

import pytest
import torch

from inference.outcome_estimates import first_hit_probabilities, step_probabilities
from inference.session_generator import ModelSessionGenerator
from modeling_fixtures import USERS, prompt_batch, tiny_model
from test_session_generator import tiny_llama
from tokenization.constants import OUTCOME_CART

NEW_TOKENS = 3


def test_r_adds_the_step_probabilities_until_the_first_hit_or_the_end():
    # V = 4: 0 [PAD], 1 [EOS], 2 page, 3 cart. Row 0: page, page, cart; row 1: page, [EOS], [PAD]; row 2: cart first.
    new_tokens = torch.tensor([[2, 2, 3], [2, 1, 0], [3, 2, 1]])
    probabilities = torch.tensor(
        [
            [[0, 0.1, 0.6, 0.3], [0, 0.2, 0.6, 0.2], [0, 0.5, 0.1, 0.4]],
            [[0, 0.1, 0.8, 0.1], [0, 0.7, 0.1, 0.2], [float("nan")] * 4],
            [[0, 0.0, 0.5, 0.5], [0, 0.3, 0.3, 0.4], [0, 0.9, 0.0, 0.1]],
        ]
    )
    estimates = first_hit_probabilities(new_tokens, probabilities, hit_ids=[3], stop_ids=[1, 0])
    # 0.3 + 0.2 + 0.4; 0.1 + 0.2 (the NaN step after [EOS] is not read); 0.5 (stops at the cart).
    assert estimates.tolist() == pytest.approx([0.9, 0.3, 0.5])
    pair = first_hit_probabilities(new_tokens, probabilities, hit_ids=[2, 3], stop_ids=[1, 0])
    assert pair.tolist() == pytest.approx([0.9, 0.9, 1.0])  # the first step of rows 0, 1 already hits; row 2 clipped


def test_shapes_that_disagree_are_refused():
    with pytest.raises(ValueError, match="must agree"):
        first_hit_probabilities(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 3, 4), [1], [0])
    with pytest.raises(ValueError, match="sampled tokens for 3 steps"):
        first_hit_probabilities(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, 4), [1], [0])
    with pytest.raises(ValueError, match="no generation step"):
        step_probabilities([])


def exact_hit_probability(model, prompt: list[int], hit: int, stops: set[int], steps: int) -> float:
    """P(``hit`` within ``steps`` new tokens), summed over every path of the model's full distribution."""
    total, frontier = 0.0, [(prompt, 1.0)]
    for _ in range(steps):
        ids = torch.tensor([ids for ids, _ in frontier])
        with torch.no_grad():
            probabilities = model(input_ids=ids).logits[:, -1].float().softmax(dim=-1)
        next_frontier = []
        for (ids_row, mass), row in zip(frontier, probabilities.tolist()):
            for token, p in enumerate(row):
                if token == hit:
                    total += mass * p
                elif token not in stops:
                    next_frontier.append((ids_row + [token], mass * p))
        frontier = next_frontier
    return total


def test_r_is_unbiased_and_less_variable_than_the_share_of_samples():
    tokenizer = tiny_model("llama").page_tokenizer
    model = tiny_llama(len(tokenizer))
    cart = tokenizer.convert_tokens_to_ids(OUTCOME_CART)
    with torch.no_grad():  # make cart likely enough for the comparison to be sharp
        model.lm_head.weight[cart] *= 0
        model.lm_head.weight[cart] += model.lm_head.weight[tokenizer.bos_token_id]
    generator = ModelSessionGenerator(model, tokenizer, max_new_tokens=NEW_TOKENS)
    batch = generator.encode([USERS[0]])
    exact = exact_hit_probability(
        model, batch.prompts[0], cart, {tokenizer.eos_token_id, tokenizer.pad_token_id}, NEW_TOKENS
    )
    torch.manual_seed(0)
    output = model.generate(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        do_sample=True,
        top_k=0,
        num_return_sequences=4000,
        max_new_tokens=NEW_TOKENS,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    new_tokens = output.sequences[:, batch.input_ids.shape[1] :]
    stops = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    estimates = first_hit_probabilities(new_tokens, step_probabilities(output.scores), [cart], stops)
    shares = (new_tokens == cart).any(dim=1).float()
    assert 0.05 < exact < 0.95
    standard_error = estimates.std().item() / len(estimates) ** 0.5
    assert abs(estimates.mean().item() - exact) < 4 * standard_error
    assert abs(shares.mean().item() - exact) < 4 * shares.std().item() / len(shares) ** 0.5
    assert estimates.var().item() < 0.8 * shares.var().item()


@pytest.mark.parametrize("kind", ["causal-lm", "hetlm"])
def test_the_generator_returns_each_users_estimates(kind):
    if kind == "hetlm":
        model = tiny_model("opt", num_clusters=3, seed=1, routing="centroids")
        model.set_centroids(model.embed_users(*prompt_batch(model.page_tokenizer, [USERS[0], USERS[2], USERS[4]])))
        generator = ModelSessionGenerator(model, model.page_tokenizer, max_new_tokens=5)
    else:
        tokenizer = tiny_model("llama").page_tokenizer
        generator = ModelSessionGenerator(tiny_llama(len(tokenizer)), tokenizer, max_new_tokens=5)
    torch.manual_seed(0)
    samples, clusters, outcomes = generator.sample(USERS, 6, return_outcome_probabilities=True)
    torch.manual_seed(0)
    same_samples, _ = generator.sample(USERS, 6)
    assert samples == same_samples  # asking for the estimates does not change the draws
    assert outcomes.shape == (len(USERS), 3) and torch.isfinite(outcomes).all()
    assert ((outcomes >= 0) & (outcomes <= 1)).all()
    if kind == "hetlm":
        assert len(set(clusters)) > 1  # rows of several clusters were merged
