"""What every abbreviation of the reports means, in one place: the glossary at the top of the experiment's
``report.md`` and of ``hetlm evaluate``'s ``comparison.md``.

A table header is made of glossary terms: ``"Cart Acc"`` is the outcome ``Cart`` and the figure ``Acc``,
``"IoU-var"`` is ``IoU`` with the suffix ``-var``, ``"NDCG@10"`` is ``NDCG@K`` with K = 10.
:func:`header_terms` splits a header that way and :func:`undefined_headers` lists the headers some part of
which the glossary lacks (the tests keep it empty for every table the reports print).

Example:
    >>> header_terms("Cart Acc"), header_terms("IoU-var"), header_terms("NDCG@10")
    (['Cart', 'Acc'], ['IoU', '-var'], ['NDCG@K'])
    >>> undefined_headers(["HR", "CoP F1", "Cart Wobble"])
    ['Cart Wobble']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from evaluation.composite import COMPOSITE_GROUPS, OVERALL

GLOSSARY_TITLE = "## Glossary"
_AT_K = re.compile(r"^(?P<name>[A-Za-z]+)@\d+$")
_COMPOSITE = (
    "the paper's section 5.3 score: against a baseline model (the single large LM in the experiment), the fraction "
    "of metrics on which the model is strictly better (lower is better for the -var columns), shown as "
    "score (wins/ties/losses); values are compared at the 3 decimals the tables show, so an invisible difference "
    "is a tie."
)

# Each term once; the order is the order of the glossary.
GLOSSARY: dict[str, str] = {
    "N": "test users scored in the row (users whose actual next session is empty are left out of the metrics).",
    "Excluded": "test users left out because their actual next session has no page.",
    "G, A, I": "per user: the set of pages of the generated (predicted) next session, of the actual next session, "
    "and of the input sessions the model saw.",
    "HR": "hit rate: share of users with at least one correctly predicted page (|G∩A| > 0).",
    "IoA": "intersection over actual: |G∩A| / |A|, the share of the actual pages that were predicted (recall).",
    "IoP": "intersection over predicted: |G∩A| / |G|, the share of the predicted pages that were visited "
    "(precision; 0 for an empty prediction).",
    "IoU": "intersection over union: |G∩A| / |G∪A| (Jaccard).",
    "Val-P": "valid pages: share of generated tokens that are real pages of the vocabulary (1 = no hallucination).",
    "New-P": "new pages: share of the valid generated pages not in the user's input sessions (novelty).",
    "-var": "suffix: the variance of the per-user values across users (lower is better: a model that is "
    "equally good for every user).",
    "Cart": "outcome: the session contains the add-to-cart page.",
    "Purchase": "outcome: the session contains the purchase (order completed) page.",
    "CoP": "Cart-or-Purchase: the session contains either outcome page.",
    "Acc": "accuracy of the predicted outcome flag (G contains the outcome) against the actual one (A contains it).",
    "Rec": "recall: share of the users whose actual session has the outcome that were predicted to have it.",
    "Prec": "precision: share of the users predicted to have the outcome whose actual session has it.",
    "F1": "harmonic mean of precision and recall.",
    "BaseRate": "share of the scored users whose actual next session has the outcome.",
    "Majority Acc": "accuracy of always predicting the majority class, max(BaseRate, 1 - BaseRate): an Acc at "
    "or below it is no better than knowing the base rate.",
    "ROC-AUC": "area under the ROC curve of the predicted outcome probability (0.5 = chance, 1 = perfect ranking).",
    "PR-AUC": "area under the precision-recall curve of the predicted outcome probability (average precision; "
    "chance = BaseRate).",
    "Brier": "Brier score: mean squared error of the predicted outcome probability (lower is better).",
    "LogLoss": "log-loss (cross-entropy) of the predicted outcome probability (lower is better).",
    "Recall@K": "share of users whose actual next session's first page is among the model's top K ranked pages.",
    "NDCG@K": "normalised discounted cumulative gain of that first page in the top K: 1 / log2(1 + rank), "
    "0 outside the top K.",
    "MRR@K": "mean reciprocal rank of that first page (1 / rank, 0 outside the top K).",
    "BLEU": "sentence BLEU of the generated against the actual page sequence (order matters), averaged over users.",
    "K": "the number of clusters (of users) of a clusterwise model; '-' for models without clusters.",
    "ARI": "adjusted Rand index between the model's clusters and the known segments (1 = the same partition, "
    "0 = chance).",
    "NMI": "normalised mutual information between the model's clusters and the known segments (1 = the same "
    "partition, 0 = independent).",
    "Cluster profile": "what a cluster of a clusterwise model is, computed from the training users the model "
    "routes to it: its users, outcome rates, top and distinctive pages, and a label: the pages most of its users "
    "visited with a lift of at least 1.25, and its outcome rates.",
    "rate": "in a cluster profile (Cart rate, Purchase rate): the share of the cluster's training sessions that "
    "contain the outcome page.",
    "Top pages": "in a cluster profile: the pages most of the cluster's training users visited (share of its users).",
    "Distinctive pages": "in a cluster profile: the pages with the highest lift among those at least a minimum "
    "share of the cluster's users visited (share of its users, then the lift as x2.5).",
    "Lift": "of a page in a cluster: the share of the cluster's users who visited it over the share of all "
    "training users who did (above 1 = typical of the cluster).",
    "Validation NLL": "the validation users' mean per-token negative log-likelihood of their next session under the "
    "predictor each is routed to (lower is better).",
    "Moved since K-means": "in the cluster dynamics: training users whose cluster is no longer their K-means one.",
    "Moved since last": "in the cluster dynamics: training users whose cluster changed since the previous routing.",
    **{
        group: f"composite over the {len(metrics)} metrics {', '.join(metrics)}."
        for group, metrics in COMPOSITE_GROUPS.items()
    },
    OVERALL: f"composite over all {sum(len(metrics) for metrics in COMPOSITE_GROUPS.values())} metrics of the "
    "three groups.",
    "Composite": _COMPOSITE,
}
# Headers that are names, not abbreviations.
PLAIN_HEADERS = frozenset(
    {"Model", "Cluster", "Decoding", "Stage", "Seconds", "Reused", "Segment", "Users", "Label", "Epoch", "Sizes"}
)


def header_terms(header: str) -> list[str]:
    """The glossary terms a table header is made of (see the module docstring).

    Example:
        >>> header_terms("Overall Composite"), header_terms("Purchase Majority Acc"), header_terms("HR-var")
        (['Overall Composite'], ['Purchase', 'Majority Acc'], ['HR', '-var'])
    """
    if header in GLOSSARY:
        return [header]
    first, _, rest = header.partition(" ")
    if rest:
        return [*header_terms(first), *header_terms(rest)]
    if header.endswith("-var"):
        return [header.removesuffix("-var"), "-var"]
    match = _AT_K.match(header)
    return [f"{match['name']}@K"] if match else [header]


def undefined_headers(headers: Iterable[str]) -> list[str]:
    """The headers (in order, once each) with a part the glossary does not define; plain names are fine.

    Example:
        >>> undefined_headers(["Model", "Recall@20", "MRR@10", "Cart PR-AUC", "Val-Q"])
        ['Val-Q']
    """
    headers = dict.fromkeys(header for header in headers if header not in PLAIN_HEADERS)
    return [header for header in headers if any(term not in GLOSSARY for term in header_terms(header))]


def glossary_markdown() -> str:
    """The glossary section (title, the definitions as a bullet list, the composite's explanation).

    Example:
        >>> text = glossary_markdown()
        >>> text.splitlines()[0], "- **IoU**: intersection over union" in text
        ('## Glossary', True)
    """
    lines = [GLOSSARY_TITLE, ""]
    lines += [f"- **{term}**: {definition}" for term, definition in GLOSSARY.items()]
    return "\n".join(lines) + "\n"


def without_glossary(markdown: str) -> str:
    """``markdown`` with its glossary section (up to the next ``## `` heading) removed, for a document that
    embeds another one below its own glossary.

    Example:
        >>> without_glossary("# A\\n\\n## Glossary\\n\\n- **HR**: hit rate\\n\\n## Tables\\n\\nx\\n")
        '# A\\n\\n## Tables\\n\\nx\\n'
    """
    start = markdown.find(GLOSSARY_TITLE + "\n")
    if start < 0:
        return markdown
    end = markdown.find("\n## ", start + len(GLOSSARY_TITLE))
    return markdown[:start] + (markdown[end + 1 :] if end >= 0 else "")
