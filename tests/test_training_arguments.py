"""The training arguments: flags and config-file keys reach them, unknown keys are refused, warm-up is a ratio."""

import json

import pytest
import torch
from transformers import Trainer

from application.cli import build_parser
from application.config_files import build_arguments, load_config_file
from trainers.model_sizes import PAPER_HETLM_SETTINGS, PAPER_PRETRAIN_SETTINGS
from trainers.training_arguments import (
    ClusterwiseTrainingArguments,
    PretrainingArguments,
    resolve_training_arguments,
)

COMMAND = ["train", "--data", "d", "--pretrained", "p", "--out", "o"]


def test_a_flag_and_a_config_file_key_reach_the_arguments_and_flags_win(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("alpha: 0.5\nbeta: 2.0\nepochs: 4\nselector-learning-rate: 0.02\nkmeans_k_range: [3, 5]\n")
    namespace = build_parser(["train"]).parse_args(
        [*COMMAND, "--beta", "7", "--batch-size", "8", "--kmeans-k", "auto"]
    )
    (args,) = build_arguments((ClusterwiseTrainingArguments,), load_config_file(config), vars(namespace))
    assert isinstance(args, ClusterwiseTrainingArguments)
    assert (args.alpha, args.beta, args.num_train_epochs, args.selector_learning_rate) == (0.5, 7.0, 4, 0.02)
    assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (8, 8)
    assert (args.kmeans_k, args.kmeans_k_range) == ("auto", [3, 5])
    assert args.learning_rate == 5e-4 and args.weight_decay == 0.01  # defaults where neither says otherwise


def test_an_unknown_config_key_is_refused_by_name(tmp_path, capsys):
    from application.cli import main

    config = tmp_path / "train.json"
    config.write_text(json.dumps({"alpha": 1.0, "selector_lerning_rate": 0.1}))
    with pytest.raises(ValueError, match="selector_lerning_rate"):
        build_arguments((ClusterwiseTrainingArguments,), load_config_file(config), {})
    assert main([*COMMAND, "--config", str(config)]) == 2
    assert "selector_lerning_rate" in capsys.readouterr().err


def test_bad_kmeans_k_is_refused():
    with pytest.raises(ValueError, match="kmeans_k must be 'auto' or an integer"):
        ClusterwiseTrainingArguments(kmeans_k="many")
    with pytest.raises(ValueError, match="kmeans_k_range"):
        ClusterwiseTrainingArguments(kmeans_k_range=[5, 2])


def test_warmup_is_applied_as_a_ratio_of_the_total_steps(tmp_path):
    args = resolve_training_arguments(
        PretrainingArguments(warmup_steps=0.25, learning_rate=0.1), tmp_path, 10, has_validation=False
    )
    trainer = Trainer(model=torch.nn.Linear(2, 2), args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=40)
    rates = []
    for _ in range(12):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    # 25% of 40 steps = 10 warm-up steps: the rate rises by 0.1 / 10 per step, then decays linearly over 30.
    assert rates[:11] == pytest.approx([0.01 * step for step in range(11)])
    assert rates[11] == pytest.approx(0.1 * 29 / 30)


def test_resolution_decides_bf16_and_validation_and_keeps_the_rest(tmp_path):
    args = ClusterwiseTrainingArguments(alpha=0.5, bf16=None, eval_strategy="epoch")
    resolved = resolve_training_arguments(args, tmp_path / "run", 10_000, has_validation=False, save_strategy="epoch")
    assert resolved.bf16 is False  # below default_bf16's parameter floor
    assert resolved.eval_strategy.value == "no" and resolved.save_strategy.value == "epoch"
    assert resolved.output_dir == str(tmp_path / "run") and resolved.alpha == 0.5
    assert resolve_training_arguments(args, tmp_path, 10, has_validation=True).eval_strategy.value == "epoch"
    assert args.bf16 is None  # the original is not changed


def test_the_papers_settings_are_arguments():
    pretraining = PretrainingArguments(**PAPER_PRETRAIN_SETTINGS)
    assert (pretraining.num_train_epochs, pretraining.gradient_accumulation_steps) == (100, 4)
    assert pretraining.get_warmup_steps(1000) == 50
    clusterwise = ClusterwiseTrainingArguments(**PAPER_HETLM_SETTINGS)
    assert (clusterwise.learning_rate, clusterwise.selector_learning_rate) == (1e-5, 5e-5)
    values = clusterwise.hetlm_config_values()
    assert (values["num_clusters"], values["alpha"], values["beta"]) == (6, 5.0, 9.0)
    assert clusterwise.resolved_min_cluster_size(500) == 5


def test_the_em_options_reach_the_arguments_from_flags_and_config_files_and_bad_values_are_refused(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("reassignment: heldout_em\nretire_min_gain: 0.5\nrouting: selector\n")
    namespace = build_parser(["train"]).parse_args(
        [
            *COMMAND,
            *("--reassign-every-steps", "0", "--reassign-warmup-steps", "10", "--grad-clipping", "global"),
            "--no_cluster_batches",
        ]
    )
    (args,) = build_arguments((ClusterwiseTrainingArguments,), load_config_file(config), vars(namespace))
    assert (args.reassignment, args.retire_min_gain, args.routing) == ("heldout_em", 0.5, "selector")
    assert ClusterwiseTrainingArguments().routing == "likelihood"
    assert (args.reassign_every_steps, args.reassign_warmup_steps, args.grad_clipping) == (0, 10, "global")
    assert not args.cluster_batches and ClusterwiseTrainingArguments().cluster_batches
    for bad in ({"routing": "centroids"}, {"grad_clipping": "none"}, {"reassign_every_steps": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ClusterwiseTrainingArguments(**bad)
