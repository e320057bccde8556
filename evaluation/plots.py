"""PNG plots of reports and training logs (matplotlib, no display needed).

Figures are drawn on ``matplotlib.figure.Figure`` objects, which render with the Agg canvas and
never touch ``pyplot``'s global state, so plotting works on headless machines and in threads.

- :func:`plot_cluster_metrics`: grouped bars of metrics per cluster (and Combined).
- :func:`plot_cluster_sizes`: users per cluster.
- :func:`plot_metric_intervals`: every model side by side on a few metrics, estimates with their intervals.
- :func:`plot_training_log`: losses, the number of clusters K, the cluster sizes and the share of users
  moved (since K-means, since the last routing) over training,
  from a ``transformers`` ``Trainer`` log history (:func:`load_training_log`).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> rows = [{"Cluster": "Cluster 0", "N": 3, "HR": 0.5, "IoA": 0.2},
    ...         {"Cluster": "Combined", "N": 3, "HR": 0.5, "IoA": 0.2}]
    >>> path = plot_cluster_metrics(rows, Path(tempfile.mkdtemp()) / "metrics.png", metrics=["HR", "IoA"])
    >>> path.stat().st_size > 0
    True
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

LOSS_KEYS: tuple[str, ...] = ("loss", "eval_loss", "critic_loss", "selector_loss", "l1", "l2", "l3")
# HeTLMTrainer logs these at every routing of the training users.
MOVED_KEYS: tuple[str, ...] = ("share_users_moved_since_kmeans", "share_users_moved_since_last")
_DPI = 120
_CLUSTER_SIZE_KEY = re.compile(r"cluster_size_(\d+)")


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    return path


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plot_cluster_metrics(
    rows: Sequence[dict[str, Any]], path: str | Path, metrics: Sequence[str], title: str = "Metrics per cluster"
) -> Path:
    """Grouped bars: one group per metric, one bar per row (clusters, then Combined in grey).

    Missing or NaN values are drawn as empty bars.
    """
    figure = Figure(figsize=(min(14.0, max(6.0, 0.3 * len(metrics) * len(rows) + 2)), 4.5))
    axes = figure.add_subplot()
    positions = np.arange(len(metrics))
    width = 0.8 / max(1, len(rows))
    for index, row in enumerate(rows):
        values = [row[metric] if _is_number(row.get(metric)) else 0.0 for metric in metrics]
        color = "0.35" if row["Cluster"] == "Combined" else None
        axes.bar(
            positions + (index - (len(rows) - 1) / 2) * width,
            values,
            width,
            color=color,
            label=f"{row['Cluster']} (N={row['N']})",
        )
    axes.set_xticks(
        positions, list(metrics), rotation=30 if len(metrics) > 6 else 0, ha="right" if len(metrics) > 6 else "center"
    )
    axes.set_title(title)
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_cluster_sizes(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "Users per cluster") -> Path:
    """Bars of N per cluster (the Combined row left out)."""
    clusters = [row for row in rows if row["Cluster"] != "Combined"]
    figure = Figure(figsize=(max(4.0, 0.8 * len(clusters) + 2), 3.5))
    axes = figure.add_subplot()
    bars = axes.bar([row["Cluster"] for row in clusters], [row["N"] for row in clusters], color="tab:blue")
    axes.bar_label(bars)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("users")
    axes.set_title(title)
    return _save(figure, path)


def plot_metric_intervals(intervals: dict[str, dict[str, dict[str, float]]], path: str | Path, title: str) -> Path:
    """Side by side, one panel per metric: every model's estimate as a dot with its interval as a bar, models in
    the given order top to bottom (``intervals[model][metric]`` holds ``estimate``, ``low`` and ``high``, as
    :func:`evaluation.comparison_uncertainty.combined_intervals` returns them); a non-finite value leaves its
    model's row empty.

    Example:
        >>> import tempfile
        >>> intervals = {"a": {"HR": {"estimate": 0.5, "low": 0.4, "high": 0.6}},
        ...              "b": {"HR": {"estimate": 0.7, "low": 0.6, "high": 0.8}}}
        >>> plot_metric_intervals(intervals, Path(tempfile.mkdtemp()) / "hr.png", "HR").stat().st_size > 0
        True
    """
    models = list(intervals)
    metrics = list(dict.fromkeys(metric for model in models for metric in intervals[model]))
    if not models or not metrics:
        raise ValueError("no model or no metric to plot intervals of")
    figure = Figure(figsize=(3.2 * len(metrics) + 1.5, 0.35 * len(models) + 1.6))
    rows = np.arange(len(models))[::-1]
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), index + 1)
        for row, model in zip(rows, models):
            value = intervals[model].get(metric, {})
            estimate, low, high = (value.get(key) for key in ("estimate", "low", "high"))
            if not all(_is_number(number) for number in (estimate, low, high)):
                continue
            axes.errorbar(
                estimate, row, xerr=[[estimate - low], [high - estimate]], fmt="o", color="tab:blue", capsize=3
            )
        axes.set_yticks(rows, models if index == 0 else [""] * len(models))
        axes.set_ylim(-0.7, len(models) - 0.3)
        axes.set_title(metric)
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(title)
    return _save(figure, path)


def load_training_log(path: str | Path) -> list[dict[str, Any]]:
    """Read a training log: a JSON list of log dicts, a ``trainer_state.json`` (its ``log_history``) or JSONL.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> _ = path.write_text('{"step": 1, "loss": 2.0}\\n{"step": 2, "loss": 1.5}\\n')
        >>> load_training_log(path)
        [{'step': 1, 'loss': 2.0}, {'step': 2, 'loss': 1.5}]
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {line_number}: not a JSON log record ({error.msg})") from error
    if isinstance(data, dict):
        if "log_history" not in data:
            raise ValueError(f"{path}: a JSON object without 'log_history' is not a training log")
        data = data["log_history"]
    if not isinstance(data, list) or not all(isinstance(record, dict) for record in data):
        raise ValueError(f"{path}: expected a list of log dicts")
    return data


def _x_values(records: Sequence[dict[str, Any]]) -> tuple[list[float], str]:
    for key in ("step", "epoch"):
        if all(_is_number(record.get(key)) for record in records):
            return [float(record[key]) for record in records], key
    return list(range(len(records))), "log record"


def _cluster_sizes(record: dict[str, Any]) -> dict[int, float]:
    """Cluster id -> size from a ``cluster_sizes`` list or ``cluster_size_<id>`` keys (HeTLMTrainer's logs)."""
    sizes = record.get("cluster_sizes")
    found = dict(enumerate(sizes)) if isinstance(sizes, (list, tuple)) else {}
    for key, value in record.items():
        match = _CLUSTER_SIZE_KEY.fullmatch(key)
        if match:
            found[int(match.group(1))] = value
    return {cluster: size for cluster, size in found.items() if _is_number(size)}


def plot_training_log(log_history: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Losses, K (``num_clusters``), cluster sizes (``cluster_sizes`` or ``cluster_size_<id>``) and the share of
    training users moved (``share_users_moved_since_kmeans`` / ``_since_last``) over training.

    Only the panels whose keys occur in the log are drawn; records lacking a key are skipped for
    that curve. Returns None (and logs why) when the log has none of the keys.
    """
    loss_keys = [key for key in LOSS_KEYS if any(_is_number(record.get(key)) for record in log_history)]
    has_k = any(_is_number(record.get("num_clusters")) for record in log_history)
    sizes_per_record = [_cluster_sizes(record) for record in log_history]
    has_sizes = any(sizes_per_record)
    moved_keys = [key for key in MOVED_KEYS if any(_is_number(record.get(key)) for record in log_history)]
    panels = len(loss_keys) > 0, has_k, has_sizes, len(moved_keys) > 0
    if not any(panels):
        logger.info("the training log has no losses, num_clusters or cluster_sizes: no training plot")
        return None
    figure = Figure(figsize=(6.5, 2.8 * sum(panels)))
    all_axes = iter(figure.subplots(sum(panels), 1, squeeze=False)[:, 0])
    x_all, x_label = _x_values(log_history)

    def curve(key: str) -> tuple[list[float], list[float]]:
        points = [(x, record[key]) for x, record in zip(x_all, log_history) if _is_number(record.get(key))]
        return [x for x, _ in points], [y for _, y in points]

    if loss_keys:
        axes = next(all_axes)
        for key in loss_keys:
            axes.plot(*curve(key), marker=".", label=key)
        axes.set_ylabel("loss")
        axes.legend(fontsize="small")
        axes.set_title("Losses over training")
    if has_k:
        axes = next(all_axes)
        axes.step(*curve("num_clusters"), where="post", color="tab:red")
        axes.set_ylabel("K")
        axes.set_title("Number of clusters over training")
        axes.yaxis.get_major_locator().set_params(integer=True)
    if has_sizes:
        axes = next(all_axes)
        for cluster in sorted({cluster for sizes in sizes_per_record for cluster in sizes}):
            points = [(x, sizes[cluster]) for x, sizes in zip(x_all, sizes_per_record) if cluster in sizes]
            axes.plot([x for x, _ in points], [size for _, size in points], marker=".", label=f"cluster {cluster}")
        axes.set_ylabel("users")
        axes.legend(fontsize="small")
        axes.set_title("Cluster sizes over training")
    if moved_keys:
        axes = next(all_axes)
        for key in moved_keys:
            axes.plot(*curve(key), marker="o", label=key.removeprefix("share_users_").replace("_", " "))
        axes.set_ylabel("share of users")
        axes.legend(fontsize="small")
        axes.set_title("Training users moved")
    figure.axes[-1].set_xlabel(x_label)
    return _save(figure, path)


def plot_report(
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    page_metrics: Sequence[str],
    outcome_metrics: Sequence[str],
    name: str,
) -> list[Path]:
    """The report's standard plots in ``out_dir``: page metrics and outcomes per cluster, cluster sizes.

    The cluster-size plot is drawn only when the rows have clusters besides Combined.
    """
    out_dir = Path(out_dir)
    paths = [
        plot_cluster_metrics(rows, out_dir / "page_metrics_per_cluster.png", page_metrics, f"{name}: page generation"),
        plot_cluster_metrics(
            rows, out_dir / "outcomes_per_cluster.png", outcome_metrics, f"{name}: outcome prediction"
        ),
    ]
    if len(rows) > 1:
        paths.append(plot_cluster_sizes(rows, out_dir / "cluster_sizes.png", f"{name}: users per cluster"))
    return paths
