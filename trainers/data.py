"""Prepared users -> token streams and padded training batches.

Each user (one row of the prepared dataset) becomes one causal-LM example,
``encode_sessions(input_sessions + [target_session])``: the input sessions, then the target
session, as ``[BOS] p .. [EOS] [BOS] p .. [EOS] ...``. A stream longer than ``max_length`` keeps
the target session (what the model is asked to generate) whole and cuts the history before it by
the inference prompt's rule (:func:`inference.prompts.truncate_sessions`: whole oldest sessions
first, then the oldest tokens of the newest), so training and generation see the same history; only a
target longer than ``max_length`` alone loses its oldest tokens.

What is scored (``score``):
  - ``"stream"`` (default): every token of the stream, as the paper trains its LMs on the whole
    sequence (a causal LM of browsing, not only of next sessions);
  - ``"target"``: only the target session's tokens (``[BOS]`` excluded, its pages and ``[EOS]``).

``prompt_ids`` keeps the generation prompt, the input sessions then an opening ``[BOS]``: what is
known at inference, and what the encoder of HeTLM embeds (the history before the last ``[BOS]``).

Example:
    >>> from datasets import Dataset
    >>> from tokenization.page_tokenizer import build_page_tokenizer
    >>> tokenizer = build_page_tokenizer(["home", "shoes", "cart"])
    >>> users = Dataset.from_dict(
    ...     {"user_id": ["u"], "input_sessions": [[["home", "shoes"]]], "target_session": [["cart"]]}
    ... )
    >>> row = tokenize_users(users, tokenizer, max_length=6)[0]
    >>> row["input_ids"], row["labels"], row["prompt_ids"]
    ([5, 6, 3, 2, 4, 3], [5, 6, 3, 2, 4, 3], [2, 5, 6, 3, 2])
    >>> batch = BrowsingCollator(pad_token_id=0)([row, {**row, "input_ids": [2, 4, 3], "labels": [2, 4, 3]}])
    >>> batch["labels"][1].tolist()
    [2, 4, 3, -100, -100, -100]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from inference.prompts import build_prompt, encode_each_session, pad_sequences, truncate_sessions
from tokenization.page_tokenizer import encode_sessions

IGNORE_INDEX = -100
SCORE_MODES: tuple[str, ...] = ("stream", "target")


def encode_user(
    tokenizer: PreTrainedTokenizerBase,
    input_sessions: Sequence[Sequence[str]],
    target_session: Sequence[str],
    max_length: int,
    score: str = "stream",
) -> dict[str, list[int]]:
    """One user's ``input_ids`` / ``labels`` and ``prompt_ids``, each at most ``max_length`` tokens.

    The history of the stream and the prompt are cut by the same rule (see the module docstring).

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> tokenizer = build_page_tokenizer(["home", "cart"])
        >>> encode_user(tokenizer, [["home"]], ["cart"], max_length=8, score="target")["labels"]
        [-100, -100, -100, -100, 4, 3]
    """
    if score not in SCORE_MODES:
        raise ValueError(f"score must be one of {SCORE_MODES}, got {score!r}")
    if not target_session:
        raise ValueError("target_session is empty: every prepared user needs a next session")
    history = encode_each_session(tokenizer, input_sessions)
    target = encode_sessions(tokenizer, [list(target_session)])
    kept_history = truncate_sessions(history, max_length - len(target))
    input_ids = kept_history + target
    if score == "stream":
        labels = list(input_ids)
    else:
        labels = [IGNORE_INDEX] * (len(kept_history) + 1) + target[1:]
    return {
        "input_ids": input_ids[-max_length:],
        "labels": labels[-max_length:],
        "prompt_ids": build_prompt(tokenizer, input_sessions, max_length),
    }


def tokenize_users(
    dataset: Dataset | DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = 512,
    score: str = "stream",
) -> Dataset | DatasetDict:
    """Add ``input_ids``, ``labels`` and ``prompt_ids`` columns to every prepared user.

    Rows whose target session is empty raise a ``ValueError`` naming the user.
    """

    def encode_row(row: dict[str, Any]) -> dict[str, list[int]]:
        try:
            return encode_user(tokenizer, row["input_sessions"], row["target_session"], max_length, score)
        except ValueError as error:
            raise ValueError(f"user {row.get('user_id')!r}: {error}") from error

    return dataset.map(encode_row, desc="Tokenizing users")


@dataclass
class BrowsingCollator:
    """Pad ``input_ids`` (right) and ``labels`` (with -100) into a batch; stack ``user_embeddings`` if present.

    The integer columns named in ``index_columns`` (e.g. ``user_index``, for the trainer's own use) are passed
    as ``[B]`` long tensors when the features have them. Other columns are not passed to the model.
    """

    pad_token_id: int
    index_columns: tuple[str, ...] = ()

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_sequences([feature["input_ids"] for feature in features], self.pad_token_id)
        labels, _ = pad_sequences([feature["labels"] for feature in features], IGNORE_INDEX)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "user_embeddings" in features[0]:
            batch["user_embeddings"] = torch.tensor(
                [feature["user_embeddings"] for feature in features], dtype=torch.float32
            )
        for name in self.index_columns:
            if name in features[0]:
                batch[name] = torch.tensor([feature[name] for feature in features], dtype=torch.long)
        return batch
