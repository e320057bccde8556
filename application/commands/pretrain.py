"""``hetlm pretrain``: train a single causal LM of browsing from scratch on a prepared dataset.

Writes a plain ``transformers`` causal-LM folder (config, safetensors weights, generation config)
plus the page tokenizer and ``pretrain_settings.json`` (settings, parameter count, validation
losses before and after training). Settings come from the flags, a ``--config`` YAML/JSON file
(keys as the flags, dashes or underscores), or the CPU defaults of :mod:`trainers.model_sizes`.

Example:
    $ hetlm pretrain --data runs/default/data --out runs/default/lm-small --family opt --size small
    $ hetlm pretrain --data runs/default/data --out runs/default/lm-large --family opt --size large --epochs 5
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..config_files import build_settings, load_config_file
from trainers.data import SCORE_MODES
from trainers.model_sizes import FAMILIES, SIZES
from trainers.pretrain import PretrainSettings, pretrain_language_model


_DEFAULTS = {field.name: field.default for field in fields(PretrainSettings) if field.name != "extra_training_arguments"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm pretrain``'s options (each defaults to the config file, then :class:`PretrainSettings`)."""
    parser.add_argument("--data", required=True, help="Prepared dataset folder (written by `hetlm prepare`).")
    parser.add_argument("--out", required=True, help="Output model folder.")
    parser.add_argument("--config", help="YAML or JSON file of settings; flags given here override it.")
    parser.add_argument("--family", choices=FAMILIES, help=f"Model family (default {_DEFAULTS['family']}).")
    parser.add_argument("--size", choices=SIZES, help=f"Size preset (default {_DEFAULTS['size']}).")
    parser.add_argument("--max-length", type=int, help=f"Max tokens per user, cut from the left (default {_DEFAULTS['max_length']}).")
    parser.add_argument("--score", choices=SCORE_MODES, help=f"Tokens scored by the loss (default {_DEFAULTS['score']}).")
    parser.add_argument("--learning-rate", type=float, help=f"Default {_DEFAULTS['learning_rate']} (paper: 1e-5).")
    parser.add_argument("--weight-decay", type=float, help=f"Default {_DEFAULTS['weight_decay']}.")
    parser.add_argument("--batch-size", type=int, help=f"Default {_DEFAULTS['batch_size']}.")
    parser.add_argument("--epochs", type=float, help=f"Default {_DEFAULTS['epochs']} (paper: 100).")
    parser.add_argument("--gradient-accumulation-steps", type=int, help=f"Default {_DEFAULTS['gradient_accumulation_steps']} (paper: 4).")
    parser.add_argument("--warmup-ratio", type=float, help=f"Default {_DEFAULTS['warmup_ratio']}.")
    parser.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast (default: on where the CPU/GPU has native bf16)."
    )
    parser.add_argument("--seed", type=int, help=f"Default {_DEFAULTS['seed']}.")
    parser.add_argument("--min-ratio", type=float, help=f"Size 'large' holds at least this many times 'small''s parameters (default {_DEFAULTS['min_ratio']}).")
    parser.add_argument("--logging-steps", type=int, help=f"Default {_DEFAULTS['logging_steps']}.")


def run(args: argparse.Namespace) -> int:
    """Load the prepared data, pretrain, save; prints the validation losses."""
    from tokenization.examples import load_prepared

    file_values = load_config_file(args.config) if args.config else {}
    settings = build_settings(PretrainSettings, file_values, vars(args))
    splits, tokenizer, _ = load_prepared(args.data)
    result = pretrain_language_model(splits, tokenizer, args.out, settings)
    print(
        f"{settings.family}/{settings.size}: {result.model.num_parameters():,} parameters; validation loss "
        f"{result.initial_eval_loss:.4f} -> {result.final_eval_loss:.4f}; saved to {args.out}"
    )
    return 0
