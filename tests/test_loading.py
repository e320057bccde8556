"""The one loader of saved model folders (inference/loading.py): HeTLM and plain causal LMs, and its errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from inference.loading import is_hetlm, load_model_folder
from modeling_fixtures import tiny_model
from tokenization.page_tokenizer import build_page_tokenizer

PAGES = ["home", "shoes", "cart"]


@pytest.fixture(scope="module")
def hetlm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hetlm")
    tiny_model("llama").save_pretrained(folder)
    return folder


def save_causal_lm(folder, vocab_size: int, tokenizer=None):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def test_a_hetlm_folder_loads_with_its_page_tokenizer_in_eval_mode(hetlm_dir):
    model, tokenizer = load_model_folder(hetlm_dir, hetlm_only=True)
    assert is_hetlm(model) and not model.training
    assert tokenizer.get_vocab() == tiny_model("llama").page_tokenizer.get_vocab()


def test_a_causal_lm_folder_loads_with_its_own_tokenizer_or_the_given_one(tmp_path):
    saved_tokenizer = build_page_tokenizer(PAGES)
    with_tokenizer = save_causal_lm(tmp_path / "with", len(saved_tokenizer), saved_tokenizer)
    model, tokenizer = load_model_folder(with_tokenizer, tokenizer=build_page_tokenizer(["other"]))
    assert not is_hetlm(model) and not model.training
    assert tokenizer.get_vocab() == saved_tokenizer.get_vocab(), "the folder's own tokenizer is preferred"
    given = build_page_tokenizer(PAGES)
    _, tokenizer = load_model_folder(save_causal_lm(tmp_path / "without", len(given)), tokenizer=given)
    assert tokenizer is given


def expect_error(error_type, folder, match, **kwargs):
    with pytest.raises(error_type, match=match) as raised:
        load_model_folder(folder, **kwargs)
    assert str(raised.value).startswith(f"model folder {folder}: ")


def test_missing_or_broken_folders_name_the_folder(tmp_path):
    expect_error(FileNotFoundError, tmp_path / "nowhere", "no such folder")
    expect_error(FileNotFoundError, tmp_path, "no config.json")
    (tmp_path / "config.json").write_text("{not json")
    expect_error(ValueError, tmp_path, "config.json is not valid JSON")
    (tmp_path / "config.json").write_text("[1, 2]")
    expect_error(ValueError, tmp_path, "config.json is not a JSON object")


def test_checks_on_the_kind_the_tokenizer_and_the_weights(hetlm_dir, tmp_path):
    tokenizer = build_page_tokenizer(PAGES)
    causal_lm = save_causal_lm(tmp_path / "lm", len(tokenizer), tokenizer)
    expect_error(ValueError, causal_lm, "model_type is 'llama', not a HeTLM model", hetlm_only=True)

    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(hetlm_dir, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    expect_error(FileNotFoundError, no_tokenizer, "no page tokenizer")

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(hetlm_dir / "config.json", no_weights)
    shutil.copy(hetlm_dir / "tokenizer.json", no_weights)
    expect_error(OSError, no_weights, "cannot load")

    small = save_causal_lm(tmp_path / "small", len(tokenizer) - 2, tokenizer)
    pages = len(tokenizer)
    expect_error(ValueError, small, f"the page tokenizer has {pages} pages but the model only {pages - 2}")
    assert json.loads((small / "config.json").read_text())["vocab_size"] == len(tokenizer) - 2
