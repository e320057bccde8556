"""`evaluate` module: Recall@K, NDCG@K and MRR@K of the first page of the next session.
The logic lives beside it in ranking.py (re-exported by :mod:`evaluation.ranking`)."""

import datasets
import evaluate

from .metric_info import PAPER_CITATION, metric_info
from .ranking import ranking_scores

_CITATION = PAPER_CITATION

_DESCRIPTION = """\
Next-page ranking metrics, as Transformers4Rec and RecBole report them: for each user the model
scores every page id for the first page of the next session, and the actual first page is ranked
among the candidate ids. Ties count against the target (an id with the same score is ranked before
it), so a constant scorer gets no credit. Recall@K = share of users whose target is in the top K;
NDCG@K = mean of 1/log2(rank+1) within the top K; MRR@K = mean of 1/rank within the top K.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): per user, the score of every vocabulary id (higher
        is more likely), all rows of the same length V.
    references (`list` of `int`): per user, the id of the first page of the next session.
    ks (`tuple` of `int`, optional): cut-offs, default (5, 10, 20).
    exclude_ids (`list` of `int`, optional): ids that are never candidates (e.g. special tokens).
Returns:
    Recall@K, NDCG@K, MRR@K (`float`) for each K, higher is better; n_users (`int`).
Examples:
    >>> import evaluate
    >>> from evaluation import metric_path
    >>> page_ranking = evaluate.load(metric_path("page_ranking"))
    >>> results = page_ranking.compute(
    ...     predictions=[[9.0, 0.1, 0.7, 0.2], [9.0, 0.5, 0.1, 0.4]],
    ...     references=[2, 3],
    ...     ks=(1, 2),
    ...     exclude_ids=[0],
    ... )
    >>> results["Recall@1"], results["MRR@2"], round(results["NDCG@2"], 4)
    (0.5, 0.75, 0.8155)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PageRanking(evaluate.Metric):
    """Recall@K, NDCG@K and MRR@K of next-page scores over the page vocabulary."""

    def _info(self):
        features = datasets.Features(
            {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
        )
        urls = ["https://github.com/NVIDIA-Merlin/Transformers4Rec", "https://recbole.io"]
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, features, reference_urls=urls)

    def _compute(self, predictions, references, ks=(5, 10, 20), exclude_ids=None):
        return ranking_scores(predictions, references, ks=ks, exclude_ids=exclude_ids)
