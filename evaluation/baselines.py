"""Next-session baselines, scored by the same report code as the models.

Each baseline is a *session generator* (see :func:`evaluation.report.evaluate_generator`): calling
it with the input sessions of a batch of users returns ``(generated sessions, None)`` -- baselines
have no clusters. Its ``predict`` returns :class:`BaselinePredictions`: the sessions, a **scored
ranking** of pages per user (for Recall@K / NDCG@K / MRR@K: :func:`page_score_matrix` turns it into
the ``[N, V]`` array of :func:`evaluation.ranking.ranking_scores`) and, where natural, the
probability that the next session contains ``cart`` / ``purchase``. Each baseline is fitted on the
TRAIN split of a prepared dataset (columns ``input_sessions``, ``target_session``, ``user_id``) with
its ``fit`` classmethod and has a ``name``. A train user may have many rows (one per session,
:mod:`tokenization.examples`), so what is counted per session uses each session once
(:func:`~tokenization.examples.user_histories`) and neighbours are users, not rows.

- ``repeat-last`` (:class:`RepeatLastSessionBaseline`): the next session is the user's last input
  session, unchanged.
- ``most-popular`` (:class:`MostPopularPagesBaseline`): every user gets the same L pages, the
  pages found in the most train target sessions; L is the median train target session length.
- ``markov`` (:class:`MarkovChainBaseline`): a first-order Markov chain over each train user's page
  stream (sessions joined in time order, so a session's last page leads to the next session's
  first), started from the user's own LAST page: the pages it most likely visits next.
- ``personal-popular`` (:class:`PersonalPopularityBaseline`): the user's own most frequent pages,
  filled with globally popular ones.
- ``sknn`` (:class:`SessionKNNBaseline`): session-kNN in the style of V-SKNN (Ludewig & Jannach,
  2018): neighbour users by recency-weighted overlap of visited pages; their next sessions' pages.

**Session length of set-valued predictions**: the baselines that rank pages (``markov``,
``personal-popular``, ``sknn``) predict the top L pages, L = the user's mean number of DISTINCT
pages per input session (rounded half up, at least 1): the metrics compare page sets, and a user's
own sessions are the best guide to how many pages its next one has. Users without input sessions get
the median over train sessions.

Example:
    >>> from datasets import Dataset
    >>> train = Dataset.from_dict({
    ...     "user_id": ["u1", "u2"],
    ...     "input_sessions": [[["home", "shoes"]], [["home", "bags"]]],
    ...     "target_session": [["home", "shoes", "cart"], ["home", "shoes"]],
    ... })
    >>> fit_baseline("most-popular", train)([[["bags"]]])
    ([['home', 'shoes', 'cart']], None)
    >>> fit_baseline("repeat-last", train)([[["a"], ["b", "c"]]])
    ([['b', 'c']], None)
    >>> fit_baseline("markov", train)([[["bags"]]])
    ([['home']], None)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from datasets import Dataset
from scipy import sparse

from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE
from tokenization.examples import user_histories

Sessions = list[list[str]]
GeneratorOutput = tuple[list[list[str]], None]
OUTCOMES: tuple[str, ...] = (OUTCOME_CART, OUTCOME_PURCHASE)

_READ_BATCH_SIZE = 10_000


@dataclass
class BaselinePredictions:
    """What a baseline predicts for a batch of users.

    Attributes:
        sessions: The predicted next session of each user.
        page_scores: Per user, ``page -> score`` (higher = more likely in the next session); pages
            left out were not scored (they rank last).
        outcome_probabilities: ``{"cart": [N], "purchase": [N]}`` probabilities that the next
            session contains the outcome, or None when the baseline has no natural estimate.
    """

    sessions: list[list[str]]
    page_scores: list[dict[str, float]]
    outcome_probabilities: dict[str, np.ndarray] | None = None


def page_score_matrix(page_scores: Sequence[Mapping[str, float]], vocabulary: Mapping[str, int]) -> np.ndarray:
    """Page scores as the ``[N, V]`` array of :func:`evaluation.ranking.ranking_scores`: ``-inf`` where
    a page was not scored (so it ranks after every scored page); pages outside ``vocabulary`` are dropped.

    Example:
        >>> page_score_matrix([{"b": 2.0, "zz": 5.0}], {"[PAD]": 0, "a": 1, "b": 2}).tolist()
        [[-inf, -inf, 2.0]]
    """
    matrix = np.full((len(page_scores), max(vocabulary.values(), default=-1) + 1), -np.inf)
    for row, scores in enumerate(page_scores):
        for page, score in scores.items():
            if page in vocabulary:
                matrix[row, vocabulary[page]] = score
    return matrix


def _check_train(train_dataset: Dataset) -> None:
    missing = {"input_sessions", "target_session"} - set(train_dataset.column_names)
    if missing:
        raise ValueError(f"train dataset lacks column(s) {sorted(missing)}; has {train_dataset.column_names}")
    if len(train_dataset) == 0:
        raise ValueError("cannot fit a baseline on an empty train dataset")


def _train_sessions(train_dataset: Dataset) -> Iterable[Sessions]:
    """Every train user's distinct sessions (each session once, however many rows repeat it)."""
    _check_train(train_dataset)
    return (sessions for _, sessions in user_histories(train_dataset, _READ_BATCH_SIZE))


def _round_half_up(value: float) -> int:
    return max(1, math.floor(value + 0.5))


def session_length(sessions: Sessions, default: int) -> int:
    """The mean number of distinct pages per session, rounded half up, at least 1 (``default`` without sessions).

    Example:
        >>> session_length([["a", "a", "b"], ["c"]], default=4), session_length([], default=4)
        (2, 4)
    """
    if not sessions:
        return default
    return _round_half_up(sum(len(set(session)) for session in sessions) / len(sessions))


@dataclass
class PagePopularity:
    """How many train sessions contain each page (each session once).

    ``share`` = sessions with the page / (sessions + 1): strictly below 1, so adding it to an
    integer count breaks ties without changing the count's order. ``median_length`` is the median
    number of distinct pages per session, rounded half up (the length for users without history).

    Example:
        >>> popularity = PagePopularity.fit([[["a", "b"], ["a"]], [["b", "c", "c"]]])
        >>> popularity.ranked, popularity.share["a"], popularity.median_length
        (['a', 'b', 'c'], 0.5, 2)
    """

    ranked: list[str]
    share: dict[str, float]
    outcome_rates: dict[str, float]
    median_length: int

    @classmethod
    def fit(cls, histories: Iterable[Sessions]) -> PagePopularity:
        counts: Counter[str] = Counter()
        lengths = []
        for sessions in histories:
            for session in sessions:
                counts.update(set(session))
                lengths.append(len(set(session)))
        total = len(lengths)
        ranked = [page for page, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
        return cls(
            ranked=ranked,
            share={page: count / (total + 1) for page, count in counts.items()},
            outcome_rates={outcome: counts[outcome] / max(total, 1) for outcome in OUTCOMES},
            median_length=_round_half_up(float(np.median(lengths))) if lengths else 1,
        )


def _ranked(scores: dict[str, float]) -> dict[str, float]:
    """The scores best first (ties by name)."""
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0])))


class RepeatLastSessionBaseline:
    """Predict that the user's next session repeats their last input session.

    Ranking: the last session's pages in the order they first appear (score ``1 / position``);
    outcome probabilities: 1 when the last session had the outcome, else 0.

    Example:
        >>> RepeatLastSessionBaseline()([[["home"], ["shoes", "cart"]], []])
        ([['shoes', 'cart'], []], None)
        >>> RepeatLastSessionBaseline().predict([[["b", "a", "b"]]]).page_scores
        [{'b': 1.0, 'a': 0.5}]
    """

    name: ClassVar[str] = "repeat-last"

    @classmethod
    def fit(cls, train_dataset: Dataset) -> RepeatLastSessionBaseline:
        """Nothing to learn; accepts the train split for a uniform interface with the other baselines."""
        return cls()

    def predict(self, input_sessions: Sequence[Sessions]) -> BaselinePredictions:
        last = [list(sessions[-1]) if sessions else [] for sessions in input_sessions]
        scores = [{page: 1.0 / (rank + 1) for rank, page in enumerate(dict.fromkeys(session))} for session in last]
        outcomes = {outcome: np.array([float(outcome in session) for session in last]) for outcome in OUTCOMES}
        return BaselinePredictions(last, scores, outcomes)

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return self.predict(input_sessions).sessions, None


class MostPopularPagesBaseline:
    """Predict the same L most popular pages for every user.

    Popularity is the number of train *target* sessions that contain the page (each page counted
    once per session, because the page metrics compare page sets); ties are broken by page name.
    L is the median length (pages, repeats included) of the train target sessions, rounded half
    up and at least 1. Ranking: every user gets the same popularity counts; outcome probabilities:
    the share of train target sessions with the outcome.

    Args:
        pages: The generated session, most popular first.
        counts: Target sessions containing each page (the ranking; default: the order of ``pages``).
        outcome_rates: Share of train target sessions with each outcome (default: none given).

    Example:
        >>> MostPopularPagesBaseline(["home", "shoes"])([[["a"]], [["b"]]])
        ([['home', 'shoes'], ['home', 'shoes']], None)
    """

    name: ClassVar[str] = "most-popular"

    def __init__(
        self,
        pages: Sequence[str],
        counts: Mapping[str, int] | None = None,
        outcome_rates: Mapping[str, float] | None = None,
    ):
        self.pages = list(pages)
        self.counts = (
            dict(counts) if counts is not None else {page: len(pages) - rank for rank, page in enumerate(pages)}
        )
        self.outcome_rates = dict(outcome_rates) if outcome_rates is not None else None

    @classmethod
    def fit(cls, train_dataset: Dataset) -> MostPopularPagesBaseline:
        """Count page popularity and the median session length over the train target sessions."""
        _check_train(train_dataset)
        session_counts: Counter[str] = Counter()
        lengths = []
        for batch in train_dataset.select_columns(["target_session"]).iter(batch_size=_READ_BATCH_SIZE):
            for target in batch["target_session"]:
                session_counts.update(set(target))
                lengths.append(len(target))
        length = _round_half_up(float(np.median(lengths)))
        ranked = sorted(session_counts.items(), key=lambda item: (-item[1], item[0]))
        rates = {outcome: session_counts[outcome] / len(lengths) for outcome in OUTCOMES}
        return cls([page for page, _ in ranked[:length]], dict(ranked), rates)

    def predict(self, input_sessions: Sequence[Sessions]) -> BaselinePredictions:
        users = len(input_sessions)
        outcomes = None
        if self.outcome_rates is not None:
            outcomes = {outcome: np.full(users, self.outcome_rates[outcome]) for outcome in OUTCOMES}
        return BaselinePredictions(
            [list(self.pages) for _ in range(users)],
            [{page: float(count) for page, count in self.counts.items()}] * users,
            outcomes,
        )

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return self.predict(input_sessions).sessions, None


class MarkovChainBaseline:
    """A first-order Markov chain over pages, started from each user's last page.

    Transitions are counted over every train user's page stream, its sessions joined in time order
    (each session once), so the last page of a session leads to the first page of the next: what
    the chain is asked to predict. For a user whose last page is ``l`` and whose next session should
    have L pages (module docstring), page ``p`` scores its expected number of visits in the chain's
    next L steps, ``sum over t = 1..L of P^t(l, p)`` (with L = 1 the plain ``P(p | l)``), plus
    ``1e-6 * share(p)`` (:class:`PagePopularity`), which orders equal scores and ranks the pages the
    chain cannot reach. The prediction is the L best pages; with ``do_sample`` (seeded) L distinct
    pages are drawn in proportion to their expected visits instead, the missing ones filled by
    score. Looking L steps ahead rather than one keeps a page that mostly leads within a session
    (a product page to ``cart``) from hiding where the user goes next. Only the ``num_scored`` best
    pages of each user are scored.

    Args:
        transitions: ``page -> {next page: count}``.
        popularity: Global page popularity (orders ties, ranks unreachable pages).
        do_sample: Sample the pages instead of taking the most likely ones.
        seed: Seed of the sampler (used only with ``do_sample``).
        num_scored: Pages scored per user (enough for Recall@20).

    Example (two steps from ``a``: ``c`` 0.75 and ``b`` 0.25, then ``c -> a``; ``a`` wins the tie by popularity):
        >>> popularity = PagePopularity(["a", "b", "c"], {"a": 0.5, "b": 0.3, "c": 0.1}, {}, 2)
        >>> chain = MarkovChainBaseline({"a": {"c": 3, "b": 1}, "c": {"a": 1}}, popularity)
        >>> chain([[["x", "a"]], [["c"], ["z"]]])
        ([['a', 'c'], ['a']], None)
        >>> {page: round(score, 4) for page, score in chain.predict([[["x", "a"]]]).page_scores[0].items()}
        {'a': 0.75, 'c': 0.75, 'b': 0.25}
    """

    name: ClassVar[str] = "markov"

    def __init__(
        self,
        transitions: Mapping[str, Mapping[str, int]],
        popularity: PagePopularity,
        do_sample: bool = False,
        seed: int = 0,
        num_scored: int = 100,
    ):
        if num_scored < 1:
            raise ValueError(f"num_scored must be at least 1, got {num_scored}")
        self.transitions = {page: dict(counts) for page, counts in transitions.items()}
        self.popularity = popularity
        self.do_sample = do_sample
        self.seed = seed
        self.num_scored = num_scored
        self._rng = np.random.default_rng(seed)
        names = set(popularity.ranked) | set(self.transitions)
        names.update(page for counts in self.transitions.values() for page in counts)
        self.pages = sorted(names)
        self.page_index = {page: column for column, page in enumerate(self.pages)}
        rows, columns, probabilities = [], [], []
        for page, counts in self.transitions.items():
            total = sum(counts.values())
            for next_page, count in counts.items():
                rows.append(self.page_index[page])
                columns.append(self.page_index[next_page])
                probabilities.append(count / total)
        # Transposed, so that P^T @ v moves a distribution over pages one step.
        self._step = sparse.csr_matrix((probabilities, (columns, rows)), shape=(len(self.pages),) * 2)
        self._tie_breaks = 1e-6 * np.array([popularity.share.get(page, 0.0) for page in self.pages])

    @classmethod
    def fit(
        cls, train_dataset: Dataset, do_sample: bool = False, seed: int = 0, num_scored: int = 100
    ) -> MarkovChainBaseline:
        """Count page transitions over every train user's page stream."""
        transitions: dict[str, Counter[str]] = defaultdict(Counter)
        histories = list(_train_sessions(train_dataset))
        for sessions in histories:
            stream = [page for session in sessions for page in session]
            for page, next_page in zip(stream[:-1], stream[1:]):
                transitions[page][next_page] += 1
        return cls(transitions, PagePopularity.fit(histories), do_sample=do_sample, seed=seed, num_scored=num_scored)

    def expected_visits(self, last_page: str | None, steps: int) -> np.ndarray:
        """Expected visits of every page (``self.pages`` order) in the ``steps`` steps after ``last_page``.

        Example:
            >>> chain = MarkovChainBaseline({"a": {"b": 1}, "b": {"a": 1, "c": 1}}, PagePopularity([], {}, {}, 1))
            >>> chain.pages, chain.expected_visits("a", 3).tolist()
            (['a', 'b', 'c'], [0.5, 1.5, 0.5])
        """
        visits = np.zeros(len(self.pages))
        if last_page not in self.page_index:
            return visits
        distribution = np.zeros(len(self.pages))
        distribution[self.page_index[last_page]] = 1.0
        for _ in range(steps):
            distribution = self._step @ distribution
            visits += distribution
        return visits

    def predict(self, input_sessions: Sequence[Sessions]) -> BaselinePredictions:
        sessions, all_scores = [], []
        for user_sessions in input_sessions:
            last_page = next((session[-1] for session in reversed(user_sessions) if session), None)
            length = session_length(user_sessions, self.popularity.median_length)
            visits = self.expected_visits(last_page, length)
            scores = visits + self._tie_breaks
            best = np.lexsort((np.arange(len(scores)), -scores))[: self.num_scored]
            ranked = {self.pages[column]: float(scores[column]) for column in best}
            if self.do_sample:
                reachable = np.flatnonzero(visits > 0)
                picks = (
                    self._rng.choice(
                        reachable,
                        size=min(length, len(reachable)),
                        replace=False,
                        p=visits[reachable] / visits[reachable].sum(),
                    )
                    if len(reachable)
                    else []
                )
                drawn = [self.pages[column] for column in picks]
                sessions.append(drawn + [page for page in ranked if page not in drawn][: length - len(drawn)])
            else:
                sessions.append(list(ranked)[:length])
            all_scores.append(ranked)
        return BaselinePredictions(sessions, all_scores)

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return self.predict(input_sessions).sessions, None


class PersonalPopularityBaseline:
    """The user's own most frequent pages, filled with globally popular pages.

    Page ``p`` scores ``n(p) + share(p)``: ``n(p)`` the number of the user's input sessions that
    contain it, ``share(p)`` its global popularity (:class:`PagePopularity`, below 1), which orders
    pages with equal counts and ranks the pages the user never visited. The prediction is the L
    best pages (module docstring). Outcome probabilities: the user's share of sessions with the
    outcome, with one pseudo-session at the global rate: ``(n(outcome) + rate) / (sessions + 1)``.

    Args:
        popularity: Global page popularity over the train sessions.
        num_scored: Popular pages scored besides the user's own (enough for Recall@20).

    Example:
        >>> popularity = PagePopularity(["a", "b", "cart"], {"a": 0.5, "b": 0.3, "cart": 0.2},
        ...                             {"cart": 0.2, "purchase": 0.0}, median_length=2)
        >>> baseline = PersonalPopularityBaseline(popularity, num_scored=1)
        >>> predictions = baseline.predict([[["b", "cart"], ["b"]]])
        >>> predictions.sessions, predictions.page_scores, predictions.outcome_probabilities["cart"].round(2).tolist()
        ([['b', 'cart']], [{'b': 2.3, 'cart': 1.2, 'a': 0.5}], [0.4])
    """

    name: ClassVar[str] = "personal-popular"

    def __init__(self, popularity: PagePopularity, num_scored: int = 100):
        if num_scored < 1:
            raise ValueError(f"num_scored must be at least 1, got {num_scored}")
        self.popularity = popularity
        self.num_scored = num_scored

    @classmethod
    def fit(cls, train_dataset: Dataset, num_scored: int = 100) -> PersonalPopularityBaseline:
        """Global page popularity over the train users' sessions (each session once)."""
        return cls(PagePopularity.fit(_train_sessions(train_dataset)), num_scored=num_scored)

    def predict(self, input_sessions: Sequence[Sessions]) -> BaselinePredictions:
        share, rates = self.popularity.share, self.popularity.outcome_rates
        sessions, all_scores = [], []
        outcomes = {outcome: np.zeros(len(input_sessions)) for outcome in OUTCOMES}
        for row, user_sessions in enumerate(input_sessions):
            own = Counter(page for session in user_sessions for page in set(session))
            scores = {page: count + share.get(page, 0.0) for page, count in own.items()}
            for page in self.popularity.ranked[: self.num_scored]:
                scores.setdefault(page, share[page])
            scores = _ranked(scores)
            sessions.append(list(scores)[: session_length(user_sessions, self.popularity.median_length)])
            all_scores.append(scores)
            for outcome in OUTCOMES:
                outcomes[outcome][row] = (own[outcome] + rates[outcome]) / (len(user_sessions) + 1)
        return BaselinePredictions(sessions, all_scores, outcomes)

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return self.predict(input_sessions).sessions, None


class SessionKNNBaseline:
    """Session-kNN in the style of V-SKNN: the next sessions of the users whose history is most like the user's.

    Neighbour candidates are the train rows (a history window and the session that followed it).
    The user's input pages, joined in time order, are weighted linearly by recency as in V-SKNN
    (position i of n weighs i / n, so the last page weighs 1; a repeated page keeps its latest
    weight); a candidate's history is a binary set of pages. Similarity is the cosine between the
    two: ``sum of the user's weights of shared pages / sqrt(|user pages| * |candidate pages|)``.
    Each train user is one neighbour (its best-matching row), so users with many sessions do not
    crowd the neighbourhood; the ``k`` most similar users with a positive similarity are kept.
    Page ``p`` scores ``sum of similarities of the neighbours whose next session contains p``;
    outcome probabilities are the similarity-weighted share of neighbours whose next session had
    the outcome (the global rate without neighbours). The prediction is the L best pages (module
    docstring), filled by global popularity, which also ranks the pages no neighbour visited (its
    share scaled by 1e-6, far below any neighbour's similarity).

    Args:
        histories: Sparse binary ``[rows, pages]`` matrix of the candidates' history pages.
        next_sessions: Sparse binary ``[rows, pages]`` matrix of the pages of the session that followed.
        row_users: The train user of each row (int ids).
        pages: The page of each column.
        popularity: Global page popularity.
        k: Neighbour users per prediction.
        num_scored: Popular pages scored besides the neighbours' (enough for Recall@20).

    Example:
        >>> from datasets import Dataset
        >>> train = Dataset.from_dict({"user_id": ["u", "v"], "input_sessions": [[["a", "b"]], [["c"]]],
        ...                            "target_session": [["b", "cart"], ["d"]]})
        >>> knn = SessionKNNBaseline.fit(train, k=1)
        >>> predictions = knn.predict([[["x", "a"]]])
        >>> predictions.sessions, predictions.outcome_probabilities["cart"].tolist()
        ([['b', 'cart']], [1.0])
    """

    name: ClassVar[str] = "sknn"

    def __init__(
        self,
        histories: sparse.csr_matrix,
        next_sessions: sparse.csr_matrix,
        row_users: np.ndarray,
        pages: Sequence[str],
        popularity: PagePopularity,
        k: int = 50,
        num_scored: int = 100,
    ):
        if k < 1 or num_scored < 1:
            raise ValueError(f"k and num_scored must be at least 1, got k={k}, num_scored={num_scored}")
        self.histories = sparse.csr_matrix(histories, dtype=np.float64)
        self.next_sessions = sparse.csr_matrix(next_sessions, dtype=np.float64)
        self.row_users = np.asarray(row_users)
        self.pages = list(pages)
        self.page_index = {page: column for column, page in enumerate(self.pages)}
        self.popularity = popularity
        self.k = k
        self.num_scored = num_scored
        history_sizes = np.asarray(self.histories.sum(axis=1)).ravel()
        self._history_norms = np.sqrt(np.maximum(history_sizes, 1.0))
        self._outcome_columns = {outcome: self.page_index.get(outcome) for outcome in OUTCOMES}

    @classmethod
    def fit(cls, train_dataset: Dataset, k: int = 50, num_scored: int = 100) -> SessionKNNBaseline:
        """Index every train row's history pages and next-session pages."""
        _check_train(train_dataset)
        page_index: dict[str, int] = {}
        user_index: dict[str, int] = {}
        history_columns: list[list[int]] = []
        next_columns: list[list[int]] = []
        row_users: list[int] = []
        for batch in train_dataset.iter(batch_size=_READ_BATCH_SIZE):
            user_ids = batch.get("user_id") or [None] * len(batch["target_session"])
            for user_id, inputs, target in zip(user_ids, batch["input_sessions"], batch["target_session"]):
                history = {page for session in inputs for page in session}
                history_columns.append([page_index.setdefault(page, len(page_index)) for page in history])
                next_columns.append([page_index.setdefault(page, len(page_index)) for page in set(target)])
                key = user_id if user_id is not None else f"row-{len(row_users)}"
                row_users.append(user_index.setdefault(key, len(user_index)))
        shape = (len(row_users), len(page_index))
        pages = sorted(page_index, key=page_index.get)
        return cls(
            _binary_matrix(history_columns, shape),
            _binary_matrix(next_columns, shape),
            np.array(row_users),
            pages,
            PagePopularity.fit(_train_sessions(train_dataset)),
            k=k,
            num_scored=num_scored,
        )

    def _query(self, user_sessions: Sessions) -> np.ndarray:
        """The user's V-SKNN recency weight of every indexed page (0 for pages it did not visit)."""
        stream = [page for session in user_sessions for page in session]
        weights = np.zeros(len(self.pages))
        for position, page in enumerate(stream, start=1):
            if page in self.page_index:
                weights[self.page_index[page]] = position / len(stream)
        return weights

    def neighbours(self, user_sessions: Sessions) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the ``k`` nearest train users (best row each) and their similarities, best first."""
        weights = self._query(user_sessions)
        known_pages = int((weights > 0).sum())
        if not known_pages:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        similarity = (self.histories @ weights) / (self._history_norms * math.sqrt(known_pages))
        candidates = np.flatnonzero(similarity > 0)
        candidates = candidates[np.argsort(-similarity[candidates], kind="stable")]
        _, first = np.unique(self.row_users[candidates], return_index=True)
        rows = candidates[np.sort(first)][: self.k]
        return rows, similarity[rows]

    def predict(self, input_sessions: Sequence[Sessions]) -> BaselinePredictions:
        share, rates = self.popularity.share, self.popularity.outcome_rates
        sessions, all_scores = [], []
        outcomes = {outcome: np.zeros(len(input_sessions)) for outcome in OUTCOMES}
        for row, user_sessions in enumerate(input_sessions):
            rows, similarity = self.neighbours(user_sessions)
            page_weights = self.next_sessions[rows].T @ similarity
            scores = {self.pages[column]: float(page_weights[column]) for column in np.flatnonzero(page_weights)}
            for page in self.popularity.ranked[: self.num_scored]:
                scores.setdefault(page, 1e-6 * share[page])
            scores = _ranked(scores)
            sessions.append(list(scores)[: session_length(user_sessions, self.popularity.median_length)])
            all_scores.append(scores)
            for outcome, column in self._outcome_columns.items():
                if not len(rows):
                    outcomes[outcome][row] = rates[outcome]
                elif column is not None:
                    outcomes[outcome][row] = page_weights[column] / similarity.sum()
        return BaselinePredictions(sessions, all_scores, outcomes)

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return self.predict(input_sessions).sessions, None


def _binary_matrix(columns_per_row: list[list[int]], shape: tuple[int, int]) -> sparse.csr_matrix:
    indptr = np.concatenate([[0], np.cumsum([len(columns) for columns in columns_per_row])])
    indices = np.fromiter((column for columns in columns_per_row for column in columns), dtype=np.int64)
    return sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=shape)


Baseline = (
    RepeatLastSessionBaseline
    | MostPopularPagesBaseline
    | MarkovChainBaseline
    | PersonalPopularityBaseline
    | SessionKNNBaseline
)
BASELINES: dict[str, type[Baseline]] = {
    baseline.name: baseline
    for baseline in (
        RepeatLastSessionBaseline,
        MostPopularPagesBaseline,
        MarkovChainBaseline,
        PersonalPopularityBaseline,
        SessionKNNBaseline,
    )
}


def fit_baseline(name: str, train_dataset: Dataset, **kwargs) -> Baseline:
    """Fit the baseline called ``name`` (a key of :data:`BASELINES`) on the train split.

    Extra keyword arguments go to the baseline's ``fit`` (e.g. ``do_sample=True`` for ``markov``).

    Example:
        >>> from datasets import Dataset
        >>> train = Dataset.from_dict({"input_sessions": [[["a"]]], "target_session": [["a", "b"]]})
        >>> fit_baseline("markov", train)([[["a"]]])
        ([['a']], None)
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name].fit(train_dataset, **kwargs)
