"""How fast the metric functions score many users: seconds per metric family and users per second.

Synthetic data: a 1,100-page vocabulary (with ``cart`` and ``purchase``) drawn with Zipf-like
popularity, generated and actual next sessions of 1-30 pages (geometric, mean about 6), three input
sessions per user, a few ``[UNK]`` tokens in the generations, and for the ranking metrics a float32
score matrix [users, vocabulary + 4 specials].

Usage:
    python benchmarks/score_throughput.py            # 100,000 users
    python benchmarks/score_throughput.py --users 20000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from evaluation.bleu import bleu_score
from evaluation.outcome_metrics import outcome_scores
from evaluation.page_metrics import page_generation_scores
from evaluation.ranking import ranking_scores
from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE, SPECIAL_TOKENS, UNK_TOKEN

NUM_PAGES = 1_100


def synthetic_sessions(num_users: int, seed: int) -> dict:
    """Random generated / actual / input page lists and ranking scores for ``num_users`` users."""
    rng = np.random.default_rng(seed)
    pages = np.array([OUTCOME_CART, OUTCOME_PURCHASE, *(f"/page/{i}" for i in range(NUM_PAGES - 2))], dtype=object)
    popularity = 1.0 / np.arange(1, NUM_PAGES + 1)
    popularity /= popularity.sum()

    def sessions(count: int) -> list[list[str]]:
        lengths = np.minimum(rng.geometric(1 / 6, size=count), 30)
        flat = rng.choice(pages, size=int(lengths.sum()), p=popularity).tolist()
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [flat[start:end] for start, end in zip(bounds[:-1], bounds[1:])]

    generated = sessions(num_users)
    for user in rng.choice(num_users, size=num_users // 20, replace=False):
        generated[user].append(UNK_TOKEN)
    input_sessions = sessions(3 * num_users)
    inputs = [sum(input_sessions[3 * user : 3 * user + 3], []) for user in range(num_users)]
    vocabulary_size = len(SPECIAL_TOKENS) + NUM_PAGES
    return {
        "generated": generated,
        "actual": sessions(num_users),
        "inputs": inputs,
        "vocabulary": set(pages.tolist()),
        "scores": rng.standard_normal((num_users, vocabulary_size), dtype=np.float32),
        "targets": rng.integers(len(SPECIAL_TOKENS), vocabulary_size, size=num_users),
    }


def timed(label: str, num_users: int, score: Callable[[], object]) -> float:
    start = time.perf_counter()
    score()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:7.2f} s  {num_users / seconds:12,.0f} users/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    data = synthetic_sessions(args.users, args.seed)
    mean_length = np.mean([len(pages) for pages in data["actual"]])
    print(
        f"{args.users:,} synthetic users, {NUM_PAGES:,} pages, mean session length {mean_length:.1f}, "
        f"data built in {time.perf_counter() - start:.1f} s"
    )
    generated, actual = data["generated"], data["actual"]
    special_ids = list(range(len(SPECIAL_TOKENS)))
    paper_table = [
        timed(
            "page generation (10 figures)",
            args.users,
            lambda: page_generation_scores(generated, actual, data["inputs"], data["vocabulary"]),
        ),
        timed("outcomes (10 figures)", args.users, lambda: outcome_scores(generated, actual)),
        timed("BLEU, sentence mean (paper)", args.users, lambda: bleu_score(generated, actual)),
    ]
    timed("BLEU, corpus", args.users, lambda: bleu_score(generated, actual, level="corpus"))
    timed(
        "ranking @5/10/20 (scores [N, V])",
        args.users,
        lambda: ranking_scores(data["scores"], data["targets"], exclude_ids=special_ids),
    )
    total = sum(paper_table)
    print(f"{'paper table (page + outcomes + BLEU)':<34} {total:7.2f} s  {args.users / total:12,.0f} users/s")


if __name__ == "__main__":
    main()
