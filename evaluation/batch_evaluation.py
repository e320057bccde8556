"""Score several models and simple baselines on a prepared test set, as ``hetlm evaluate`` does.

Each spec is a saved model folder (a HeTLM model or a plain causal LM over page ids) or the name of
a simple baseline (``repeat-last``, ``most-popular``, ``markov``, ``personal-popular``, ``sknn``,
fitted on the train split). Each one
forecasts every test user (:mod:`evaluation.forecasts`): a model decodes by sampling S sessions per
user (``decoding="sampled"``, the default; thresholds tuned on the validation split, which the same
model forecasts first) or greedily (``decoding="greedy"``, the paper's), and ranks the next session's
first page by its next-token distribution; a baseline gives its session. A sampled model's pages are
each user's expected-IoU-optimal set (``page_rule="expected-iou"``, the default) or those above one tuned
threshold (``"threshold"``); with ``history_blend`` (the default) the same samples are also scored by the
history-aware decoding (:mod:`evaluation.history_blend`: the samples mixed with the user's own input
sessions, the weight tuned on validation) as a second report, ``<name>+history``, so the pure model's figures
stay apart. Scores are per cluster and Combined; ``OUT/<name>/`` gets ``report.md``, ``report.csv``,
``report.json``, ``generations.jsonl``, PNG plots, ``reliability.png`` (the outcome probabilities'
calibration) and ``training.png`` when a training log is found. With a baseline,
``OUT/comparison.{md,csv,json}`` sets every model's Combined row beside its composite scores against it.

Example:
    >>> reports = evaluate_models(["repeat-last", "markov"], "runs/default/data", "runs/default/evaluation",
    ...                           baseline="repeat-last")  # doctest: +SKIP
    >>> reports["markov"].combined["HR"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from inference.loading import load_model_folder
from inference.session_generator import ModelSessionGenerator
from tokenization.constants import SPECIAL_TOKENS
from tokenization.examples import load_prepared
from tokenization.page_rules import URL_NORMALIZATION_KEY, PageRules, describe_outcome_pages

from .baselines import BASELINES, fit_baseline
from .decisions import PAGE_RULES
from .forecasts import BaselineForecaster, Forecaster
from .history_blend import HISTORY_SUFFIX, HISTORY_WEIGHTS
from .model_forecaster import DECODINGS, ModelForecaster
from .outcome_metrics import OUTCOME_METRICS
from .page_metrics import PAGE_MEAN_METRICS
from .plots import load_training_log, plot_report, plot_training_log
from .reliability_plot import plot_reliability
from .report import EvaluationReport, forecast_split, save_comparison, score_forecasts

logger = logging.getLogger(__name__)

# `training_history.json` is what `hetlm train` writes (its `log_history` holds HeTLM's per-step logs).
TRAINING_LOG_NAMES = (
    "training_history.json",
    "trainer_state.json",
    "training_log.jsonl",
    "training_log.json",
    "log_history.json",
)


@dataclass
class EvaluationOptions:
    """How :func:`evaluate_models` generates and scores.

    Attributes:
        split: The split to score.
        batch_size: Users per generation batch.
        max_users: Score only the first N users of the split (None: all).
        max_new_tokens: Most tokens a model generates for the next session.
        decoding: ``"sampled"`` (S sessions per user, thresholds tuned on ``validation_split``) or
            ``"greedy"`` (the paper's); baselines give their session either way.
        num_samples: S, sessions sampled per user.
        temperature: Sampling temperature.
        top_k: Sample among the k most likely pages only (0: the model's whole distribution).
        page_rule: How sampled forecasts choose their pages (:data:`evaluation.decisions.PAGE_RULES`):
            ``"expected-iou"``, each user's expected-IoU-optimal set, or ``"threshold"``, one tuned tau.
        history_blend: Also score each sampled model with the history-aware decoding (its samples mixed
            with the user's input sessions, the weight tuned on validation), as ``<name>+history``.
        validation_split: The split sampled forecasts tune their thresholds on (never the scored split).
        max_validation_users: Tune on only the first N validation users (None: all).
        markov_sample: The markov baseline samples (seeded) instead of greedy decoding.
        seed: Seed of sampled generation.
        training_log: A training log to plot for every model (None: one found in each model folder).
        device: Device for models (None: cuda when available, else cpu).
        progress: Show progress bars.
    """

    split: str = "test"
    batch_size: int = 64
    max_users: int | None = None
    max_new_tokens: int = 64
    decoding: str = "sampled"
    num_samples: int = 16
    temperature: float = 1.0
    top_k: int = 0
    page_rule: str = "expected-iou"
    history_blend: bool = True
    validation_split: str = "validation"
    max_validation_users: int | None = None
    markov_sample: bool = False
    seed: int = 0
    training_log: str | None = None
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_users is not None and self.max_users < 1:
            raise ValueError(f"max_users must be at least 1, got {self.max_users}")
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {self.decoding!r}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {self.num_samples}")
        if self.page_rule not in PAGE_RULES:
            raise ValueError(f"page_rule must be one of {PAGE_RULES}, got {self.page_rule!r}")
        if self.decoding == "sampled" and self.validation_split == self.split:
            raise ValueError(f"thresholds must be tuned on another split than the scored one ({self.split!r})")
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_model_generator(
    model_dir: Path, data_tokenizer: PreTrainedTokenizerBase, options: EvaluationOptions
) -> ModelSessionGenerator:
    """Load a saved HeTLM model or causal LM (and its page tokenizer, else the data's) as a session generator."""
    model, tokenizer = load_model_folder(model_dir, options.device, tokenizer=data_tokenizer)
    if tokenizer is not data_tokenizer and tokenizer.get_vocab() != data_tokenizer.get_vocab():
        logger.warning(
            "%s: the model's page tokenizer differs from the data's; pages are encoded with the "
            "model's and Val-P counts the data's pages as valid",
            model_dir,
        )
    model_rules, data_rules = PageRules.from_dict(model.config.to_dict()), PageRules.of_tokenizer(data_tokenizer)
    if model_rules != data_rules:
        logger.warning(
            "%s: the model was trained on pages mapped by other rules (%s; URL normalisation %s) than "
            "this data's (%s; URL normalisation %s): its outcomes may mean other pages",
            model_dir,
            describe_outcome_pages(model_rules),
            model_rules.to_dict()[URL_NORMALIZATION_KEY],
            describe_outcome_pages(data_rules),
            data_rules.to_dict()[URL_NORMALIZATION_KEY],
        )
    return ModelSessionGenerator(model, tokenizer, max_new_tokens=options.max_new_tokens)


def build_forecaster(
    spec: str,
    train: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    options: EvaluationOptions,
    longest_session: int | None = None,
) -> Forecaster:
    """A baseline fitted on ``train`` when ``spec`` names one, else the model saved in folder ``spec``
    (its sampled sessions capped at ``longest_session`` pages, the data's session-length cut-off)."""
    if spec in BASELINES:
        baseline_options = {"do_sample": options.markov_sample, "seed": options.seed} if spec == "markov" else {}
        return BaselineForecaster(fit_baseline(spec, train, **baseline_options))
    model_dir = Path(spec)
    if not (model_dir / "config.json").is_file():
        raise ValueError(
            f"{spec!r} is neither a baseline ({', '.join(BASELINES)}) nor a model folder with a config.json"
        )
    torch.manual_seed(options.seed)
    sample_tokens = None if longest_session is None else min(options.max_new_tokens, longest_session + 1)
    return ModelForecaster(
        load_model_generator(model_dir, tokenizer, options),
        options.decoding,
        options.num_samples,
        options.temperature,
        options.top_k,
        max_new_tokens=sample_tokens,
    )


def _plot_outcome_reliability(report: EvaluationReport, path: Path) -> None:
    """The reliability plot of the report's outcome probabilities (skipped, and logged, with no scored user)."""
    outcomes = report.scores.outcomes
    evaluated = outcomes["evaluated"]
    if not evaluated.any():
        logger.warning("%s: no user with an actual session, no reliability plot", report.name)
        return
    labels = np.stack([outcomes["actual_cart"], outcomes["actual_purchase"]], axis=1)[evaluated]
    plot_reliability(
        report.scores.outcome_probabilities[evaluated], labels, path, title=f"Outcome probabilities of {report.name}"
    )


def _find_training_log(spec: str, options: EvaluationOptions) -> Path | None:
    if spec in BASELINES:
        return None
    if options.training_log:
        return Path(options.training_log)
    folder = Path(spec)
    if not folder.is_dir():
        return None
    return next((folder / name for name in TRAINING_LOG_NAMES if (folder / name).is_file()), None)


def _unique_name(spec: str, taken: set[str], options: EvaluationOptions) -> str:
    if spec == "markov" and options.markov_sample:
        base = "markov-sampled"
    else:
        base = spec if spec in BASELINES else Path(spec).resolve().name
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}-{counter}", counter + 1
    return name


def _save_report(
    report: EvaluationReport,
    spec: str,
    data_dir: str | Path,
    summary: dict,
    options: EvaluationOptions,
    out_dir: Path,
    validation_users: int,
) -> None:
    """Complete the report's metadata and write it, its plots and the spec's training curve to ``out_dir/<name>``."""
    report.metadata.update(
        {
            "model": spec,
            "data": str(data_dir),
            "split": options.split,
            "synthetic": bool(summary.get("synthetic", False)),
            "outcome_pages": describe_outcome_pages(PageRules.from_dict(summary)),
        }
    )
    if report.decisions is not None:
        report.metadata.update(
            {
                "num_samples": options.num_samples,
                "temperature": options.temperature,
                "top_k": options.top_k,
                "validation_split": options.validation_split,
                "validation_users": validation_users,
            }
        )
    model_out = out_dir / report.name
    report.save(model_out)
    plot_report(report.rows, model_out, PAGE_MEAN_METRICS, OUTCOME_METRICS, report.name)
    _plot_outcome_reliability(report, model_out / "reliability.png")
    training_log = _find_training_log(spec, options)
    if training_log is not None:
        try:
            records = load_training_log(training_log)
        except ValueError as error:
            if options.training_log:  # asked for by name: a bad file is an error
                raise
            logger.info("%s: no training curve to plot (%s)", report.name, error)
        else:
            plot_training_log(records, model_out / "training.png")
    logger.info("%s: report written to %s", report.name, model_out)


def evaluate_models(
    specs: list[str],
    data_dir: str | Path,
    out_dir: str | Path,
    baseline: str | None = None,
    options: EvaluationOptions | None = None,
) -> dict[str, EvaluationReport]:
    """Score every spec (and ``baseline``) on ``data_dir``'s split; write reports, plots and the comparison.

    Returns the reports by spec, in order. Raises ``ValueError`` for an unknown split or spec.
    """
    options = options or EvaluationOptions()
    dataset, tokenizer, summary = load_prepared(data_dir)
    if options.split not in dataset:
        raise ValueError(f"{data_dir} has no split {options.split!r} (has {sorted(dataset)})")
    test = dataset[options.split]
    if options.max_users is not None:
        test = test.select(range(min(options.max_users, len(test))))
    validation = None
    if options.decoding == "sampled":
        if options.validation_split not in dataset:
            raise ValueError(
                f"{data_dir} has no split {options.validation_split!r} to tune the sampled decoding's "
                f"thresholds on (has {sorted(dataset)}); use decoding='greedy'"
            )
        validation = dataset[options.validation_split]
        if options.max_validation_users is not None:
            validation = validation.select(range(min(options.max_validation_users, len(validation))))
    vocabulary = set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    specs = list(dict.fromkeys(specs))
    if baseline and baseline not in specs:
        specs.append(baseline)
    reports: dict[str, EvaluationReport] = {}
    validation_users = len(validation) if validation is not None else 0
    for spec in specs:
        name = _unique_name(spec, {report.name for report in reports.values()}, options)
        forecaster = build_forecaster(spec, dataset["train"], tokenizer, options, summary.get("session_length_cutoff"))
        is_model = isinstance(forecaster, ModelForecaster)
        validation_forecasts = None
        if forecaster.probabilistic:
            validation_forecasts = forecast_split(
                forecaster, validation, options.batch_size, f"validating {name}", options.progress
            )
        test_forecasts = forecast_split(forecaster, test, options.batch_size, f"evaluating {name}", options.progress)
        variants = {spec: (name, (0.0,))}
        if forecaster.probabilistic and options.history_blend:
            variants[f"{spec}{HISTORY_SUFFIX}"] = (f"{name}{HISTORY_SUFFIX}", HISTORY_WEIGHTS)
        for key, (variant_name, history_weights) in variants.items():
            report = score_forecasts(
                test_forecasts,
                test,
                validation_forecasts,
                validation if forecaster.probabilistic else None,
                vocabulary=vocabulary,
                name=variant_name,
                decoding=options.decoding if is_model else None,
                page_rule=options.page_rule,
                history_weights=history_weights,
            )
            _save_report(report, spec, data_dir, summary, options, out_dir, validation_users)
            reports[key] = report

    save_comparison(list(reports.values()), out_dir, reports[baseline] if baseline else None)
    return reports
