"""`evaluate` module: ROC-AUC, PR-AUC, Brier score, log-loss and base rate of predicted cart,
purchase and cart-or-purchase probabilities. The logic lives in ``probability_scores.py`` beside this
script (nothing is imported from the HeTLM package)."""

import datasets
import evaluate

from .probability_scores import DEFAULT_EPSILON, outcome_probability_scores

_CITATION = """\
@article{scikit-learn,
  title   = {Scikit-learn: Machine Learning in {P}ython},
  author  = {Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and Grisel, O. and
             Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and
             Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal = {Journal of Machine Learning Research},
  volume  = {12},
  pages   = {2825--2830},
  year    = {2011}
}
"""

_DESCRIPTION = """\
Scores of predicted outcome probabilities of the next browsing session. Per user the model gives
P(cart), P(purchase) and P(cart-or-purchase) (e.g. the share of sampled sessions containing the
outcome page); the labels say whether the actual next session contains "cart" and "purchase", and
cart-or-purchase (CoP) is positive when either is. Per outcome, over users: ROC-AUC, PR-AUC (average
precision), Brier score, log-loss of the probabilities clipped to [epsilon, 1 - epsilon], and the
base rate (share of positive users), all as scikit-learn defines them. ROC-AUC and PR-AUC are None
when an outcome's labels hold one class; the reason is listed and counted.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): per user [P(cart), P(purchase), P(cart or purchase)].
    references (`list` of `list` of `int`): per user [cart, purchase] of the actual next session, 0 or 1.
    epsilon (`float`, optional): clip of the probabilities for the log-loss, default 1e-3.
Returns:
    Cart ROC-AUC, Cart PR-AUC, Cart Brier, Cart LogLoss, Cart BaseRate and the same for Purchase and
    CoP (`float`, or `None` for an AUC whose labels hold one class): AUCs higher is better, Brier and
    LogLoss lower is better. n_users (`int`), n_undefined_auc (`int`), undefined_auc (`list` of `str`).
Examples:
    >>> import evaluate
    >>> from evaluation import metric_path
    >>> outcome_probabilities = evaluate.load(metric_path("outcome_probabilities"))
    >>> results = outcome_probabilities.compute(
    ...     predictions=[[0.9, 0.1, 0.9], [0.2, 0.6, 0.7], [0.4, 0.0, 0.4], [0.1, 0.2, 0.3]],
    ...     references=[[1, 0], [0, 1], [1, 0], [0, 0]],
    ... )
    >>> results["Cart ROC-AUC"], round(results["Cart Brier"], 4), results["Purchase PR-AUC"], results["CoP BaseRate"]
    (1.0, 0.105, 1.0, 0.75)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OutcomeProbabilities(evaluate.Metric):
    """ROC-AUC, PR-AUC, Brier, log-loss and base rate of predicted cart / purchase probabilities."""

    def _info(self):
        features = datasets.Features(
            {
                "predictions": datasets.Sequence(datasets.Value("float64"), length=3),
                "references": datasets.Sequence(datasets.Value("int64"), length=2),
            }
        )
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=features,
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, epsilon=DEFAULT_EPSILON):
        return outcome_probability_scores(predictions, references, epsilon=epsilon)
