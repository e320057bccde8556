"""History-aware decoding: the model's sampled next sessions mixed with the user's own input sessions.

The blended distribution of a user's next session is the mixture

    (1 - lambda) * (the S sampled sessions, 1/S each)  +  lambda * (the user's input sessions, equal weights)

so its marginals are ``P_blend(p) = (1 - lambda) P_LM(p) + lambda * (share of the user's input sessions
holding p)``, for pages and for the outcome pages alike (the user's own cart and purchase rates; there P_LM
is the model's own outcome estimate, :func:`blended_outcome_probabilities`).
``lambda = 0`` is the pure model; ``lambda = 1`` ignores the model (the user's history alone, a
personal-popularity forecast). The weight is a decoding option tuned on the validation split
(:mod:`evaluation.decisions`) and named in every report that uses it, so the pure-model figures stay
apart from the blended ones.

Example:
    >>> mixture = history_mixture([["home", "cart"], ["bags"]], [["home"], ["home", "shoes"]], 0.5)
    >>> [(sorted(pages), weight) for pages, weight in mixture]
    [(['cart', 'home'], 0.25), (['bags'], 0.25), (['home'], 0.25), (['home', 'shoes'], 0.25)]
"""

from __future__ import annotations

from collections.abc import Sequence

from .forecasts import outcome_shares

# Appended to a model's name for its report with the history-aware decoding.
HISTORY_SUFFIX = "+history"
# The weights tried on validation: steps of 0.1 from the pure model (0) to the history alone (1).
HISTORY_WEIGHTS: tuple[float, ...] = tuple(step / 10 for step in range(11))


def history_mixture(
    samples: Sequence[Sequence[str]], input_sessions: Sequence[Sequence[str]], weight: float
) -> list[tuple[frozenset[str], float]]:
    """The weighted sessions ``(pages, weight)`` of the mixture (module docstring), weights summing to 1.

    A user without input sessions has no history to mix: the samples keep the whole weight. Raises
    ``ValueError`` for a weight outside [0, 1] or, when the samples carry weight, no sample.

    Example:
        >>> history_mixture([["a"]], [], 0.3)
        [(frozenset({'a'}), 1.0)]
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the history weight must lie in [0, 1], got {weight}")
    if not input_sessions:
        weight = 0.0
    if weight < 1.0 and not samples:
        raise ValueError("no sampled session to mix with the user's history")
    mixture = [(frozenset(sample), (1.0 - weight) / len(samples)) for sample in samples] if weight < 1.0 else []
    if weight > 0.0:
        mixture += [(frozenset(session), weight / len(input_sessions)) for session in input_sessions]
    return mixture


def blended_outcome_probabilities(
    model_outcomes: Sequence[float], input_sessions: Sequence[Sequence[str]], weight: float
) -> tuple[float, float, float]:
    """P(cart), P(purchase), P(cart or purchase) of the mixture: ``(1 - lambda)`` times the model's and ``lambda``
    times the shares of the user's input sessions holding cart, purchase, either (the weight is 0 without history).

    Example:
        >>> blended_outcome_probabilities((0.5, 0.25, 0.5), [["cart"], ["home"]], 0.5)
        (0.5, 0.125, 0.5)
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the history weight must lie in [0, 1], got {weight}")
    if not input_sessions:
        return tuple(float(probability) for probability in model_outcomes)
    shares = outcome_shares(input_sessions)
    return tuple((1.0 - weight) * float(model) + weight * share for model, share in zip(model_outcomes, shares))
