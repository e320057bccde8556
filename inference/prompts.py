"""Token streams of a user's sessions cut to a model's length, and padded batches of them.

One truncation rule, used for the inference prompt (:func:`build_prompt`) and for the history part
of a training stream (:func:`trainers.data.encode_user`), so the two keep the same history:

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

import torch
from transformers import PreTrainedTokenizerBase

from tokenization.page_tokenizer import encode_sessions

PADDING_SIDES: tuple[str, ...] = ("left", "right")


def encode_each_session(tokenizer: PreTrainedTokenizerBase, sessions: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each session's ids, ``[BOS] p .. [EOS]``, oldest first (unknown pages become ``[UNK]``).

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> encode_each_session(build_page_tokenizer(["a", "b"]), [["a"], ["a", "b"]])
        [[2, 4, 3], [2, 4, 5, 3]]
    """
    return [encode_sessions(tokenizer, [session]) for session in sessions]


def truncate_sessions(session_ids: Sequence[Sequence[int]], max_length: int) -> list[int]:
    """The newest whole sessions that fit in ``max_length`` tokens, concatenated (THE truncation rule).

    Sessions are dropped oldest first until the rest fits; when even the newest does not fit alone,
    its oldest tokens are cut, so the result is never empty while ``max_length >= 1`` and a session
    is given. A ``max_length`` of 0 or less keeps nothing.

    Example:
        >>> truncate_sessions([[2, 4, 3], [2, 4, 5, 3]], max_length=7)
        [2, 4, 3, 2, 4, 5, 3]
        >>> truncate_sessions([[2, 4, 3], [2, 4, 5, 3]], max_length=6)
        [2, 4, 5, 3]
        >>> truncate_sessions([[2, 4, 3], [2, 4, 5, 3]], max_length=2)
        [5, 3]
    """
    kept: list[Sequence[int]] = []
    length = 0
    for ids in reversed(session_ids):
        if length + len(ids) > max_length:
            if not kept and max_length > 0:
                kept.append(ids[len(ids) - max_length :])
            break
        kept.append(ids)
        length += len(ids)
    return [token for ids in reversed(kept) for token in ids]


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


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_value: int, side: str = "right"
) -> tuple[torch.LongTensor, torch.LongTensor]:
    """Stack integer sequences into ``(padded, attention_mask)``, both ``[B, longest]``, padded on ``side``.

    The attention mask is 1 on the sequences' own positions and 0 on the padding. Left padding is
    what generation expects of prompts; right padding is what training batches use.

    Example:
        >>> padded, mask = pad_sequences([[1, 2], [3]], pad_value=0, side="left")
        >>> padded.tolist(), mask.tolist()
        ([[1, 2], [0, 3]], [[1, 1], [0, 1]])
        >>> pad_sequences([[1, 2], [3]], pad_value=-100)[0].tolist()
        [[1, 2], [3, -100]]
    """
    if side not in PADDING_SIDES:
        raise ValueError(f"side must be one of {PADDING_SIDES}, got {side!r}")
    if not sequences:
        raise ValueError("no sequences to pad")
    width = max(len(sequence) for sequence in sequences)
    padded = torch.full((len(sequences), width), pad_value, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if not len(sequence):
            continue
        columns = slice(0, len(sequence)) if side == "right" else slice(width - len(sequence), width)
        padded[row, columns] = torch.as_tensor(list(sequence), dtype=torch.long)
        attention_mask[row, columns] = 1
    return padded, attention_mask
