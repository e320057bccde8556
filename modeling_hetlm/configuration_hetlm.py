"""Configuration of HeTLM: K clusterwise causal LMs of browsing sessions routed by a sentence encoder.

This file is copied next to the weights by `save_pretrained`, so it imports only `transformers`
(remote-code loading with `trust_remote_code=True` must work without the `hetlm` package).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Sequence

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

SUPPORTED_PREDICTOR_TYPES = ("opt", "qwen2", "llama")
CENTROID_DISTANCES = ("paper", "normalized")
ROUTINGS = ("selector", "centroids", "likelihood")
# Fields older versions kept in config.json: the page list now lives in the page tokenizer, cluster sizes in the
# trainer's training_history.json and the model card, min_cluster_size among the trainer's settings.
REMOVED_FIELDS = ("page_vocabulary", "cluster_sizes", "min_cluster_size")
L1_REDUCTIONS = ("sum", "mean")

# The configuration of sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-d BERT).
MINILM_ENCODER_CONFIG = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}
MINILM_MAX_LENGTH = 256


class HeTLMConfig(PreTrainedConfig):
    r"""Configuration of [`HeTLMForBrowsing`].

    Args:
        predictor_config (`dict` or `PreTrainedConfig`, *optional*):
            Configuration of the causal LM used for each of the K predictors; a `dict` needs a
            `model_type` of `"opt"`, `"qwen2"` or `"llama"` (SmolLM2 is `"llama"`) and is built with
            `AutoConfig.for_model`. Defaults to `transformers`' default `OPTConfig`.
        encoder_config (`dict` or `PreTrainedConfig`, *optional*):
            Configuration of the frozen sentence encoder, a BERT (`model_type="bert"`). Defaults to
            the configuration of all-MiniLM-L6-v2 (6 layers, 384 hidden, 12 heads, vocabulary 30522,
            intermediate 1536).
        num_clusters (`int`, *optional*, defaults to 6):
            K, the number of clusters, i.e. of predictors and selector outputs; at least 1.
        selector_hidden_sizes (`list[int]`, *optional*, defaults to `[256]`):
            Hidden layer widths of the selector MLP (GELU between layers); empty means a linear selector.
        alpha (`float`, *optional*, defaults to 5.0):
            Weight of L2, the entropy of the cluster probabilities, in the selector loss; >= 0.
        beta (`float`, *optional*, defaults to 9.0):
            Weight of L3, the centroid separation term, in the selector loss; >= 0.
        l1_reduction (`str`, *optional*, defaults to `"sum"`):
            How each user's NLL under predictor k enters L1 = sum_k pi_k NLL_k: `"sum"` over the
            user's scored tokens, as the paper's L_LLM (section 4.4), or the per-token `"mean"`
            (about 1/tokens of the sum: the selector's gradient from L1 is then far below alpha*L2's).
            The critic's loss is the per-token mean either way.
        centroid_distance (`str`, *optional*, defaults to `"paper"`):
            How L3 is computed from the batch's soft centroids e_k.
            `"paper"`: `sigmoid(-sum_{k != k'} ||e_k - e_k'||_1)` over ordered pairs, as written in the
            paper (its gradient vanishes once the summed distance is large).
            `"normalized"`: `sigmoid(-d / centroid_temperature)` with `d` the mean over unordered pairs
            of the mean absolute coordinate difference `||e_k - e_k'||_1 / D`, so the argument stays
            near 1 whatever K and D are. With K = 1 there is no pair and both give `sigmoid(0) = 0.5`.
        centroid_temperature (`float`, *optional*, defaults to 0.05):
            Temperature of the `"normalized"` L3; > 0. (Unit-norm 384-d embeddings have coordinates of
            about 0.05, hence the default.)
        centroid_momentum (`float`, *optional*, defaults to 0.9):
            Momentum of the running average kept in the `centroids` buffer by
            `HeTLMForBrowsing.update_centroids`; in [0, 1).
        routing (`str`, *optional*, defaults to `"selector"`):
            How users are assigned to clusters: `"selector"` (argmax of the selector's
            probabilities, HeTLM), `"centroids"` (nearest centroid, the K-means baseline) or
            `"likelihood"` (the predictor giving the user's input history the lowest summed NLL: the
            paper's appendix A.1 objective estimated on what is known at inference; K predictor
            passes over each prompt; a row without a history to score falls back to the selector).
        num_pages (`int`, *optional*):
            Size of the page vocabulary (special tokens included): page ids are `0 .. num_pages - 1`;
            at most `predictor_config.vocab_size`. Set by `HeTLMForBrowsing.set_page_vocabulary`;
            required to embed users. `None`: any id below the predictor vocab size is valid.
        page_vocabulary_hash (`str`, *optional*):
            Fingerprint of the page vocabulary, `page_vocabulary_hash(tokens)` (sha256 of the tokens in
            id order); `HeTLMForBrowsing.check_page_tokenizer` compares a page tokenizer against it.
            Set by `HeTLMForBrowsing.set_page_vocabulary`.
        outcome_pages (`dict[str, list[str]]`, *optional*):
            The page rules' outcome patterns the model's pages were made with, `{"cart": [...], "purchase": [...]}`
            (exact names, globs or `re:` patterns mapped to the outcome pages `cart` / `purchase`; see
            `tokenization.page_rules`), copied from the page tokenizer by `build_hetlm`; the loaders of
            `inference.loading` refuse a page tokenizer whose rules differ. `None`: not recorded.
        url_normalization (`dict`, *optional*):
            The page rules' URL normalisation, `{"enabled": bool, "keep_query_parameters": [...]}`, recorded and
            checked with `outcome_pages`. `None`: not recorded.
        pad_token_id (`int`, *optional*, defaults to 0): id of `[PAD]` in the page vocabulary.
        unk_token_id (`int`, *optional*, defaults to 1): id of `[UNK]` (an unknown page).
        bos_token_id (`int`, *optional*, defaults to 2): id of `[BOS]` (a session starts).
        eos_token_id (`int`, *optional*, defaults to 3): id of `[EOS]` (a session ends).
        encoder_max_length (`int`, *optional*, defaults to 256):
            Maximum number of encoder tokens ([CLS] and [SEP] included) of a user's text; longer
            texts keep their beginning, as sentence-transformers does (all-MiniLM-L6-v2 uses 256).
        encoder_cls_token_id (`int`, *optional*, defaults to 101): the encoder tokenizer's [CLS] id.
        encoder_sep_token_id (`int`, *optional*, defaults to 102): the encoder tokenizer's [SEP] id.
        encoder_page_pieces (`int`, *optional*, defaults to 1):
            Width of the page-to-word-piece table (the most word pieces of one page); set by
            `HeTLMForBrowsing.set_page_vocabulary`, not by hand.

    Example:

    ```python
    >>> from modeling_hetlm import HeTLMConfig
    >>> config = HeTLMConfig(
    ...     predictor_config={"model_type": "llama", "vocab_size": 64, "hidden_size": 16,
    ...                       "intermediate_size": 32, "num_hidden_layers": 2,
    ...                       "num_attention_heads": 2, "num_key_value_heads": 2},
    ...     num_clusters=3)
    >>> config.predictor_config.model_type, config.embedding_dim
    ('llama', 384)

    ```
    """

    model_type = "hetlm"
    sub_configs_defaults = {
        "predictor_config": SubConfigSpec(config_class=AutoConfig, model_type="opt"),
        "encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert", init_kwargs=MINILM_ENCODER_CONFIG),
    }

    predictor_config: dict | PreTrainedConfig | None = None
    encoder_config: dict | PreTrainedConfig | None = None
    num_clusters: int = 6
    selector_hidden_sizes: list[int] | tuple[int, ...] = (256,)
    alpha: float = 5.0
    beta: float = 9.0
    l1_reduction: str = "sum"
    centroid_distance: str = "paper"
    centroid_temperature: float = 0.05
    centroid_momentum: float = 0.9
    routing: str = "selector"
    num_pages: int | None = None
    page_vocabulary_hash: str | None = None
    outcome_pages: dict[str, list[str]] | None = None
    url_normalization: dict | None = None
    pad_token_id: int = 0
    unk_token_id: int = 1
    bos_token_id: int = 2
    eos_token_id: int = 3
    encoder_max_length: int = MINILM_MAX_LENGTH
    encoder_cls_token_id: int = 101
    encoder_sep_token_id: int = 102
    encoder_page_pieces: int = 1

    def __post_init__(self, **kwargs):
        removed = [name for name in REMOVED_FIELDS if name in kwargs]
        if removed:
            raise ValueError(
                f"{', '.join(removed)} are no longer HeTLMConfig fields (the page names live in the page tokenizer, "
                "cluster sizes in training_history.json and the model card, min_cluster_size is a trainer setting); "
                "a config.json holding them was written by an older HeTLM: rebuild or re-train the model"
            )
        self._check_sub_config("predictor_config", SUPPORTED_PREDICTOR_TYPES)
        self._check_sub_config("encoder_config", ("bert",))
        super().__post_init__(**kwargs)
        self.selector_hidden_sizes = list(self.selector_hidden_sizes)
        self.check_values()

    def _check_sub_config(self, name: str, allowed_types: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value is None:
            return
        if isinstance(value, dict):
            model_type = value.get("model_type")
        elif isinstance(value, PreTrainedConfig):
            model_type = value.model_type
            # A copy: building the sub-config resets fields such as `_attn_implementation` in place,
            # which would silently change the caller's config (and any model built from it later).
            setattr(self, name, copy.deepcopy(value))
        else:
            raise ValueError(f"{name} must be a dict or a PreTrainedConfig, got {type(value).__name__}")
        if model_type not in allowed_types:
            raise ValueError(f"{name} has model_type {model_type!r}; supported: {', '.join(allowed_types)}")

    @property
    def embedding_dim(self) -> int:
        """D, the width of the user embeddings (the encoder's hidden size)."""
        return self.encoder_config.hidden_size

    @property
    def special_token_ids(self) -> dict[str, int]:
        """The page special-token ids by name."""
        return {
            "pad_token_id": self.pad_token_id,
            "unk_token_id": self.unk_token_id,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }

    def check_values(self) -> None:
        """Raise `ValueError` naming the first invalid setting (called at construction)."""
        _require_int(self.num_clusters, "num_clusters", minimum=1)
        _require_int(self.encoder_page_pieces, "encoder_page_pieces", minimum=1)
        for index, size in enumerate(self.selector_hidden_sizes):
            _require_int(size, f"selector_hidden_sizes[{index}]", minimum=1)
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.centroid_temperature, (int, float)) or not self.centroid_temperature > 0:
            raise ValueError(f"centroid_temperature must be > 0, got {self.centroid_temperature!r}")
        if not isinstance(self.centroid_momentum, (int, float)) or not 0 <= self.centroid_momentum < 1:
            raise ValueError(f"centroid_momentum must be in [0, 1), got {self.centroid_momentum!r}")
        if self.centroid_distance not in CENTROID_DISTANCES:
            raise ValueError(f"centroid_distance must be one of {CENTROID_DISTANCES}, got {self.centroid_distance!r}")
        if self.l1_reduction not in L1_REDUCTIONS:
            raise ValueError(f"l1_reduction must be one of {L1_REDUCTIONS}, got {self.l1_reduction!r}")
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, got {self.routing!r}")
        max_positions = self.encoder_config.max_position_embeddings
        _require_int(self.encoder_max_length, "encoder_max_length", minimum=3)
        if self.encoder_max_length > max_positions:
            raise ValueError(
                f"encoder_max_length {self.encoder_max_length} exceeds the encoder's "
                f"max_position_embeddings {max_positions}"
            )
        vocab_size = self.predictor_config.vocab_size
        special = self.special_token_ids
        for name, value in special.items():
            _require_int(value, name, minimum=0)
            if value >= vocab_size:
                raise ValueError(f"{name}={value} is outside the predictor vocabulary (vocab_size={vocab_size})")
        if len(set(special.values())) != len(special):
            raise ValueError(f"the page special-token ids must be distinct, got {special}")
        if self.num_pages is not None:
            self._check_page_vocabulary(vocab_size)
        elif self.page_vocabulary_hash is not None:
            raise ValueError("page_vocabulary_hash is set but num_pages is not: set both (set_page_vocabulary does)")
        pages = self.outcome_pages
        if pages is not None and (
            not isinstance(pages, dict)
            or set(pages) != {"cart", "purchase"}
            or not all(
                isinstance(patterns, list) and all(isinstance(p, str) for p in patterns) for patterns in pages.values()
            )
        ):
            raise ValueError(f"outcome_pages must map 'cart' and 'purchase' to lists of page patterns, got {pages!r}")
        if self.url_normalization is not None and not isinstance(self.url_normalization, dict):
            raise ValueError(f"url_normalization must be a dict, got {self.url_normalization!r}")

    def _check_page_vocabulary(self, vocab_size: int) -> None:
        _require_int(self.num_pages, "num_pages", minimum=1)
        if self.num_pages > vocab_size:
            raise ValueError(f"num_pages={self.num_pages} exceeds the predictor vocab_size {vocab_size}")
        for name, value in self.special_token_ids.items():
            if value >= self.num_pages:
                raise ValueError(f"{name}={value} is outside the page vocabulary ({self.num_pages} entries)")
        fingerprint = self.page_vocabulary_hash
        if fingerprint is not None and not (
            isinstance(fingerprint, str) and len(fingerprint) == 64 and set(fingerprint) <= set("0123456789abcdef")
        ):
            raise ValueError(f"page_vocabulary_hash must be a sha256 hex digest (64 hex digits), got {fingerprint!r}")


def page_vocabulary_hash(tokens: Sequence[str]) -> str:
    """Fingerprint of a page vocabulary: sha256 of its tokens in id order (as a JSON list, so no two lists collide).

    Example:
        >>> page_vocabulary_hash(["[PAD]", "[UNK]", "[BOS]", "[EOS]", "/home"])[:12]
        '8828962c9d28'
    """
    tokens = list(tokens)
    if not all(isinstance(token, str) for token in tokens):
        raise ValueError("the page vocabulary must be a list of strings")
    return hashlib.sha256(json.dumps(tokens, ensure_ascii=False).encode("utf-8")).hexdigest()


def _require_int(value, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


HeTLMConfig.register_for_auto_class()

__all__ = [
    "HeTLMConfig",
    "MINILM_ENCODER_CONFIG",
    "MINILM_MAX_LENGTH",
    "SUPPORTED_PREDICTOR_TYPES",
    "page_vocabulary_hash",
]
