"""Model-size presets and training defaults, at CPU scale, beside the paper's own settings.

The paper (Appendix A.4) trains OPT-350M / Qwen2.5-0.5B / SmolLM2-360M predictors on 8 A100s and
compares HeTLM's K small predictors with a single larger LM of the same family holding at least K
times their parameters. Here the same pairs exist at CPU scale: ``"small"`` is the predictor,
``"large"`` the single LM; :func:`build_causal_lm_config` grows the large preset's depth until it
holds at least ``min_ratio`` (K, default 6) times the small one's parameters, counted exactly with
``num_parameters()`` for the actual page vocabulary.

Training defaults (paper value -> CPU default, and why):

==========================  ===============  ===============  ==========================================
setting                     paper            CPU default      why
==========================  ===============  ===============  ==========================================
pretrain learning rate      1e-5             5e-3             from scratch at 0.1-2M parameters (measured, below)
pretrain weight decay       0.01             0.01
backbone family             OPT/Qwen/SmolLM  llama            learns the session-to-session patterns best (below)
pretrain batch size         32               32
pretrain max length         512              512              browsing streams rarely reach it
pretrain epochs             100              2.5              every session is an example (4.4x rows): same steps
pretrain grad accumulation  4                1                CPU batches are already whole
warm-up                     5%               5%
HeTLM batch size            16               16
HeTLM epochs                10               1.5              every session is an example (4.4x rows)
selector lr / wd            5e-5 / 1e-4      1e-3 / 1e-4      the selector MLP is tiny; 5e-5 would not move in 3 epochs
predictor lr / wd           1e-5 / 0.01      5e-4 / 0.01      fine-tuning tiny predictors for a few epochs
alpha, beta                 0.5-5, 1-9       5, 9             the paper's best pair
bf16 autocast               (A100 bf16)      auto             on with native CPU bf16 and >= 1M parameters (measured)
==========================  ===============  ===============  ==========================================

Learning-rate sweep behind the pretraining default (opt/small, 1,282 simulated training users of the
default 1,098-page store, batch 32, 5 epochs, fp32): validation loss 5.40 at 3e-4, 4.18 at 1e-3,
3.66 at 2e-3, 3.38 at 5e-3, 3.33 at 1e-2, 4.05 at 2e-2; 5e-3 sits on the flat part, away from the
edge where training starts to diverge.

Family behind the default (the default run's data until 2026-12-02: 2,000 simulated users, 7,585 training examples;
small preset, 2 epochs, lr 5e-3, fp32, one thread): validation loss OPT 3.081, Qwen2 3.023, Llama 3.017; ROC-AUC
of the model's P(cart) for the 200 test users OPT 0.577, Qwen2 0.655, Llama 0.662 (a user who left a cart comes
back for it: the rotary-position families learn that copy from the previous session, OPT's learned positions barely
do). A Llama training step costs about 1.2x an OPT step of the same size (4.3 s vs 3.5 s for 20 steps of 32 users).

Example:
    >>> from trainers.model_sizes import build_causal_lm_config
    >>> config = build_causal_lm_config("opt", "small", vocab_size=100, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    >>> config.model_type, config.hidden_size
    ('opt', 64)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, OPTConfig, PretrainedConfig, Qwen2Config

logger = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("opt", "qwen2", "llama")
SIZES: tuple[str, ...] = ("tiny", "small", "large")


@dataclass(frozen=True)
class SizePreset:
    """Shape of one preset; ``intermediate_size`` is the MLP width (OPT's ``ffn_dim``)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int


SIZE_PRESETS: dict[str, SizePreset] = {
    # "tiny" is for tests and smoke runs only.
    "tiny": SizePreset(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "small": SizePreset(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    # Grown to 5 layers (7.2x the small preset) for Llama and the default data's 1,102 pages. The former 160-wide,
    # 4-layer preset (9.0x) reached the same validation loss in one epoch of 2,000 users (3.3383 vs 3.3376) in 98 s
    # instead of 92 s on a 2-core AVX2 CPU: the comparison asks for at least K = 6x, not more.
    "large": SizePreset(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512),
}

# The paper's settings as keyword arguments of :class:`trainers.training_arguments.PretrainingArguments`
# and :class:`~trainers.training_arguments.ClusterwiseTrainingArguments` (learning rate and weight decay: the
# predictors').
PAPER_PRETRAIN_SETTINGS: dict[str, float] = {
    "learning_rate": 1e-5,
    "weight_decay": 0.01,
    "per_device_train_batch_size": 32,
    "max_length": 512,
    "num_train_epochs": 100,
    "gradient_accumulation_steps": 4,
    "warmup_steps": 0.05,
}
PAPER_HETLM_SETTINGS: dict[str, float] = {
    "per_device_train_batch_size": 16,
    "max_length": 512,
    "num_train_epochs": 10,
    "num_clusters": 6,
    "selector_learning_rate": 5e-5,
    "selector_weight_decay": 1e-4,
    "learning_rate": 1e-5,
    "weight_decay": 0.01,
    "alpha": 5.0,
    "beta": 9.0,
}


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN with avx512_bf16 or AMX).

    Example:
        >>> isinstance(cpu_supports_bf16(), bool)
        True
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# Measured with benchmarks/train_step.py on this 2-core AVX512-bf16 CPU: bf16 autocast made a
# 1.5M-parameter OPT step ~1.8x faster, but a 0.2M-parameter one ~1.2x slower (the casts cost more
# than the tiny matmuls save), so autocast is only on by default from this size up.
BF16_MIN_PARAMETERS = 1_000_000


def default_bf16(num_parameters: int | None = None) -> bool:
    """The documented bf16 default: on for a CUDA GPU with bf16; on a CPU with native bf16, on for
    models of at least :data:`BF16_MIN_PARAMETERS` parameters (or when the size is not given).

    Example:
        >>> default_bf16(10_000) if not torch.cuda.is_available() else False
        False
    """
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_supports_bf16() and (num_parameters is None or num_parameters >= BF16_MIN_PARAMETERS)


def _family_config(
    family: str,
    preset: SizePreset,
    *,
    vocab_size: int,
    pad_token_id: int,
    bos_token_id: int,
    eos_token_id: int,
    max_position_embeddings: int,
) -> PretrainedConfig:
    special = {"pad_token_id": pad_token_id, "bos_token_id": bos_token_id, "eos_token_id": eos_token_id}
    if family == "opt":
        return OPTConfig(
            vocab_size=vocab_size,
            hidden_size=preset.hidden_size,
            num_hidden_layers=preset.num_hidden_layers,
            num_attention_heads=preset.num_attention_heads,
            ffn_dim=preset.intermediate_size,
            word_embed_proj_dim=preset.hidden_size,
            max_position_embeddings=max_position_embeddings,
            dropout=0.0,
            attention_dropout=0.0,
            **special,
        )
    common = {
        "vocab_size": vocab_size,
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_hidden_layers,
        "num_attention_heads": preset.num_attention_heads,
        "num_key_value_heads": preset.num_attention_heads,
        "intermediate_size": preset.intermediate_size,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": True,
        **special,
    }
    if family == "qwen2":
        return Qwen2Config(**common)
    if family == "llama":
        return LlamaConfig(**common)
    raise ValueError(f"Unknown model family {family!r}; expected one of {', '.join(FAMILIES)}.")


def count_parameters(config: PretrainedConfig) -> int:
    """Exact parameter count of the causal LM ``config`` describes, built on the meta device (no memory).

    Example:
        >>> config = build_causal_lm_config(
        ...     "llama", "tiny", vocab_size=50, pad_token_id=0, bos_token_id=2, eos_token_id=3
        ... )
        >>> count_parameters(config) > 0
        True
    """
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config).num_parameters()


def build_causal_lm_config(
    family: str,
    size: str,
    *,
    vocab_size: int,
    pad_token_id: int,
    bos_token_id: int,
    eos_token_id: int,
    max_position_embeddings: int = 512,
    min_ratio: float = 6.0,
) -> PretrainedConfig:
    """A causal-LM config of ``family`` at preset ``size`` for a page vocabulary.

    For ``size="large"`` the number of layers grows from the preset until the model holds at least
    ``min_ratio`` times the parameters of the ``"small"`` preset with the same vocabulary (the paper's
    "larger single LM with more parameters than the K small predictors together").

    Example:
        >>> special_ids = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
        >>> small = build_causal_lm_config("qwen2", "small", vocab_size=1100, **special_ids)
        >>> large = build_causal_lm_config("qwen2", "large", vocab_size=1100, **special_ids)
        >>> count_parameters(large) >= 6 * count_parameters(small)
        True
    """
    if size not in SIZE_PRESETS:
        raise ValueError(f"Unknown size {size!r}; expected one of {', '.join(SIZES)}.")
    kwargs = {
        "vocab_size": vocab_size,
        "pad_token_id": pad_token_id,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "max_position_embeddings": max_position_embeddings,
    }
    preset = SIZE_PRESETS[size]
    config = _family_config(family, preset, **kwargs)
    if size != "large":
        return config
    small_parameters = count_parameters(_family_config(family, SIZE_PRESETS["small"], **kwargs))
    while count_parameters(config) < min_ratio * small_parameters:
        preset = replace(preset, num_hidden_layers=preset.num_hidden_layers + 1)
        config = _family_config(family, preset, **kwargs)
    logger.info(
        "%s large: %d layers, %d parameters = %.1fx the small preset's %d",
        family,
        config.num_hidden_layers,
        count_parameters(config),
        count_parameters(config) / small_parameters,
        small_parameters,
    )
    return config
