"""Simple next-session baselines the paper lacks, scored by the same report code as the models.

Each baseline is a *session generator* (see :func:`evaluation.report.evaluate_generator`): calling
it with the input sessions of a batch of users returns ``(generated sessions, None)`` -- baselines
have no clusters. Each is fitted on the TRAIN split of a prepared dataset (columns
``input_sessions`` and ``target_session``) with its ``fit`` classmethod and has a ``name``.

- ``repeat-last`` (:class:`RepeatLastSessionBaseline`): the next session is the user's last input
  session, unchanged.
- ``most-popular`` (:class:`MostPopularPagesBaseline`): every user gets the same L pages, the
  pages found in the most train target sessions; L is the median train target session length.
- ``markov`` (:class:`MarkovChainBaseline`): a first-order Markov chain over pages with
  ``[BOS]``/``[EOS]`` states, fitted on every train session (inputs and targets), that generates
  one session from ``[BOS]``.

Example:
    >>> from datasets import Dataset
    >>> train = Dataset.from_dict({
    ...     "input_sessions": [[["home", "shoes"]], [["home", "bags"]]],
    ...     "target_session": [["home", "shoes", "cart"], ["home", "shoes"]],
    ... })
    >>> fit_baseline("most-popular", train)([[["bags"]]])
    ([['home', 'shoes', 'cart']], None)
    >>> fit_baseline("repeat-last", train)([[["a"], ["b", "c"]]])
    ([['b', 'c']], None)
    >>> fit_baseline("markov", train)([[["bags"]]])
    ([['home', 'shoes']], None)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np
from datasets import Dataset

from tokenization.constants import BOS_TOKEN, EOS_TOKEN

Sessions = list[list[str]]
GeneratorOutput = tuple[list[list[str]], None]

_READ_BATCH_SIZE = 10_000


def _iter_train_users(train_dataset: Dataset) -> Iterator[tuple[Sessions, list[str]]]:
    """Yield ``(input_sessions, target_session)`` per train user, streaming the Arrow table."""
    missing = {"input_sessions", "target_session"} - set(train_dataset.column_names)
    if missing:
        raise ValueError(f"train dataset lacks column(s) {sorted(missing)}; has {train_dataset.column_names}")
    if len(train_dataset) == 0:
        raise ValueError("cannot fit a baseline on an empty train dataset")
    for batch in train_dataset.iter(batch_size=_READ_BATCH_SIZE):
        yield from zip(batch["input_sessions"], batch["target_session"])


class RepeatLastSessionBaseline:
    """Predict that the user's next session repeats their last input session.

    Example:
        >>> RepeatLastSessionBaseline()([[["home"], ["shoes", "cart"]], []])
        ([['shoes', 'cart'], []], None)
    """

    name: ClassVar[str] = "repeat-last"

    @classmethod
    def fit(cls, train_dataset: Dataset) -> RepeatLastSessionBaseline:
        """Nothing to learn; accepts the train split for a uniform interface with the other baselines."""
        return cls()

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return [list(sessions[-1]) if sessions else [] for sessions in input_sessions], None


class MostPopularPagesBaseline:
    """Predict the same L most popular pages for every user.

    Popularity is the number of train *target* sessions that contain the page (each page counted
    once per session, because the page metrics compare page sets); ties are broken by page name.
    L is the median length (pages, repeats included) of the train target sessions, rounded half
    up and at least 1.

    Args:
        pages: The generated session, most popular first.

    Example:
        >>> MostPopularPagesBaseline(["home", "shoes"])([[["a"]], [["b"]]])
        ([['home', 'shoes'], ['home', 'shoes']], None)
    """

    name: ClassVar[str] = "most-popular"

    def __init__(self, pages: Sequence[str]):
        self.pages = list(pages)

    @classmethod
    def fit(cls, train_dataset: Dataset) -> MostPopularPagesBaseline:
        """Count page popularity and the median session length over the train target sessions."""
        session_counts: Counter[str] = Counter()
        lengths = []
        for _, target in _iter_train_users(train_dataset):
            session_counts.update(set(target))
            lengths.append(len(target))
        length = max(1, math.floor(float(np.median(lengths)) + 0.5))
        ranked = sorted(session_counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([page for page, _ in ranked[:length]])

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        return [list(self.pages) for _ in input_sessions], None


class MarkovChainBaseline:
    """A first-order Markov chain over pages that generates one session from ``[BOS]``.

    Transitions are counted over every train session, input and target alike, as
    ``[BOS] -> p1 -> ... -> pn -> [EOS]``. Generation starts in ``[BOS]`` and stops at ``[EOS]`` or
    after ``max_session_length`` pages. A page is not generated twice in one session
    (``allow_repeats=False``, the default): the most likely chain ``a -> b -> a -> b ...`` would
    otherwise loop until the length limit, and repeats add nothing to the set-based page metrics.
    So the greedy step takes the most likely successor that is ``[EOS]`` or a page not yet
    generated (ties broken by name), and the sampling step draws among those successors with
    renormalised probabilities; when every successor was already generated the session ends.

    Being first-order, the chain only sees ``[BOS]`` at the start of a session, so greedy decoding
    gives every user the same session; sampling (``do_sample=True``, seeded) gives each user a draw.

    Args:
        transitions: ``state -> {next state: count}`` with the ``[BOS]``/``[EOS]`` token strings as states.
        max_session_length: The most pages generated in one session.
        do_sample: Sample the next page instead of taking the most likely one.
        seed: Seed of the sampler (used only with ``do_sample``).
        allow_repeats: Allow a page to be generated more than once per session.

    Example:
        >>> chain = MarkovChainBaseline({"[BOS]": {"a": 2, "b": 1}, "a": {"b": 3, "[EOS]": 1},
        ...                              "b": {"a": 4, "[EOS]": 1}}, max_session_length=5)
        >>> chain([[["x"]]])
        ([['a', 'b']], None)
    """

    name: ClassVar[str] = "markov"

    def __init__(
        self,
        transitions: dict[str, dict[str, int]],
        max_session_length: int,
        do_sample: bool = False,
        seed: int = 0,
        allow_repeats: bool = False,
    ):
        if BOS_TOKEN not in transitions:
            raise ValueError(f"the transition table has no {BOS_TOKEN} state to start from")
        if max_session_length < 1:
            raise ValueError(f"max_session_length must be at least 1, got {max_session_length}")
        self.max_session_length = max_session_length
        self.do_sample = do_sample
        self.seed = seed
        self.allow_repeats = allow_repeats
        # Successors of each state, most likely first (ties by name): the greedy order.
        self.successors: dict[str, list[str]] = {}
        self.probabilities: dict[str, np.ndarray] = {}
        for state, counts in transitions.items():
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            self.successors[state] = [next_state for next_state, _ in ranked]
            weights = np.array([count for _, count in ranked], dtype=np.float64)
            self.probabilities[state] = weights / weights.sum()
        self._rng = np.random.default_rng(seed)
        self._greedy_session: list[str] | None = None

    @classmethod
    def fit(
        cls,
        train_dataset: Dataset,
        max_session_length: int | None = None,
        do_sample: bool = False,
        seed: int = 0,
        allow_repeats: bool = False,
    ) -> MarkovChainBaseline:
        """Count page transitions over all train sessions.

        ``max_session_length`` defaults to the longest train session.
        """
        transitions: dict[str, Counter[str]] = defaultdict(Counter)
        longest = 0
        for input_sessions, target in _iter_train_users(train_dataset):
            for session in [*input_sessions, target]:
                states = [BOS_TOKEN, *session, EOS_TOKEN]
                for state, next_state in zip(states[:-1], states[1:]):
                    transitions[state][next_state] += 1
                longest = max(longest, len(session))
        return cls(
            {state: dict(counts) for state, counts in transitions.items()},
            max_session_length=max_session_length or max(longest, 1),
            do_sample=do_sample,
            seed=seed,
            allow_repeats=allow_repeats,
        )

    def _next_state(self, state: str, generated: set[str]) -> str:
        candidates = self.successors.get(state, [])
        allowed = [
            self.allow_repeats or next_state == EOS_TOKEN or next_state not in generated for next_state in candidates
        ]
        if not any(allowed):
            return EOS_TOKEN
        if not self.do_sample:
            return candidates[allowed.index(True)]
        weights = self.probabilities[state] * np.array(allowed)
        return candidates[self._rng.choice(len(candidates), p=weights / weights.sum())]

    def generate_session(self) -> list[str]:
        """Generate one session from ``[BOS]`` (greedy or sampled as configured)."""
        session: list[str] = []
        state = BOS_TOKEN
        while len(session) < self.max_session_length:
            state = self._next_state(state, set(session))
            if state == EOS_TOKEN:
                break
            session.append(state)
        return session

    def __call__(self, input_sessions: Sequence[Sessions]) -> GeneratorOutput:
        if self.do_sample:
            return [self.generate_session() for _ in input_sessions], None
        if self._greedy_session is None:
            self._greedy_session = self.generate_session()
        return [list(self._greedy_session) for _ in input_sessions], None


Baseline = RepeatLastSessionBaseline | MostPopularPagesBaseline | MarkovChainBaseline
BASELINES: dict[str, type[Baseline]] = {
    baseline.name: baseline for baseline in (RepeatLastSessionBaseline, MostPopularPagesBaseline, MarkovChainBaseline)
}


def fit_baseline(name: str, train_dataset: Dataset, **kwargs) -> Baseline:
    """Fit the baseline called ``name`` (a key of :data:`BASELINES`) on the train split.

    Extra keyword arguments go to the baseline's ``fit`` (e.g. ``do_sample=True`` for ``markov``).

    Example:
        >>> from datasets import Dataset
        >>> train = Dataset.from_dict({"input_sessions": [[["a"]]], "target_session": [["a", "b"]]})
        >>> fit_baseline("markov", train, max_session_length=1)([[]])
        ([['a']], None)
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name].fit(train_dataset, **kwargs)
