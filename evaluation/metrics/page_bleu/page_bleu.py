"""`evaluate` module: BLEU of generated vs actual browsing sessions with sacrebleu, offline.
The logic lives beside it in bleu.py (re-exported by :mod:`evaluation.bleu`)."""

import evaluate

from .bleu import bleu_score
from .metric_info import PAPER_CITATION, metric_info, page_list_features

# evaluate.load copies the files this script imports relatively, not the files those import in turn:
# bleu.py needs page_sets.py beside it.
# (A comment on an import line would be read as a URL to fetch it from, hence the parentheses.)
from .page_sets import (
    check_users,  # noqa: F401
)

_CITATION = PAPER_CITATION

_DESCRIPTION = """\
BLEU of page sequences (the "language of browsing" paper, Table 6), computed with sacrebleu: each
session is a sentence whose words are its pages (tokenize="none", effective order), specials are
dropped, and the score is on a 0-1 scale. level="sentence" (default, the paper's figure) averages
each user's sentence BLEU; level="corpus" gives one corpus BLEU. A user whose actual session holds
no page is excluded. Unlike evaluate.load("bleu"), this module needs no Hub access.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): the generated next session of each user (page names).
    references (`list` of `list` of `str`): the actual next session of each user.
    level (`str`, optional): "sentence" (default) or "corpus".
Returns:
    bleu (`float`): BLEU between 0 and 1, higher is better.
Examples:
    >>> import evaluate
    >>> from evaluation import metric_path
    >>> page_bleu = evaluate.load(metric_path("page_bleu"))
    >>> results = page_bleu.compute(
    ...     predictions=[["home", "shoes", "cart", "purchase"], ["bags"]],
    ...     references=[["home", "shoes", "cart", "purchase"], ["home"]],
    ... )
    >>> round(results["bleu"], 4)
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PageBleu(evaluate.Metric):
    """BLEU of generated browsing sessions against the actual ones (sentence mean or corpus)."""

    def _info(self):
        urls = ["https://github.com/mjpost/sacrebleu"]
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, page_list_features(), reference_urls=urls)

    def _compute(self, predictions, references, level="sentence"):
        return {"bleu": bleu_score(predictions, references, level=level)}
