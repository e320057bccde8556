"""Is a segment ARI within reach of likelihood clustering? One predictor per TRUE segment (SYNTHETIC data).

For each simulator scenario (data and single LM cached as by ``benchmarks/clustering_dynamics.py``, same
flags) it fine-tunes one copy of the single LM per true segment (the data's ``segment`` column), on the
training users of that segment only, exactly as the K-means baseline fine-tunes one per cluster, and then
assigns every training, validation and test user to the segment predictor giving it the lowest summed NLL,
scored on (a) its input sessions (what routing by likelihood sees), (b) its target session, (c) both. The
adjusted Rand index of each assignment against the true segments is the best a clustering by these predictors'
likelihood can hope for: if it is low on users the predictors never trained on (validation, test), EM has
nothing to find (on the training users it is inflated: the predictors were fine-tuned on those very streams).
Also printed: K-means' ARI (K = the number of segments, on the embeddings), and the routed validation NLL when
each user is routed to its own true segment's predictor and by likelihood.

Example:
    python benchmarks/segment_oracle.py --out runs/clustering-dynamics --scenarios behaviour --users 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from inference.loading import load_pretrained_lm
from modeling_hetlm.builders import tiny_encoder
from trainers.data import BrowsingCollator
from trainers.hetlm_training import last_sessions_only, route_and_score
from trainers.initialization import start_clusterwise_training
from trainers.pretrain import train_language_model
from trainers.reassignment import score_users
from trainers.training_arguments import ClusterwiseTrainingArguments

# The data and LM stages of the sibling script (benchmarks/ is a folder of scripts, not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from clustering_dynamics import add_scenario_arguments, prepared_scenario  # noqa: E402


def segment_codes(users) -> np.ndarray:
    """Each user's true segment as 0..S-1 (in sorted order of the segment names)."""
    names = np.asarray(users["segment"])
    return np.unique(names, return_inverse=True)[1]


def oracle_assignments(model, users) -> dict[str, np.ndarray]:
    """Each user's argmin-NLL segment predictor, scored on its input sessions, its target and its whole stream."""
    collator = BrowsingCollator(pad_token_id=model.config.pad_token_id)
    active = torch.ones(model.config.num_clusters, dtype=torch.bool)
    columns = users.select_columns(["input_ids", "labels", "user_embeddings"])
    target = score_users(model, last_sessions_only(columns, model), collator, active)
    stream = score_users(model, columns, collator, active)
    model.config.routing = "likelihood"
    history = route_and_score(model, columns)[0]
    return {"input_sessions": history, "target": target.argmin(dim=1).numpy(), "stream": stream.argmin(dim=1).numpy()}


def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    splits, tokenizer, lm_dir = prepared_scenario(scenario, args)
    encoder = {}
    if args.encoder == "tiny":
        encoder_tokenizer, encoder_config = tiny_encoder(tokenizer)
        encoder = {"encoder_tokenizer": encoder_tokenizer, "encoder_config": encoder_config}
    num_segments = len(set(splits["train"]["segment"]))
    settings = ClusterwiseTrainingArguments(
        num_clusters=num_segments,
        num_train_epochs=args.epochs,
        seed=args.seed,
        embedding_cache_dir=str(Path(args.out) / scenario / "embedding-cache"),
        disable_tqdm=True,
    )
    lm = load_pretrained_lm(lm_dir, tokenizer)
    start = start_clusterwise_training(splits, tokenizer, lm, settings, routing="likelihood", **encoder)
    model, users = start.model, start.users
    train_latest, validation = start.train_users_latest, users["validation"]
    row_segments = segment_codes(users["train"])
    validation_segments = segment_codes(validation)
    for segment in range(num_segments):
        train_language_model(
            model.predictors[segment],
            users["train"].select(np.flatnonzero(row_segments == segment)),
            validation.select(np.flatnonzero(validation_segments == segment)),
            tokenizer,
            Path(args.out) / scenario / "oracle-trainer" / f"segment-{segment}",
            settings,
            save_strategy="no",
        )
    model.eval()
    result: dict[str, Any] = {"scenario": scenario, "segments": num_segments}
    for name, split in (("train", train_latest), ("validation", validation), ("test", users.get("test"))):
        if split is None:
            continue
        truth = segment_codes(split)
        assigned = oracle_assignments(model, split)
        result[f"{name}_users"] = len(split)
        for score, clusters in assigned.items():
            result[f"{name}_oracle_ari_{score}"] = float(adjusted_rand_score(truth, clusters))
    result["kmeans_ari_train"] = float(adjusted_rand_score(segment_codes(train_latest), start.clusters.labels))
    columns = validation.select_columns(["input_ids", "labels", "user_embeddings"])
    result["validation_nll_routed_by_likelihood"] = float(route_and_score(model, columns)[1].mean())
    collator = BrowsingCollator(pad_token_id=model.config.pad_token_id)
    per_segment = score_users(model, columns, collator, torch.ones(num_segments, dtype=torch.bool))
    tokens = torch.tensor([sum(label != -100 for label in row[1:]) for row in columns["labels"]], dtype=torch.float32)
    own = per_segment[torch.arange(len(columns)), torch.as_tensor(validation_segments)] / tokens
    result["validation_nll_routed_to_true_segment"] = float(own.mean())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scenario_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    results = [run_scenario(scenario, args) for scenario in args.scenarios]
    for result in results:
        print(f"\n## scenario {result['scenario']} ({result['segments']} true segments)")
        for key, value in result.items():
            if key not in ("scenario", "segments"):
                print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    summary = Path(args.out) / f"segment_oracle-{'-'.join(args.scenarios)}.json"
    summary.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures: {summary}")


if __name__ == "__main__":
    main()
