"""Saved HeTLM folders: bit-exact round trips for OPT, Qwen2 and Llama (before and after pruning),
the folder's contents and model card, Auto classes with the package installed, and broken folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from modeling_fixtures import FAMILIES, PAGES, prompt_batch, tiny_model, training_batch
from modeling_hetlm import HeTLMConfig, HeTLMForBrowsing, page_vocabulary_hash
from modeling_hetlm.encoder_inputs_hetlm import page_vocabulary
from modeling_hetlm.weights_integrity_hetlm import write_weights_checksums

GENERATION = {"max_new_tokens": 6, "do_sample": False}


def assert_same_model(original: HeTLMForBrowsing, loaded: HeTLMForBrowsing) -> None:
    """Identical weights and buffers, identical losses and identical greedy generations."""
    expected, actual = original.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    for predictor in loaded.predictors:
        assert predictor.get_output_embeddings().weight is predictor.get_input_embeddings().weight
    ids, mask = training_batch(original.page_tokenizer)
    assert torch.equal(original(ids, mask).per_cluster_nll, loaded(ids, mask).per_cluster_nll)
    prompts, prompt_mask = prompt_batch(original.page_tokenizer)
    assert torch.equal(
        original.generate(prompts, prompt_mask, **GENERATION), loaded.generate(prompts, prompt_mask, **GENERATION)
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_is_exact_before_and_after_pruning(family, tmp_path):
    model = tiny_model(family, num_clusters=3)
    model.set_centroids(torch.randn(3, 16))
    model.save_pretrained(tmp_path / "full")
    assert_same_model(model, HeTLMForBrowsing.from_pretrained(tmp_path / "full"))
    model.prune_clusters([2, 0])
    model.save_pretrained(tmp_path / "pruned")
    loaded = HeTLMForBrowsing.from_pretrained(tmp_path / "pruned")
    assert loaded.config.num_clusters == 2
    assert_same_model(model, loaded)


def test_folder_contents_and_model_card(tmp_path):
    model = tiny_model("llama", num_clusters=2)
    model.save_pretrained(
        tmp_path,
        training_summary={"users": 200, "synthetic": True, "cluster_sizes": [120, 80]},
        metrics={"IoU": 0.3125, "HR": 0.5},
    )
    names = {path.name for path in tmp_path.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "configuration_hetlm.py",
        "modeling_hetlm.py",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "encoder_inputs_hetlm.py",
        "hub_hetlm.py",
    } <= names
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_hetlm.HeTLMConfig",
        "AutoModel": "modeling_hetlm.HeTLMForBrowsing",
        "AutoModelForCausalLM": "modeling_hetlm.HeTLMForCausalLM",
    }
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert (generation["eos_token_id"], generation["pad_token_id"]) == (3, 0)
    card = (tmp_path / "README.md").read_text()
    metadata = card.split("---")[1]
    assert "library_name: transformers" in metadata and "pipeline_tag" not in metadata and "- hetlm" in metadata
    assert "| 0 | 120 |" in card and "| 1 | 80 |" in card
    assert "**users**: 200" in card and "| IoU | 0.3125 |" in card
    assert any(name.startswith("encoder.") for name in load_file(tmp_path / "model.safetensors"))
    model.write_model_card(tmp_path, tags=["ga360", "hetlm"])
    tagged = (tmp_path / "README.md").read_text().split("---")[1]
    assert tagged.count("- hetlm") == 1 and "- ga360" in tagged


def test_config_json_holds_the_page_count_and_fingerprint_not_the_pages(tmp_path):
    model = tiny_model("opt", num_clusters=2)
    model.save_pretrained(tmp_path)
    text = (tmp_path / "config.json").read_text()
    config = json.loads(text)
    pages = page_vocabulary(model.page_tokenizer)
    assert (config["num_pages"], config["page_vocabulary_hash"]) == (len(pages), page_vocabulary_hash(pages))
    assert not {"page_vocabulary", "cluster_sizes", "min_cluster_size"} & config.keys()
    assert config["outcome_pages"] == {"cart": [], "purchase": []}
    assert not any(f'"{page}"' in text for page in PAGES if page not in config["outcome_pages"])
    loaded = HeTLMForBrowsing.from_pretrained(tmp_path)
    loaded.check_page_tokenizer(AutoTokenizer.from_pretrained(tmp_path))


def test_config_of_an_older_version_with_the_page_list_is_refused(tmp_path):
    model = tiny_model("opt", num_clusters=2)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["page_vocabulary"] = page_vocabulary(model.page_tokenizer)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="page_vocabulary are no longer HeTLMConfig fields.*older HeTLM"):
        HeTLMForBrowsing.from_pretrained(tmp_path)


def test_auto_classes_load_with_the_package_installed(tmp_path):
    model = tiny_model("qwen2", num_clusters=2)
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), HeTLMConfig)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is HeTLMForBrowsing
    assert_same_model(model, loaded)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.get_vocab() == model.page_tokenizer.get_vocab()


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hetlm")
    tiny_model("opt", num_clusters=2).save_pretrained(folder)
    return folder


def test_missing_weights_file_is_refused(saved_folder, tmp_path):
    broken = copy_folder(saved_folder, tmp_path)
    (broken / "model.safetensors").unlink()
    with pytest.raises(OSError):
        HeTLMForBrowsing.from_pretrained(broken)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_weights_file_is_refused(saved_folder, tmp_path, damage):
    broken = copy_folder(saved_folder, tmp_path)
    weights = broken / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x07not a safetensors file" * 10)
    with pytest.raises(OSError, match="model.safetensors|weights"):
        HeTLMForBrowsing.from_pretrained(broken)


def test_weights_file_missing_a_tensor_is_refused(saved_folder, tmp_path):
    broken = copy_folder(saved_folder, tmp_path)
    tensors = load_file(broken / "model.safetensors")
    del tensors["selector.0.weight"]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(OSError, match="model.safetensors: sha256 differs"):
        HeTLMForBrowsing.from_pretrained(broken)
    write_weights_checksums(broken)  # a consistent folder still needs every tensor
    with pytest.raises(OSError, match="selector.0.weight"):
        HeTLMForBrowsing.from_pretrained(broken)


def test_config_with_zero_clusters_is_refused(saved_folder, tmp_path):
    broken = copy_folder(saved_folder, tmp_path)
    config = json.loads((broken / "config.json").read_text())
    config["num_clusters"] = 0
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="num_clusters"):
        HeTLMForBrowsing.from_pretrained(broken)


def copy_folder(source: Path, parent: Path) -> Path:
    target = parent / source.name
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target
