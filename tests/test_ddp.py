"""HeTLM under ``torchrun --nproc_per_node=2`` (gloo on CPU) logs the same losses as one process with the same global
batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokenization.examples import load_prepared
from training_fixtures import prepare_small_store, tiny_encoder

TESTS = Path(__file__).resolve().parent

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import PreTrainedTokenizerFast
    from tokenization.examples import load_prepared
    from trainers.clustering import pretrain_selector
    from trainers.hetlm_training import build_hetlm_trainer
    from trainers.initialization import initialize_clusterwise_model
    from trainers.training_arguments import ClusterwiseTrainingArguments
    from trainers.pretrain import build_language_model
    from training_fixtures import tiny_encoder

    data, encoder_folder, out, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    splits, tokenizer, _ = load_prepared(data)
    torch.manual_seed(0)
    lm = build_language_model(tokenizer, "llama", "tiny", max_length=48)
    encoder_config = tiny_encoder(tokenizer)[1]
    encoder_tokenizer = PreTrainedTokenizerFast.from_pretrained(encoder_folder)
    # beta=0: L3 of a batch's soft centroids is the one term that is not a mean over users, so it is
    # the one term whose value depends on how the global batch is split across ranks. Shuffled batches: cluster
    # batches group each device's batch, so one process's batch of 2B and two ranks' of B hold different rows.
    settings = ClusterwiseTrainingArguments(num_clusters=2, num_train_epochs=1, per_device_train_batch_size=batch_size,
                                            max_length=48, beta=0.0, selector_hidden_sizes=(16,),
                                            cluster_batches=False, selector_pretrain_epochs=3, bf16=False,
                                            logging_steps=1,
                                            disable_tqdm=True, max_steps=3, eval_strategy="no")
    start = initialize_clusterwise_model(splits, tokenizer, lm, settings,
                                         encoder_tokenizer=encoder_tokenizer, encoder_config=encoder_config)
    pretrain_selector(start.model, start.train_user_embeddings, start.clusters.labels, epochs=3)
    trainer = build_hetlm_trainer(start, out + "/trainer", settings)
    trainer.train()
    if trainer.is_world_process_zero():
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        json.dump({"losses": losses, "world_size": trainer.args.world_size}, open(out + "/losses.json", "w"))
    """
)


def run_worker(command: list[str], out: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)]),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads((out / "losses.json").read_text())


@pytest.mark.timeout(600)
def test_two_process_ddp_equals_single_process(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    data = prepare_small_store(tmp_path / "data", num_users=100, num_segments=2)
    # WordPiece training breaks ties differently in each process: every process loads one saved vocabulary.
    tiny_encoder(load_prepared(data)[1])[0].save_pretrained(tmp_path / "encoder")
    inputs = [str(worker), str(data), str(tmp_path / "encoder")]
    (tmp_path / "single").mkdir()
    (tmp_path / "ddp").mkdir()
    single = run_worker([sys.executable, *inputs, str(tmp_path / "single"), "16"], tmp_path / "single")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ddp = run_worker([*torchrun, *inputs, str(tmp_path / "ddp"), "8"], tmp_path / "ddp")
    print(f"single process: {single['losses']}\n2 processes:    {ddp['losses']}")
    assert single["world_size"] == 1 and ddp["world_size"] == 2
    assert len(ddp["losses"]) == len(single["losses"]) == 3
    assert ddp["losses"] == pytest.approx(single["losses"], rel=1e-4)
