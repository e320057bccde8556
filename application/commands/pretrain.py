"""``hetlm pretrain``: train a single causal LM of browsing from scratch on a prepared dataset.

Writes a plain ``transformers`` causal-LM folder (config, safetensors weights, generation config)
plus the page tokenizer and ``pretrain_settings.json`` (settings, parameter count, validation
losses before and after training). Settings are the fields of
:class:`trainers.training_arguments.PretrainingArguments` (``TrainingArguments``' included): from the
flags, a ``--config`` YAML/JSON file (keys as the flags, dashes or underscores), or its CPU defaults.

Example:
    $ hetlm pretrain --data runs/default/data --out runs/default/lm-small --family opt --size small
    $ hetlm pretrain --data runs/default/data --out runs/default/lm-large --family opt --size large --epochs 5
"""

from __future__ import annotations

import argparse

from ..config_files import build_arguments, load_config_file, settings_parser


def parent_parsers() -> list[argparse.ArgumentParser]:
    """The options of :class:`trainers.training_arguments.PretrainingArguments` (TrainingArguments' included)."""
    from trainers.training_arguments import PretrainingArguments

    return [settings_parser(PretrainingArguments)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm pretrain``'s own options (the settings come from :func:`parent_parsers`)."""
    parser.add_argument("--data", required=True, help="Prepared dataset folder (written by `hetlm prepare`).")
    parser.add_argument("--out", required=True, help="Output model folder.")
    parser.add_argument("--config", help="YAML or JSON file of settings; flags given here override it.")


def run(args: argparse.Namespace) -> int:
    """Load the prepared data, pretrain, save; prints the validation losses."""
    from tokenization.examples import load_prepared
    from trainers.pretrain import pretrain_language_model
    from trainers.training_arguments import PretrainingArguments

    file_values = load_config_file(args.config) if args.config else {}
    (settings,) = build_arguments((PretrainingArguments,), file_values, vars(args))
    splits, tokenizer, _ = load_prepared(args.data)
    result = pretrain_language_model(splits, tokenizer, args.out, settings)
    print(
        f"{settings.family}/{settings.size}: {result.model.num_parameters():,} parameters; validation loss "
        f"{result.initial_eval_loss:.4f} -> {result.final_eval_loss:.4f}; saved to {args.out}"
    )
    return 0
