"""HeTLMTrainer (Algorithm 1): beats the single LM it starts from, recovers segments, prunes empty clusters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import TrainingArguments

from application.cli import main
from inference.prompts import pad_sequences
from modeling_fixtures import tiny_model
from modeling_hetlm import HeTLMForBrowsing
from modeling_hetlm.hub_hetlm import read_card_facts
from tokenization.examples import load_prepared
from tokenization.page_tokenizer import encode_sessions
from trainers.clustering import pretrain_selector
from trainers.hetlm_trainer import CLUSTER_STATE_FILE, ClusterMask, HeTLMTrainer
from trainers.hetlm_training import build_hetlm_trainer, train_hetlm
from trainers.initialization import initialize_clusterwise_model
from trainers.pretrain import pretrain_language_model
from trainers.training_arguments import ClusterwiseTrainingArguments, PretrainingArguments
from training_fixtures import prepare_small_store, simulated_splits, tiny_encoder

QUIET = {"disable_tqdm": True}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Three strongly different segments, a tiny Llama pretrained on them, and a tiny encoder."""
    torch.manual_seed(0)
    splits, tokenizer = simulated_splits(num_users=300, num_segments=3)
    settings = PretrainingArguments(
        family="llama",
        size="tiny",
        num_train_epochs=3,
        per_device_train_batch_size=16,
        max_length=96,
        bf16=False,
        logging_steps=100,
        **QUIET,
    )
    result = pretrain_language_model(splits, tokenizer, tmp_path_factory.mktemp("lm"), settings)
    return splits, tokenizer, result.model, tiny_encoder(tokenizer)


def small_settings(**overrides) -> ClusterwiseTrainingArguments:
    values = dict(
        num_clusters=3,
        num_train_epochs=2,
        per_device_train_batch_size=16,
        max_length=96,
        selector_hidden_sizes=(32,),
        bf16=False,
        selector_pretrain_epochs=15,
        logging_steps=4,
        **QUIET,
    )
    values.update(overrides)
    return ClusterwiseTrainingArguments(**values)


def test_hetlm_lowers_validation_nll_and_recovers_segments(pretrained, tmp_path):
    splits, tokenizer, lm, (encoder_tokenizer, encoder_config) = pretrained
    result = train_hetlm(
        splits,
        tokenizer,
        lm,
        tmp_path / "hetlm",
        small_settings(),
        encoder_tokenizer=encoder_tokenizer,
        encoder_config=encoder_config,
    )
    ari = result.history["segment_ari"]
    print(
        f"validation NLL {result.initial_eval_nll:.4f} -> {result.final_eval_nll:.4f}; adjusted Rand index {ari:.3f}"
    )
    assert result.final_eval_nll < result.initial_eval_nll
    assert ari > 0.1
    logged = [entry for entry in result.history["log_history"] if "critic_loss" in entry]
    assert logged and all(
        key in logged[-1]
        for key in ("l1", "l2", "l3", "num_clusters", "selector_grad_norm_l1", "selector_grad_norm_l3")
    )
    assert result.history["cluster_history"][-1]["num_clusters"] == result.model.config.num_clusters
    assert (tmp_path / "hetlm" / "training_history.json").is_file()


def test_hetlm_starts_from_the_partition_the_likelihood_chooses(pretrained, tmp_path):
    splits, tokenizer, lm, (encoder_tokenizer, encoder_config) = pretrained
    splits = DatasetDict({name: split.select(range(min(64, len(split)))) for name, split in splits.items()})
    settings = small_settings(num_train_epochs=1, initial_partition="likelihood", initial_partition_epochs=1)
    encoder = {"encoder_tokenizer": encoder_tokenizer, "encoder_config": encoder_config}
    history = train_hetlm(splits, tokenizer, lm, tmp_path / "hetlm", settings, **encoder).history
    partition = history["initial_partition"]
    scores = partition["validation_nll"]
    assert set(scores) == {"encoder", "browsing"} and all(np.isfinite(value) for value in scores.values())
    assert partition["chosen"] == min(scores, key=scores.get)
    assert sum(partition["sizes"]) == sum(history["kmeans"]["sizes"])
    if partition["chosen"] == "browsing":
        assert partition["sizes"] == history["kmeans"]["sizes"]
    without_validation = DatasetDict({name: split for name, split in splits.items() if name != "validation"})
    with pytest.raises(ValueError, match="chooses the start on validation users"):
        train_hetlm(without_validation, tokenizer, lm, tmp_path / "none", settings, **encoder)


def test_optimizer_has_separate_selector_and_predictor_groups(pretrained, tmp_path):
    splits, tokenizer, lm, (encoder_tokenizer, encoder_config) = pretrained
    settings = small_settings(selector_learning_rate=3e-3, selector_weight_decay=1e-4, learning_rate=1e-4)
    start = initialize_clusterwise_model(
        splits, tokenizer, lm, settings, encoder_tokenizer=encoder_tokenizer, encoder_config=encoder_config
    )
    trainer = build_hetlm_trainer(start, tmp_path, settings)
    optimizer = trainer.create_optimizer()
    selector_ids = {id(parameter) for parameter in start.model.selector.parameters()}
    encoder_ids = {id(parameter) for parameter in start.model.encoder.parameters()}
    for group in optimizer.param_groups:
        ids = {id(parameter) for parameter in group["params"]}
        assert not ids & encoder_ids
        if ids <= selector_ids:
            assert group["lr"] == 3e-3 and group["weight_decay"] in (1e-4, 0.0)
        else:
            assert not ids & selector_ids
            assert group["lr"] == 1e-4 and group["weight_decay"] in (0.01, 0.0)


def test_cluster_mask_retires_a_cluster_from_routing():
    mask = ClusterMask(3)
    mask.retire([0])
    probabilities = torch.softmax(mask(None, None, torch.tensor([[9.0, 1.0, 0.0]])), dim=-1)
    assert probabilities.argmax().item() == 1
    assert 0 < probabilities[0, 0] < 1e-30


@pytest.mark.parametrize("min_cluster_size", [0, 2.5, True])
def test_trainer_refuses_an_invalid_min_cluster_size(min_cluster_size, tmp_path):
    model = tiny_model("opt", num_clusters=2)
    with pytest.raises(ValueError, match="min_cluster_size must be an integer >= 1"):
        HeTLMTrainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path), report_to=[]),
            train_dataset=Dataset.from_dict({"user_embeddings": [[0.0] * 16]}),
            selector_learning_rate=1e-3,
            selector_weight_decay=0.0,
            min_cluster_size=min_cluster_size,
        )


def test_an_emptied_cluster_is_pruned_and_the_model_saves_loads_and_generates(pretrained, tmp_path):
    splits, tokenizer, lm, (encoder_tokenizer, encoder_config) = pretrained
    splits = DatasetDict({name: split.select(range(min(64, len(split)))) for name, split in splits.items()})
    # The selector's routing decides here (online EM would keep the K-means labels it starts from).
    settings = small_settings(num_clusters=3, num_train_epochs=1, min_cluster_size=1, reassignment="hard_em")
    start = initialize_clusterwise_model(
        splits, tokenizer, lm, settings, encoder_tokenizer=encoder_tokenizer, encoder_config=encoder_config
    )
    pretrain_selector(start.model, start.train_user_embeddings, start.clusters.labels, epochs=5)
    with torch.no_grad():  # nobody is routed to cluster 1 any more
        start.model.selector[-1].bias[1] = -1e3
    trainer = build_hetlm_trainer(start, tmp_path / "trainer", settings)
    assert trainer.cluster_sizes[1] == 0
    trainer.train()
    retired = trainer.cluster_history[-1]["retired"]
    assert 1 in retired
    kept = [cluster for cluster in range(3) if cluster not in retired]
    assert trainer.finalize_clusters() == kept
    model = trainer.model
    assert model.config.num_clusters == len(model.predictors) == len(kept)
    assert len(trainer.cluster_sizes) == len(kept) and sum(trainer.cluster_sizes) == len(
        set(splits["train"]["user_id"])
    )
    assert not hasattr(model.config, "cluster_sizes")

    model.save_pretrained(tmp_path / "model", page_tokenizer=tokenizer)
    reloaded = HeTLMForBrowsing.from_pretrained(tmp_path / "model")
    assert reloaded.config.num_clusters == len(kept)
    prompts = [
        encode_sessions(tokenizer, sessions, open_next_session=True)
        for sessions in splits["test"]["input_sessions"][:4]
    ]
    prompt_ids, _ = pad_sequences(prompts, tokenizer.pad_token_id, side="left")
    new_tokens, clusters = reloaded.generate(
        prompt_ids, (prompt_ids != tokenizer.pad_token_id).long(), return_clusters=True, max_new_tokens=8
    )
    assert new_tokens.shape[0] == 4 and set(clusters.tolist()) <= set(range(len(kept)))
    assert torch.equal(reloaded.centroids, model.centroids)


def test_trainer_needs_user_embeddings(pretrained, tmp_path):
    splits, tokenizer, lm, (encoder_tokenizer, encoder_config) = pretrained
    settings = small_settings()
    start = initialize_clusterwise_model(
        splits, tokenizer, lm, settings, encoder_tokenizer=encoder_tokenizer, encoder_config=encoder_config
    )
    with pytest.raises(ValueError, match="user_embeddings"):
        HeTLMTrainer(
            model=start.model,
            args=build_hetlm_trainer(start, tmp_path, settings).args,
            train_dataset=start.users["train"].remove_columns("user_embeddings"),
            selector_learning_rate=1e-3,
            selector_weight_decay=0.0,
        )
    assert CLUSTER_STATE_FILE.endswith(".json")


def test_train_command_writes_a_loadable_hetlm_folder(tmp_path):
    data = prepare_small_store(tmp_path / "data", num_users=60, num_segments=2)
    splits, tokenizer, _ = load_prepared(data)
    pretrain_language_model(
        splits,
        tokenizer,
        tmp_path / "lm",
        PretrainingArguments(family="opt", size="tiny", num_train_epochs=1, max_length=64, bf16=False, **QUIET),
    )
    config = tmp_path / "train.json"
    config.write_text(
        json.dumps(
            {
                "num-clusters": 2,
                "epochs": 1,
                "max_length": 64,
                "selector_hidden_sizes": [16],
                "selector_pretrain_epochs": 2,
            }
        )
    )  # bf16 left to the default
    arguments = [
        "train",
        "--data",
        str(data),
        "--pretrained",
        str(tmp_path / "lm"),
        "--out",
        str(tmp_path / "hetlm"),
        "--config",
        str(config),
        "--alpha",
        "0.5",
        "--min-cluster-size",
        "1",
    ]
    assert main(arguments) == 0
    model = HeTLMForBrowsing.from_pretrained(tmp_path / "hetlm")
    assert model.config.alpha == 0.5 and 1 <= model.config.num_clusters <= 2
    history = json.loads((tmp_path / "hetlm" / "training_history.json").read_text())
    assert history["settings"]["num_train_epochs"] == 1 and history["kmeans"]["k"] == 2
    # The value used is recorded, not the setting's None: a tiny model is below bf16's size threshold.
    assert history["settings"]["bf16"] is None and history["bf16"] is False
    facts = read_card_facts(tmp_path / "hetlm")
    assert facts["data"]["source"] == json.loads((data / "summary.json").read_text())["source"]
    training_data = (tmp_path / "hetlm" / "README.md").read_text().split("## Training data\n")[1].split("\n## ")[0]
    assert f"Source `{facts['data']['source']}`" in training_data
