"""Does cross-fitted EM find the behaviour segments? Hard EM where no predictor scores a user it saw (SYNTHETIC).

HeTLM's EM scores each training user under predictors fine-tuned on that very user's stream, so any starting
partition holds itself (``benchmarks/segment_oracle.py``: predictors of the true segments give ARI 1.00 on their
own training users, 0.35 on unseen ones). Cross-fitting removes that bias: the training users are split in two
halves at random; each round, for each half, one copy of the single LM per cluster is fine-tuned on that half's
members of the cluster, and those predictors score the users of the *other* half (summed NLL of their latest
stream, :func:`~trainers.reassignment.score_users`); every user then takes ``argmin_k NLL_k - w log share_k``
(:func:`~trainers.reassignment.classification_em_labels`). Started from K-means, it prints per round the users
moved, the cluster sizes, the ARI of the labels against the true segments and each cluster's gain
(:func:`~trainers.reassignment.cluster_gains`: nats per user over its best other cluster). At the end one predictor
per cluster is fine-tuned on all its members, as the K-means baseline does, for both the K-means labels and the
final EM labels, and the validation and test users are routed by likelihood: their routed NLL per token and ARI.
Data and single LM are cached as by ``benchmarks/clustering_dynamics.py`` (same flags).

Example:
    python benchmarks/crossfit_em.py --out runs/clustering-dynamics --scenarios behaviour --users 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from inference.loading import load_pretrained_lm
from trainers.data import BrowsingCollator
from trainers.hetlm_training import route_and_score
from trainers.initial_partition import fine_tune_partition
from trainers.initialization import start_clusterwise_training
from trainers.reassignment import classification_em_labels, cluster_gains, score_users
from trainers.training_arguments import ClusterwiseTrainingArguments

# The data and LM stages of the sibling scripts (benchmarks/ is a folder of scripts, not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from clustering_dynamics import add_scenario_arguments, prepared_scenario  # noqa: E402
from segment_oracle import segment_codes  # noqa: E402


def routed_figures(model, start) -> dict[str, float]:
    """Validation and test users routed by likelihood: routed NLL per token (whole stream, and ``_target``: the next
    session alone) and ARI against the true segments."""
    figures = {}
    for name in ("validation", "test"):
        split = start.users[name].select_columns(["input_ids", "labels", "user_embeddings", "segment"])
        clusters, nll = route_and_score(model, split)
        figures[f"{name}_nll"] = float(nll.mean())
        figures[f"{name}_target_nll"] = float(route_and_score(model, split, target_only=True)[1].mean())
        figures[f"{name}_ari"] = float(adjusted_rand_score(segment_codes(split), clusters))
    return figures


def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    splits, tokenizer, lm_dir = prepared_scenario(scenario, args)
    settings = ClusterwiseTrainingArguments(
        num_clusters=args.num_clusters,
        num_train_epochs=args.round_epochs,
        seed=args.seed,
        embedding_cache_dir=str(Path(args.out) / scenario / "embedding-cache"),
        disable_tqdm=True,
    )
    start = start_clusterwise_training(
        splits, tokenizer, load_pretrained_lm(lm_dir, tokenizer), settings, routing="likelihood"
    )
    model, folder = start.model, Path(args.out) / scenario / "crossfit-em"
    rows, single_lm = start.users["train"], copy.deepcopy(model.predictors[0].state_dict())

    def fine_tune(labels: np.ndarray, users: np.ndarray, name: str) -> None:
        fine_tune_partition(model, rows, labels, single_lm, tokenizer, settings, folder / name, users=users)

    latest = start.train_users_latest.select_columns(["input_ids", "labels", "user_embeddings"])
    truth, kmeans = segment_codes(start.train_users_latest), start.clusters.labels.copy()
    users, active = len(kmeans), torch.ones(model.config.num_clusters, dtype=torch.bool)
    everyone, collator = np.ones(users, dtype=bool), BrowsingCollator(pad_token_id=model.config.pad_token_id)
    half = np.random.default_rng(args.seed).integers(0, 2, users)
    result: dict[str, Any] = {"scenario": scenario, "train_users": users, "rounds": []}
    result["kmeans_train_ari"] = float(adjusted_rand_score(truth, kmeans))
    fine_tune(kmeans, everyone, "kmeans")
    result["kmeans"] = routed_figures(model, start)
    labels = kmeans
    for round_number in range(args.rounds):
        scores = torch.full((users, len(active)), float("inf"))
        for part in (0, 1):
            fine_tune(labels, half == part, f"round-{round_number}-{part}")
            others = np.flatnonzero(half != part)
            scores[torch.as_tensor(others)] = score_users(model, latest.select(others), collator, active)
        seen = torch.ones(users, dtype=torch.bool)
        new = classification_em_labels(scores, seen, torch.as_tensor(labels), active, args.size_prior).numpy()
        gains = cluster_gains(scores, seen, torch.as_tensor(new), active)
        result["rounds"].append(
            {
                "moved": int((new != labels).sum()),
                "moved_since_kmeans": int((new != kmeans).sum()),
                "sizes": np.bincount(new, minlength=len(active)).tolist(),
                "train_ari": float(adjusted_rand_score(truth, new)),
                "gains": [None if gain != gain else round(float(gain), 2) for gain in gains.tolist()],
            }
        )
        labels = new
        print(f"{scenario} round {round_number}: {json.dumps(result['rounds'][-1])}", flush=True)
    fine_tune(labels, everyone, "final")
    result["crossfit_em"] = routed_figures(model, start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scenario_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="cross-fitted EM rounds")
    parser.add_argument(
        "--round-epochs", type=float, default=1.0, help="fine-tuning epochs of each round's predictors"
    )
    parser.add_argument("--size-prior", type=float, default=1.0, help="w of -w log share_k (1: the mixture's own)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    results = [run_scenario(scenario, args) for scenario in args.scenarios]
    for result in results:
        print(f"\n## scenario {result['scenario']} ({result['train_users']} training users, one thread)")
        print(f"K-means: train ARI {result['kmeans_train_ari']:.3f}, routed by likelihood {result['kmeans']}")
        for number, entry in enumerate(result["rounds"]):
            print(f"round {number}: {entry}")
        print(f"cross-fitted EM, routed by likelihood: {result['crossfit_em']}")
    summary = Path(args.out) / f"crossfit_em-{'-'.join(args.scenarios)}.json"
    summary.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures: {summary}")


if __name__ == "__main__":
    main()
