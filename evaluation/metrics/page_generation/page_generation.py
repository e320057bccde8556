"""`evaluate` module: page-generation metrics of browsing sessions (HR, IoA, IoP, IoU, Val-P, New-P
and the variances across users). The logic lives beside it in page_metrics.py (re-exported by
:mod:`evaluation.page_metrics`)."""

import evaluate

from .metric_info import PAPER_CITATION, metric_info, page_list_features
from .page_metrics import page_generation_scores

# evaluate.load copies the files this script imports relatively, not the files those import in turn:
# page_metrics.py needs page_sets.py beside it.
# (A comment on an import line would be read as a URL to fetch it from, hence the parentheses.)
from .page_sets import (
    check_users,  # noqa: F401
)

_CITATION = PAPER_CITATION

_DESCRIPTION = """\
Page generation metrics of the "language of browsing" paper (sections 5.1.1, 5.2.1, 5.2.2). Per user,
G, A and I are the sets of pages of the generated next session, the actual next session and the input
sessions (specials [PAD] [UNK] [BOS] [EOS] are not pages). HR = 1 if G and A share a page;
IoA = |G∩A|/|A|; IoP (IoG) = |G∩A|/|G| (0 for an empty G); IoU = |G∩A|/|G∪A|; Val-P = valid
generated tokens / generated tokens (0 when nothing was generated); New-P = valid generated pages
not in I / valid generated pages (as sets; 0 when there is none). Means across users are reported
for the six, and the population variance (ddof=0) across users for HR, IoA, IoP and IoU (lower is
better). A user whose actual session holds no page is excluded and counted.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): the generated next session of each user (page names).
    references (`list` of `list` of `str`): the actual next session of each user.
    inputs (`list` of `list` of `str`): the pages of each user's input sessions, flattened.
    vocabulary (`set` of `str`, optional): the valid pages, for Val-P and New-P. Defaults to None:
        every non-special page name is valid.
Returns:
    HR, IoA, IoP, IoU, Val-P, New-P (`float`): means across users, higher is better.
    HR-var, IoA-var, IoP-var, IoU-var (`float`): variances across users, lower is better.
    n_users (`int`): users scored; n_excluded_empty_actual (`int`): users without an actual page.
Examples:
    >>> import evaluate
    >>> from evaluation import metric_path
    >>> page_generation = evaluate.load(metric_path("page_generation"))
    >>> results = page_generation.compute(
    ...     predictions=[["home", "shoes", "[UNK]"], ["home"]],
    ...     references=[["shoes", "cart"], ["bags"]],
    ...     inputs=[["home"], ["home", "bags"]],
    ...     vocabulary={"home", "shoes", "bags", "cart"},
    ... )
    >>> [round(results[name], 4) for name in ("HR", "IoA", "IoP", "IoU", "Val-P", "New-P", "HR-var")]
    [0.5, 0.25, 0.25, 0.1667, 0.8333, 0.25, 0.25]
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PageGeneration(evaluate.Metric):
    """Page generation metrics (means and variances across users) of generated browsing sessions."""

    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, page_list_features())

    def _compute(self, predictions, references, inputs, vocabulary=None):
        return page_generation_scores(predictions, references, inputs, vocabulary)
