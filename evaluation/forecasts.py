"""What every model and baseline hands to the report for one user: a :class:`Forecast`.

A forecast of a user's next session holds

- ``session``: a point prediction (a greedy session, or a baseline's session);
- ``page_probabilities``: P(page in the next session) for each page with P > 0 (outcome pages included);
- ``outcome_probabilities``: P(cart), P(purchase), P(cart or purchase) in the next session (for a sampled
  forecast, the model's own estimates along its samples);
- ``ranked_pages``: candidate FIRST pages of the next session, most likely first (Recall@K, NDCG@K, MRR@K);
- ``samples``: the sampled sessions the probabilities are shares of (empty for other forecasts), which the
  decisions of :mod:`evaluation.decisions` take as the distribution of the next session.

A :class:`Forecaster` turns a batch of users' input sessions into forecasts (and, for clusterwise
models, each user's cluster); its ``probabilistic`` flag says whether the probabilities are graded, so
that the predicted set and outcomes are decided by thresholds tuned on the validation split
(:mod:`evaluation.decisions`) rather than taken from ``session``.

A session generator is adapted by :class:`SessionForecaster` with the defaults of
:func:`session_forecast`: P = 1 for its pages, outcome P from its session (0 or 1), ranking = its
session's pages in order, then a list of popular first pages; the baselines of :mod:`evaluation.baselines`,
which score pages and estimate outcomes, by :class:`BaselineForecaster`. Sampled sessions become a
forecast with :func:`sampled_forecast` (P(page) = share of samples).

Example:
    >>> forecast = session_forecast(["home", "cart", "home"], popular_first_pages=["bags", "home"])
    >>> forecast.page_probabilities, forecast.outcome_probabilities, forecast.ranked_pages
    ({'home': 1.0, 'cart': 1.0}, (1.0, 0.0, 1.0), ['home', 'cart', 'bags'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE

Sessions = list[list[str]]


@dataclass
class Forecast:
    """One user's forecast of the next session (see the module docstring)."""

    session: list[str]
    page_probabilities: dict[str, float]
    outcome_probabilities: tuple[float, float, float]
    ranked_pages: list[str]
    samples: list[list[str]] = field(default_factory=list)


class Forecaster(Protocol):
    """What :func:`evaluation.report.evaluate_forecaster` scores.

    Attributes:
        probabilistic: The forecasts' probabilities are graded (e.g. shares of S sampled sessions): the
            predicted page set and outcomes come from thresholds tuned on validation. False: they come
            from each forecast's ``session``.
    """

    probabilistic: bool

    def forecast(self, input_sessions: Sequence[Sessions]) -> tuple[list[Forecast], list[int] | None]:
        """Forecasts of a batch of users (oldest input session first) and each user's cluster (or None)."""
        ...


def _outcome_probabilities(page_probabilities: dict[str, float], either: float) -> tuple[float, float, float]:
    return page_probabilities.get(OUTCOME_CART, 0.0), page_probabilities.get(OUTCOME_PURCHASE, 0.0), either


def outcome_shares(sessions: Sequence[Sequence[str]]) -> tuple[float, float, float]:
    """The shares of ``sessions`` holding ``cart``, ``purchase`` and either (a sampled forecast's outcome estimate
    without the model's own probabilities; a user's history's own rates).

    Example:
        >>> outcome_shares([["home", "cart"], ["cart", "purchase"], ["home"], ["purchase"]])
        (0.5, 0.5, 0.75)
    """
    if not sessions:
        raise ValueError("no session to take outcome shares of")
    sets = [set(session) for session in sessions]
    cart = sum(OUTCOME_CART in pages for pages in sets) / len(sets)
    purchase = sum(OUTCOME_PURCHASE in pages for pages in sets) / len(sets)
    either = sum(OUTCOME_CART in pages or OUTCOME_PURCHASE in pages for pages in sets) / len(sets)
    return cart, purchase, either


def session_forecast(session: Sequence[str], popular_first_pages: Sequence[str] = ()) -> Forecast:
    """The forecast of a predictor that only gives a session: P = 1 for its pages (0 for the others).

    Example:
        >>> session_forecast([]).outcome_probabilities
        (0.0, 0.0, 0.0)
    """
    pages = list(dict.fromkeys(session))
    probabilities = dict.fromkeys(pages, 1.0)
    either = float(OUTCOME_CART in probabilities or OUTCOME_PURCHASE in probabilities)
    ranked = pages + [page for page in popular_first_pages if page not in probabilities]
    return Forecast(list(session), probabilities, _outcome_probabilities(probabilities, either), ranked)


def sampled_forecast(
    samples: Sequence[Sequence[str]],
    ranked_pages: list[str],
    session: Sequence[str] = (),
    outcome_probabilities: Sequence[float] | None = None,
) -> Forecast:
    """The forecast from S sampled sessions: P(page) is the share of the samples containing the page; P(cart),
    P(purchase), P(cart or purchase) are ``outcome_probabilities`` when given (the model's own estimates along the
    samples, :mod:`inference.outcome_estimates`), else shares of the samples too.

    Example:
        >>> forecast = sampled_forecast([["home", "cart"], ["home"], ["home", "purchase"], ["bags"]], ["home"])
        >>> forecast.page_probabilities["home"], forecast.outcome_probabilities
        (0.75, (0.25, 0.25, 0.5))
        >>> sampled_forecast([["home"]], [], outcome_probabilities=(0.2, 0.1, 0.25)).outcome_probabilities
        (0.2, 0.1, 0.25)
    """
    if not samples:
        raise ValueError("no sampled session to estimate probabilities from")
    sets = [set(sample) for sample in samples]
    counts = Counter(page for pages in sets for page in pages)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    probabilities = {page: count / len(sets) for page, count in ranked}
    if outcome_probabilities is None:
        outcomes = outcome_shares(samples)
    else:
        outcomes = tuple(float(probability) for probability in outcome_probabilities)
        if len(outcomes) != 3 or not all(0.0 <= probability <= 1.0 for probability in outcomes):
            raise ValueError(f"outcome probabilities must be 3 values in [0, 1], got {outcomes}")
    return Forecast(list(session), probabilities, outcomes, ranked_pages, [list(sample) for sample in samples])


class SessionForecaster:
    """A session generator (e.g. a baseline of :mod:`evaluation.baselines`) as a :class:`Forecaster`.

    Args:
        generator: ``generator(input_sessions) -> (sessions, clusters)``.
        popular_first_pages: Fill of each user's ranking after its session's pages (e.g. the train split's most
            frequent first pages).

    Example:
        >>> from evaluation.baselines import RepeatLastSessionBaseline
        >>> forecasts, clusters = SessionForecaster(RepeatLastSessionBaseline(), ["x"]).forecast([[["a", "b"]]])
        >>> forecasts[0].ranked_pages, clusters
        (['a', 'b', 'x'], None)
    """

    probabilistic = False

    def __init__(self, generator, popular_first_pages: Iterable[str] = ()):
        self.generator = generator
        self.popular_first_pages = list(popular_first_pages)

    def forecast(self, input_sessions: Sequence[Sessions]) -> tuple[list[Forecast], list[int] | None]:
        sessions, clusters = self.generator(input_sessions)
        if len(sessions) != len(input_sessions):
            raise ValueError(f"the generator returned {len(sessions)} sessions for {len(input_sessions)} users")
        return [session_forecast(session, self.popular_first_pages) for session in sessions], clusters


class BaselineForecaster:
    """A baseline of :mod:`evaluation.baselines` (its ``predict``) as a :class:`Forecaster`.

    The point session and the predicted page set are the baseline's session; the ranking is its page
    scores, best first; the outcome probabilities are its own estimates where it has them (P(cart or
    purchase) as ``1 - (1 - P(cart)) (1 - P(purchase))``), else those of its session.

    Example:
        >>> from evaluation.baselines import RepeatLastSessionBaseline
        >>> forecasts, clusters = BaselineForecaster(RepeatLastSessionBaseline()).forecast([[["a", "cart"]]])
        >>> forecasts[0].ranked_pages, forecasts[0].outcome_probabilities, clusters
        (['a', 'cart'], (1.0, 0.0, 1.0), None)
    """

    probabilistic = False

    def __init__(self, baseline):
        self.baseline = baseline

    def forecast(self, input_sessions: Sequence[Sessions]) -> tuple[list[Forecast], list[int] | None]:
        predictions = self.baseline.predict(input_sessions)
        outcomes = predictions.outcome_probabilities
        forecasts = []
        for row, (session, scores) in enumerate(zip(predictions.sessions, predictions.page_scores)):
            forecast = session_forecast(session)
            forecast.ranked_pages = sorted(scores, key=lambda page: -scores[page])
            if outcomes is not None:
                cart, purchase = float(outcomes[OUTCOME_CART][row]), float(outcomes[OUTCOME_PURCHASE][row])
                forecast.outcome_probabilities = (cart, purchase, 1.0 - (1.0 - cart) * (1.0 - purchase))
            forecasts.append(forecast)
        return forecasts, None
