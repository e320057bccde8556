"""`evaluate` module: outcome prediction (cart, purchase, cart-or-purchase) from generated browsing
sessions. The logic lives beside it in outcome_metrics.py (re-exported by :mod:`evaluation.outcome_metrics`)."""

import evaluate

from .metric_info import PAPER_CITATION, metric_info, page_list_features
from .outcome_metrics import outcome_scores

# evaluate.load copies the files this script imports relatively, not the files those import in turn:
# outcome_metrics.py needs page_sets.py beside it.
# (A comment on an import line would be read as a URL to fetch it from, hence the parentheses.)
from .page_sets import (
    check_users,  # noqa: F401
)

_CITATION = PAPER_CITATION

_DESCRIPTION = """\
Outcome prediction metrics of the "language of browsing" paper (sections 5.1.2, 5.2.3, Table 4). Per
user, the prediction is positive when the generated next session contains the outcome page ("cart",
"purchase", or either for Cart-or-Purchase) and the truth is positive when the actual next session
contains it. Reported over users: accuracy, precision and recall for Cart, Purchase and
Cart-or-Purchase (CoP), and F1 for CoP -- the paper's 10 figures. Zero divisions give 0, as
scikit-learn's zero_division=0. A user whose actual session holds no page is excluded and counted.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): the generated next session of each user (page names).
    references (`list` of `list` of `str`): the actual next session of each user.
Returns:
    Cart Acc, Purchase Acc, CoP Acc, Cart Rec, Purchase Rec, CoP Rec, Cart Prec, Purchase Prec,
    CoP Prec, CoP F1 (`float`): higher is better.
    n_users (`int`): users scored; n_excluded_empty_actual (`int`): users without an actual page.
Examples:
    >>> import evaluate
    >>> from evaluation import metric_path
    >>> browsing_outcomes = evaluate.load(metric_path("browsing_outcomes"))
    >>> results = browsing_outcomes.compute(
    ...     predictions=[["shoes", "cart"], ["home"], ["purchase"], ["cart", "purchase"]],
    ...     references=[["cart"], ["home", "cart"], ["home"], ["purchase"]],
    ... )
    >>> results["Cart Acc"], results["Cart Prec"], results["Purchase Rec"], results["CoP F1"]
    (0.5, 0.5, 1.0, 0.6666666666666666)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BrowsingOutcomes(evaluate.Metric):
    """Accuracy, precision, recall and F1 of cart / purchase prediction from generated sessions."""

    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, page_list_features())

    def _compute(self, predictions, references):
        return outcome_scores(predictions, references)
