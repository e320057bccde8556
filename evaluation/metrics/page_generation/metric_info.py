"""What the ``evaluate`` metric modules share: their citation, input features and MetricInfo.

Every module script under ``evaluation/metrics/`` imports this file relatively; the folders other than
``page_generation/`` hold a symbolic link to it, as ``evaluate.load(folder)`` only copies files from the
script's own folder.

Example:
    >>> from evaluation.metrics.page_generation.metric_info import metric_info, page_list_features
    >>> info = metric_info("Demo.", "Args: none.", page_list_features())
    >>> sorted(info.features)
    ['predictions', 'references']
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate

# The _CITATION of every module: the paper that defines the metrics.
PAPER_CITATION = """\
@misc{sundaresan_language_of_browsing,
  title  = {Subjective Behaviors and Preferences in LLM: Language of Browsing},
  author = {Sundaresan, Sai and Chopra, Harshita and Sinha, Atanu R. and Goswami, Koustava and
            Naidu, Nagasai Saketh and Karan, Raghav and Anushka, N},
  note   = {Adobe Research}
}
"""


def page_list_features() -> datasets.Features:
    """Features of the session metrics: one generated and one actual list of page names per user.

    Example:
        >>> page_list_features()["predictions"]
        List(Value('string'))
    """
    pages = datasets.Sequence(datasets.Value("string"))
    return datasets.Features({"predictions": pages, "references": pages})


def metric_info(
    description: str,
    inputs_description: str,
    features: datasets.Features,
    reference_urls: Sequence[str] = (),
) -> evaluate.MetricInfo:
    """The MetricInfo of a HeTLM metric module, citing the paper.

    Example:
        >>> metric_info("Demo.", "Args: none.", page_list_features()).citation.startswith("@misc")
        True
    """
    return evaluate.MetricInfo(
        description=description,
        citation=PAPER_CITATION,
        inputs_description=inputs_description,
        features=features,
        reference_urls=list(reference_urls),
    )
