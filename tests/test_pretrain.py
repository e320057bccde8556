"""Single-LM pretraining: presets, token streams, and a tiny run that lowers the validation loss."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from application.cli import main
from tokenization.page_tokenizer import build_page_tokenizer
from trainers.data import IGNORE_INDEX, BrowsingCollator, encode_user
from trainers.model_sizes import FAMILIES, build_causal_lm_config, count_parameters
from trainers.pretrain import pretrain_language_model
from trainers.training_arguments import PretrainingArguments
from training_fixtures import prepare_small_store, simulated_splits


@pytest.mark.parametrize("family", FAMILIES)
def test_large_preset_holds_k_times_the_small_parameters(family):
    specials = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
    small = build_causal_lm_config(family, "small", vocab_size=1100, **specials)
    large = build_causal_lm_config(family, "large", vocab_size=1100, min_ratio=6, **specials)
    assert large.model_type == small.model_type == family
    assert count_parameters(large) >= 6 * count_parameters(small)
    assert (large.vocab_size, large.pad_token_id, large.eos_token_id) == (1100, 0, 3)


def test_stream_is_truncated_from_the_left_and_target_scoring_masks_the_input():
    tokenizer = build_page_tokenizer(["a", "b", "c", "cart"])
    example = encode_user(tokenizer, [["a", "b", "c"], ["b"]], ["cart"], max_length=5)
    page = dict(zip(["a", "b", "cart"], tokenizer.convert_tokens_to_ids(["a", "b", "cart"])))
    assert example["input_ids"] == [page["b"], 3, 2, page["cart"], 3]
    assert example["prompt_ids"] == [2, page["b"], 3, 2]
    target_only = encode_user(tokenizer, [["a"]], ["cart", "b"], max_length=64, score="target")
    assert target_only["labels"][:4] == [IGNORE_INDEX] * 4
    assert target_only["labels"][4:] == target_only["input_ids"][4:]
    with pytest.raises(ValueError, match="target_session is empty"):
        encode_user(tokenizer, [["a"]], [], max_length=8)


def test_collator_pads_labels_with_ignore_index():
    batch = BrowsingCollator(pad_token_id=0)(
        [{"input_ids": [2, 4, 3], "labels": [2, 4, 3]}, {"input_ids": [2, 3], "labels": [2, 3]}]
    )
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"][1].tolist() == [2, 3, IGNORE_INDEX]


@pytest.mark.parametrize("family", ["opt", "qwen2"])
def test_pretraining_lowers_validation_loss_and_saves_a_causal_lm(tmp_path, family):
    torch.manual_seed(0)
    splits, tokenizer = simulated_splits(num_users=240)
    settings = PretrainingArguments(
        family=family,
        size="tiny",
        num_train_epochs=3,
        per_device_train_batch_size=16,
        max_length=128,
        logging_steps=100,
        disable_tqdm=True,
    )
    result = pretrain_language_model(splits, tokenizer, tmp_path / "lm", settings)
    print(f"{family}: validation loss {result.initial_eval_loss:.3f} -> {result.final_eval_loss:.3f}")
    assert result.final_eval_loss < result.initial_eval_loss - 0.3
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    assert reloaded.config.vocab_size == len(tokenizer)
    assert (tmp_path / "lm" / "tokenizer.json").is_file()
    summary = json.loads((tmp_path / "lm" / "pretrain_settings.json").read_text())
    assert summary["final_eval_loss"] == pytest.approx(result.final_eval_loss)


def test_pretrain_command_reads_a_config_file_and_flags_override_it(tmp_path, capsys):
    data = prepare_small_store(tmp_path / "data", num_users=80)
    config = tmp_path / "pretrain.yaml"
    config.write_text("family: qwen2\nsize: small\nepochs: 1\nbatch-size: 32\nmax_length: 64\nbf16: false\n")
    assert (
        main(
            [
                "pretrain",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "lm"),
                "--config",
                str(config),
                "--size",
                "tiny",
                "--logging-steps",
                "100",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "lm" / "pretrain_settings.json").read_text())
    assert summary["settings"]["family"] == "qwen2" and summary["settings"]["size"] == "tiny"
    assert summary["settings"]["max_length"] == 64
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "lm").config.model_type == "qwen2"
    config.write_text("famly: opt\n")
    assert main(["pretrain", "--data", str(data), "--out", str(tmp_path / "x"), "--config", str(config)]) == 2
    assert "famly" in capsys.readouterr().err
