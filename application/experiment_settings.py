"""What one ``hetlm experiment`` run depends on: :class:`ExperimentSettings` and the named presets.

Example:
    >>> ExperimentSettings.from_preset("smoke").num_clusters
    3
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass
class ExperimentSettings:
    """Everything one ``hetlm experiment`` run depends on (a config file holds the same keys).

    Attributes:
        source: ``"simulator"`` or a path to an event log (file or folder).
        format: Reader format (``simulator``, ``events``, ``csv``, ``parquet``, ``jsonl``, ``ga360``, ``rees46``).
        simulator_users: Users the simulator draws (only for the simulator).
        simulator_seed: The simulator's seed.
        family: Backbone family of every LM: ``opt``, ``qwen2`` or ``llama`` (SmolLM2).
        small_size / large_size: Size presets (:mod:`trainers.model_sizes`) of the predictors and of the
            single larger LM (grown to at least ``num_clusters`` times the small one's parameters).
        pretrain_epochs / large_pretrain_epochs: Epochs of the two single LMs.
        num_clusters: Initial K of HeTLM and the fixed K of the K-means baseline (paper: 6).
        kmeans_silhouette: Also train K-means with K chosen by silhouette (paper: K=2).
        ablation: (alpha, beta) pairs; one HeTLM per pair; the first is the headline model.
        centroid_distance: ``paper`` or ``normalized`` L3 (see :class:`HeTLMConfig`).
        clusterwise_epochs: Epochs of HeTLM and of each K-means predictor's fine-tuning.
        encoder: ``minilm`` (all-MiniLM-L6-v2, the paper's) or ``tiny`` (a random 1-layer BERT over
            the page words: smoke tests only).
        max_test_users: Score at most this many test users (None: all).
        max_new_tokens: Longest generated session.
        batch_size: Users per generation batch.
        decodings: How the models decode in the evaluation (``sampled``: S sessions per user, thresholds
            tuned on validation; ``greedy``: the paper's); the first is the headline, each other one is
            reported beside it.
        num_samples: S, sessions sampled per user by the sampled decoding.
        seed: Seed of data split, training and generation.
        bf16: bf16 autocast (None: where the CPU/GPU supports it).
    """

    source: str = "simulator"
    format: str = "simulator"
    simulator_users: int = 3000
    simulator_seed: int = 0
    family: str = "opt"
    small_size: str = "small"
    large_size: str = "large"
    pretrain_epochs: float = 10.0
    large_pretrain_epochs: float = 8.0
    num_clusters: int = 6
    kmeans_silhouette: bool = True
    ablation: list[tuple[float, float]] = field(default_factory=lambda: [(5.0, 9.0)])
    centroid_distance: str = "paper"
    clusterwise_epochs: float = 3.0
    encoder: str = "minilm"
    max_test_users: int | None = None
    max_new_tokens: int = 40
    batch_size: int = 64
    decodings: list[str] = field(default_factory=lambda: ["sampled"])
    num_samples: int = 16
    seed: int = 0
    bf16: bool | None = None

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "ExperimentSettings":
        """Settings of a named preset (:data:`PRESETS`) with ``overrides`` applied.

        Example:
            >>> ExperimentSettings.from_preset("default").simulator_users
            3000
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return replace(cls(), **{**PRESETS[name], **overrides})

    def __post_init__(self) -> None:
        self.ablation = [(float(alpha), float(beta)) for alpha, beta in self.ablation]
        if not self.ablation:
            raise ValueError("ablation needs at least one (alpha, beta) pair")
        if self.encoder not in ("minilm", "tiny"):
            raise ValueError(f"encoder must be 'minilm' or 'tiny', got {self.encoder!r}")
        self.decodings = list(self.decodings)
        if not self.decodings or any(decoding not in ("sampled", "greedy") for decoding in self.decodings):
            raise ValueError(f"decodings must be a non-empty list of 'sampled' / 'greedy', got {self.decodings}")
        if self.num_clusters < 1:
            raise ValueError(f"num_clusters must be at least 1, got {self.num_clusters}")

    @staticmethod
    def keys() -> list[str]:
        """The setting names a config file may hold."""
        return [item.name for item in fields(ExperimentSettings)]


PRESETS: dict[str, dict[str, Any]] = {
    # At most 10 minutes on a 2-core CPU (about 6 measured): 3,000 simulated users, 64-d predictors, MiniLM encoder.
    "default": {},
    # Seconds: for tests and a first look (tiny models, random tiny encoder, few users).
    "smoke": {"simulator_users": 240, "small_size": "tiny", "large_size": "small", "pretrain_epochs": 2.0,
              "large_pretrain_epochs": 1.0, "num_clusters": 3, "clusterwise_epochs": 1.0, "encoder": "tiny",
              "max_new_tokens": 16, "kmeans_silhouette": False},
    # The paper's Table 7 grid at the default scale (9 HeTLM runs: about half an hour on 2 cores).
    "ablation": {"ablation": [(a, b) for a in (0.5, 2.0, 5.0) for b in (1.0, 5.0, 9.0)],
                 "decodings": ["sampled", "greedy"]},
    # More users and bigger models, for a GPU or a long CPU run.
    "large": {"simulator_users": 50000, "pretrain_epochs": 10.0, "large_pretrain_epochs": 10.0,
              "clusterwise_epochs": 5.0, "batch_size": 256},
}


def hetlm_stage_name(alpha: float, beta: float) -> str:
    """Stage (and model) name of one HeTLM run.

    Example:
        >>> hetlm_stage_name(5.0, 9.0), hetlm_stage_name(0.5, 1.0)
        ('hetlm-a5-b9', 'hetlm-a0.5-b1')
    """
    return f"hetlm-a{alpha:g}-b{beta:g}"
