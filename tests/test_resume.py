"""A HeTLM run killed mid-epoch and resumed from its newest complete checkpoint ends with the same weights as an
uninterrupted run; incomplete checkpoints are named and passed over."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import TrainerCallback

from modeling_hetlm.weights_integrity_hetlm import write_weights_checksums
from trainers.checkpoints import TRAINER_STATE_FILE, checkpoint_problem, newest_complete_checkpoint
from trainers.clustering import pretrain_selector
from trainers.hetlm_trainer import CLUSTER_STATE_FILE
from trainers.hetlm_training import build_hetlm_trainer
from trainers.initialization import initialize_clusterwise_model
from trainers.pretrain import build_language_model
from trainers.training_arguments import ClusterwiseTrainingArguments
from training_fixtures import simulated_splits, tiny_encoder


class KillAt(TrainerCallback):
    """Stops training right after step ``step`` (its checkpoint is written), as if the process died."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def make_trainer(splits, tokenizer, lm, encoder, output_dir, reassignment="hard_em"):
    # hard_em: the selector routes, so the planted bias empties cluster 2; online_em: the EM labels and
    # scores (reassigned every 2 steps) must come back from the checkpoint too.
    settings = ClusterwiseTrainingArguments(
        num_clusters=3,
        reassignment=reassignment,
        reassign_every_steps=2 if reassignment == "online_em" else 0,
        reassign_warmup_steps=0,
        num_train_epochs=1,
        per_device_train_batch_size=10,
        max_length=48,
        selector_hidden_sizes=(16,),
        selector_pretrain_epochs=3,
        prune_every_steps=2,
        min_cluster_size=1,
        bf16=False,
        save_strategy="steps",
        save_steps=3,
        logging_steps=1,
        disable_tqdm=True,
    )
    start = initialize_clusterwise_model(
        splits, tokenizer, lm, settings, encoder_tokenizer=encoder[0], encoder_config=encoder[1]
    )
    pretrain_selector(start.model, start.train_user_embeddings, start.clusters.labels, epochs=3)
    with torch.no_grad():  # cluster 2 empties, so it is retired at step 2, before the kill
        start.model.selector[-1].bias[2] = -1e3
    return build_hetlm_trainer(start, output_dir, settings)


def plant_incomplete_checkpoints(complete: Path) -> None:
    """checkpoint-98..100 beside ``complete``: state cut short, no cluster state, no weights."""
    for step, damage in ((98, "trainer_state"), (99, "clusters"), (100, "weights")):
        folder = complete.parent / f"checkpoint-{step}"
        shutil.copytree(complete, folder)
        if damage == "trainer_state":
            (folder / TRAINER_STATE_FILE).write_text('{"global_step": ')
        elif damage == "clusters":
            (folder / CLUSTER_STATE_FILE).unlink()
        else:
            (folder / "model.safetensors").unlink()


def test_checkpoint_problems_are_named(tmp_path):
    folder = tmp_path / "checkpoint-7"
    folder.mkdir()
    assert checkpoint_problem(folder) == "no trainer_state.json"
    (folder / TRAINER_STATE_FILE).write_text("{}")
    assert checkpoint_problem(folder) == "no hetlm_clusters.json"
    (folder / CLUSTER_STATE_FILE).write_text("{")
    assert checkpoint_problem(folder) == "hetlm_clusters.json is not valid JSON (cut short?)"
    (folder / CLUSTER_STATE_FILE).write_text("{}")
    assert checkpoint_problem(folder).startswith("no weights")
    save_file({"w": torch.ones(2)}, folder / "model.safetensors")
    write_weights_checksums(folder)
    assert checkpoint_problem(folder) is None and newest_complete_checkpoint(tmp_path) == folder
    save_file({"w": torch.zeros(2)}, folder / "model.safetensors")
    assert "sha256 differs" in checkpoint_problem(folder)
    assert newest_complete_checkpoint(tmp_path) is None


@pytest.mark.parametrize("reassignment", ["hard_em", "online_em"])
def test_resume_after_a_kill_mid_epoch_equals_an_uninterrupted_run(tmp_path, caplog, reassignment):
    splits, tokenizer = simulated_splits(num_users=70, num_segments=2)
    torch.manual_seed(0)
    lm = build_language_model(tokenizer, "qwen2", "tiny", max_length=48)
    encoder = tiny_encoder(tokenizer)

    uninterrupted = make_trainer(splits, tokenizer, lm, encoder, tmp_path / "a", reassignment)
    uninterrupted.train()
    steps = uninterrupted.state.global_step
    assert steps >= 5

    killed = make_trainer(splits, tokenizer, lm, encoder, tmp_path / "b", reassignment)
    killed.add_callback(KillAt(3))
    killed.train()
    assert killed.state.global_step == 3
    checkpoint = tmp_path / "b" / "checkpoint-3"
    saved_clusters = json.loads((checkpoint / CLUSTER_STATE_FILE).read_text())
    if reassignment == "hard_em":
        assert 2 not in saved_clusters["active_clusters"]
    else:
        assert len(saved_clusters["em_labels"]) == len(uninterrupted.labels) and "row_scores" in saved_clusters

    # Newer checkpoints cut short by a crash while saving are passed over by --resume.
    plant_incomplete_checkpoints(checkpoint)
    resumed = make_trainer(splits, tokenizer, lm, encoder, tmp_path / "b", reassignment)
    assert resumed.cluster_mask.active_clusters == [0, 1, 2]
    with caplog.at_level(logging.INFO, logger="trainers"):
        resumed.train(resume_from_checkpoint=True)
    assert f"resuming from {checkpoint}, the newest complete checkpoint" in caplog.text
    assert "checkpoint-100 is incomplete (no weights" in caplog.text
    assert "checkpoint-98 is incomplete (trainer_state.json is not valid JSON" in caplog.text
    assert resumed.state.global_step == steps
    assert resumed.cluster_mask.active_clusters == uninterrupted.cluster_mask.active_clusters
    assert resumed.cluster_history == uninterrupted.cluster_history
    if reassignment == "online_em":
        assert torch.equal(resumed.labels, uninterrupted.labels)

    expected = uninterrupted.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)

    def losses(trainer):
        return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]

    assert losses(resumed)[-2:] == losses(uninterrupted)[-2:]
