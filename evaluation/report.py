"""Per-cluster and Combined reports of a session generator on a test set (the paper's Tables 2-6).

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
from evaluation.composite import COMPOSITE_GROUPS, OVERALL, composite_scores
from evaluation.outcome_metrics import OUTCOME_METRICS, aggregate_outcome_scores, outcome_labels
from evaluation.page_metrics import (
    PAGE_MEAN_METRICS,
    PAGE_VARIANCE_METRICS,
    aggregate_page_scores,
    per_user_page_scores,
)
from evaluation.report_tables import markdown_table, write_csv, write_json
from tokenization.atomic_files import atomic_open, write_text_atomically

logger = logging.getLogger(__name__)

COMBINED = "Combined"
BLEU_COLUMN = "BLEU"
METRIC_COLUMNS: list[str] = ["Cluster", "N", "Excluded", *PAGE_MEAN_METRICS, *PAGE_VARIANCE_METRICS, *OUTCOME_METRICS,
                             BLEU_COLUMN]


def report_sections() -> list[tuple[str, list[str]]]:
    """(title, columns) of a report's four tables, in the shape of the paper's Tables 2, 3, 4 and 6."""
    return [
        ("Page generation (higher is better)", ["Cluster", "N", *PAGE_MEAN_METRICS]),
        ("Variance in page generation across users (lower is better)", ["Cluster", "N", *PAGE_VARIANCE_METRICS]),
        ("Outcome prediction (higher is better)", ["Cluster", "N", *OUTCOME_METRICS]),
        ("BLEU (higher is better)", ["Cluster", "N", BLEU_COLUMN]),
    ]


class SessionGenerator(Protocol):
    """What :func:`evaluate_generator` scores: input sessions of a batch -> (generated sessions, clusters)."""

    def __call__(self, input_sessions: Sequence[list[list[str]]]) -> tuple[list[list[str]], list[int] | None]: ...


@dataclass
class UserScores:
    """Every user's page scores, outcome flags and sentence BLEU, computed once; rows (a cluster's,
    the Combined one) aggregate slices of them, so no user is scored twice.

    Example:
        >>> scores = UserScores.compute([["a", "b"], ["c"]], [["a"], ["b"]], [["a"], []], vocabulary={"a", "b", "c"})
        >>> scores.row("Cluster 0", np.array([0]))["IoP"], scores.row("Combined")["HR"]
        (0.5, 0.5)
    """

    pages: dict[str, np.ndarray]
    outcomes: dict[str, np.ndarray]
    bleu: np.ndarray

    @classmethod
    def compute(cls, generated: Sequence[list[str]], actual: Sequence[list[str]], inputs: Sequence[list[str]],
                vocabulary: set[str] | None) -> "UserScores":
        """Score every user (``inputs``: the pages of each user's input sessions, flattened)."""
        generated, actual = list(generated), list(actual)
        return cls(per_user_page_scores(generated, actual, list(inputs), vocabulary),
                   outcome_labels(generated, actual), sentence_bleu_scores(generated, actual))

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
        row: dict[str, Any] = {"Cluster": label, "N": len(bleu), "Excluded": int(page_scores["n_excluded_empty_actual"])}
        row.update({key: float(page_scores[key]) for key in (*PAGE_MEAN_METRICS, *PAGE_VARIANCE_METRICS)})
        row.update({key: float(outcomes[key]) for key in OUTCOME_METRICS})
        scored = bleu[~np.isnan(bleu)]
        row[BLEU_COLUMN] = float(scored.mean()) if scored.size else float("nan")
        return row


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
        seconds: Wall time of generation (the generator calls only).
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
        for title, columns in report_sections():
            parts += ["", f"## {title}", "", markdown_table(self.rows, columns)]
        if self.recovery is not None:
            parts += ["", "## Cluster recovery (true segments vs clusters)", ""]
            parts.append(f"Adjusted Rand index {self.recovery['ARI']:.3f}, NMI {self.recovery['NMI']:.3f} "
                         f"({self.recovery['n_segments']} segments, {self.recovery['n_clusters']} clusters).")
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


def evaluate_generator(
    generator: SessionGenerator,
    test_dataset: Dataset,
    batch_size: int = 64,
    vocabulary: set[str] | None = None,
    clusters: Sequence[int] | None = None,
    name: str = "model",
    progress: bool = True,
) -> EvaluationReport:
    """Generate the next session of every test user and score it per cluster and Combined.

    Args:
        generator: The session generator to score.
        test_dataset: Columns ``input_sessions`` and ``target_session`` (+ optional ``user_id``,
            ``segment``), one row per user.
        batch_size: Users per generator call.
        vocabulary: The valid pages for Val-P (None: every generated page counts as valid).
        clusters: A cluster per test user that overrides the generator's own (e.g. K-means labels
            for a model without routing); None keeps the generator's.
        name: The model's name in the tables.
        progress: Show a tqdm progress bar over users.

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
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    missing = {"input_sessions", "target_session"} - set(test_dataset.column_names)
    if missing:
        raise ValueError(f"test dataset lacks column(s) {sorted(missing)}; has {test_dataset.column_names}")
    if len(test_dataset) == 0:
        raise ValueError("the test dataset has no users to evaluate")
    if clusters is not None and len(clusters) != len(test_dataset):
        raise ValueError(f"{len(clusters)} cluster labels given for {len(test_dataset)} test users")

    user_ids: list[str] = []
    inputs: list[list[str]] = []
    actual: list[list[str]] = []
    generated: list[list[str]] = []
    generated_clusters: list[int] | None = []
    segments: list[int] = []
    seconds = 0.0
    with tqdm(total=len(test_dataset), unit="user", desc=f"evaluating {name}", disable=not progress) as bar:
        for batch in test_dataset.iter(batch_size=batch_size):
            start = time.perf_counter()
            sessions, batch_clusters = generator(batch["input_sessions"])
            seconds += time.perf_counter() - start
            if len(sessions) != len(batch["input_sessions"]):
                raise ValueError(f"the generator returned {len(sessions)} sessions for {len(batch['input_sessions'])} users")
            first_row = len(generated)
            generated += [list(session) for session in sessions]
            actual += batch["target_session"]
            inputs += [[page for session in user_sessions for page in session] for user_sessions in batch["input_sessions"]]
            user_ids += batch.get("user_id") or [str(row) for row in range(first_row, len(generated))]
            segments += batch.get("segment") or []
            if batch_clusters is None:
                generated_clusters = None
            elif generated_clusters is not None:
                generated_clusters += [int(cluster) for cluster in batch_clusters]
            bar.update(len(sessions))

    assigned = [int(cluster) for cluster in clusters] if clusters is not None else generated_clusters
    scores = UserScores.compute(generated, actual, inputs, vocabulary)
    rows = []
    if assigned is not None:
        assigned_array = np.asarray(assigned)
        rows = [scores.row(f"Cluster {cluster}", np.flatnonzero(assigned_array == cluster))
                for cluster in sorted(set(assigned))]
    rows.append(scores.row(COMBINED))
    recovery = cluster_recovery(segments, assigned) if assigned is not None and len(segments) == len(assigned) else None
    return EvaluationReport(
        name=name, rows=rows, user_ids=user_ids, generated=generated,
        actual=actual, clusters=assigned, recovery=recovery, seconds=seconds,
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
    """Write ``comparison.md``, ``comparison.csv`` and ``comparison.json`` into ``out_dir``; return the Markdown tables.

    The Markdown shows the Combined rows in the four tables of a report and, with a baseline, the
    composite scores as ``score (wins/ties/losses)`` per group (the paper's Table 5).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(reports, baseline)
    sections = [
        f"## {title}\n\n{markdown_table(rows, ['Model', *columns[1:]])}" for title, columns in report_sections()
    ]
    if baseline is not None:
        groups = [*COMPOSITE_GROUPS, OVERALL]
        composite_rows = [{"Model": row["Model"], **{group: _composite_cell(row, group) for group in groups}} for row in rows]
        sections.append(f"## Composite scores against {baseline.name}: score (wins/ties/losses)\n\n"
                        + markdown_table(composite_rows, ["Model", *groups]))
    text = "\n\n".join(sections)
    write_text_atomically(out_dir / "comparison.md", f"# Combined results\n\n{text}\n")
    composite_columns = list(dict.fromkeys(key for row in rows for key in row if key not in METRIC_COLUMNS + ["Model"]))
    write_csv(rows, out_dir / "comparison.csv", ["Model", *METRIC_COLUMNS[1:], *composite_columns])
    write_json({"baseline": baseline.name if baseline else None, "rows": rows}, out_dir / "comparison.json")
    return text
