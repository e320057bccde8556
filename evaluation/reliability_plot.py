"""Reliability (calibration) plot of predicted outcome probabilities, as a PNG.

Users are binned by predicted probability (``sklearn.calibration.calibration_curve``); each bin
with a user gives a point at (mean predicted probability, share of positive users). One line per
outcome (Cart, Purchase, Cart-or-Purchase) and the diagonal of a perfectly calibrated model; the
legend gives each outcome's base rate and Brier score.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = plot_reliability(
    ...     probabilities=[[0.9, 0.1, 0.9], [0.2, 0.6, 0.7], [0.4, 0.0, 0.4], [0.1, 0.2, 0.3]],
    ...     labels=[[1, 0], [0, 1], [1, 0], [0, 0]],
    ...     path=Path(tempfile.mkdtemp()) / "reliability.png",
    ... )
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.calibration import calibration_curve

from evaluation.outcome_probabilities import OUTCOMES, outcome_label_columns, outcome_probability_scores
from evaluation.plots import _save

OUTCOME_NAMES: dict[str, str] = {"Cart": "Cart", "Purchase": "Purchase", "CoP": "Cart-or-Purchase"}


def plot_reliability(
    probabilities: ArrayLike,
    labels: ArrayLike,
    path: str | Path,
    n_bins: int = 10,
    strategy: str = "uniform",
    title: str = "Reliability of outcome probabilities",
) -> Path:
    """Write the reliability plot of ``probabilities`` against ``labels`` to ``path`` (PNG) and return it.

    Args:
        probabilities: per user ``[P(cart), P(purchase), P(cart or purchase)]``, as for
            :func:`evaluation.outcome_probabilities.outcome_probability_scores`.
        labels: per user ``[cart, purchase]`` of the actual next session.
        path: the PNG to write (parent folders are created).
        n_bins: bins of the predicted probability.
        strategy: ``"uniform"`` (bins of equal width) or ``"quantile"`` (bins of equal size).

    Raises ``ValueError`` for no user and for the inputs ``outcome_probability_scores`` rejects.
    """
    scores = outcome_probability_scores(probabilities, labels)
    if scores["n_users"] == 0:
        raise ValueError("no user to plot the reliability of")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    outcome_labels = outcome_label_columns(labels)
    figure = Figure(figsize=(5.5, 5.0))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="0.5", label="perfectly calibrated")
    for column, outcome in enumerate(OUTCOMES):
        share_positive, mean_predicted = calibration_curve(
            outcome_labels[outcome], probabilities[:, column], n_bins=n_bins, strategy=strategy, pos_label=1
        )
        label = (
            f"{OUTCOME_NAMES[outcome]} (base rate {scores[f'{outcome} BaseRate']:.3f}, "
            f"Brier {scores[f'{outcome} Brier']:.3f})"
        )
        axes.plot(mean_predicted, share_positive, marker="o", label=label)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("share of users with the outcome")
    axes.set_title(f"{title} (N={scores['n_users']})")
    axes.legend(fontsize="small", loc="best")
    axes.grid(alpha=0.3)
    return _save(figure, path)
