"""The next-session-prediction pipeline on a saved tiny HeTLM: its page names and clusters are the model's own."""

from __future__ import annotations

import pytest
import torch
from transformers import pipeline

import inference.pipeline  # noqa: F401  (registers the task)
from inference.session_generator import ModelSessionGenerator
from modeling_fixtures import USERS, tiny_model

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
