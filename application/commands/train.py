"""``hetlm train``: clusterwise training from a pretrained single LM, HeTLM or the K-means baseline.

``--method hetlm`` runs Algorithm 1 (actor-critic fine-tuning, endogenous K); ``--method kmeans``
the exogenous baseline (K-means on the encoder embeddings, one fine-tuned predictor per cluster).
Both write a folder loadable with ``HeTLMForBrowsing.from_pretrained`` (page tokenizer and model
card included) and ``training_history.json``. Settings: flags > ``--config`` YAML/JSON file (keys
as the flags, dashes or underscores) > the CPU defaults of ``ClusterwiseSettings``. Runs unchanged
under ``torchrun --nproc_per_node=N``.

Example:
    $ hetlm train --method hetlm --data runs/default/data --pretrained runs/default/lm-small --out runs/default/hetlm \\
        --alpha 5 --beta 9 --num-clusters 6
    $ hetlm train --method kmeans --kmeans-k auto --data runs/default/data --pretrained runs/default/lm-small --out runs/default/kmeans
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..config_files import build_settings, load_config_file
from modeling_hetlm.configuration_hetlm import L1_REDUCTIONS
from trainers.data import SCORE_MODES
from trainers.initialization import ClusterwiseSettings
from trainers.reassignment import REASSIGNMENTS

NAME = "train"
HELP = "Train HeTLM (actor-critic, endogenous K) or the K-means clusterwise baseline from a pretrained single LM."
METHODS = ("hetlm", "kmeans")

_DEFAULTS = {field.name: field.default for field in fields(ClusterwiseSettings)}


def _kmeans_k(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        k = int(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--kmeans-k must be 'auto' or an integer >= 1, got {value!r}") from error
    if k < 1:
        raise argparse.ArgumentTypeError(f"--kmeans-k must be >= 1, got {k}")
    return k


def add_dynamics_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of how HeTLM's users move (shared by ``hetlm train`` and ``hetlm experiment``)."""
    parser.add_argument("--l1-reduction", choices=L1_REDUCTIONS,
                        help="Each user's NLL in L1: summed over tokens (paper) or per-token mean "
                             f"(default {_DEFAULTS['l1_reduction']}).")
    parser.add_argument("--selector-label-smoothing", type=float,
                        help="Label smoothing of the selector's (re)training, keeps it soft "
                             f"(default {_DEFAULTS['selector_label_smoothing']}).")
    parser.add_argument("--reassignment", choices=REASSIGNMENTS,
                        help="hard_em: retrain the selector towards argmin_k NLL_k every few epochs "
                             f"(default {_DEFAULTS['reassignment']}).")
    parser.add_argument("--reassign-every-epochs", type=int, help=f"Default {_DEFAULTS['reassign_every_epochs']}.")
    parser.add_argument("--reassign-selector-epochs", type=int,
                        help=f"Default {_DEFAULTS['reassign_selector_epochs']}.")
    parser.add_argument("--reassign-size-prior", type=float,
                        help="Weight of -log(cluster share) in the hard-EM choice "
                             f"(default {_DEFAULTS['reassign_size_prior']}).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm train``'s options (each defaults to the config file, then :class:`ClusterwiseSettings`)."""
    parser.add_argument("--method", choices=METHODS, help="hetlm (default) or kmeans.")
    parser.add_argument("--data", required=True, help="Prepared dataset folder (written by `hetlm prepare`).")
    parser.add_argument("--pretrained", required=True, help="Single-LM folder written by `hetlm pretrain`.")
    parser.add_argument("--out", required=True, help="Output model folder.")
    parser.add_argument("--config", help="YAML or JSON file of settings; flags given here override it.")
    parser.add_argument("--resume", nargs="?", const=True, help="Resume HeTLM from the last (or the given) checkpoint.")
    parser.add_argument("--num-clusters", type=int, help=f"Initial K (default {_DEFAULTS['num_clusters']}, as the paper).")
    parser.add_argument("--kmeans-k", type=_kmeans_k, help="K of K-means: an integer, or 'auto' (silhouette). Default: --num-clusters.")
    parser.add_argument("--kmeans-k-range", type=int, nargs=2, metavar=("LOW", "HIGH"), help="K range for --kmeans-k auto (default 2 8).")
    parser.add_argument("--alpha", type=float, help=f"Weight of L2 (default {_DEFAULTS['alpha']}).")
    parser.add_argument("--beta", type=float, help=f"Weight of L3 (default {_DEFAULTS['beta']}).")
    parser.add_argument("--centroid-distance", choices=("paper", "normalized"), help="L3 variant (default paper).")
    parser.add_argument("--min-cluster-size", type=int, help="Remove clusters with fewer training users (default: 1%% of them).")
    parser.add_argument("--prune-every-steps", type=int, help="Prune every N steps (default: at each epoch's end).")
    parser.add_argument("--epochs", type=float, help=f"Default {_DEFAULTS['epochs']} (paper: 10).")
    parser.add_argument("--batch-size", type=int, help=f"Default {_DEFAULTS['batch_size']} (paper: 16).")
    parser.add_argument("--max-length", type=int, help=f"Default {_DEFAULTS['max_length']}.")
    parser.add_argument("--score", choices=SCORE_MODES, help=f"Tokens scored (default {_DEFAULTS['score']}).")
    parser.add_argument("--predictor-learning-rate", type=float,
                        help="Default 1e-4 for HeTLM, 5e-4 for K-means (paper: 1e-5).")
    parser.add_argument("--predictor-weight-decay", type=float, help=f"Default {_DEFAULTS['predictor_weight_decay']}.")
    parser.add_argument("--selector-learning-rate", type=float, help=f"Default {_DEFAULTS['selector_learning_rate']} (paper: 5e-5).")
    parser.add_argument("--selector-weight-decay", type=float, help=f"Default {_DEFAULTS['selector_weight_decay']}.")
    parser.add_argument("--selector-pretrain-epochs", type=int, help=f"Default {_DEFAULTS['selector_pretrain_epochs']}.")
    add_dynamics_arguments(parser)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast (default: where supported).")
    parser.add_argument("--seed", type=int, help=f"Default {_DEFAULTS['seed']}.")
    parser.add_argument("--logging-steps", type=int, help=f"Default {_DEFAULTS['logging_steps']}.")
    parser.add_argument("--save-strategy", choices=("no", "steps", "epoch"), help="Checkpointing (default no).")
    parser.add_argument("--save-steps", type=int, help=f"Default {_DEFAULTS['save_steps']}.")


def run(args: argparse.Namespace) -> int:
    """Load the data and the pretrained LM, train with the chosen method, save; prints a summary."""
    from transformers import AutoModelForCausalLM

    from tokenization.examples import load_prepared

    from trainers.hetlm_training import train_hetlm
    from trainers.kmeans_baseline import train_kmeans_baseline

    file_values = load_config_file(args.config) if args.config else {}
    method = args.method or file_values.pop("method", "hetlm")
    file_values.pop("method", None)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    settings = build_settings(ClusterwiseSettings, file_values, vars(args))
    settings.kmeans_k_range = tuple(settings.kmeans_k_range)
    splits, tokenizer, _ = load_prepared(args.data)
    lm = AutoModelForCausalLM.from_pretrained(args.pretrained)
    if lm.config.vocab_size < len(tokenizer):
        raise ValueError(
            f"{args.pretrained}: vocab_size {lm.config.vocab_size} is smaller than the page tokenizer of {args.data} "
            f"({len(tokenizer)}): pretrain on this prepared dataset first"
        )
    if method == "kmeans":
        result = train_kmeans_baseline(splits, tokenizer, lm, args.out, settings)
        print(f"K-means baseline: K={result.model.config.num_clusters}, sizes {result.model.config.cluster_sizes}; saved to {args.out}")
        return 0
    result = train_hetlm(splits, tokenizer, lm, args.out, settings, resume_from_checkpoint=args.resume)
    dynamics = result.history["dynamics"]
    moved = f"{dynamics[-1]['users_moved_since_kmeans']} users moved from their K-means cluster; " if dynamics else ""
    print(
        f"HeTLM: {moved}K {result.history['kmeans']['k']} -> {result.model.config.num_clusters}, "
        f"sizes {result.model.config.cluster_sizes}; "
        f"validation NLL {result.initial_eval_nll:.4f} -> {result.final_eval_nll:.4f}; saved to {args.out}"
    )
    return 0
