"""Generate users' next sessions, greedy or sampled, in batches: the one generator behind ``hetlm
evaluate``, ``hetlm generate`` and the experiment.

:class:`ModelSessionGenerator` wraps either a :class:`~modeling_hetlm.HeTLMForBrowsing` (routed
to its clusters; the clusters come back with the sessions) or any plain ``transformers`` causal LM
(a single LM; no clusters). Both see the same prompts (:func:`inference.prompts.build_prompt`: a
user's input sessions as ``[BOS] p .. [EOS] ...`` plus one open ``[BOS]``, cut to the model's
length by the one truncation rule, left-padded with ``[PAD]``); the new tokens up to the first
``[EOS]`` are decoded back to page names.

- ``generator(users)`` (or :meth:`~ModelSessionGenerator.greedy`): one greedy session per user,
  the :class:`evaluation.report.SessionGenerator` protocol.
- :meth:`~ModelSessionGenerator.sample`: ``num_samples`` sampled sessions per user, grouped per
  user, generated with ``num_return_sequences`` (each prompt's KV cache is shared by its samples); with
  ``return_outcome_probabilities`` also each user's P(cart), P(purchase), P(either) from the model's step
  probabilities along the samples (:mod:`inference.outcome_estimates`).
- :meth:`~ModelSessionGenerator.first_page_log_probs` and :meth:`~ModelSessionGenerator.recommend`: the
  next-token distribution after the prompt's open ``[BOS]`` over the pages (specials excluded), i.e. the
  ranking of the next session's first page (HeTLM: under the routed predictor).
- :meth:`~ModelSessionGenerator.encode` builds a batch's prompts (and HeTLM's routing of them)
  once, so a greedy and a sampled pass over the same users reuse them.

Sampling draws from torch's global generator: seed it (``torch.manual_seed``) for repeatable samples.

Example:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from tokenization.page_tokenizer import build_page_tokenizer
    >>> tokenizer = build_page_tokenizer(["home", "shoes", "cart"])
    >>> _ = torch.manual_seed(0)
    >>> lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
    ...                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    >>> generator = ModelSessionGenerator(lm, tokenizer, max_new_tokens=3)
    >>> users = [[["home", "shoes"]], [["cart"], ["home"]]]
    >>> sessions, clusters = generator(users)
    >>> len(sessions), clusters
    (2, None)
    >>> samples, _ = generator.sample(users, num_samples=4)
    >>> [len(user_samples) for user_samples in samples]
    [4, 4]
    >>> _, _, outcomes = generator.sample(users, num_samples=4, return_outcome_probabilities=True)
    >>> outcomes.shape, bool(((outcomes >= 0) & (outcomes <= 1)).all())
    (torch.Size([2, 3]), True)
    >>> [len(pages) for pages in generator.recommend(users, k=2)]
    [2, 2]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE, SPECIAL_TOKENS
from tokenization.page_tokenizer import decode_session

from .loading import is_hetlm
from .outcome_estimates import first_hit_probabilities, step_probabilities
from .prompts import build_prompt, full_prompt_length, pad_sequences

logger = logging.getLogger(__name__)

UserSessions = Sequence[Sequence[Sequence[str]]]


@dataclass
class PromptBatch:
    """A batch of users' prompts, ready for generation (from :meth:`ModelSessionGenerator.encode`).

    Attributes:
        prompts: Each user's prompt ids (kept history then ``[BOS]``), unpadded.
        input_ids: The prompts left-padded, ``[B, longest]``, on the model's device.
        attention_mask: 1 on prompt tokens, 0 on padding.
        truncated: Whether each prompt lost sessions (or tokens) to fit the model.
        clusters: HeTLM's routing of each user, ``[B]`` (``None`` for a plain causal LM): made once (with the
            user embeddings it needs), so the ranking, greedy and sampled passes over the batch reuse it.

    Example:
        >>> batch = PromptBatch([[2, 2]], torch.tensor([[2, 2]]), torch.tensor([[1, 1]]), [False])
        >>> len(batch)
        1
    """

    prompts: list[list[int]]
    input_ids: torch.LongTensor
    attention_mask: torch.LongTensor
    truncated: list[bool]
    clusters: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.prompts)


def _generate_calls(users: int, clusters: torch.Tensor | None, users_per_call: int) -> list[list[int]]:
    """The users (batch rows) of each sampling ``generate`` call: at most ``users_per_call``, and with HeTLM's
    ``clusters`` all of one cluster, so that each call runs one predictor on a full-sized batch (cut by
    position instead, every call would hold a user or two of each cluster, one small batch per predictor).

    Example:
        >>> _generate_calls(4, torch.tensor([1, 0, 1, 1]), 2)
        [[1], [0, 2], [3]]
        >>> _generate_calls(3, None, 2)
        [[0, 1], [2]]
    """
    if clusters is None:
        groups = [list(range(users))]
    else:
        assigned = clusters.tolist()
        groups = [[row for row in range(users) if assigned[row] == cluster] for cluster in sorted(set(assigned))]
    steps = range(0, users, users_per_call)
    return [group[start : start + users_per_call] for group in groups for start in steps if start < len(group)]


def _max_positions(model: PreTrainedModel) -> int | None:
    config = model.config.predictor_config if is_hetlm(model) else model.config
    return getattr(config, "max_position_embeddings", None)


class ModelSessionGenerator:
    """A session generator backed by a HeTLM model or a plain causal LM (greedy by default).

    Args:
        model: A ``HeTLMForBrowsing`` (``config.model_type == "hetlm"``) or a causal LM over page ids.
        tokenizer: The page tokenizer the model was trained with.
        max_new_tokens: The most tokens generated for the next session (``[EOS]`` included).
        max_prompt_length: The longest prompt; defaults to the model's maximum positions minus
            ``max_new_tokens`` (or the tokenizer's ``model_max_length`` when the model has none).
        **generation_kwargs: More ``generate`` arguments of the greedy pass (e.g. ``num_beams=2``).

    Attributes:
        truncated_prompts: Prompts cut to fit ``max_prompt_length`` so far.

    Raises:
        ValueError: ``max_new_tokens`` leaves no room for a prompt in the model's positions, or
            ``max_prompt_length`` is below 1.
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
        if max_prompt_length is None:
            positions = _max_positions(model) or tokenizer.model_max_length
            if positions <= max_new_tokens:
                raise ValueError(
                    f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the model's {positions} positions"
                )
            max_prompt_length = positions - max_new_tokens
        if max_prompt_length < 1:
            raise ValueError(f"max_prompt_length must be at least 1, got {max_prompt_length}")
        self.max_prompt_length = max_prompt_length
        self.generation_kwargs = {
            "do_sample": False,
            "max_new_tokens": max_new_tokens,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **generation_kwargs,
        }
        self.truncated_prompts = 0

    @torch.no_grad()
    def encode(self, input_sessions: UserSessions) -> PromptBatch:
        """The users' prompts, padded on the model's device, with HeTLM's clusters (routed once).

        Prompts cut to fit are counted in ``truncated_prompts`` (and logged).
        """
        if not input_sessions:
            raise ValueError("no users to encode")
        prompts = [build_prompt(self.tokenizer, sessions, self.max_prompt_length) for sessions in input_sessions]
        truncated = [len(prompt) < full_prompt_length(sessions) for prompt, sessions in zip(prompts, input_sessions)]
        if any(truncated):
            self.truncated_prompts += sum(truncated)
            logger.info("%d prompt(s) cut to the last %d tokens", sum(truncated), self.max_prompt_length)
        return self._batch(prompts, truncated)

    def _batch(
        self,
        prompts: list[list[int]],
        truncated: list[bool],
        clusters: torch.Tensor | None = None,
    ) -> PromptBatch:
        input_ids, attention_mask = (
            tensor.to(self.model.device) for tensor in pad_sequences(prompts, self.tokenizer.pad_token_id, side="left")
        )
        if is_hetlm(self.model) and clusters is None:
            clusters = self.model.route(input_ids, attention_mask)
        return PromptBatch(prompts, input_ids, attention_mask, truncated, clusters)

    def _part(self, batch: PromptBatch, rows: Sequence[int]) -> PromptBatch:
        """Users ``rows`` of ``batch`` (with their clusters), padded to their own longest prompt."""
        if list(rows) == list(range(len(batch))):
            return batch
        clusters = None if batch.clusters is None else batch.clusters[list(rows)]
        prompts, truncated = [batch.prompts[row] for row in rows], [batch.truncated[row] for row in rows]
        return self._batch(prompts, truncated, clusters)

    def _as_batch(self, users: UserSessions | PromptBatch) -> PromptBatch:
        return users if isinstance(users, PromptBatch) else self.encode(users)

    @torch.no_grad()
    def _generate(
        self, batch: PromptBatch, outcome_probabilities: bool = False, **generation_kwargs: Any
    ) -> tuple[list[list[str]], list[int] | None, torch.Tensor | None]:
        """Decoded new sessions (``[B * n]`` with ``num_return_sequences=n``, a user's n together), clusters and,
        with ``outcome_probabilities``, each session's ``[B * n, 3]`` estimates of P(cart), P(purchase),
        P(either) (:mod:`inference.outcome_estimates`)."""
        if outcome_probabilities:
            generation_kwargs = {**generation_kwargs, "output_scores": True, "return_dict_in_generate": True}
        if is_hetlm(self.model):
            output = self.model.generate(
                batch.input_ids,
                batch.attention_mask,
                clusters=batch.clusters,
                return_clusters=True,
                **generation_kwargs,
            )
            new_tokens, assigned = (output.sequences, output.clusters) if outcome_probabilities else output
            clusters = [int(cluster) for cluster in assigned]
        else:
            output = self.model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, **generation_kwargs
            )
            sequences = output.sequences if outcome_probabilities else output
            new_tokens, clusters = sequences[:, batch.input_ids.shape[1] :], None
        estimates = self._outcome_estimates(new_tokens, output.scores) if outcome_probabilities else None
        return [decode_session(self.tokenizer, row) for row in new_tokens.tolist()], clusters, estimates

    def _outcome_estimates(self, new_tokens: torch.Tensor, scores: Sequence[torch.Tensor]) -> torch.Tensor:
        """``[R, 3]`` P(cart), P(purchase), P(cart or purchase) of each sampled row (Rao-Blackwellised)."""
        cart, purchase = self.tokenizer.convert_tokens_to_ids([OUTCOME_CART, OUTCOME_PURCHASE])
        stops = [self.tokenizer.eos_token_id, self.tokenizer.pad_token_id]
        probabilities = step_probabilities(scores)
        columns = [
            first_hit_probabilities(new_tokens, probabilities, hits, stops)
            for hits in ([cart], [purchase], [cart, purchase])
        ]
        return torch.stack(columns, dim=1).cpu()

    def greedy(self, users: UserSessions | PromptBatch) -> tuple[list[list[str]], list[int] | None]:
        """Each user's next session (greedy unless ``generation_kwargs`` say otherwise) and, for HeTLM, cluster.

        Args:
            users: Each user's input sessions (page names, oldest first), or their :meth:`encode` batch.
        """
        sessions, clusters, _ = self._generate(self._as_batch(users), **self.generation_kwargs)
        return sessions, clusters

    def __call__(self, input_sessions: UserSessions) -> tuple[list[list[str]], list[int] | None]:
        return self.greedy(input_sessions)

    def sample(
        self,
        users: UserSessions | PromptBatch,
        num_samples: int,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        max_sequences_per_call: int | None = None,
        max_new_tokens: int | None = None,
        return_outcome_probabilities: bool = False,
    ) -> tuple[list[list[list[str]]], list[int] | None] | tuple[list[list[list[str]]], list[int] | None, torch.Tensor]:
        """``num_samples`` sampled next sessions per user, grouped per user, and, for HeTLM, each user's cluster.

        Args:
            users: Each user's input sessions (page names, oldest first), or their :meth:`encode` batch.
            num_samples: Sessions sampled per user.
            temperature: Sampling temperature.
            top_k: Sample among the k most likely pages only (0: all pages, the model's distribution).
            max_sequences_per_call: Most sampled sequences (users x ``num_samples``) per ``generate``
                call; a call holds at least one user. ``None``: the whole batch in one call.
            max_new_tokens: Most new tokens per sampled session (None: the generator's ``max_new_tokens``).
            return_outcome_probabilities: Also return each user's ``[U, 3]`` P(cart), P(purchase), P(cart or
                purchase) in the next session: the mean over its samples of the Rao-Blackwellised estimate of
                :mod:`inference.outcome_estimates` (the model's step probabilities, not 0/1 shares).

        Returns:
            ``(samples, clusters)``: ``samples[u]`` holds user ``u``'s ``num_samples`` sessions; with
            ``return_outcome_probabilities``, ``(samples, clusters, outcome_probabilities)``.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        if max_sequences_per_call is not None and max_sequences_per_call < 1:
            raise ValueError(f"max_sequences_per_call must be at least 1, got {max_sequences_per_call}")
        batch = self._as_batch(users)
        users_per_call = len(batch)
        if max_sequences_per_call is not None:
            users_per_call = max(1, max_sequences_per_call // num_samples)
        generation_kwargs = {
            **self.generation_kwargs,
            "do_sample": True,
            "temperature": temperature,
            "top_k": top_k,
            "num_return_sequences": num_samples,
        }
        if max_new_tokens is not None:
            generation_kwargs["max_new_tokens"] = max_new_tokens
        samples: list[list[list[str]]] = [[] for _ in range(len(batch))]
        estimates = torch.zeros(len(batch), 3)
        for rows in _generate_calls(len(batch), batch.clusters, users_per_call):
            sessions, _, part_estimates = self._generate(
                self._part(batch, rows), return_outcome_probabilities, **generation_kwargs
            )
            for position, row in enumerate(rows):
                samples[row] = sessions[position * num_samples : (position + 1) * num_samples]
            if part_estimates is not None:
                estimates[rows] = part_estimates.view(len(rows), num_samples, 3).mean(dim=1)
        clusters = None if batch.clusters is None else [int(cluster) for cluster in batch.clusters]
        if return_outcome_probabilities:
            return samples, clusters, estimates
        return samples, clusters

    @torch.no_grad()
    def first_page_log_probs(self, users: UserSessions | PromptBatch) -> torch.Tensor:
        """``[B, V]`` log-probabilities of each user's next first page (the specials get ``-inf``), on the CPU."""
        batch = self._as_batch(users)
        if is_hetlm(self.model):
            return self.model.first_page_log_probs(
                batch.input_ids, batch.attention_mask, clusters=batch.clusters
            ).cpu()
        positions = (batch.attention_mask.cumsum(dim=1) * batch.attention_mask - 1).clamp(min=0)
        logits = (
            self.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=positions,
                use_cache=False,
                logits_to_keep=1,
            )
            .logits[:, -1]
            .float()
        )
        logits = logits[:, : len(self.tokenizer)]
        logits[:, self.tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))] = float("-inf")
        return logits.log_softmax(dim=-1).cpu()

    def recommend(self, users: UserSessions | PromptBatch, k: int = 10) -> list[list[str]]:
        """Each user's ``k`` most likely first pages of the next session, most likely first (ties by id)."""
        log_probs = self.first_page_log_probs(users)
        pages = len(self.tokenizer) - len(SPECIAL_TOKENS)
        if not 1 <= k <= pages:
            raise ValueError(f"k must lie in [1, {pages}] (the number of pages), got {k}")
        return [self.tokenizer.convert_ids_to_tokens(row) for row in log_probs.topk(k, dim=-1).indices.tolist()]
