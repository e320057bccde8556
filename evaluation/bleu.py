"""BLEU of generated vs actual next sessions, computed with ``sacrebleu`` (paper §6.3, Table 6).

The implementation and its definitions live in ``evaluation/metrics/page_bleu/bleu.py``, beside the
``evaluate`` module that wraps them, so that the module loads where this package is not installed.

Example:
    >>> from evaluation.bleu import bleu_score
    >>> round(bleu_score([["home", "shoes"]], [["home", "shoes", "cart"]], level="corpus"), 4)
    0.6065
"""

from evaluation.metrics.page_bleu.bleu import BLEU_LEVELS, bleu_score, sentence_bleu_scores

__all__ = ["BLEU_LEVELS", "bleu_score", "sentence_bleu_scores"]
