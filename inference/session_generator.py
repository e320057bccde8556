"""Turn a language model of browsing into a session generator for the reports.

:class:`ModelSessionGenerator` wraps either a :class:`~modeling_hetlm.HeTLMForBrowsing` (routed
to its clusters; the clusters come back with the sessions) or any plain ``transformers`` causal LM
(a single LM; no clusters). Both see the same prompts: a user's input sessions encoded as
``[BOS] p .. [EOS] ...`` plus one ``[BOS]``, left-padded with ``[PAD]``; the new tokens up to the
first ``[EOS]`` are decoded back to page names.

Example:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from tokenization.page_tokenizer import build_page_tokenizer
    >>> tokenizer = build_page_tokenizer(["home", "shoes", "cart"])
    >>> _ = torch.manual_seed(0)
    >>> lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
    ...                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    >>> generator = ModelSessionGenerator(lm, tokenizer, max_new_tokens=3)
    >>> sessions, clusters = generator([[["home", "shoes"]], [["cart"], ["home"]]])
    >>> len(sessions), clusters
    (2, None)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokenization.page_tokenizer import decode_session, encode_sessions

logger = logging.getLogger(__name__)


def build_prompt(tokenizer: PreTrainedTokenizerBase, sessions: Sequence[Sequence[str]], max_length: int) -> list[int]:
    """Encode a user's input sessions plus an open ``[BOS]``, keeping at most ``max_length`` tokens.

    Whole sessions are dropped oldest first until the prompt fits; if even the last session does
    not fit, its oldest tokens are cut (the trailing ``[BOS]`` always stays).

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
    kept = list(sessions)
    ids = encode_sessions(tokenizer, kept, open_next_session=True)
    while len(ids) > max_length and len(kept) > 1:
        kept = kept[1:]
        ids = encode_sessions(tokenizer, kept, open_next_session=True)
    return ids[-max_length:]


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.LongTensor, torch.LongTensor]:
    """Stack prompts into ``(input_ids, attention_mask)`` padded on the left.

    Example:
        >>> ids, mask = left_pad([[2, 4, 3, 2], [2, 2]], pad_token_id=0)
        >>> ids.tolist(), mask.tolist()
        ([[2, 4, 3, 2], [0, 0, 2, 2]], [[1, 1, 1, 1], [0, 0, 1, 1]])
    """
    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[row, width - len(prompt) :] = 1
    return input_ids, attention_mask


def _is_hetlm(model: PreTrainedModel) -> bool:
    return getattr(model.config, "model_type", None) == "hetlm"


def _max_positions(model: PreTrainedModel) -> int | None:
    config = model.config
    if _is_hetlm(model):
        config = config.predictor_config
    return getattr(config, "max_position_embeddings", None)


class ModelSessionGenerator:
    """A session generator backed by a HeTLM model or a plain causal LM (greedy by default).

    Args:
        model: A ``HeTLMForBrowsing`` (``config.model_type == "hetlm"``) or a causal LM over page ids.
        tokenizer: The page tokenizer the model was trained with.
        max_new_tokens: The most tokens generated for the next session (``[EOS]`` included).
        max_prompt_length: The longest prompt; defaults to the model's maximum positions minus
            ``max_new_tokens`` (or the tokenizer's ``model_max_length`` when the model has none).
        **generation_kwargs: More ``generate`` arguments (e.g. ``do_sample=True, top_k=10``).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        max_new_tokens: int = 64,
        max_prompt_length: int | None = None,
        **generation_kwargs: Any,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        positions = _max_positions(model) or tokenizer.model_max_length
        self.max_prompt_length = max_prompt_length or max(1, positions - max_new_tokens)
        self.generation_kwargs = {
            "do_sample": False,
            "max_new_tokens": max_new_tokens,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **generation_kwargs,
        }
        self.truncated_prompts = 0

    @torch.no_grad()
    def __call__(self, input_sessions: Sequence[Sequence[Sequence[str]]]) -> tuple[list[list[str]], list[int] | None]:
        prompts = [build_prompt(self.tokenizer, sessions, self.max_prompt_length) for sessions in input_sessions]
        # A full prompt has each session's pages plus its [BOS] and [EOS], and one open [BOS].
        truncated = sum(
            len(prompt) < sum(len(session) + 2 for session in sessions) + 1
            for prompt, sessions in zip(prompts, input_sessions)
        )
        if truncated:
            self.truncated_prompts += truncated
            logger.info("%d prompt(s) cut to the last %d tokens", truncated, self.max_prompt_length)
        input_ids, attention_mask = left_pad(prompts, self.tokenizer.pad_token_id)
        input_ids = input_ids.to(self.model.device)
        attention_mask = attention_mask.to(self.model.device)
        clusters = None
        if _is_hetlm(self.model):
            new_tokens, assigned = self.model.generate(
                input_ids, attention_mask=attention_mask, return_clusters=True, **self.generation_kwargs
            )
            clusters = [int(cluster) for cluster in assigned]
        else:
            output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **self.generation_kwargs)
            new_tokens = output[:, input_ids.shape[1] :]
        sessions = [decode_session(self.tokenizer, row.tolist()) for row in new_tokens]
        return sessions, clusters
