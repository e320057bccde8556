"""The one truncation rule, the prompt builder and the padding helper (inference/prompts.py), and the
training streams of trainers/data.py that use them: both keep the same history."""

from __future__ import annotations

import pytest

from inference.prompts import build_prompt, encode_each_session, full_prompt_length, pad_sequences, truncate_sessions
from tokenization.page_tokenizer import build_page_tokenizer, encode_sessions
from trainers.data import IGNORE_INDEX, encode_user

BOS, EOS = 2, 3
OLD, MIDDLE, NEW = [BOS, 4, EOS], [BOS, 4, 5, EOS], [BOS, 6, 6, 6, EOS]


@pytest.mark.parametrize(
    ("max_length", "kept"),
    [
        (12, OLD + MIDDLE + NEW),  # everything fits
        (11, MIDDLE + NEW),  # the oldest session goes whole, not just its first token
        (9, MIDDLE + NEW),
        (8, NEW),  # the middle one does not fit either: dropped whole
        (5, NEW),
        (4, [6, 6, 6, EOS]),  # the newest alone is too long: its oldest tokens are cut
        (1, [EOS]),
        (0, []),
        (-3, []),
    ],
)
def test_truncation_drops_whole_oldest_sessions_then_cuts_the_newest(max_length, kept):
    assert truncate_sessions([OLD, MIDDLE, NEW], max_length) == kept


def test_prompt_keeps_the_truncated_history_and_an_open_bos():
    tokenizer = build_page_tokenizer(["a", "b"])  # a=4, b=5
    sessions = [["a"], ["a", "b"], ["b", "b", "b"]]
    assert encode_each_session(tokenizer, sessions) == [[2, 4, 3], [2, 4, 5, 3], [2, 5, 5, 5, 3]]
    assert full_prompt_length(sessions) == len(encode_sessions(tokenizer, sessions, open_next_session=True)) == 13
    assert build_prompt(tokenizer, sessions, 13) == encode_sessions(tokenizer, sessions, open_next_session=True)
    assert build_prompt(tokenizer, sessions, 12) == [2, 4, 5, 3, 2, 5, 5, 5, 3, 2]
    assert build_prompt(tokenizer, sessions, 3) == [5, 3, 2]
    assert build_prompt(tokenizer, sessions, 1) == [2]
    assert build_prompt(tokenizer, [], 4) == [2]
    with pytest.raises(ValueError, match="max_length must be at least 1"):
        build_prompt(tokenizer, sessions, 0)


@pytest.mark.parametrize("max_length", range(4, 18))
def test_training_stream_and_inference_prompt_keep_the_same_history(max_length):
    tokenizer = build_page_tokenizer(["a", "b", "cart"])
    history = [["a", "b", "b"], ["b"], ["a", "cart"]]
    target = encode_sessions(tokenizer, [["cart", "a"]])
    example = encode_user(tokenizer, history, ["cart", "a"], max_length=max_length)
    stream = example["input_ids"]
    assert len(stream) <= max_length
    assert stream[-len(target) :] == target, "the target session survives whole when it fits"
    # The same history as a generation prompt with the room the target leaves (its [BOS] is the prompt's).
    prompt = build_prompt(tokenizer, history, max_length - len(target) + 1)
    assert stream[: -len(target)] == prompt[:-1]
    assert example["labels"] == stream
    assert example["prompt_ids"] == build_prompt(tokenizer, history, max_length)


def test_training_stream_is_whole_when_it_fits_and_target_only_scoring_masks_the_kept_history():
    tokenizer = build_page_tokenizer(["a", "b", "cart"])  # a=4, b=5, cart=6 (ties by name)
    full = encode_user(tokenizer, [["a"], ["b", "b"]], ["cart"], max_length=64)
    assert full["input_ids"] == encode_sessions(tokenizer, [["a"], ["b", "b"], ["cart"]])
    cut = encode_user(tokenizer, [["a"], ["b", "b"]], ["cart"], max_length=8, score="target")
    assert cut["input_ids"] == [2, 5, 5, 3, 2, 6, 3]  # [BOS] a [EOS] is dropped whole: no stray tokens of it
    assert cut["labels"] == [IGNORE_INDEX] * 5 + [6, 3]


def test_a_target_longer_than_max_length_keeps_its_newest_tokens_only():
    tokenizer = build_page_tokenizer(["a", "b", "cart"])
    example = encode_user(tokenizer, [["a"]], ["a", "b", "b", "cart"], max_length=4)
    assert example["input_ids"] == [5, 5, 6, 3]
    assert example["prompt_ids"] == [2, 4, 3, 2]


def test_padding_on_both_sides_with_the_attention_mask():
    padded, mask = pad_sequences([[7, 8, 9], [5], []], pad_value=0, side="left")
    assert padded.tolist() == [[7, 8, 9], [0, 0, 5], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    padded, mask = pad_sequences([[7, 8, 9], [5]], pad_value=IGNORE_INDEX)
    assert padded.tolist() == [[7, 8, 9], [5, IGNORE_INDEX, IGNORE_INDEX]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="side must be one of"):
        pad_sequences([[1]], 0, side="middle")
    with pytest.raises(ValueError, match="no sequences"):
        pad_sequences([], 0)
