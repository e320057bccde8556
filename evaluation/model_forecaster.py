"""Forecasts of a HeTLM model or a plain causal LM: greedy (the paper's) or sampled decoding, with the
model's own ranking of the next session's first page.

- ``decoding="sampled"`` (the report's default): S sessions per user are sampled in one batched
  ``generate`` call per batch (``num_return_sequences``, the prompt's KV cache shared); P(page) is the
  share of the samples holding the page (:func:`evaluation.forecasts.sampled_forecast`), P(cart),
  P(purchase) and P(cart or purchase) the model's own probabilities along the samples
  (:mod:`inference.outcome_estimates`, lower variance than shares); the predicted set is decided later
  by thresholds tuned on the validation split (:mod:`evaluation.decisions`).
- ``decoding="greedy"``: one greedy session per user, P = 1 for its pages (the paper's setting).

Either way ``ranked_pages`` are the pages by the model's next-token distribution after the prompt's
open ``[BOS]`` (:meth:`inference.session_generator.ModelSessionGenerator.first_page_log_probs`), the
first :data:`RANKED_PAGES` kept. Sampling draws from torch's global generator: seed it first.

Example:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from inference.session_generator import ModelSessionGenerator
    >>> from tokenization.page_tokenizer import build_page_tokenizer
    >>> tokenizer = build_page_tokenizer(["home", "shoes", "cart"])
    >>> _ = torch.manual_seed(0)
    >>> lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
    ...                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    >>> forecaster = ModelForecaster(ModelSessionGenerator(lm, tokenizer, max_new_tokens=3), num_samples=8)
    >>> forecasts, clusters = forecaster.forecast([[["home", "shoes"]]])
    >>> sorted(forecasts[0].ranked_pages), clusters
    (['cart', 'home', 'shoes'], None)
    >>> all(0.0 <= p <= 1.0 for p in forecasts[0].outcome_probabilities)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inference.session_generator import ModelSessionGenerator

from .forecasts import Forecast, Sessions, sampled_forecast, session_forecast

DECODINGS: tuple[str, ...] = ("sampled", "greedy")
# Candidates kept per user for the ranking metrics (the largest cut-off reported is 20).
RANKED_PAGES = 100
# Sampled sequences per generate call. Measured on a 2-core CPU (1.5M-parameter OPT, 64 users x 8 samples,
# 40 new tokens): 128 per call took half the time of all 512 at once; the cost per sequence is then about
# 0.75 of a greedy sequence's.
SEQUENCES_PER_CALL = 128


class ModelForecaster:
    """A :class:`evaluation.forecasts.Forecaster` backed by a :class:`ModelSessionGenerator`.

    Args:
        generator: The model's session generator.
        decoding: ``"sampled"`` (S sessions per user) or ``"greedy"`` (one session, the paper's).
        num_samples: S, sessions sampled per user (sampled decoding only).
        temperature: Sampling temperature.
        top_k: Sample among the k most likely pages only (0: the model's whole distribution).
        max_sequences_per_call: Most sampled sequences per ``generate`` call (None: a whole batch).
        max_new_tokens: Most tokens of a sampled session (None: the generator's); e.g. the data's
            longest session + 1, since a sampled session, unlike a greedy one, rarely ends early.
    """

    def __init__(
        self,
        generator: ModelSessionGenerator,
        decoding: str = "sampled",
        num_samples: int = 16,
        temperature: float = 1.0,
        top_k: int = 0,
        max_sequences_per_call: int | None = SEQUENCES_PER_CALL,
        max_new_tokens: int | None = None,
    ):
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.generator = generator
        self.decoding = decoding
        self.num_samples = num_samples
        self.temperature = temperature
        self.top_k = top_k
        self.max_sequences_per_call = max_sequences_per_call
        self.max_new_tokens = max_new_tokens

    @property
    def probabilistic(self) -> bool:
        """Sampled forecasts have graded probabilities (thresholds are tuned); greedy ones are 0/1."""
        return self.decoding == "sampled"

    def ranked_first_pages(self, batch) -> list[list[str]]:
        """Each user's first pages by the model's probability, most likely first (specials never)."""
        log_probs = self.generator.first_page_log_probs(batch)
        keep = min(RANKED_PAGES, int(torch.isfinite(log_probs[0]).sum()))
        ids = log_probs.topk(keep, dim=-1).indices.tolist()
        return [self.generator.tokenizer.convert_ids_to_tokens(row) for row in ids]

    def forecast(self, input_sessions: Sequence[Sessions]) -> tuple[list[Forecast], list[int] | None]:
        batch = self.generator.encode(input_sessions)
        ranked = self.ranked_first_pages(batch)
        if self.decoding == "greedy":
            sessions, clusters = self.generator.greedy(batch)
            forecasts = [session_forecast(session) for session in sessions]
            for forecast, pages in zip(forecasts, ranked):
                forecast.ranked_pages = pages
            return forecasts, clusters
        samples, clusters, outcomes = self.generator.sample(
            batch,
            self.num_samples,
            temperature=self.temperature,
            top_k=self.top_k,
            max_sequences_per_call=self.max_sequences_per_call,
            max_new_tokens=self.max_new_tokens,
            return_outcome_probabilities=True,
        )
        forecasts = [
            sampled_forecast(user_samples, pages, outcome_probabilities=user_outcomes)
            for user_samples, pages, user_outcomes in zip(samples, ranked, outcomes.tolist())
        ]
        return forecasts, clusters
