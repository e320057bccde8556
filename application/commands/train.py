"""``hetlm train``: clusterwise training from a pretrained single LM, HeTLM or the K-means baseline.

``--method hetlm`` runs Algorithm 1 (actor-critic fine-tuning, endogenous K); ``--method kmeans``
the exogenous baseline (K-means on the encoder embeddings, one fine-tuned predictor per cluster).
Both write a folder loadable with ``HeTLMForBrowsing.from_pretrained`` (page tokenizer and model
card included) and ``training_history.json``. Settings are the fields of
:class:`trainers.training_arguments.ClusterwiseTrainingArguments` (``TrainingArguments``' included):
flags > ``--config`` YAML/JSON file (keys as the flags, dashes or underscores) > its CPU defaults. Runs unchanged
under ``torchrun --nproc_per_node=N``.

Example:
    $ hetlm train --method hetlm --data runs/default/data --pretrained runs/default/lm-small \\
        --out runs/default/hetlm --alpha 5 --beta 9 --num-clusters 6
    $ hetlm train --method kmeans --kmeans-k auto --data runs/default/data --pretrained runs/default/lm-small \\
        --out runs/default/kmeans
"""

from __future__ import annotations

import argparse

from ..config_files import build_arguments, load_config_file, settings_parser

METHODS = ("hetlm", "kmeans")


def parent_parsers() -> list[argparse.ArgumentParser]:
    """The options of :class:`trainers.training_arguments.ClusterwiseTrainingArguments`.

    TrainingArguments' options are included.
    """
    from trainers.training_arguments import ClusterwiseTrainingArguments

    return [settings_parser(ClusterwiseTrainingArguments)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm train``'s own options (the settings come from :func:`parent_parsers`)."""
    parser.add_argument("--method", choices=METHODS, help="hetlm (default) or kmeans.")
    parser.add_argument("--data", required=True, help="Prepared dataset folder (written by `hetlm prepare`).")
    parser.add_argument("--pretrained", required=True, help="Single-LM folder written by `hetlm pretrain`.")
    parser.add_argument("--out", required=True, help="Output model folder.")
    parser.add_argument("--config", help="YAML or JSON file of settings; flags given here override it.")
    parser.add_argument(
        "--resume", nargs="?", const=True, help="Resume HeTLM from the last (or the given) checkpoint."
    )


def run(args: argparse.Namespace) -> int:
    """Load the data and the pretrained LM, train with the chosen method, save; prints a summary."""
    from inference.loading import load_pretrained_lm
    from modeling_hetlm.hub_hetlm import update_model_card
    from tokenization.examples import load_prepared
    from trainers.hetlm_training import train_hetlm
    from trainers.kmeans_baseline import train_kmeans_baseline
    from trainers.training_arguments import ClusterwiseTrainingArguments

    file_values = load_config_file(args.config) if args.config else {}
    method = args.method or file_values.pop("method", "hetlm")
    file_values.pop("method", None)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    (settings,) = build_arguments((ClusterwiseTrainingArguments,), file_values, vars(args))
    splits, tokenizer, data_summary = load_prepared(args.data)
    lm = load_pretrained_lm(args.pretrained, tokenizer)
    if method == "kmeans":
        result = train_kmeans_baseline(splits, tokenizer, lm, args.out, settings)
        update_model_card(args.out, data_summary=data_summary)
        sizes = result.history["cluster_sizes"]
        print(f"K-means baseline: K={result.model.config.num_clusters}, sizes {sizes}; saved to {args.out}")
        return 0
    result = train_hetlm(splits, tokenizer, lm, args.out, settings, resume_from_checkpoint=args.resume)
    update_model_card(args.out, data_summary=data_summary)
    dynamics = result.history["dynamics"]
    moved = f"{dynamics[-1]['users_moved_since_kmeans']} users moved from their K-means cluster; " if dynamics else ""
    print(
        f"HeTLM: {moved}K {result.history['kmeans']['k']} -> {result.model.config.num_clusters}, "
        f"sizes {result.history['cluster_sizes']}; "
        f"validation NLL {result.initial_eval_nll:.4f} -> {result.final_eval_nll:.4f}; saved to {args.out}"
    )
    return 0
