"""BLEU of generated vs actual next sessions, computed with ``sacrebleu`` (paper §6.3, Table 6).

Each session is one "sentence" whose words are its pages (joined by spaces, ``tokenize="none"``);
specials are not pages and are dropped from both sides, so a generated ``[UNK]`` simply is a
missing page (Val-P reports hallucinations). Scores are on the paper's 0-1 scale (sacrebleu's
0-100 divided by 100).

Two levels:

- ``"sentence"`` (default): each user's sentence BLEU (sacrebleu's ``sentence_score``:
  effective order, exponential smoothing), averaged over users. This is the paper's figure: its
  Combined BLEU is the user-weighted mean of the cluster BLEUs (Table 6, OPT-350M HeTLM:
  (305·0.637 + 4797·0.339 + 151·0.403) / 5253 = 0.358), which a per-user mean gives and a corpus
  BLEU does not.
- ``"corpus"``: one corpus BLEU over all users (effective order), the machine-translation habit.

A user whose actual session has no page is excluded, as in the other metrics; with no evaluated
user the score is NaN. ``evaluate.load("bleu")`` is not used: it needs the Hugging Face Hub.

Example:
    >>> from evaluation.bleu import bleu_score
    >>> round(bleu_score([["home", "shoes", "cart"]], [["home", "shoes", "cart"]]), 4)
    1.0
    >>> round(bleu_score([["home", "shoes"]], [["home", "shoes", "cart"]], level="corpus"), 4)
    0.6065
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU
from sacrebleu.metrics.bleu import BLEUScore

from .page_sets import SPECIALS, check_users

BLEU_LEVELS: tuple[str, ...] = ("sentence", "corpus")


def sentence_bleu_scores(generated: Sequence[Sequence[str]], actual: Sequence[Sequence[str]]) -> np.ndarray:
    """Each user's sentence BLEU (0-1) as a float array of length N, NaN where A has no page.

    Example:
        >>> sentence_bleu_scores([["a", "b"], ["a"]], [["a", "b"], ["[EOS]"]]).round(4).tolist()
        [1.0, nan]
    """
    statistics = _sentence_statistics(generated, actual)
    return np.array([np.nan if score is None else score.score / 100.0 for score in statistics], dtype=np.float64)


def bleu_score(generated: Sequence[Sequence[str]], actual: Sequence[Sequence[str]], level: str = "sentence") -> float:
    """BLEU (0-1) of the generated sessions against the actual ones: the mean sentence BLEU over
    users (``level="sentence"``, the paper's figure) or one corpus BLEU (``level="corpus"``).

    Example:
        >>> round(bleu_score([["a", "b", "c", "d"], ["x"]], [["a", "b", "c", "d"], ["y"]]), 4)
        0.5
    """
    if level not in BLEU_LEVELS:
        raise ValueError(f"level must be one of {BLEU_LEVELS}, got {level!r}")
    statistics = [score for score in _sentence_statistics(generated, actual) if score is not None]
    if not statistics:
        return float("nan")
    if level == "sentence":
        return float(np.mean([score.score for score in statistics]) / 100.0)
    # Corpus BLEU sums the n-gram matches, n-gram counts and lengths of all sentences, exactly as
    # sacrebleu's corpus_score does, without extracting the n-grams a second time.
    bleu = _bleu()
    corpus = BLEU.compute_bleu(
        correct=np.sum([score.counts for score in statistics], axis=0).tolist(),
        total=np.sum([score.totals for score in statistics], axis=0).tolist(),
        sys_len=sum(score.sys_len for score in statistics),
        ref_len=sum(score.ref_len for score in statistics),
        smooth_method=bleu.smooth_method,
        smooth_value=bleu.smooth_value,
        effective_order=bleu.effective_order,
        max_ngram_order=bleu.max_ngram_order,
    )
    return corpus.score / 100.0


def _bleu() -> BLEU:
    return BLEU(tokenize="none", effective_order=True)


def _sentence_statistics(
    generated: Sequence[Sequence[str]], actual: Sequence[Sequence[str]]
) -> list[BLEUScore | None]:
    """sacrebleu's sentence score (with its n-gram statistics) per user, None where A has no page."""
    check_users(generated=generated, actual=actual)
    # With tokenize="none" sacrebleu splits on whitespace, so a page containing whitespace (or an
    # empty page name) would silently change the word count.
    unsplittable = sorted(page for page in set().union(*generated, *actual) if len(page.split()) != 1)
    if unsplittable:
        raise ValueError(f"page names must be non-empty and free of whitespace for BLEU, got {unsplittable[:5]}")
    bleu = _bleu()
    return [
        bleu.sentence_score(hypothesis, [reference]) if reference else None
        for hypothesis, reference in zip(_join_pages(generated), _join_pages(actual))
    ]


def _join_pages(sessions: Sequence[Sequence[str]]) -> list[str]:
    return [" ".join(page for page in pages if page not in SPECIALS) for pages in sessions]
