"""`HeTLMForBrowsing.generate` the Hugging Face way: `input_ids=`, `return_dict_in_generate`, checked masks and
embeddings, and prompts longer than the predictor's positions cut to their latest sessions."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from inference.prompts import pad_sequences
from modeling_fixtures import prompt_batch, tiny_model
from modeling_hetlm import HeTLMGenerateOutput
from tokenization.page_tokenizer import encode_sessions

GREEDY = {"max_new_tokens": 5, "do_sample": False}


def test_input_ids_keyword_and_session_ids_alias_give_the_same_tokens():
    model = tiny_model("opt", num_clusters=3)
    ids, mask = prompt_batch(model.page_tokenizer)
    by_position = model.generate(ids, mask, **GREEDY)
    assert torch.equal(model.generate(input_ids=ids, attention_mask=mask, **GREEDY), by_position)
    assert torch.equal(model.generate(session_ids=ids, attention_mask=mask, **GREEDY), by_position)
    config = copy.deepcopy(model.generation_config)
    config.update(**GREEDY)
    assert torch.equal(model.generate(input_ids=ids, attention_mask=mask, generation_config=config), by_position)
    with pytest.raises(ValueError, match="not both"):
        model.generate(input_ids=ids, session_ids=ids)
    with pytest.raises(ValueError, match="input_ids"):
        model.generate(attention_mask=mask)


@pytest.mark.parametrize("family", ["opt", "llama"])
def test_return_dict_in_generate_holds_sequences_clusters_and_scores(family):
    model = tiny_model(family, num_clusters=3)
    ids, mask = prompt_batch(model.page_tokenizer)
    tokens, clusters = model.generate(ids, mask, return_clusters=True, **GREEDY)
    output = model.generate(
        input_ids=ids, attention_mask=mask, return_dict_in_generate=True, output_scores=True, **GREEDY
    )
    assert isinstance(output, HeTLMGenerateOutput)
    assert torch.equal(output.sequences, tokens) and torch.equal(output.clusters, clusters)
    assert output.logits is None and len(output.scores) == tokens.shape[1]
    for step, scores in enumerate(output.scores):
        assert scores.shape == (ids.shape[0], model.config.predictor_config.vocab_size)
        generated = tokens[:, step] != model.config.pad_token_id
        # Greedy: each generated token is the argmax of its step's scores.
        assert torch.equal(scores[generated].argmax(dim=-1), tokens[generated, step])
    plain = model.generate(ids, mask, return_dict_in_generate=True, **GREEDY)
    assert plain.scores is None and torch.equal(plain.sequences, tokens)


def test_masks_must_be_binary_and_contiguous():
    model = tiny_model("opt", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer)
    for value in (-1, 2):
        bad = mask.clone()
        bad[0, -1] = value
        with pytest.raises(ValueError, match=f"attention_mask is {value}; it must hold only 0"):
            model.generate(ids, bad)
    holed = mask.clone()
    holed[0, -3] = 0
    assert holed[0, -1] == 1 and holed[0, :-3].any()
    with pytest.raises(ValueError, match="row 0: attention_mask has a hole"):
        model.generate(ids, holed)
    with pytest.raises(ValueError, match="hole"):
        model(ids, holed)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_user_embeddings_must_be_finite(bad_value):
    model = tiny_model("opt", num_clusters=2)
    ids, mask = prompt_batch(model.page_tokenizer)
    z = model.embed_users(ids, mask)
    z[2, 5] = bad_value
    with pytest.raises(ValueError, match="user_embeddings of row 2 hold NaN or infinity"):
        model.generate(ids, mask, user_embeddings=z)


def test_over_long_prompt_keeps_its_latest_sessions(caplog):
    model = tiny_model("opt", num_clusters=2)  # 64 predictor positions
    tokenizer = model.page_tokenizer
    recent = [["/home", "cart"], ["purchase"]]
    old = [["/home", "/store/product/water-bottle", "/google+redesign/drinkware"]] * 15  # 15 * 5 = 75 tokens
    short = [["/google+redesign/drinkware"]]
    long_prompt = encode_sessions(tokenizer, old + recent, open_next_session=True)
    assert len(long_prompt) > 64
    ids, mask = pad_sequences(
        [long_prompt, encode_sessions(tokenizer, short, open_next_session=True)], tokenizer.pad_token_id, side="left"
    )
    z = model.embed_users(ids, mask)
    with caplog.at_level(logging.WARNING):
        tokens, clusters = model.generate(ids, mask, user_embeddings=z, return_clusters=True, **GREEDY)
    assert "1 of 2 prompts are longer than 59 tokens" in caplog.text
    # What the predictor sees: the newest whole sessions fitting 64 - 5 - 1 = 58 tokens (7 recent + 10 old of 5),
    # then the open [BOS].
    expected_prompt = encode_sessions(tokenizer, old[:10] + recent, open_next_session=True)
    assert len(expected_prompt) == 58
    expected_ids, expected_mask = pad_sequences(
        [expected_prompt, ids[1, mask[1].bool()].tolist()], tokenizer.pad_token_id, side="left"
    )
    assert torch.equal(tokens, model.generate(expected_ids, expected_mask, user_embeddings=z, **GREEDY))
    with pytest.raises(ValueError, match="leaves no room"):
        model.generate(ids, mask, max_new_tokens=63)
