"""Per-cluster and Combined reports of a session generator on a test set (the paper's Tables 2-6).

Models and baselines hand over a :class:`evaluation.forecasts.Forecast` per user (point session,
page probabilities, outcome probabilities, ranked first pages); :func:`evaluate_forecaster` scores a
:class:`evaluation.forecasts.Forecaster`: the predicted set G is the forecast's session or, for a
probabilistic forecaster, the set decided by thresholds tuned on the validation users
(:class:`evaluation.decisions.DecisionRule`); the outcome probabilities are scored (ROC-AUC, PR-AUC,
Brier, log-loss, base rate) and the ranked first pages give Recall@10/20, NDCG@10/20 and MRR@10 of
the actual next session's first page.

A *session generator* is any callable ``generate_sessions(input_sessions) -> (generated, clusters)``
taking the input sessions of a batch of users (``list[list[list[str]]]``) and returning one
generated session per user (``list[list[str]]``) and the cluster each user was routed to
(``list[int]``, or ``None`` for models without clusters). Baselines
(:mod:`evaluation.baselines`) and models (:class:`inference.session_generator.ModelSessionGenerator`)
are scored by the same code.

:func:`evaluate_generator` runs the generator over every test user in batches (with a progress
bar) and builds one row per cluster plus a **Combined** row over all users, each with N, the six
page-generation means, the four variances, the ten outcome figures and BLEU, computed by the
metric functions of :mod:`evaluation.page_metrics`, :mod:`evaluation.outcome_metrics` and
:mod:`evaluation.bleu`. When the test set has a ``segment`` column (the simulator's true segments)
and the generator returns clusters, cluster recovery is scored too (adjusted Rand index and NMI).
:func:`comparison_rows` sets several models' Combined rows side by side with their composite
scores against a baseline (:func:`evaluation.composite.composite_scores`).

Example:
    >>> from datasets import Dataset
    >>> from evaluation.baselines import RepeatLastSessionBaseline
    >>> test = Dataset.from_dict({"user_id": ["u1", "u2"],
    ...                           "input_sessions": [[["home", "shoes"]], [["home"], ["bags", "cart"]]],
    ...                           "target_session": [["home", "shoes"], ["bags", "purchase"]]})
    >>> report = evaluate_generator(RepeatLastSessionBaseline(), test, name="repeat-last", progress=False)
    >>> [row["Cluster"] for row in report.rows], report.combined["N"], report.combined["HR"]
    (['Combined'], 2, 1.0)
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from datasets import Dataset
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from tqdm.auto import tqdm

from evaluation.bleu import sentence_bleu_scores
from evaluation.comparison_uncertainty import uncertainty_markdown, uncertainty_summary
from evaluation.composite import COMPOSITE_GROUPS, OVERALL, composite_scores
from evaluation.decisions import EITHER_OUTCOME, DecisionRule, outcome_probability_matrix
from evaluation.forecasts import Forecast, Forecaster, SessionForecaster
from evaluation.glossary import glossary_markdown
from evaluation.outcome_metrics import OUTCOME_METRICS, aggregate_outcome_scores, outcome_labels
from evaluation.outcome_probabilities import OUTCOMES, PROBABILITY_METRICS, outcome_probability_scores
from evaluation.page_metrics import (
    PAGE_MEAN_METRICS,
    PAGE_VARIANCE_METRICS,
    aggregate_page_scores,
    per_user_page_scores,
)
from evaluation.plots import plot_metric_intervals
from evaluation.ranking import per_user_rank_metrics, ranks_in_lists, scores_from_ranks
from evaluation.report_tables import markdown_table, write_csv, write_json
from tokenization.atomic_files import atomic_open, write_text_atomically

logger = logging.getLogger(__name__)

COMBINED = "Combined"
INTERVALS_PLOT = "comparison_intervals.png"
BLEU_COLUMN = "BLEU"
PROBABILITY_COLUMNS: list[str] = [f"{outcome} {metric}" for outcome in OUTCOMES for metric in PROBABILITY_METRICS]
RANKING_KS: tuple[int, ...] = (10, 20)
RANKING_METRICS: list[str] = ["Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "MRR@10"]
# Beside the outcome accuracies: how often each outcome happens, and the accuracy of always predicting the majority.
BASE_RATE_COLUMNS: list[str] = [f"{outcome} BaseRate" for outcome in OUTCOMES]
MAJORITY_COLUMNS: list[str] = [f"{outcome} Majority Acc" for outcome in OUTCOMES]
METRIC_COLUMNS: list[str] = [
    "Cluster",
    "N",
    "Excluded",
    *PAGE_MEAN_METRICS,
    *PAGE_VARIANCE_METRICS,
    *OUTCOME_METRICS,
    *MAJORITY_COLUMNS,
    BLEU_COLUMN,
    *PROBABILITY_COLUMNS,
    *RANKING_METRICS,
]


def report_sections() -> list[tuple[str, list[str]]]:
    """(title, columns) of a report's tables: the paper's Tables 2, 3, 4 and 6, outcome probabilities, ranking."""
    return [
        ("Page generation (higher is better)", ["Cluster", "N", *PAGE_MEAN_METRICS]),
        ("Variance in page generation across users (lower is better)", ["Cluster", "N", *PAGE_VARIANCE_METRICS]),
        (
            "Outcome prediction (higher is better; BaseRate and Majority Acc: always predicting the majority class)",
            ["Cluster", "N", *BASE_RATE_COLUMNS, *MAJORITY_COLUMNS, *OUTCOME_METRICS],
        ),
        ("BLEU (higher is better)", ["Cluster", "N", BLEU_COLUMN]),
        (
            "Outcome probabilities (ROC-AUC, PR-AUC higher; Brier, log-loss lower)",
            ["Cluster", "N", *PROBABILITY_COLUMNS],
        ),
        (
            "Next-page ranking: the actual next session's first page (higher is better)",
            ["Cluster", "N", *RANKING_METRICS],
        ),
    ]


class SessionGenerator(Protocol):
    """What :func:`evaluate_generator` scores: input sessions of a batch -> (generated sessions, clusters)."""

    def __call__(self, input_sessions: Sequence[list[list[str]]]) -> tuple[list[list[str]], list[int] | None]: ...


@dataclass
class UserScores:
    """Every user's page scores, outcome flags and sentence BLEU (and, when known, outcome probabilities
    ``[N, 3]`` and the rank of the actual first page, ``inf`` when not ranked), computed once; rows (a
    cluster's, the Combined one) aggregate slices of them, so no user is scored twice.

    Example:
        >>> scores = UserScores.compute([["a", "b"], ["c"]], [["a"], ["b"]], [["a"], []], vocabulary={"a", "b", "c"})
        >>> scores.row("Cluster 0", np.array([0]))["IoP"], scores.row("Combined")["HR"]
        (0.5, 0.5)
    """

    pages: dict[str, np.ndarray]
    outcomes: dict[str, np.ndarray]
    bleu: np.ndarray
    outcome_probabilities: np.ndarray | None = None
    first_page_ranks: np.ndarray | None = None

    @classmethod
    def compute(
        cls,
        generated: Sequence[list[str]],
        actual: Sequence[list[str]],
        inputs: Sequence[list[str]],
        vocabulary: set[str] | None,
        outcome_probabilities: np.ndarray | None = None,
        ranked_pages: Sequence[Sequence[str]] | None = None,
    ) -> "UserScores":
        """Score every user (``inputs``: the pages of each user's input sessions, flattened;
        ``ranked_pages``: each user's ranked candidates for the first page of the next session)."""
        generated, actual = list(generated), list(actual)
        ranks = None
        if ranked_pages is not None:
            ranks = ranks_in_lists(ranked_pages, [session[0] if session else "" for session in actual])
        return cls(
            per_user_page_scores(generated, actual, list(inputs), vocabulary),
            outcome_labels(generated, actual),
            sentence_bleu_scores(generated, actual),
            outcome_probabilities,
            ranks,
        )

    def per_user(self, metric: str) -> np.ndarray:
        """One metric's per-user values (``"HR"``, ``"IoU"``, ``"NDCG@10"``, ...), NaN for excluded users.

        Example:
            >>> scores = UserScores.compute([["a"], ["b"]], [["a"], []], [[], []], None, ranked_pages=[["a"], []])
            >>> scores.per_user("HR").tolist(), scores.per_user("MRR@10").tolist()
            ([1.0, nan], [1.0, nan])
        """
        if metric in PAGE_MEAN_METRICS:
            values = self.pages[metric.lower().replace("-", "")].astype(np.float64)
        elif self.first_page_ranks is not None and "@" in metric:
            values = per_user_rank_metrics(self.first_page_ranks, int(metric.split("@")[1]))[metric]
        else:
            raise ValueError(f"no per-user values of {metric!r}")
        return np.where(self.outcomes["evaluated"], values, np.nan)

    def row(self, label: str, members: np.ndarray | None = None) -> dict[str, Any]:
        """One report row over the users ``members`` (indices; None: all users).

        Users whose actual session is empty are left out of the metrics and counted in
        ``Excluded``; N counts every user of the row.
        """

        def take(values: np.ndarray) -> np.ndarray:
            return values if members is None else values[members]

        page_scores = aggregate_page_scores({key: take(values) for key, values in self.pages.items()})
        outcomes = aggregate_outcome_scores({key: take(values) for key, values in self.outcomes.items()})
        bleu = take(self.bleu)
        row: dict[str, Any] = {
            "Cluster": label,
            "N": len(bleu),
            "Excluded": int(page_scores["n_excluded_empty_actual"]),
        }
        row.update({key: float(page_scores[key]) for key in (*PAGE_MEAN_METRICS, *PAGE_VARIANCE_METRICS)})
        row.update({key: float(outcomes[key]) for key in OUTCOME_METRICS})
        row.update(outcome_base_rates({key: take(values) for key, values in self.outcomes.items()}))
        scored = bleu[~np.isnan(bleu)]
        row[BLEU_COLUMN] = float(scored.mean()) if scored.size else float("nan")
        evaluated = take(self.outcomes["evaluated"])
        if self.outcome_probabilities is not None:
            labels = np.stack([take(self.outcomes["actual_cart"]), take(self.outcomes["actual_purchase"])], axis=1)
            probabilities = outcome_probability_scores(take(self.outcome_probabilities)[evaluated], labels[evaluated])
            row.update({column: probabilities[column] for column in PROBABILITY_COLUMNS})
        if self.first_page_ranks is not None:
            ranking = scores_from_ranks(take(self.first_page_ranks)[evaluated], RANKING_KS)
            row.update({metric: ranking[metric] for metric in RANKING_METRICS})
        return row


def outcome_base_rates(labels: dict[str, np.ndarray]) -> dict[str, float]:
    """For Cart, Purchase and CoP: the share of the evaluated users whose actual session has the outcome
    (``BaseRate``) and the accuracy of always predicting the majority class (``Majority Acc``), from
    :func:`evaluation.outcome_metrics.outcome_labels` (NaN with no evaluated user).

    Example:
        >>> labels = outcome_labels([[], [], [], []], [["cart"], ["home"], ["home"], ["purchase"]])
        >>> rates = outcome_base_rates(labels)
        >>> rates["Cart BaseRate"], rates["Cart Majority Acc"], rates["CoP BaseRate"], rates["CoP Majority Acc"]
        (0.25, 0.75, 0.5, 0.5)
    """
    evaluated = np.asarray(labels["evaluated"], dtype=bool)
    cart = np.asarray(labels["actual_cart"], dtype=bool)[evaluated]
    purchase = np.asarray(labels["actual_purchase"], dtype=bool)[evaluated]
    rates: dict[str, float] = {}
    for outcome, actual in zip(OUTCOMES, (cart, purchase, cart | purchase)):
        base_rate = float(actual.mean()) if actual.size else float("nan")
        rates[f"{outcome} BaseRate"] = base_rate
        rates[f"{outcome} Majority Acc"] = max(base_rate, 1.0 - base_rate)
    return rates


def metric_row(
    label: str,
    generated: Sequence[list[str]],
    actual: Sequence[list[str]],
    inputs: Sequence[list[str]],
    vocabulary: set[str] | None,
) -> dict[str, Any]:
    """One report row for these users: N, excluded users, page-generation means and variances,
    outcomes and BLEU (see :class:`UserScores`).

    Example:
        >>> row = metric_row("Combined", [["a", "b"]], [["a"]], [["a"]], vocabulary={"a", "b"})
        >>> row["N"], row["IoA"], row["IoP"], row["New-P"]
        (1, 1.0, 0.5, 0.5)
    """
    return UserScores.compute(generated, actual, inputs, vocabulary).row(label)


def cluster_recovery(segments: Sequence[int], clusters: Sequence[int]) -> dict[str, Any]:
    """How well the clusters recover the true segments: adjusted Rand index, NMI and the contingency counts.

    Example:
        >>> recovery = cluster_recovery([0, 0, 1, 1], [5, 5, 2, 2])
        >>> recovery["ARI"], recovery["NMI"], recovery["contingency"]
        (1.0, 1.0, {'0': {'5': 2}, '1': {'2': 2}})
    """
    if len(segments) != len(clusters):
        raise ValueError(f"{len(segments)} segments but {len(clusters)} cluster assignments")
    contingency: dict[str, dict[str, int]] = {}
    for (segment, cluster), count in sorted(Counter(zip(segments, clusters)).items()):
        contingency.setdefault(str(segment), {})[str(cluster)] = count
    return {
        "ARI": float(adjusted_rand_score(segments, clusters)),
        "NMI": float(normalized_mutual_info_score(segments, clusters)),
        "n_users": len(segments),
        "n_segments": len(set(segments)),
        "n_clusters": len(set(clusters)),
        "contingency": contingency,
    }


@dataclass
class EvaluationReport:
    """The scores of one session generator on one test set.

    Attributes:
        name: The model's name in tables.
        rows: One row per cluster (``Cluster <id>``, ids ascending) then the ``Combined`` row.
        user_ids, generated, actual: Per test user, in test-set order.
        clusters: The cluster of each user, or None.
        recovery: :func:`cluster_recovery` against the true segments, or None when either is unknown.
        seconds: Wall time of generation (the generator calls only, test users).
        scores: Every user's scores (for intervals and paired tests); not written to JSON.
        decoding: How the model decoded (``sampled``, ``greedy``), or None for a session baseline.
        decisions: The thresholds tuned on validation (:meth:`DecisionRule.to_dict`), or None.
    """

    name: str
    rows: list[dict[str, Any]]
    user_ids: list[str]
    generated: list[list[str]]
    actual: list[list[str]]
    clusters: list[int] | None = None
    recovery: dict[str, Any] | None = None
    seconds: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: UserScores | None = None
    decoding: str | None = None
    decisions: dict[str, Any] | None = None

    @property
    def combined(self) -> dict[str, Any]:
        """The Combined row (all users)."""
        return self.rows[-1]

    @property
    def cluster_rows(self) -> list[dict[str, Any]]:
        """The per-cluster rows (empty for a generator without clusters)."""
        return self.rows[:-1]

    def to_markdown(self) -> str:
        """The whole report as Markdown: the four tables, excluded users and cluster recovery."""
        parts = [f"# Evaluation: {self.name}", ""]
        users_per_second = len(self.user_ids) / self.seconds if self.seconds > 0 else float("inf")
        parts.append(
            f"{len(self.user_ids)} test users; generation took {self.seconds:.1f} s ({users_per_second:.1f} users/s). "
            f"Users with an empty actual session ({self.combined['Excluded']}) are left out of the page metrics."
        )
        parts += ["", f"Decoding: {describe_decoding(self)}."]
        for title, columns in report_sections():
            parts += ["", f"## {title}", "", markdown_table(self.rows, columns)]
        if self.recovery is not None:
            parts += ["", "## Cluster recovery (true segments vs clusters)", ""]
            parts.append(
                f"Adjusted Rand index {self.recovery['ARI']:.3f}, NMI {self.recovery['NMI']:.3f} "
                f"({self.recovery['n_segments']} segments, {self.recovery['n_clusters']} clusters)."
            )
            cluster_ids = sorted({c for counts in self.recovery["contingency"].values() for c in counts}, key=int)
            contingency_rows = [
                {"Segment": segment, **{f"Cluster {c}": counts.get(c, 0) for c in cluster_ids}}
                for segment, counts in self.recovery["contingency"].items()
            ]
            parts += ["", markdown_table(contingency_rows, ["Segment", *[f"Cluster {c}" for c in cluster_ids]])]
        return "\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The scores as a JSON-ready dict (no per-user generations)."""
        return {
            "name": self.name,
            "n_users": len(self.user_ids),
            "seconds": self.seconds,
            "rows": self.rows,
            "cluster_recovery": self.recovery,
            "decoding": self.decoding,
            "decisions": self.decisions,
            "metadata": self.metadata,
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.md``, ``report.csv``, ``report.json`` and ``generations.jsonl`` into ``out_dir``.

        Returns the written paths by kind.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"markdown": out_dir / "report.md", "generations": out_dir / "generations.jsonl"}
        write_text_atomically(paths["markdown"], self.to_markdown())
        paths["csv"] = write_csv(self.rows, out_dir / "report.csv", METRIC_COLUMNS)
        paths["json"] = write_json(self.to_dict(), out_dir / "report.json")
        clusters = self.clusters if self.clusters is not None else [None] * len(self.user_ids)
        with atomic_open(paths["generations"]) as handle:
            for user_id, generated, actual, cluster in zip(self.user_ids, self.generated, self.actual, clusters):
                record = {"user_id": user_id, "cluster": cluster, "generated": generated, "actual": actual}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return paths


def describe_decoding(report: EvaluationReport) -> str:
    """How a report's predicted sets were made, in words.

    Example:
        >>> describe_decoding(EvaluationReport("m", [], [], [], []))
        "the predictor's own session (P = 1 for its pages)"
    """
    if report.decisions is not None:
        decisions, samples = report.decisions, report.metadata.get("num_samples")
        weights = decisions.get("history_weight", {"pages": 0.0, "outcomes": 0.0})
        theta = dict(decisions["theta"])
        gate = theta.pop(EITHER_OUTCOME, None)
        if decisions.get("page_rule", "threshold") == "threshold":
            tau = decisions["tau"]
            pages = f"pages with P >= tau={tau['threshold']:.3f} (validation mean IoU {tau['score']:.3f})"
        else:
            score = decisions["validation_scores"]["pages"][str(weights["pages"])]
            pages = f"each user's expected-IoU-optimal pages (validation mean IoU {score:.3f})"
        history = "pure model (no history blend)"
        if len(decisions.get("validation_scores", {}).get("outcomes", {})) > 1:
            history = (
                f"history-aware: P mixed with the user's input sessions at lambda={weights['pages']:.1f} for pages, "
                f"{weights['outcomes']:.1f} for outcomes (validation-tuned; 0 = pure model)"
            )
        return (
            f"{report.decoding or 'probabilistic'}{f' ({samples} sessions per user)' if samples else ''}, {history}; "
            f"G = {pages} plus "
            + ", ".join(
                f"{outcome.lower()} if P >= {choice['threshold']:.3f} (validation F1 {choice['score']:.3f})"
                for outcome, choice in theta.items()
            )
            + (
                f", both only when P(cart or purchase) >= {gate['threshold']:.3f} (validation F1 "
                f"{gate['score']:.3f}; the likelier one when neither passes its own)"
                if gate is not None
                else ""
            )
        )
    if report.decoding is not None:
        return f"{report.decoding} (one session per user; P = 1 for its pages)"
    return "the predictor's own session (P = 1 for its pages)"


def _forecast_users(
    forecaster: Forecaster, dataset: Dataset, batch_size: int, desc: str, progress: bool
) -> tuple[list[Forecast], list[int] | None, float]:
    """Every user's forecast, the clusters (None when the forecaster has none) and the forecasting time."""
    forecasts: list[Forecast] = []
    clusters: list[int] | None = []
    seconds = 0.0
    with tqdm(total=len(dataset), unit="user", desc=desc, disable=not progress) as bar:
        for batch in dataset.iter(batch_size=batch_size):
            start = time.perf_counter()
            batch_forecasts, batch_clusters = forecaster.forecast(batch["input_sessions"])
            seconds += time.perf_counter() - start
            if len(batch_forecasts) != len(batch["input_sessions"]):
                raise ValueError(
                    f"the forecaster returned {len(batch_forecasts)} forecasts for "
                    f"{len(batch['input_sessions'])} users"
                )
            forecasts += batch_forecasts
            if batch_clusters is None:
                clusters = None
            elif clusters is not None:
                clusters += [int(cluster) for cluster in batch_clusters]
            bar.update(len(batch_forecasts))
    return forecasts, clusters, seconds


def _check_split(dataset: Dataset, split: str) -> None:
    missing = {"input_sessions", "target_session"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"{split} dataset lacks column(s) {sorted(missing)}; has {dataset.column_names}")
    if len(dataset) == 0:
        raise ValueError(f"the {split} dataset has no users to evaluate")


@dataclass
class SplitForecasts:
    """Every user's forecast of one split, the clusters (None when the forecaster has none) and the time taken."""

    forecasts: list[Forecast]
    clusters: list[int] | None
    seconds: float


def forecast_split(
    forecaster: Forecaster, dataset: Dataset, batch_size: int = 64, desc: str = "forecasting", progress: bool = True
) -> SplitForecasts:
    """Forecast every user of ``dataset`` (columns ``input_sessions`` and ``target_session``) in batches.

    Example:
        >>> from datasets import Dataset
        >>> from evaluation.baselines import RepeatLastSessionBaseline
        >>> users = Dataset.from_dict({"input_sessions": [[["a", "b"]]], "target_session": [["a"]]})
        >>> forecast_split(SessionForecaster(RepeatLastSessionBaseline()), users, progress=False).forecasts[0].session
        ['a', 'b']
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _check_split(dataset, "forecast")
    return SplitForecasts(*_forecast_users(forecaster, dataset, batch_size, desc, progress))


def evaluate_forecaster(
    forecaster: Forecaster,
    test_dataset: Dataset,
    validation_dataset: Dataset | None = None,
    batch_size: int = 64,
    vocabulary: set[str] | None = None,
    clusters: Sequence[int] | None = None,
    name: str = "model",
    progress: bool = True,
    decoding: str | None = None,
    page_rule: str = "expected-iou",
    history_weights: Sequence[float] = (0.0,),
) -> EvaluationReport:
    """Forecast the next session of every test user and score it per cluster and Combined.

    A probabilistic forecaster (``forecaster.probabilistic``) first forecasts the validation users,
    whose forecasts tune the decision rule (:meth:`DecisionRule.tune`) applied unchanged to the test
    users; otherwise G is each forecast's session.

    Args:
        forecaster: What to score (:class:`evaluation.forecasts.Forecaster`).
        test_dataset: Columns ``input_sessions`` and ``target_session`` (+ optional ``user_id``,
            ``segment``), one row per user.
        validation_dataset: The same columns; required for a probabilistic forecaster.
        batch_size: Users per forecaster call.
        vocabulary: The valid pages for Val-P (None: every generated page counts as valid).
        clusters: A cluster per test user that overrides the forecaster's own; None keeps the forecaster's.
        name: The model's name in the tables.
        progress: Show tqdm progress bars.
        decoding: The decoding's name for the report (e.g. ``"sampled"``).
        page_rule: How a probabilistic forecast's pages are chosen (:data:`evaluation.decisions.PAGE_RULES`).
        history_weights: The weights of the user's input sessions tried on validation (the history-aware
            decoding, :mod:`evaluation.history_blend`); ``(0.0,)``: the pure model.

    Example:
        >>> from datasets import Dataset
        >>> from evaluation.baselines import MostPopularPagesBaseline
        >>> test = Dataset.from_dict({"input_sessions": [[["a"]], [["b"]]], "target_session": [["a"], ["b", "a"]]})
        >>> forecaster = SessionForecaster(MostPopularPagesBaseline(["a"]), ["b"])
        >>> report = evaluate_forecaster(forecaster, test, progress=False)
        >>> report.combined["HR"], report.combined["MRR@10"]
        (1.0, 0.75)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _check_split(test_dataset, "test")
    validation = None
    if forecaster.probabilistic:
        if validation_dataset is None:
            raise ValueError(f"{name}: a probabilistic forecaster needs validation users to tune its thresholds on")
        _check_split(validation_dataset, "validation")
        validation = forecast_split(forecaster, validation_dataset, batch_size, f"validating {name}", progress)
    test = forecast_split(forecaster, test_dataset, batch_size, f"evaluating {name}", progress)
    return score_forecasts(
        test,
        test_dataset,
        validation,
        validation_dataset,
        vocabulary=vocabulary,
        clusters=clusters,
        name=name,
        decoding=decoding,
        page_rule=page_rule,
        history_weights=history_weights,
    )


def score_forecasts(
    test: SplitForecasts,
    test_dataset: Dataset,
    validation: SplitForecasts | None = None,
    validation_dataset: Dataset | None = None,
    vocabulary: set[str] | None = None,
    clusters: Sequence[int] | None = None,
    name: str = "model",
    decoding: str | None = None,
    page_rule: str = "expected-iou",
    history_weights: Sequence[float] = (0.0,),
) -> EvaluationReport:
    """Score forecasts already made (:func:`forecast_split`), so that several decision rules share one sampling.

    With validation forecasts the decision rule is tuned on them (:meth:`DecisionRule.tune`) and decides G;
    without, G is each forecast's session. The arguments are those of :func:`evaluate_forecaster`.
    """
    _check_split(test_dataset, "test")
    if len(test.forecasts) != len(test_dataset):
        raise ValueError(f"{len(test.forecasts)} forecasts for {len(test_dataset)} test users")
    if clusters is not None and len(clusters) != len(test_dataset):
        raise ValueError(f"{len(clusters)} cluster labels given for {len(test_dataset)} test users")
    test_inputs = list(test_dataset["input_sessions"])
    rule = None
    if validation is not None:
        if validation_dataset is None or len(validation.forecasts) != len(validation_dataset):
            raise ValueError(f"{name}: the validation forecasts need their validation dataset, one row per forecast")
        rule = DecisionRule.tune(
            validation.forecasts,
            list(validation_dataset["target_session"]),
            list(validation_dataset["input_sessions"]),
            page_rule=page_rule,
            history_weights=history_weights,
        )
    forecasts = test.forecasts
    if rule is not None:
        generated = rule.predicted_sets(forecasts, test_inputs)
        outcome_probabilities = rule.outcome_probability_matrix(forecasts, test_inputs)
    else:
        generated = [list(forecast.session) for forecast in forecasts]
        outcome_probabilities = outcome_probability_matrix(forecasts)
    actual = list(test_dataset["target_session"])
    inputs = [[page for session in sessions for page in session] for sessions in test_inputs]
    user_ids = (
        list(test_dataset["user_id"])
        if "user_id" in test_dataset.column_names
        else [str(row) for row in range(len(test_dataset))]
    )
    segments = list(test_dataset["segment"]) if "segment" in test_dataset.column_names else []

    assigned = [int(cluster) for cluster in clusters] if clusters is not None else test.clusters
    scores = UserScores.compute(
        generated,
        actual,
        inputs,
        vocabulary,
        outcome_probabilities,
        [forecast.ranked_pages for forecast in forecasts],
    )
    rows = []
    if assigned is not None:
        assigned_array = np.asarray(assigned)
        rows = [
            scores.row(f"Cluster {cluster}", np.flatnonzero(assigned_array == cluster))
            for cluster in sorted(set(assigned))
        ]
    rows.append(scores.row(COMBINED))
    recovery = (
        cluster_recovery(segments, assigned) if assigned is not None and len(segments) == len(assigned) else None
    )
    return EvaluationReport(
        name=name,
        rows=rows,
        user_ids=list(user_ids),
        generated=generated,
        actual=actual,
        clusters=assigned,
        recovery=recovery,
        seconds=test.seconds,
        metadata={"validation_seconds": validation.seconds if validation is not None else 0.0},
        scores=scores,
        decoding=decoding,
        decisions=rule.to_dict() if rule is not None else None,
    )


def evaluate_generator(
    generator: SessionGenerator,
    test_dataset: Dataset,
    batch_size: int = 64,
    vocabulary: set[str] | None = None,
    clusters: Sequence[int] | None = None,
    name: str = "model",
    progress: bool = True,
) -> EvaluationReport:
    """:func:`evaluate_forecaster` of a session generator (:class:`SessionForecaster`, ranking = its session).

    Example:
        >>> from datasets import Dataset
        >>> from evaluation.baselines import MostPopularPagesBaseline
        >>> test = Dataset.from_dict({"input_sessions": [[["a"]], [["b"]], [["c"]]],
        ...                           "target_session": [["a"], ["b"], ["a", "c"]], "segment": [0, 1, 1]})
        >>> report = evaluate_generator(MostPopularPagesBaseline(["a"]), test, clusters=[0, 1, 1], progress=False)
        >>> [(row["Cluster"], row["N"], row["HR"]) for row in report.rows]
        [('Cluster 0', 1, 1.0), ('Cluster 1', 2, 0.5), ('Combined', 3, 0.6666666666666666)]
        >>> report.recovery["ARI"]
        1.0
    """
    return evaluate_forecaster(
        SessionForecaster(generator),
        test_dataset,
        batch_size=batch_size,
        vocabulary=vocabulary,
        clusters=clusters,
        name=name,
        progress=progress,
    )


def comparison_rows(
    reports: Sequence[EvaluationReport], baseline: EvaluationReport | None = None, decimals: int | None = 3
) -> list[dict[str, Any]]:
    """Several models' Combined rows side by side, with composite scores against ``baseline``.

    Each row is ``{"Model": name, **Combined row, **composite_scores(...)}`` where the composite
    compares the model's and the baseline's Combined rows rounded to ``decimals`` (the precision
    the tables show, so a difference a reader cannot see is a tie). The baseline's own row and
    every row without a baseline have no composite columns.
    """
    rows = []
    for report in reports:
        row = {"Model": report.name, **{key: value for key, value in report.combined.items() if key != "Cluster"}}
        if baseline is not None and report is not baseline:
            row.update(composite_scores(report.combined, baseline.combined, decimals=decimals))
        rows.append(row)
    return rows


def _composite_cell(row: dict[str, Any], group: str) -> str | None:
    if group not in row:
        return None
    return f"{row[group]:.3f} ({row[f'{group} wins']}/{row[f'{group} ties']}/{row[f'{group} losses']})"


def save_comparison(
    reports: Sequence[EvaluationReport], out_dir: str | Path, baseline: EvaluationReport | None = None
) -> str:
    """Write ``comparison.md``, ``comparison.csv`` and ``comparison.json`` into ``out_dir``; return the Markdown
    tables.

    The Markdown starts with the glossary (:mod:`evaluation.glossary`), then shows each model's decoding, the
    Combined rows in the tables of a report, 95% bootstrap intervals of the headline metrics (a table and the
    side-by-side plot ``comparison_intervals.png``, embedded) and, with a baseline, the paired tests against it
    and the composite scores as ``score (wins/ties/losses)`` per group (the paper's Table 5).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(reports, baseline)
    decoding_rows = [{"Model": report.name, "Decoding": describe_decoding(report)} for report in reports]
    uncertainty = uncertainty_summary(reports, baseline)
    sections = [f"## Decoding\n\n{markdown_table(decoding_rows, ['Model', 'Decoding'])}"]
    sections += [
        f"## {title}\n\n{markdown_table(rows, ['Model', *columns[1:]])}" for title, columns in report_sections()
    ]
    if baseline is not None:
        groups = [*COMPOSITE_GROUPS, OVERALL]
        composite_rows = [
            {"Model": row["Model"], **{group: _composite_cell(row, group) for group in groups}} for row in rows
        ]
        sections.append(
            f"## Composite scores against {baseline.name}: score (wins/ties/losses)\n\n"
            + markdown_table(composite_rows, ["Model", *groups])
        )
    sections.append(uncertainty_markdown(uncertainty))
    plot_metric_intervals(
        uncertainty["intervals"],
        out_dir / INTERVALS_PLOT,
        f"Combined, {uncertainty['confidence']:.0%} bootstrap intervals ({uncertainty['n_resamples']} resamples)",
    )
    sections.append(
        f"![All models on the headline metrics, {uncertainty['confidence']:.0%} intervals]({INTERVALS_PLOT})"
    )
    text = "\n\n".join([glossary_markdown().rstrip("\n"), *sections])
    write_text_atomically(out_dir / "comparison.md", f"# Combined results\n\n{text}\n")
    composite_columns = list(
        dict.fromkeys(key for row in rows for key in row if key not in METRIC_COLUMNS + ["Model"])
    )
    write_csv(rows, out_dir / "comparison.csv", ["Model", *METRIC_COLUMNS[1:], *composite_columns])
    write_json(
        {
            "baseline": baseline.name if baseline else None,
            "rows": rows,
            "uncertainty": uncertainty,
            "decoding": {
                report.name: {"decoding": report.decoding, "decisions": report.decisions} for report in reports
            },
        },
        out_dir / "comparison.json",
    )
    return text
