"""The next-session-prediction and text-generation pipelines on a saved tiny HeTLM: their page names (and clusters)
are the model's own."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, pipeline

import inference.pipeline  # noqa: F401  (registers the task)
from inference.prompts import build_prompt
from inference.session_generator import ModelSessionGenerator
from modeling_fixtures import USERS, prompt_batch, tiny_model
from modeling_hetlm import HeTLMForCausalLM

# A random tiny model ends sessions at once: suppressing the special tokens makes it name MAX_NEW_TOKENS pages.
GENERATION = {"max_new_tokens": 4, "suppress_tokens": [0, 1, 2, 3]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny_model("llama", num_clusters=3)
    folder = tmp_path_factory.mktemp("hetlm")
    model.save_pretrained(folder)
    return model, folder


def test_pipeline_returns_page_names_and_clusters_of_generate(saved):
    model, folder = saved
    predict = pipeline("next-session-prediction", model=str(folder))
    expected_pages, expected_clusters = ModelSessionGenerator(model, model.page_tokenizer, **GENERATION)(USERS)
    one = predict(USERS[0], **GENERATION)
    assert one == {"pages": expected_pages[0], "cluster": expected_clusters[0]}
    many = predict(USERS, **GENERATION)
    assert [result["pages"] for result in many] == expected_pages
    assert [result["cluster"] for result in many] == expected_clusters
    pages = set(model.page_tokenizer.get_vocab())
    assert all(len(result["pages"]) == 4 and set(result["pages"]) <= pages for result in many)


def test_pipeline_refuses_what_is_not_sessions(saved):
    _, folder = saved
    predict = pipeline("next-session-prediction", model=str(folder))
    for bad in ("home cart", [["home", 3]], [[]][0], 7):
        with pytest.raises(ValueError, match="a list of sessions"):
            predict(bad)


def test_sampling_arguments_reach_generate(saved):
    _, folder = saved
    predict = pipeline("next-session-prediction", model=str(folder))
    torch.manual_seed(0)
    first = predict(USERS, do_sample=True, **GENERATION)
    torch.manual_seed(0)
    assert predict(USERS, do_sample=True, **GENERATION) == first


def _prompt_text(tokenizer, sessions) -> str:
    """The text-generation prompt of a user: its sessions and the open [BOS] in the tokenizer's text."""
    return tokenizer.decode(build_prompt(tokenizer, sessions, max_length=64), skip_special_tokens=False)


def test_text_generation_pipeline_returns_the_greedy_next_session_as_page_names(saved):
    model, folder = saved
    generator = pipeline("text-generation", model=str(folder))
    assert isinstance(generator.model, HeTLMForCausalLM)
    expected_pages, _ = ModelSessionGenerator(model, model.page_tokenizer, **GENERATION)(USERS)
    prompts = [_prompt_text(model.page_tokenizer, user) for user in USERS]
    assert prompts[1] == "[BOS] /google+redesign/drinkware [EOS] [BOS]"
    new = generator(prompts, batch_size=2, return_full_text=False, do_sample=False, **GENERATION)
    assert [result[0]["generated_text"].split() for result in new] == expected_pages
    (full,) = generator(prompts[0], do_sample=False, **GENERATION)
    assert full["generated_text"] == prompts[0] + " ".join(expected_pages[0])


def test_causal_lm_generate_is_the_prompt_then_hetlms_new_tokens(saved):
    model, folder = saved
    causal_lm = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids, mask = prompt_batch(model.page_tokenizer)
    new_tokens, clusters = model.generate(ids, mask, return_clusters=True, **GENERATION)
    sequences, same_clusters = causal_lm.generate(ids, mask, return_clusters=True, **GENERATION)
    assert torch.equal(sequences, torch.cat([ids, new_tokens], dim=1)) and torch.equal(same_clusters, clusters)
    torch.manual_seed(0)
    sampled = causal_lm.generate(ids, mask, do_sample=True, num_return_sequences=2, **GENERATION)
    torch.manual_seed(0)
    output = model.generate(
        ids, mask, do_sample=True, num_return_sequences=2, return_dict_in_generate=True, **GENERATION
    )
    assert torch.equal(sampled, torch.cat([ids.repeat_interleave(2, dim=0), output.sequences], dim=1))
