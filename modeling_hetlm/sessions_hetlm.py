"""Token streams of sessions: the truncation rule and padding, shared by inference, training and `generate`.

Kept apart from `inference.prompts` (which re-exports both) because `HeTLMForBrowsing.generate` uses
them and this file is copied into saved folders: it imports only `torch`.

Example:
    >>> truncate_sessions([[2, 4, 3], [2, 5, 3]], max_length=4)
    [2, 5, 3]
    >>> pad_sequences([[2, 5, 3, 2], [2]], pad_value=0, side="left")[0].tolist()
    [[2, 5, 3, 2], [0, 0, 0, 2]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PADDING_SIDES: tuple[str, ...] = ("left", "right")


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


def split_sessions(ids: Sequence[int], bos_token_id: int) -> list[list[int]]:
    """Cut a token stream into sessions at each `[BOS]` (a leading partial session stays one piece).

    Example:
        >>> split_sessions([4, 3, 2, 5, 3, 2, 6, 3], bos_token_id=2)
        [[4, 3], [2, 5, 3], [2, 6, 3]]
    """
    sessions: list[list[int]] = []
    for token in ids:
        if token == bos_token_id or not sessions:
            sessions.append([])
        sessions[-1].append(int(token))
    return sessions


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


__all__ = ["PADDING_SIDES", "pad_sequences", "split_sessions", "truncate_sessions"]
