"""Token streams of a user's sessions cut to a model's length, and padded batches of them.

One truncation rule, used for the inference prompt (:func:`build_prompt`), for the history part
of a training stream (:func:`trainers.data.encode_user`) and by ``HeTLMForBrowsing.generate`` for
prompts too long for the predictor, so all keep the same history (:func:`truncate_sessions` and
:func:`pad_sequences` live in ``modeling_hetlm/sessions_hetlm.py``, which saved models carry):

    drop whole sessions, oldest first, until the rest fits; if even the newest session does not
    fit alone, cut its oldest tokens.

A session is ``[BOS] p .. [EOS]``; a prompt is the kept history then one open ``[BOS]``.

Example:
    >>> from tokenization.page_tokenizer import build_page_tokenizer
    >>> tokenizer = build_page_tokenizer(["a", "b"])
    >>> prompts = [build_prompt(tokenizer, [["a"], ["a", "b"]], max_length=6), build_prompt(tokenizer, [["b"]], 6)]
    >>> prompts
    [[2, 4, 5, 3, 2], [2, 5, 3, 2]]
    >>> input_ids, attention_mask = pad_sequences(prompts, tokenizer.pad_token_id, side="left")
    >>> input_ids.tolist(), attention_mask.tolist()
    ([[2, 4, 5, 3, 2], [0, 2, 5, 3, 2]], [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from modeling_hetlm.sessions_hetlm import PADDING_SIDES, pad_sequences, truncate_sessions
from tokenization.page_tokenizer import encode_sessions

__all__ = [
    "PADDING_SIDES",
    "build_prompt",
    "encode_each_session",
    "full_prompt_length",
    "pad_sequences",
    "truncate_sessions",
]


def encode_each_session(tokenizer: PreTrainedTokenizerBase, sessions: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each session's ids, ``[BOS] p .. [EOS]``, oldest first (unknown pages become ``[UNK]``).

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> encode_each_session(build_page_tokenizer(["a", "b"]), [["a"], ["a", "b"]])
        [[2, 4, 3], [2, 4, 5, 3]]
    """
    return [encode_sessions(tokenizer, [session]) for session in sessions]


def build_prompt(tokenizer: PreTrainedTokenizerBase, sessions: Sequence[Sequence[str]], max_length: int) -> list[int]:
    """Encode a user's input sessions plus an open ``[BOS]``, keeping at most ``max_length`` tokens.

    The history is cut by :func:`truncate_sessions` to ``max_length - 1`` tokens; the trailing
    ``[BOS]`` always stays.

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> tokenizer = build_page_tokenizer(["a", "b"])
        >>> build_prompt(tokenizer, [["a"], ["a", "b"]], max_length=8)
        [2, 4, 3, 2, 4, 5, 3, 2]
        >>> build_prompt(tokenizer, [["a"], ["a", "b"]], max_length=6)
        [2, 4, 5, 3, 2]
        >>> build_prompt(tokenizer, [["a"], ["a", "b"]], max_length=3)
        [5, 3, 2]
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    return truncate_sessions(encode_each_session(tokenizer, sessions), max_length - 1) + [tokenizer.bos_token_id]


def full_prompt_length(sessions: Sequence[Sequence[str]]) -> int:
    """Tokens of the untruncated prompt: each session's pages, its ``[BOS]`` and ``[EOS]``, and one open ``[BOS]``.

    A built prompt shorter than this was truncated.

    Example:
        >>> full_prompt_length([["a"], ["a", "b"]])
        8
    """
    return sum(len(session) + 2 for session in sessions) + 1
