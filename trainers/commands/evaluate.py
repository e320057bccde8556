"""``hetlm evaluate``: score models and simple baselines on a prepared test set.

Each MODEL is a saved model folder (a HeTLM model or a plain causal LM over page ids) or the
name of a simple baseline (``repeat-last``, ``most-popular``, ``markov``, fitted on the train
split). For each one, the next session of every test user is generated (batched, with a progress
bar) and scored per cluster and Combined; ``OUT/<name>/`` gets ``report.md``, ``report.csv``,
``report.json``, ``generations.jsonl`` and PNG plots (plus ``training.png`` when a training log is
found). With ``--baseline`` the baseline is scored too and ``OUT/comparison.{md,csv,json}`` sets
every model's Combined row beside its composite scores against the baseline. The Combined
table(s) are printed.

Example:
    $ hetlm evaluate repeat-last most-popular markov --data runs/default/data --baseline most-popular
    $ hetlm evaluate runs/default/hetlm --data runs/default/data --baseline runs/default/single-lm
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from evaluation.baselines import BASELINES, fit_baseline
from evaluation.model_generator import ModelSessionGenerator
from evaluation.outcome_metrics import OUTCOME_METRICS
from evaluation.page_metrics import PAGE_MEAN_METRICS
from evaluation.plots import load_training_log, plot_report, plot_training_log
from evaluation.report import EvaluationReport, SessionGenerator, evaluate_generator, save_comparison
from modeling_hetlm import HeTLMForBrowsing
from tokenization.constants import SPECIAL_TOKENS
from tokenization.examples import load_prepared

NAME = "evaluate"
HELP = "Score models and simple baselines on a prepared test set: per-cluster and Combined tables, plots."

logger = logging.getLogger(__name__)

TRAINING_LOG_NAMES = ("trainer_state.json", "training_log.jsonl", "training_log.json", "log_history.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``evaluate`` options."""
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help=f"A saved model folder or a baseline name ({', '.join(BASELINES)}); several are compared.")
    parser.add_argument("--data", required=True, help="A prepared dataset folder (from `hetlm prepare`).")
    parser.add_argument("--baseline", help="A baseline name or model folder to compute composite scores against.")
    parser.add_argument("--out", help="Output folder (default: DATA/../evaluation).")
    parser.add_argument("--split", default="test", help="The split to score (default: test).")
    parser.add_argument("--batch-size", type=int, default=64, help="Users per generation batch (default: 64).")
    parser.add_argument("--max-users", type=int, help="Score only the first N users of the split.")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="Most tokens a model generates for the next session (default: 64).")
    parser.add_argument("--markov-sample", action="store_true",
                        help="The markov baseline samples each user's session (seeded) instead of greedy decoding; "
                             "its report is named markov-sampled.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of sampled generation (default: 0).")
    parser.add_argument("--training-log", help="A training log (JSON list, JSONL or trainer_state.json) to plot; "
                                               "default: one found in each model folder.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="Device for models (default: cuda when available, else cpu).")
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")


def load_model_generator(model_dir: Path, fallback_tokenizer: PreTrainedTokenizerBase, args: argparse.Namespace) -> ModelSessionGenerator:
    """Load a saved HeTLM model or causal LM (and its page tokenizer, else the data's) as a session generator."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") == "hetlm":
        model = HeTLMForBrowsing.from_pretrained(model_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.to(args.device)
    tokenizer = fallback_tokenizer
    if (model_dir / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if tokenizer.get_vocab() != fallback_tokenizer.get_vocab():
            logger.warning("%s: the model's page tokenizer differs from the data's; pages are encoded with the "
                           "model's and Val-P counts the data's pages as valid", model_dir)
    return ModelSessionGenerator(model, tokenizer, max_new_tokens=args.max_new_tokens)


def build_generator(spec: str, train: Dataset, tokenizer: PreTrainedTokenizerBase, args: argparse.Namespace) -> SessionGenerator:
    """A baseline fitted on ``train`` when ``spec`` names one, else the model saved in folder ``spec``."""
    if spec in BASELINES:
        options = {"do_sample": args.markov_sample, "seed": args.seed} if spec == "markov" else {}
        return fit_baseline(spec, train, **options)
    model_dir = Path(spec)
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"hetlm evaluate: {spec!r} is neither a baseline ({', '.join(BASELINES)}) "
                         "nor a model folder with a config.json")
    torch.manual_seed(args.seed)
    return load_model_generator(model_dir, tokenizer, args)


def _find_training_log(spec: str, args: argparse.Namespace) -> Path | None:
    if spec in BASELINES:
        return None
    if args.training_log:
        return Path(args.training_log)
    folder = Path(spec)
    if not folder.is_dir():
        return None
    return next((folder / name for name in TRAINING_LOG_NAMES if (folder / name).is_file()), None)


def _unique_name(spec: str, taken: set[str], args: argparse.Namespace) -> str:
    if spec == "markov" and args.markov_sample:
        base = "markov-sampled"
    else:
        base = spec if spec in BASELINES else Path(spec).resolve().name
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}-{counter}", counter + 1
    return name


def run(args: argparse.Namespace) -> int:
    """Score every MODEL (and the baseline), write the reports and print the Combined tables."""
    dataset, tokenizer, summary = load_prepared(args.data)
    if args.split not in dataset:
        raise SystemExit(f"hetlm evaluate: {args.data} has no split {args.split!r} (has {sorted(dataset)})")
    test = dataset[args.split]
    if args.max_users is not None:
        if args.max_users < 1:
            raise SystemExit(f"hetlm evaluate: --max-users must be at least 1, got {args.max_users}")
        test = test.select(range(min(args.max_users, len(test))))
    vocabulary = set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS)
    out_dir = Path(args.out) if args.out else Path(args.data).resolve().parent / "evaluation"
    out_dir.mkdir(parents=True, exist_ok=True)

    specs = list(dict.fromkeys(args.models))
    if args.baseline and args.baseline not in specs:
        specs.append(args.baseline)
    reports: dict[str, EvaluationReport] = {}
    for spec in specs:
        name = _unique_name(spec, {report.name for report in reports.values()}, args)
        generator = build_generator(spec, dataset["train"], tokenizer, args)
        report = evaluate_generator(generator, test, batch_size=args.batch_size, vocabulary=vocabulary,
                                    name=name, progress=not args.no_progress)
        report.metadata = {"model": spec, "data": str(args.data), "split": args.split,
                           "synthetic": bool(summary.get("synthetic", False))}
        model_out = out_dir / name
        report.save(model_out)
        plot_report(report.rows, model_out, PAGE_MEAN_METRICS, OUTCOME_METRICS, name)
        training_log = _find_training_log(spec, args)
        if training_log is not None:
            plot_training_log(load_training_log(training_log), model_out / "training.png")
        logger.info("%s: report written to %s", name, model_out)
        reports[spec] = report

    baseline = reports[args.baseline] if args.baseline else None
    text = save_comparison(list(reports.values()), out_dir, baseline)
    synthetic = " (synthetic data: simulator)" if summary.get("synthetic") else ""
    print(f"# Combined results on {args.data} [{args.split}, {len(test)} users]{synthetic}\n\n{text}")
    print(f"\nReports written to {out_dir}")
    return 0
