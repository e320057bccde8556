"""``hetlm evaluate``: score models and simple baselines on a prepared test set.

Each MODEL is a saved model folder (a HeTLM model or a plain causal LM over page ids) or the
name of a simple baseline (``repeat-last``, ``most-popular``, ``markov``, ``personal-popular``,
``sknn``, fitted on the train split). For each one, every test user's next session is forecast (batched, with a
progress bar):
a model samples ``--num-samples`` sessions per user and its predicted set and outcomes are decided
under them, with thresholds tuned on the validation split (``--decoding sampled``, the default: each
user's expected-IoU-optimal pages, ``--page-rule``; also scored as ``MODEL+history``, the history-aware
decoding that mixes the samples with the user's own input sessions, unless ``--no-history-blend``) or
it decodes one greedy session (``--decoding greedy``, the paper's); outcome probabilities and the ranking of the next
session's first page are scored too. ``OUT/<name>/`` gets ``report.md``, ``report.csv``,
``report.json``, ``generations.jsonl`` and PNG plots (``reliability.png``; ``training.png`` when a
training log is found). With ``--baseline`` the baseline is scored too and ``OUT/comparison.{md,csv,json}`` sets
every model's Combined row beside its composite scores, 95% bootstrap intervals and paired tests
against the baseline. The Combined table(s) are printed and each HeTLM folder's model card gets its
Combined metrics.

Example:
    $ hetlm evaluate repeat-last most-popular markov --data runs/default/data --baseline most-popular
    $ hetlm evaluate runs/default/hetlm --data runs/default/data --baseline runs/default/single-lm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evaluation.baselines import BASELINES
from evaluation.decisions import PAGE_RULES

from .device_option import add_device_option, resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``evaluate`` options."""
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help=f"A saved model folder or a baseline name ({', '.join(BASELINES)}); several are compared.",
    )
    parser.add_argument("--data", required=True, help="A prepared dataset folder (from `hetlm prepare`).")
    parser.add_argument("--baseline", help="A baseline name or model folder to compute composite scores against.")
    parser.add_argument("--out", help="Output folder (default: DATA/../evaluation).")
    parser.add_argument("--split", default="test", help="The split to score (default: test).")
    parser.add_argument("--batch-size", type=int, default=64, help="Users per generation batch (default: 64).")
    parser.add_argument("--max-users", type=int, help="Score only the first N users of the split.")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=64,
        help="Most tokens a model generates for the next session (default: 64).",
    )
    parser.add_argument(
        "--decoding",
        choices=("sampled", "greedy"),
        default="sampled",
        help="sampled: S sessions per user, page probabilities = shares of samples, outcome "
        "probabilities the model's own along them, the "
        "predicted set by thresholds tuned on the validation split (default); greedy: one "
        "greedy session per user (the paper's).",
    )
    parser.add_argument("--num-samples", type=int, default=16, help="S, sessions sampled per user (default: 16).")
    parser.add_argument(
        "--page-rule",
        choices=PAGE_RULES,
        default="expected-iou",
        help="How sampled decoding chooses each user's pages: expected-iou, the set maximising the user's "
        "expected IoU under the samples (default); threshold, the pages with P >= one tau tuned on validation.",
    )
    parser.add_argument(
        "--no-history-blend",
        action="store_true",
        help="Skip the history-aware decoding: by default each sampled model is also scored (as "
        "MODEL+history) with its samples mixed with the user's own input sessions, the weight tuned on "
        "the validation split.",
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (default: 1.0).")
    parser.add_argument(
        "--top-k",
        type=int,
        default=0,
        help="Sample among the k most likely pages only (default: 0, the whole distribution).",
    )
    parser.add_argument(
        "--markov-sample",
        action="store_true",
        help="The markov baseline draws each user's pages from where the chain goes from its "
        "last page (seeded) instead of taking the most likely ones; "
        "its report is named markov-sampled.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of sampled generation (default: 0).")
    parser.add_argument(
        "--training-log",
        help="A training log (JSON list, JSONL or trainer_state.json) to plot; "
        "default: one found in each model folder.",
    )
    add_device_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")


def run(args: argparse.Namespace) -> int:
    """Score every MODEL (and the baseline), write the reports and print the Combined tables."""
    from evaluation.batch_evaluation import EvaluationOptions, evaluate_models
    from evaluation.glossary import without_glossary
    from evaluation.model_cards import write_metrics_to_model_cards

    options = EvaluationOptions(
        split=args.split,
        batch_size=args.batch_size,
        max_users=args.max_users,
        max_new_tokens=args.max_new_tokens,
        decoding=args.decoding,
        num_samples=args.num_samples,
        page_rule=args.page_rule,
        history_blend=not args.no_history_blend,
        temperature=args.temperature,
        top_k=args.top_k,
        markov_sample=args.markov_sample,
        seed=args.seed,
        training_log=args.training_log,
        device=resolve_device(args.device),
        progress=not args.no_progress,
    )
    out_dir = Path(args.out) if args.out else Path(args.data).resolve().parent / "evaluation"
    reports = evaluate_models(args.models, args.data, out_dir, args.baseline, options)
    write_metrics_to_model_cards(reports)
    synthetic = " (synthetic data: simulator)" if next(iter(reports.values())).metadata["synthetic"] else ""
    users = len(next(iter(reports.values())).user_ids)
    text = (out_dir / "comparison.md").read_text(encoding="utf-8").removeprefix("# Combined results\n\n")
    print(f"# Combined results on {args.data} [{args.split}, {users} users]{synthetic}\n\n{without_glossary(text)}")
    print(f"\nReports written to {out_dir} (the abbreviations are defined at the top of comparison.md)")
    return 0
