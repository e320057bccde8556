"""Single-LM pretraining: a causal LM over the page vocabulary, from scratch, with ``transformers.Trainer``.

The model is built from a size preset (:mod:`trainers.model_sizes`) of the OPT, Qwen2 or Llama/SmolLM2
family with ``vocab_size`` = the page tokenizer's size and its ``[PAD]``/``[BOS]``/``[EOS]`` ids.
It is trained on the prepared training users (see :mod:`trainers.data` for the token stream and
what is scored) and evaluated on the validation users before and after training. The CPU defaults
sit beside the paper's settings in :mod:`trainers.model_sizes`.

Example:
    >>> from trainers.pretrain import PretrainSettings, pretrain_language_model
    >>> result = pretrain_language_model(splits, tokenizer, "runs/lm", PretrainSettings(family="opt", size="small"))  # doctest: +SKIP
    >>> result.final_eval_loss < result.initial_eval_loss  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from inference.loading import save_causal_lm

from .data import BrowsingCollator, tokenize_users
from .model_sizes import build_causal_lm_config, default_bf16

logger = logging.getLogger(__name__)

PRETRAIN_SETTINGS_FILE = "pretrain_settings.json"


@dataclass
class PretrainSettings:
    """Hyper-parameters of single-LM training (CPU defaults; the paper's are in :mod:`trainers.model_sizes`).

    ``bf16=None`` means :func:`trainers.model_sizes.default_bf16` for the model's size.
    """

    family: str = "opt"
    size: str = "small"
    max_length: int = 512
    score: str = "stream"
    learning_rate: float = 5e-3
    weight_decay: float = 0.01
    batch_size: int = 32
    epochs: float = 10.0
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.05
    bf16: bool | None = None
    seed: int = 0
    min_ratio: float = 6.0
    logging_steps: int = 10
    save_strategy: str = "no"
    extra_training_arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class PretrainResult:
    """What :func:`pretrain_language_model` returns."""

    model: PreTrainedModel
    initial_eval_loss: float
    final_eval_loss: float
    train_loss: float
    log_history: list[dict[str, float]]


def build_training_arguments(
    output_dir: str | os.PathLike,
    *,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    epochs: float,
    gradient_accumulation_steps: int = 1,
    warmup_ratio: float = 0.0,
    bf16: bool,
    seed: int = 0,
    logging_steps: int = 10,
    save_strategy: str = "no",
    find_unused_parameters: bool = False,
    **extra: Any,
) -> TrainingArguments:
    """``TrainingArguments`` with the project's CPU/distributed conventions.

    CPU when no GPU is present (bf16 autocast then needs ``use_cpu``); under ``torchrun``
    (``WORLD_SIZE > 1``) the DDP backend is ``gloo`` on CPU and ``nccl`` on GPUs, and is passed only
    then. Reports go nowhere (no tracker) unless ``report_to`` is given in ``extra``.

    Example:
        >>> build_training_arguments("runs/x", learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=1, bf16=False).per_device_train_batch_size
        8
    """
    use_cpu = not torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    arguments: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "per_device_train_batch_size": batch_size,
        "per_device_eval_batch_size": batch_size,
        "num_train_epochs": epochs,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "warmup_steps": warmup_ratio,
        "bf16": bf16,
        "use_cpu": use_cpu,
        "seed": seed,
        "data_seed": seed,
        "logging_steps": logging_steps,
        "save_strategy": save_strategy,
        "report_to": "none",
        "dataloader_pin_memory": not use_cpu,
        "remove_unused_columns": False,
    }
    if distributed:
        arguments["ddp_backend"] = "gloo" if use_cpu else "nccl"
        arguments["ddp_find_unused_parameters"] = find_unused_parameters
    arguments.update(extra)
    return TrainingArguments(**arguments)


def build_language_model(
    tokenizer: PreTrainedTokenizerBase, family: str, size: str, max_length: int = 512, min_ratio: float = 6.0
) -> PreTrainedModel:
    """A randomly initialised causal LM of ``family``/``size`` over the page vocabulary of ``tokenizer``.

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> build_language_model(build_page_tokenizer(["home"]), "llama", "tiny").config.vocab_size
        5
    """
    config = build_causal_lm_config(
        family,
        size,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_position_embeddings=max_length,
        min_ratio=min_ratio,
    )
    return AutoModelForCausalLM.from_config(config)


class _LogValidationLoss(TrainerCallback):
    """Log each validation loss as it is measured."""

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and "eval_loss" in metrics:
            logger.info("step %d: validation loss %.4f", state.global_step, metrics["eval_loss"])


def train_language_model(
    model: PreTrainedModel,
    train_users: Dataset,
    validation_users: Dataset | None,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str | os.PathLike,
    settings: PretrainSettings,
) -> PretrainResult:
    """Train ``model`` as a causal LM on tokenised users (from :func:`trainers.data.tokenize_users`).

    Used for pretraining from scratch and for the K-means baseline's per-cluster fine-tuning.
    Validation loss is measured before and after training when ``validation_users`` is given.
    """
    columns = ["input_ids", "labels"]
    train_users = train_users.select_columns(columns)
    if validation_users is not None:
        validation_users = validation_users.select_columns(columns)
    arguments = build_training_arguments(
        output_dir,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        warmup_ratio=settings.warmup_ratio,
        bf16=default_bf16(model.num_parameters()) if settings.bf16 is None else settings.bf16,
        seed=settings.seed,
        logging_steps=settings.logging_steps,
        save_strategy=settings.save_strategy,
        **{"eval_strategy": "epoch" if validation_users is not None else "no", **settings.extra_training_arguments},
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train_users,
        eval_dataset=validation_users,
        data_collator=BrowsingCollator(pad_token_id=tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[_LogValidationLoss()],
    )
    initial_eval_loss = trainer.evaluate()["eval_loss"] if validation_users is not None else float("nan")
    train_output = trainer.train()
    final_eval_loss = trainer.evaluate()["eval_loss"] if validation_users is not None else float("nan")
    return PretrainResult(
        model=trainer.model,
        initial_eval_loss=initial_eval_loss,
        final_eval_loss=final_eval_loss,
        train_loss=train_output.training_loss,
        log_history=trainer.state.log_history,
    )


def pretrain_language_model(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str | os.PathLike,
    settings: PretrainSettings | None = None,
) -> PretrainResult:
    """Pretrain a single LM from scratch on ``splits["train"]``, validate on ``splits["validation"]``, save it.

    ``output_dir`` becomes a plain ``transformers`` causal-LM folder (config with the page vocabulary's
    fingerprint and the outcome pages, safetensors and their sha256, generation config) plus the page tokenizer
    and ``pretrain_settings.json`` (settings and validation losses); see :func:`inference.loading.save_causal_lm`.
    """
    settings = settings or PretrainSettings()
    torch.manual_seed(settings.seed)
    tokenized = tokenize_users(splits, tokenizer, settings.max_length, settings.score)
    model = build_language_model(tokenizer, settings.family, settings.size, settings.max_length, settings.min_ratio)
    logger.info("%s/%s language model: %d parameters", settings.family, settings.size, model.num_parameters())
    result = train_language_model(
        model, tokenized["train"], tokenized.get("validation"), tokenizer, Path(output_dir) / "trainer", settings
    )
    output_dir = Path(output_dir)
    save_causal_lm(result.model, tokenizer, output_dir)
    summary = {
        "settings": asdict(settings),
        "num_parameters": result.model.num_parameters(),
        "initial_eval_loss": result.initial_eval_loss,
        "final_eval_loss": result.final_eval_loss,
        "train_loss": result.train_loss,
    }
    (output_dir / PRETRAIN_SETTINGS_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "validation loss %.4f -> %.4f; saved to %s", result.initial_eval_loss, result.final_eval_loss, output_dir
    )
    return result
