"""Which partition of the users does the likelihood prefer? Fixed partitions compared on one budget (SYNTHETIC data).

HeTLM's objective (appendix A.1) is the NLL of the users under their cluster's predictor. If the true segments were
a clearly better optimum of it than K-means' clusters, EM from K-means would have somewhere to go. This script
measures the slope: for each simulator scenario (data and single LM cached as by ``benchmarks/clustering_dynamics.py``,
same flags) it fixes several partitions of the training users,

- ``kmeans``: K-means on the encoder's embeddings (HeTLM's start and the K-means baseline's clusters),
- ``segments``: the true segments (the simulator's ``segment`` column),
- ``browsing``: K-means on each user's browsing statistics
  (:func:`~trainers.initial_partition.browsing_statistics`: pages per session, the
  share of pages seen before in the stream, the share of each page group), which know nothing of pages' names,

each at K = the number of segments and at ``--num-clusters``, fine-tunes one copy of the single LM per cluster for
``--epochs`` (:func:`~trainers.initial_partition.fine_tune_partition`, as the K-means baseline does), routes the
validation and test users by likelihood, and prints their routed NLL per token and ARI against the segments
(:func:`~crossfit_em.routed_figures`) and the partition's ARI on the training users.

Example:
    python benchmarks/partition_likelihood.py --out runs/clustering-dynamics --scenarios behaviour --users 1000 \
        --pretrain-epochs 4 --epochs 1
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from inference.loading import load_pretrained_lm
from trainers.initial_partition import browsing_statistics, fine_tune_partition, page_groups
from trainers.initialization import start_clusterwise_training
from trainers.training_arguments import ClusterwiseTrainingArguments

# The data and LM stages of the sibling scripts (benchmarks/ is a folder of scripts, not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from clustering_dynamics import add_scenario_arguments, prepared_scenario  # noqa: E402
from crossfit_em import routed_figures  # noqa: E402
from segment_oracle import segment_codes  # noqa: E402


def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    splits, tokenizer, lm_dir = prepared_scenario(scenario, args)
    num_segments = len(set(splits["train"]["segment"]))
    starts = {}
    for k in sorted({num_segments, args.num_clusters}):
        settings = ClusterwiseTrainingArguments(
            num_clusters=k,
            num_train_epochs=args.epochs,
            seed=args.seed,
            embedding_cache_dir=str(Path(args.out) / scenario / "embedding-cache"),
            disable_tqdm=True,
        )
        lm = load_pretrained_lm(lm_dir, tokenizer)
        starts[k] = (start_clusterwise_training(splits, tokenizer, lm, settings, routing="likelihood"), settings)
    start = starts[num_segments][0]
    single_lm, latest = copy.deepcopy(start.model.predictors[0].state_dict()), start.train_users_latest
    truth = segment_codes(latest)
    statistics = browsing_statistics(latest["input_ids"], page_groups(tokenizer), start.model.config.bos_token_id)
    partitions = [("segments", num_segments, truth)]
    for k, (start, _) in starts.items():
        partitions.append(("kmeans", k, start.clusters.labels))
        partitions.append(("browsing", k, KMeans(k, n_init=10, random_state=args.seed).fit_predict(statistics)))
    result: dict[str, Any] = {"scenario": scenario, "segments": num_segments, "partitions": []}
    for name, k, labels in partitions:
        start, settings = starts[k]
        folder = Path(args.out) / scenario / "partition-likelihood" / f"{name}-{k}"
        fine_tune_partition(start.model, start.users["train"], labels, single_lm, tokenizer, settings, folder)
        entry = {"partition": name, "k": k, "train_ari": float(adjusted_rand_score(truth, labels))}
        entry.update(routed_figures(start.model, start))
        result["partitions"].append(entry)
        print(f"{scenario}: {json.dumps(entry)}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scenario_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    results = [run_scenario(scenario, args) for scenario in args.scenarios]
    for result in results:
        print(f"\n## scenario {result['scenario']} ({result['segments']} true segments; one thread)")
        print("| partition | K | train ARI | validation NLL | test NLL | test next-session NLL | test ARI |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for entry in result["partitions"]:
            print(
                f"| {entry['partition']} | {entry['k']} | {entry['train_ari']:.3f} | {entry['validation_nll']:.4f} | "
                f"{entry['test_nll']:.4f} | {entry['test_target_nll']:.4f} | {entry['test_ari']:.3f} |"
            )
    summary = Path(args.out) / f"partition_likelihood-{'-'.join(args.scenarios)}.json"
    summary.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures: {summary}")


if __name__ == "__main__":
    main()
