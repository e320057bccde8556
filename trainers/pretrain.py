"""Single-LM pretraining: a causal LM over the page vocabulary, from scratch, with ``transformers.Trainer``.

The model is built from a size preset (:mod:`trainers.model_sizes`) of the OPT, Qwen2 or Llama/SmolLM2
family with ``vocab_size`` = the page tokenizer's size and its ``[PAD]``/``[BOS]``/``[EOS]`` ids.
It is trained on the prepared training users (see :mod:`trainers.data` for the token stream and
what is scored) and evaluated on the validation users before and after training. The CPU defaults
sit beside the paper's settings in :mod:`trainers.model_sizes`.

Example:
    >>> from trainers.pretrain import pretrain_language_model
    >>> from trainers.training_arguments import PretrainingArguments
    >>> args = PretrainingArguments(family="opt")  # doctest: +SKIP
    >>> result = pretrain_language_model(splits, tokenizer, "runs/lm", args)  # doctest: +SKIP
    >>> result.final_eval_loss < result.initial_eval_loss  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
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
)

from inference.loading import save_causal_lm

from .data import BrowsingCollator, tokenize_users
from .model_sizes import build_causal_lm_config
from .training_arguments import BrowsingTrainingArguments, PretrainingArguments, resolve_training_arguments

logger = logging.getLogger(__name__)

PRETRAIN_SETTINGS_FILE = "pretrain_settings.json"


@dataclass
class PretrainResult:
    """What :func:`pretrain_language_model` returns."""

    model: PreTrainedModel
    initial_eval_loss: float
    final_eval_loss: float
    train_loss: float
    log_history: list[dict[str, float]]
    bf16: bool = False  # the bf16 autocast actually used (the setting's None resolved), so a run can be reproduced


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
    args: BrowsingTrainingArguments,
    **overrides: Any,
) -> PretrainResult:
    """Train ``model`` as a causal LM on tokenised users (from :func:`trainers.data.tokenize_users`).

    Used for pretraining from scratch and for the K-means baseline's per-cluster fine-tuning.
    Validation loss is measured before and after training when ``validation_users`` is given;
    ``overrides`` replace fields of ``args`` for this run only.
    """
    columns = ["input_ids", "labels"]
    train_users = train_users.select_columns(columns)
    if validation_users is not None:
        validation_users = validation_users.select_columns(columns)
    arguments = resolve_training_arguments(
        args, output_dir, model.num_parameters(), validation_users is not None, **overrides
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
        bf16=bool(arguments.bf16),
    )


def pretrain_language_model(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str | os.PathLike,
    args: PretrainingArguments | None = None,
) -> PretrainResult:
    """Pretrain a single LM from scratch on ``splits["train"]``, validate on ``splits["validation"]``, save it.

    ``output_dir`` becomes a plain ``transformers`` causal-LM folder (config with the page vocabulary's
    fingerprint and the data's page rules ``outcome_pages`` and ``url_normalization``, safetensors and their
    sha256, generation config) plus the page tokenizer and ``pretrain_settings.json`` (settings and validation
    losses); see :func:`inference.loading.save_causal_lm`.
    """
    args = args or PretrainingArguments()
    torch.manual_seed(args.seed)
    tokenized = tokenize_users(splits, tokenizer, args.max_length, args.score)
    model = build_language_model(tokenizer, args.family, args.size, args.max_length, args.min_ratio)
    logger.info("%s/%s language model: %d parameters", args.family, args.size, model.num_parameters())
    result = train_language_model(
        model, tokenized["train"], tokenized.get("validation"), tokenizer, Path(output_dir) / "trainer", args
    )
    output_dir = Path(output_dir)
    save_causal_lm(result.model, tokenizer, output_dir)
    summary = {
        "settings": args.to_dict(),
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
