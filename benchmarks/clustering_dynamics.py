"""Do HeTLM's clusters learn? K-means baseline vs HeTLM, same initial K, on simulated users (SYNTHETIC data).

For each simulator scenario (``default``: segments differ in what and how they browse; ``behaviour``:
segments differ only in how they browse and convert, category interests independent of the segment)
it prepares the data, pretrains the single small LM (both cached in ``--out``, reused by later runs
with the same settings), trains the K-means baseline and HeTLM from it, and prints per scenario:
K before -> after, the cluster sizes, the training users HeTLM moved away from their K-means
cluster, the routed validation NLL and the segment ARI of both methods, and whether the targets of
issue 10 are met (HeTLM's NLL below K-means'; >= 10% of users moved; K shrinks when the planted
segments are fewer than K; on ``behaviour``, ARI >= K-means' + 0.2).

Example:
    python benchmarks/clustering_dynamics.py --out runs/clustering-dynamics
    python benchmarks/clustering_dynamics.py --scenarios behaviour --users 1200 --hetlm-option reassignment=none
    python benchmarks/clustering_dynamics.py --hetlm-option reassignment=online_em \
        --hetlm-option reassign_every_steps=40 --hetlm-option reassign_size_prior=1.0 --hetlm-option routing=likelihood
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import time
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from application.stages import StageRunner
from inference.loading import load_pretrained_lm
from modeling_hetlm.builders import tiny_encoder
from tokenization.examples import ExampleOptions, load_prepared
from tokenization.prepare import prepare
from tokenization.simulator import SCENARIOS, SimulatorConfig
from trainers.hetlm_training import train_hetlm
from trainers.kmeans_baseline import train_kmeans_baseline
from trainers.pretrain import pretrain_language_model
from trainers.training_arguments import ClusterwiseTrainingArguments, PretrainingArguments

MOVED_TARGET = 0.10
ARI_MARGIN = 0.2


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE a Python literal (else a string).

    Example:
        >>> parse_option("reassign_size_prior=2.0"), parse_option("reassignment=none")
        (('reassign_size_prior', 2.0), ('reassignment', 'none'))
    """
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"an option is written KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def option_tag(options: dict[str, Any]) -> str:
    """A folder-name tag for the HeTLM options of a run (``defaults`` without any).

    Example:
        >>> option_tag({"routing": "likelihood", "reassign_every_steps": 40})
        'routing=likelihood,reassign_every_steps=40'
    """
    return ",".join(f"{key}={value}" for key, value in options.items()) or "defaults"


def prepared_scenario(scenario: str, args: argparse.Namespace) -> tuple[DatasetDict, Any, Path]:
    """The simulated data of ``scenario`` and the pretrained single LM (stages cached in ``args.out``): the
    splits, the page tokenizer and the LM's folder."""
    runner = StageRunner(Path(args.out) / scenario)
    reader_options = {"num_users": args.users, "seed": args.seed, "scenario": scenario}
    runner.run(
        "data",
        reader_options,
        lambda out: prepare(
            "simulator", "simulator", out, ExampleOptions(seed=args.seed), reader_options=reader_options
        ),
    )
    splits, tokenizer, _ = load_prepared(runner.stage_dir("data"))
    lm_settings = PretrainingArguments(
        family="opt",
        size="small",
        num_train_epochs=args.pretrain_epochs,
        seed=args.seed,
        min_ratio=float(args.num_clusters),
        disable_tqdm=True,
    )
    runner.run(
        "lm-small",
        {**reader_options, "epochs": args.pretrain_epochs, "k": args.num_clusters},
        lambda out: {"loss": pretrain_language_model(splits, tokenizer, out, lm_settings).final_eval_loss},
    )
    return splits, tokenizer, runner.stage_dir("lm-small")


def run_scenario(scenario: str, args: argparse.Namespace, hetlm_options: dict[str, Any]) -> dict[str, Any]:
    """Data, single LM, K-means and HeTLM on one scenario; returns the figures printed."""
    runner = StageRunner(Path(args.out) / scenario)
    reader_options = {"num_users": args.users, "seed": args.seed, "scenario": scenario}
    splits, tokenizer, lm_dir = prepared_scenario(scenario, args)
    encoder = {}
    if args.encoder == "tiny":
        encoder_tokenizer, encoder_config = tiny_encoder(tokenizer)
        encoder = {"encoder_tokenizer": encoder_tokenizer, "encoder_config": encoder_config}
    common = {
        "num_clusters": args.num_clusters,
        "num_train_epochs": args.epochs,
        "seed": args.seed,
        "embedding_cache_dir": str(Path(args.out) / scenario / "embedding-cache"),
        "disable_tqdm": True,
    }

    def kmeans_stage(out: Path) -> dict[str, Any]:
        lm = load_pretrained_lm(lm_dir, tokenizer)
        history = train_kmeans_baseline(
            splits, tokenizer, lm, out, ClusterwiseTrainingArguments(**common), **encoder
        ).history
        figures = ("kmeans", "segment_ari", "routed_validation_nll", "routed_validation_target_nll")
        return {key: history[key] for key in (*figures, "likelihood_routing")}

    kmeans_options = {**reader_options, **common, "encoder": args.encoder, "figures": "likelihood-routing"}
    kmeans = runner.run("kmeans", kmeans_options, kmeans_stage)
    started = time.perf_counter()
    lm = load_pretrained_lm(lm_dir, tokenizer)
    hetlm = train_hetlm(
        splits,
        tokenizer,
        lm,
        Path(args.out) / scenario / f"hetlm-{option_tag(hetlm_options)}",
        ClusterwiseTrainingArguments(**common, **hetlm_options),
        **encoder,
    ).history
    seconds = time.perf_counter() - started
    last = hetlm["dynamics"][-1]
    moved_share = last["share_moved_since_kmeans"]
    k_before, k_after = hetlm["kmeans"]["k"], len(hetlm["kept_clusters"])
    planted = SimulatorConfig().num_segments
    targets = {
        "NLL below K-means": hetlm["routed_validation_nll"] < kmeans["routed_validation_nll"],
        f">= {MOVED_TARGET:.0%} moved": moved_share >= MOVED_TARGET,
        "K shrinks": k_after < k_before if planted < k_before else True,
    }
    if scenario == "behaviour":
        targets[f"ARI >= K-means + {ARI_MARGIN}"] = hetlm["segment_ari"] >= kmeans["segment_ari"] + ARI_MARGIN
    return {
        "scenario": scenario,
        "k_before": k_before,
        "k_after": k_after,
        "kmeans_sizes": kmeans["kmeans"]["sizes"],
        "hetlm_sizes": hetlm["cluster_sizes"],
        "moved": last["users_moved_since_kmeans"],
        "moved_share": moved_share,
        "kmeans_nll": kmeans["routed_validation_nll"],
        "hetlm_nll": hetlm["routed_validation_nll"],
        "kmeans_target_nll": kmeans["routed_validation_target_nll"],
        "hetlm_target_nll": hetlm["routed_validation_target_nll"],
        "kmeans_likelihood_routing": kmeans["likelihood_routing"],
        "hetlm_routing": hetlm["settings"]["routing"],
        "hetlm_other_routing": hetlm["other_routing"],
        "kmeans_ari": kmeans["segment_ari"],
        "hetlm_ari": hetlm["segment_ari"],
        "selector_pretraining_mean_max_probability": hetlm["selector_pretraining_mean_max_probability"],
        "dynamics": hetlm["dynamics"],
        "hetlm_seconds": seconds,
        "targets": targets,
    }


def print_result(result: dict[str, Any]) -> None:
    print(f"\n## scenario {result['scenario']}")
    print(f"K-means sizes {result['kmeans_sizes']}; HeTLM sizes {result['hetlm_sizes']}")
    print(
        f"{result['moved']} users moved ({result['moved_share']:.1%}); "
        f"K {result['k_before']} -> {result['k_after']}; "
        f"selector max-probability after pretraining {result['selector_pretraining_mean_max_probability']:.3f}"
    )
    likelihood = result["kmeans_likelihood_routing"]
    print(
        f"routed validation NLL (stream / next session): K-means {result['kmeans_nll']:.4f} / "
        f"{result['kmeans_target_nll']:.4f}, HeTLM ({result['hetlm_routing']} routing) {result['hetlm_nll']:.4f} / "
        f"{result['hetlm_target_nll']:.4f}; K-means predictors routed by likelihood "
        f"{likelihood['routed_validation_nll']:.4f} / {likelihood['routed_validation_target_nll']:.4f}"
    )
    other = result["hetlm_other_routing"]
    print(
        f"HeTLM routed the other way: {other['routed_validation_nll']:.4f} / "
        f"{other['routed_validation_target_nll']:.4f}, segment ARI {other['segment_ari']:.3f}"
    )
    print(
        f"segment ARI: K-means {result['kmeans_ari']:.3f} (routed by likelihood {likelihood['segment_ari']:.3f}), "
        f"HeTLM {result['hetlm_ari']:.3f}"
    )
    for row in result["dynamics"]:
        print(
            f"  epoch {row['epoch']:.2f}: K={row['num_clusters']} sizes {row['cluster_sizes']} "
            f"moved since K-means {row.get('users_moved_since_kmeans')}, "
            f"since last {row.get('users_moved_since_last')}, "
            f"validation NLL {row['validation_nll']}"
        )
    print(f"HeTLM stage: {result['hetlm_seconds']:.1f} s")
    print("targets: " + ", ".join(f"{name}: {'yes' if met else 'NO'}" for name, met in result["targets"].items()))


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the data and the single LM (shared with ``benchmarks/segment_oracle.py``, same cache)."""
    parser.add_argument("--out", default="runs/clustering-dynamics", help="work folder (data and LMs are reused)")
    parser.add_argument("--scenarios", nargs="+", default=["default", "behaviour"], choices=SCENARIOS)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--num-clusters", type=int, default=6)
    parser.add_argument("--epochs", type=float, default=3.0, help="epochs of HeTLM and of each K-means predictor")
    parser.add_argument("--pretrain-epochs", type=float, default=10.0)
    parser.add_argument("--encoder", choices=("minilm", "tiny"), default="minilm")
    parser.add_argument("--seed", type=int, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scenario_arguments(parser)
    parser.add_argument(
        "--hetlm-option",
        type=parse_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a ClusterwiseTrainingArguments field for HeTLM (repeatable), e.g. reassignment=none",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = [run_scenario(scenario, args, dict(args.hetlm_option)) for scenario in args.scenarios]
    for result in results:
        print_result(result)
    tag = option_tag(dict(args.hetlm_option))
    summary = Path(args.out) / f"clustering_dynamics-{'-'.join(args.scenarios)}-{tag}.json"
    summary.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nfigures: {summary}")


if __name__ == "__main__":
    main()
