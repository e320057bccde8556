"""The simple baselines on tiny hand-made datasets with hand-checked outputs."""

from __future__ import annotations

import pytest
from datasets import Dataset

from evaluation.baselines import (
    BASELINES,
    MarkovChainBaseline,
    MostPopularPagesBaseline,
    RepeatLastSessionBaseline,
    fit_baseline,
)

BOS, EOS = "[BOS]", "[EOS]"


def make_train(inputs: list, targets: list) -> Dataset:
    return Dataset.from_dict(
        {"user_id": [f"u{i}" for i in range(len(targets))], "input_sessions": inputs, "target_session": targets}
    )


@pytest.fixture()
def train() -> Dataset:
    # Sessions: [a b], [a c], [a b], [b a], [a b], [c], [c], [c a] and [d c c e].
    return make_train(
        inputs=[[["a", "b"]], [["a", "b"], ["b", "a"]], [["c"]], [["c", "a"]]],
        targets=[["a", "c"], ["a", "b"], ["c"], ["d", "c", "c", "e"]],
    )


def test_registry_names():
    assert sorted(BASELINES) == ["markov", "most-popular", "repeat-last"]
    assert all(BASELINES[name].name == name for name in BASELINES)


def test_repeat_last_session(train):
    baseline = fit_baseline("repeat-last", train)
    assert isinstance(baseline, RepeatLastSessionBaseline)
    sessions, clusters = baseline([[["a"], ["b", "c", "b"]], [["d"]], []])
    assert sessions == [["b", "c", "b"], ["d"], []]
    assert clusters is None


def test_most_popular_counts_sessions_and_uses_median_length(train):
    # Target sessions containing each page: c 3, a 2, b 1, d 1, e 1; lengths 2, 2, 1, 4 -> median 2.
    baseline = fit_baseline("most-popular", train)
    assert isinstance(baseline, MostPopularPagesBaseline)
    assert baseline.pages == ["c", "a"]
    assert baseline([[["x"]], [["y"]]]) == ([["c", "a"], ["c", "a"]], None)


def test_most_popular_rounds_half_median_up_and_breaks_ties_by_name():
    # Lengths 2 and 3 -> median 2.5 -> 3 pages; every page is in one session except z (2).
    train = make_train(inputs=[[["q"]], [["q"]]], targets=[["z", "y"], ["z", "x", "w"]])
    assert MostPopularPagesBaseline.fit(train).pages == ["z", "w", "x"]


def test_markov_counts_transitions_over_inputs_and_targets(train):
    chain = MarkovChainBaseline.fit(train)
    # [BOS] -> a: [a b] [a c] [a b] [a b] = 4; -> c: [c] [c] [c a] = 3; -> b: [b a] = 1; -> d: 1.
    assert chain.successors[BOS] == ["a", "c", "b", "d"]
    # a -> b three times, a -> [EOS] twice ([b a], [c a]), a -> c once.
    assert chain.successors["a"] == ["b", EOS, "c"]
    assert chain.probabilities["a"].tolist() == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert chain.max_session_length == 4  # the longest train session, [d c c e]
    # Greedy: [BOS] -> a -> b -> [EOS] (b -> [EOS] 3 times, b -> a once).
    assert chain([[["x"]], [["y"]]]) == ([["a", "b"], ["a", "b"]], None)


def test_markov_greedy_never_repeats_a_page():
    transitions = {
        BOS: {"a": 1},
        "a": {"b": 5, EOS: 1},
        "b": {"a": 5, "c": 2, EOS: 1},
        "c": {"a": 3, EOS: 1},
    }
    # a -> b; b's best successor a is taken -> c; c's best a is taken -> [EOS].
    assert MarkovChainBaseline(transitions, max_session_length=10).generate_session() == ["a", "b", "c"]
    looping = MarkovChainBaseline(transitions, max_session_length=5, allow_repeats=True)
    assert looping.generate_session() == ["a", "b", "a", "b", "a"]


def test_markov_ends_when_every_successor_was_generated():
    transitions = {BOS: {"a": 1}, "a": {"b": 1}, "b": {"a": 1}}
    assert MarkovChainBaseline(transitions, max_session_length=10).generate_session() == ["a", "b"]


def test_markov_sampling_is_seeded_and_follows_observed_transitions(train):
    first = MarkovChainBaseline.fit(train, do_sample=True, seed=3)
    second = MarkovChainBaseline.fit(train, do_sample=True, seed=3)
    sessions, _ = first([[]] * 50)
    assert sessions == second([[]] * 50)[0]
    assert len({tuple(session) for session in sessions}) > 1
    for session in sessions:
        assert len(set(session)) == len(session) <= first.max_session_length
        states = [BOS, *session]
        assert all(nxt in first.successors[state] for state, nxt in zip(states[:-1], states[1:]))


def test_fit_errors_name_the_problem(train):
    with pytest.raises(ValueError, match="unknown baseline 'lstm'"):
        fit_baseline("lstm", train)
    with pytest.raises(ValueError, match="empty train dataset"):
        fit_baseline("markov", make_train([], []))
    with pytest.raises(ValueError, match="target_session"):
        fit_baseline("most-popular", Dataset.from_dict({"input_sessions": [[["a"]]]}))
    with pytest.raises(ValueError, match=r"\[BOS\]"):
        MarkovChainBaseline({"a": {EOS: 1}}, max_session_length=3)
