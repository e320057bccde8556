"""Seconds the experiment's sampled forecasts take per model, on a finished run's test users.

For each model folder named (a run's stage folders: ``lm-small``, ``hetlm-a5-b9``, ``kmeans-k6``...) it loads the
model, builds the evaluation's forecaster (sampled decoding, S sessions per user, sessions capped at the data's
longest + 1, batches of ``--batch-size`` users) and times ``forecast`` over the first ``--users`` test users: the
prompts, HeTLM's routing (the encoder for embedding routings, the predictors' likelihood otherwise), the ranking
pass and the sampling. Torch threads are pinned (``--threads``, default 1).

Example:
    python benchmarks/forecast_speed.py runs/default lm-small hetlm-a5-b9 kmeans-k6
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from evaluation.model_forecaster import ModelForecaster
from inference.loading import load_model_folder
from inference.session_generator import ModelSessionGenerator
from tokenization.examples import load_prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished `hetlm experiment` folder")
    parser.add_argument("models", nargs="+", help="model folders inside the run")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits, tokenizer, summary = load_prepared(args.run / "data")
    users = [list(sessions) for sessions in splits["test"]["input_sessions"][: args.users]]
    sample_tokens = summary["session_length_cutoff"] + 1
    print(f"{len(users)} test users, {args.num_samples} samples each, {args.threads} thread(s)")
    for name in args.models:
        model, model_tokenizer = load_model_folder(args.run / name, "cpu", tokenizer=tokenizer)
        generator = ModelSessionGenerator(model, model_tokenizer, max_new_tokens=40)
        forecaster = ModelForecaster(generator, "sampled", args.num_samples, max_new_tokens=sample_tokens)
        torch.manual_seed(0)
        started = time.perf_counter()
        for start in range(0, len(users), args.batch_size):
            forecaster.forecast(users[start : start + args.batch_size])
        seconds = time.perf_counter() - started
        print(f"{name}: {seconds:.1f} s ({len(users) / seconds:.1f} users/s)", flush=True)


if __name__ == "__main__":
    main()
