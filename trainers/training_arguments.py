"""``TrainingArguments`` of single-LM pretraining and of clusterwise training (HeTLM, K-means baseline).

In the style of trl's ``SFTConfig``/``RewardConfig``: each class is a ``transformers.TrainingArguments``
subclass; learning rate, weight decay, epochs, batch size, warm-up, seed, bf16, logging and
checkpointing are ``TrainingArguments``' own fields (declared once, there), re-declared here only where
our CPU defaults differ; the fields of the method carry their ``help`` in ``metadata``, so
``transformers.HfArgumentParser`` turns them into command-line flags and config-file keys.

Warm-up is ``warmup_steps``: an integer is a number of steps, a float in [0, 1) a ratio of the total
steps (``TrainingArguments.get_warmup_steps``). ``bf16=None`` means :func:`trainers.model_sizes.default_bf16`
for the model's size, decided by :func:`resolve_training_arguments` when the model exists.
The paper's values (:data:`trainers.model_sizes.PAPER_PRETRAIN_SETTINGS`, ``PAPER_HETLM_SETTINGS``) are
keyword arguments of these classes.

Example:
    >>> args = ClusterwiseTrainingArguments(num_clusters=3, num_train_epochs=2)
    >>> args.num_train_epochs, args.learning_rate, args.per_device_eval_batch_size
    (2, 0.0005, 16)
    >>> PretrainingArguments(warmup_steps=0.05).get_warmup_steps(200)
    10
"""

import os
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from transformers import TrainingArguments

from .data import SCORE_MODES
from .model_sizes import FAMILIES, SIZES, default_bf16

INITIAL_PARTITIONS = ("encoder", "browsing", "likelihood")

# Short names kept from the first command line (flags and config-file keys) -> TrainingArguments' names.
ARGUMENT_ALIASES: dict[str, str] = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size"}


def _aliases(name: str) -> list[str]:
    return [f"--{alias.replace('_', '-')}" for alias, target in ARGUMENT_ALIASES.items() if target == name]


@dataclass
class BrowsingTrainingArguments(TrainingArguments):
    """What every training of this package shares: the token stream of a user and the CPU/distributed conventions.

    Differences from ``TrainingArguments``' defaults: weight decay 0.01, logging every 10 steps, no
    checkpoints, all dataset columns kept (the collators need them), the evaluation batch as large as
    the training batch, the data order seeded by ``seed`` unless ``data_seed`` is given, CPU (and no
    pinned memory) when no GPU is present, under ``torchrun`` (``WORLD_SIZE > 1``) the DDP backend
    ``gloo`` on CPU and ``nccl`` on GPUs, and validation each epoch when there is a validation split
    (``"no"`` otherwise, by :func:`resolve_training_arguments`).
    """

    output_dir: str | None = field(
        default="trainer_output", metadata={"help": "Folder of the Trainer's checkpoints (commands: OUT/trainer)."}
    )
    max_length: int = field(default=512, metadata={"help": "Max tokens per user, cut from the left."})
    score: str = field(default="stream", metadata={"help": "Tokens scored by the loss.", "choices": SCORE_MODES})
    num_train_epochs: float = field(
        default=1.5,
        metadata={
            "help": "Total number of training epochs (every session after a user's first is an "
            "example: about 4x the rows of one example per user).",
            "aliases": _aliases("num_train_epochs"),
        },
    )
    per_device_train_batch_size: int = field(
        default=16,
        metadata={"help": "Users per batch per device.", "aliases": _aliases("per_device_train_batch_size")},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "Weight decay (the paper's 0.01)."})
    per_device_eval_batch_size: int | None = field(
        default=None, metadata={"help": "Users per validation batch per device (default: the training batch)."}
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bf16 autocast (default: where the CPU/GPU has native bf16 and the model is big enough)."},
    )
    use_cpu: bool | None = field(
        default=None, metadata={"help": "Train on the CPU (default: when no GPU is present)."}
    )
    dataloader_pin_memory: bool | None = field(
        default=None, metadata={"help": "Pin data-loader memory (default: on GPUs only)."}
    )
    eval_strategy: str = field(
        default="epoch", metadata={"help": "Validation schedule; 'no' is used when there is no validation split."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    save_strategy: str = field(default="no", metadata={"help": "Checkpointing: no, steps or epoch."})
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Drop dataset columns the model's forward does not take (off: the collators use them)."},
    )

    def __post_init__(self) -> None:
        if self.per_device_eval_batch_size is None:
            self.per_device_eval_batch_size = self.per_device_train_batch_size
        if self.data_seed is None:
            self.data_seed = self.seed
        if self.use_cpu is None:
            self.use_cpu = not torch.cuda.is_available()
        if self.dataloader_pin_memory is None:
            self.dataloader_pin_memory = not self.use_cpu
        if self.ddp_backend is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            self.ddp_backend = "gloo" if self.use_cpu else "nccl"
        super().__post_init__()


@dataclass
class PretrainingArguments(BrowsingTrainingArguments):
    """Single-LM pretraining from scratch (CPU defaults; the paper's in ``PAPER_PRETRAIN_SETTINGS``).

    Example:
        >>> from trainers.model_sizes import PAPER_PRETRAIN_SETTINGS
        >>> PretrainingArguments(**PAPER_PRETRAIN_SETTINGS).gradient_accumulation_steps
        4
    """

    family: str = field(
        default="llama",
        metadata={"help": "Model family (default llama, SmolLM2's; see trainers.model_sizes).", "choices": FAMILIES},
    )
    size: str = field(default="small", metadata={"help": "Size preset (trainers.model_sizes).", "choices": SIZES})
    min_ratio: float = field(
        default=6.0, metadata={"help": "Size 'large' holds at least this many times 'small''s parameters."}
    )
    learning_rate: float = field(default=5e-3, metadata={"help": "Learning rate (paper: 1e-5)."})
    num_train_epochs: float = field(
        default=2.5,
        metadata={
            "help": "Training epochs (paper: 100; here every session after a user's first is an "
            "example: about 4x the rows of one example per user).",
            "aliases": _aliases("num_train_epochs"),
        },
    )
    per_device_train_batch_size: int = field(
        default=32,
        metadata={"help": "Users per batch per device.", "aliases": _aliases("per_device_train_batch_size")},
    )
    warmup_steps: float = field(
        default=0.05, metadata={"help": "Warm-up: steps (integer) or a ratio of the total steps (float < 1)."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "DDP: look for parameters without gradient (none in a causal LM)."}
    )


@dataclass
class ClusterwiseTrainingArguments(BrowsingTrainingArguments):
    """Clusterwise training, HeTLM and the K-means baseline (the paper's values in ``PAPER_HETLM_SETTINGS``).

    ``learning_rate``/``weight_decay`` are the predictors' (the selector has its own). ``kmeans_k``:
    ``None`` uses ``num_clusters``; ``"auto"`` picks K by silhouette over ``kmeans_k_range`` (inclusive).
    ``min_cluster_size``: clusters routed fewer training users are removed; ``None`` means 1% of the
    training users (at least 1).

    How users move (the README's "How HeTLM's users move"):

    - ``l1_reduction``: ``"sum"`` (each user's summed token NLL in L1, the paper's scale) or ``"mean"``
      (per-token mean); see :class:`~modeling_hetlm.HeTLMConfig`.
    - ``selector_label_smoothing``: the selector is pretrained on the K-means labels (and retrained on the
      hard-EM labels) with targets smoothed by this much, so it stays soft (max-probability about
      ``1 - e + e/K``) and L1 keeps a gradient; 0 trains it to a saturated softmax.
    - ``reassignment``: ``"hard_em"`` retrains the selector towards ``argmin_k NLL_k`` of every training user at
      the end of every ``reassign_every_epochs``-th epoch, for ``reassign_selector_epochs`` epochs at
      ``reassign_learning_rate`` (:mod:`trainers.reassignment`); ``"none"`` keeps the paper's loop only (the soft
      L1 gradient).
    - ``reassign_size_prior``: weight w of ``-w log(n_k / N)`` in the hard-EM choice (classification EM with
      mixing weights): near-ties go to the larger cluster, so clusters splitting one segment merge.
    - ``reassignment="online_em"``: the same step on the NLLs L1 computes for each training row before the
      predictors train on it (held-out in the first epoch, no extra pass), with the current labels' shares as
      mixing weights (w = 1 is the mixture's own), and the critic trains each user's rows on its label's
      predictor; ``reassign_every_steps`` runs the step every N optimizer steps (several rounds per epoch, the
      first N steps a warm-up of the critic on the K-means clusters); ``reassign_warmup_steps`` holds every
      reassignment (and online EM's scoring) until that step.
    - Defaults: online EM every 25 steps after a 50-step warm-up, w = 1, clipping per part. Measured on
      900 simulated users, K=6, one epoch (``benchmarks/clustering_dynamics.py``): routed validation NLL
      against the K-means baseline 3.0753 vs 3.0763 (default scenario) and 3.1731 vs 3.1825 (behaviour
      scenario), 5.2% / 7.1% of the users moved; hard EM with global clipping (the previous default): 3.0891
      and 3.1766, 1.8% / 1.3% moved.
    - ``reassignment="heldout_em"``: online EM scored instead on each training user's last session, which the
      critic never trains on (unbiased scores; the critic loses those sessions); ``retire_min_gain`` G then
      retires a cluster whose users gain less than G nats each over their best other cluster (K shrinks when
      clusters split one segment).
    - ``grad_clipping``: ``"separate"`` clips the predictors' and the selector's gradients to ``max_grad_norm``
      each on its own (default); ``"global"`` (``Trainer``'s) lets the selector's summed-NLL L1 gradient shrink the
      critic's steps.
    - ``routing``: how HeTLM routes a user: ``"likelihood"`` (default: the predictor giving the user's input
      history the lowest NLL, appendix A.1's objective on what is known at inference; see
      :class:`~modeling_hetlm.HeTLMConfig`) or ``"selector"`` (argmax pi, the paper's). The selector cannot
      reproduce EM's labels from the sentence embedding: on the default experiment of 2,000 simulated users (Llama
      predictors, cluster batches) the routed validation NLL is 2.7101 by likelihood, 2.7242 by the selector,
      2.7206 for K-means. The K-means baseline always routes to the nearest centroid.
    - ``cluster_batches`` (default on): each training batch holds the rows of one cluster (the EM labels', else
      the latest routing's; :mod:`trainers.cluster_batches`), regrouped after each reassignment, so each predictor
      takes the K-means baseline's steps: whole batches of its own cluster, not about ``batch / K`` rows of every
      batch with its gradient scaled by that share. Measured on 1,000 simulated users, K=6, MiniLM
      (``benchmarks/clustering_dynamics.py --users 1000``), routed validation NLL, shuffled -> cluster batches
      (K-means): one epoch 3.4795 -> 3.4415 (3.4255) default scenario, 3.4261 -> 3.4229 (3.4051) behaviour;
      three epochs 3.6500 -> 3.5302 (3.4942) and 3.6229 -> 3.4695 (3.4813); with likelihood routing one epoch
      3.4336 -> 3.4195 and 3.3891 -> 3.3648, below K-means' on both scenarios.
    - ``initial_partition``: HeTLM's start (:mod:`trainers.initial_partition`): ``"encoder"`` (default, the paper's:
      K-means on the encoder's embeddings, the K-means baseline's clusters), ``"browsing"`` (K-means on each user's
      browsing statistics: pages per session, revisits, the share of each page group; no page names) or
      ``"likelihood"`` (each of the two starts' predictors fine-tuned for ``initial_partition_epochs`` from the single
      LM, the start with the lower routed validation NLL kept; needs validation users). EM keeps the start it is
      given, so the start decides which segments HeTLM can find.
    - ``merge_max_cost`` C: at each pruning after the warm-up, retire the cluster whose validation users the other
      predictors stand in for best, if routing them to their next best cluster raises the routed validation NLL
      by at most C nats per token (:func:`~trainers.reassignment.merge_costs`; needs a validation split).

    Example:
        >>> ClusterwiseTrainingArguments(kmeans_k="4").kmeans_k
        4
        >>> ClusterwiseTrainingArguments().resolved_min_cluster_size(5000)
        50
    """

    num_clusters: int = field(default=6, metadata={"help": "Initial K (the paper's 6)."})
    kmeans_k: int | str | None = field(
        default=None, metadata={"help": "K of K-means: an integer, or 'auto' (silhouette). Default: num_clusters."}
    )
    kmeans_k_range: list[int] = field(
        default_factory=lambda: [2, 8], metadata={"help": "LOW HIGH: the K range of kmeans_k auto (inclusive)."}
    )
    alpha: float = field(default=5.0, metadata={"help": "Weight of L2 (the selector's entropy term)."})
    beta: float = field(default=9.0, metadata={"help": "Weight of L3 (the centroid term)."})
    centroid_distance: str = field(
        default="paper", metadata={"help": "L3 variant (see HeTLMConfig).", "choices": ("paper", "normalized")}
    )
    centroid_temperature: float = field(default=0.05, metadata={"help": "Temperature of the normalized L3."})
    selector_hidden_sizes: list[int] = field(
        default_factory=lambda: [256], metadata={"help": "Hidden widths of the selector MLP."}
    )
    min_cluster_size: int | None = field(
        default=None, metadata={"help": "Remove clusters with fewer training users (default: 1%% of them)."}
    )
    prune_every_steps: int | None = field(
        default=None, metadata={"help": "Prune every N steps (default: at each epoch's end)."}
    )
    selector_learning_rate: float = field(default=1e-3, metadata={"help": "Selector learning rate (paper: 5e-5)."})
    selector_weight_decay: float = field(default=1e-4, metadata={"help": "Selector weight decay."})
    selector_pretrain_epochs: int = field(
        default=20, metadata={"help": "Epochs of selector pretraining on the K-means labels."}
    )
    selector_pretrain_learning_rate: float = field(
        default=1e-2, metadata={"help": "Learning rate of selector pretraining."}
    )
    l1_reduction: str = field(
        default="sum",
        metadata={
            "help": "L1 over each user's summed token NLL (the paper's) or their mean.",
            "choices": ("sum", "mean"),
        },
    )
    selector_label_smoothing: float = field(
        default=0.3, metadata={"help": "Label smoothing of the selector's (pre)training targets: keeps it soft."}
    )
    reassignment: str = field(
        default="online_em",
        metadata={
            "help": "hard_em: retrain the selector towards argmin_k NLL_k; online_em: the same on the NLLs L1 "
            "computed before training on each row, the critic following the labels; heldout_em: online EM scored on "
            "each user's last session, kept out of training; none: L1 only.",
            "choices": ("hard_em", "online_em", "heldout_em", "none"),
        },
    )
    reassign_every_epochs: int = field(default=1, metadata={"help": "Hard-EM step every N epochs."})
    reassign_every_steps: int | None = field(
        default=25,
        metadata={"help": "Reassign every N optimizer steps; 0: every reassign_every_epochs epochs."},
    )
    retire_min_gain: float | None = field(
        default=None,
        metadata={
            "help": "Also retire the cluster whose users gain least (nats per user, on the EM scores) over their "
            "best other cluster, when below this (one per pruning)."
        },
    )
    merge_max_cost: float | None = field(
        default=None,
        metadata={
            "help": "Also retire the cluster whose users the others predict nearly as well: when routing its "
            "validation users to their next best cluster raises the routed validation NLL by at most this many "
            "nats per token (one per pruning)."
        },
    )
    reassign_warmup_steps: int = field(
        default=50,
        metadata={"help": "No hard-EM step (and no online-EM score recorded) before this step: the critic warms up."},
    )
    reassign_selector_epochs: int = field(default=5, metadata={"help": "Selector epochs per hard-EM step."})
    reassign_learning_rate: float = field(default=1e-2, metadata={"help": "Selector learning rate of hard EM."})
    reassign_size_prior: float = field(
        default=1.0, metadata={"help": "Weight w of -w log(n_k/N) in the hard-EM choice (near-ties join the larger)."}
    )
    initial_partition: str = field(
        default="encoder",
        metadata={
            "help": "HeTLM's start: K-means on the encoder's embeddings (the paper's), on the users' browsing "
            "statistics, or the one of the two with the lower routed validation NLL after a fine-tune of each.",
            "choices": INITIAL_PARTITIONS,
        },
    )
    initial_partition_epochs: float = field(
        default=1.0,
        metadata={"help": "Fine-tuning epochs of each candidate start's predictors (initial_partition=likelihood)."},
    )
    routing: str = field(
        default="likelihood",
        metadata={
            "help": "HeTLM's routing: the predictor with the lowest NLL of the user's input history (default), or "
            "the argmax of the selector (the paper's).",
            "choices": ("selector", "likelihood"),
        },
    )
    grad_clipping: str = field(
        default="separate",
        metadata={
            "help": "global: one norm over all gradients (the selector's summed-NLL L1 gradient then shrinks the "
            "predictors' steps); separate: clip the predictors' and the selector's gradients to max_grad_norm each.",
            "choices": ("separate", "global"),
        },
    )
    cluster_batches: bool = field(
        default=True,
        metadata={
            "help": "Each training batch holds one cluster's rows (by the EM labels, regrouped after each "
            "reassignment; else by the latest routing), as in the K-means baseline; False: shuffled batches."
        },
    )
    embedding_batch_size: int = field(default=64, metadata={"help": "Users per encoder batch when embedding."})
    embedding_cache_dir: str | None = field(
        default=None, metadata={"help": "Folder where user embeddings are kept and reused (default: no cache)."}
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "Predictor learning rate (paper: 1e-5)."})
    prediction_loss_only: bool = field(
        default=True, metadata={"help": "Validation computes the loss only (no logits kept)."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=True, metadata={"help": "DDP: look for parameters without gradient (retired clusters have none)."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.kmeans_k, str) and self.kmeans_k != "auto":
            try:
                self.kmeans_k = int(self.kmeans_k)
            except ValueError as error:
                raise ValueError(f"kmeans_k must be 'auto' or an integer >= 1, got {self.kmeans_k!r}") from error
        if isinstance(self.kmeans_k, int) and self.kmeans_k < 1:
            raise ValueError(f"kmeans_k must be >= 1, got {self.kmeans_k}")
        self.kmeans_k_range = [int(k) for k in self.kmeans_k_range]
        if len(self.kmeans_k_range) != 2 or not 1 <= self.kmeans_k_range[0] <= self.kmeans_k_range[1]:
            raise ValueError(f"kmeans_k_range must be LOW HIGH with 1 <= LOW <= HIGH, got {self.kmeans_k_range}")
        self.selector_hidden_sizes = [int(size) for size in self.selector_hidden_sizes]
        if not 0 <= self.selector_label_smoothing < 1:
            raise ValueError(f"selector_label_smoothing must be in [0, 1), got {self.selector_label_smoothing}")
        if self.reassign_every_epochs < 1 or self.reassign_selector_epochs < 1:
            raise ValueError("reassign_every_epochs and reassign_selector_epochs must be >= 1")
        if self.reassign_warmup_steps < 0:
            raise ValueError(f"reassign_warmup_steps must be >= 0, got {self.reassign_warmup_steps}")
        if self.reassign_every_steps is not None and self.reassign_every_steps < 0:
            raise ValueError(f"reassign_every_steps must be >= 0, got {self.reassign_every_steps}")
        if self.grad_clipping not in ("separate", "global"):
            raise ValueError(f"grad_clipping must be 'separate' or 'global', got {self.grad_clipping!r}")
        if self.routing not in ("selector", "likelihood"):
            raise ValueError(f"routing must be 'selector' or 'likelihood', got {self.routing!r}")
        if self.initial_partition not in INITIAL_PARTITIONS:
            raise ValueError(f"initial_partition must be one of {INITIAL_PARTITIONS}, got {self.initial_partition!r}")
        if self.initial_partition_epochs <= 0:
            raise ValueError(f"initial_partition_epochs must be > 0, got {self.initial_partition_epochs}")
        if self.merge_max_cost is not None and self.merge_max_cost < 0:
            raise ValueError(f"merge_max_cost must be >= 0 or None, got {self.merge_max_cost}")
        if self.reassign_size_prior < 0:
            raise ValueError(f"reassign_size_prior must be >= 0, got {self.reassign_size_prior}")
        super().__post_init__()

    def resolved_min_cluster_size(self, num_train_users: int) -> int:
        """The absolute minimum cluster size for ``num_train_users`` training users."""
        if self.min_cluster_size is not None:
            return self.min_cluster_size
        return max(1, num_train_users // 100)

    def hetlm_config_values(self) -> dict[str, Any]:
        """The model-defining values of these arguments, as ``HeTLMConfig`` keyword arguments.

        Example:
            >>> ClusterwiseTrainingArguments(alpha=0.5).hetlm_config_values()["alpha"]
            0.5
        """
        if self.kmeans_k == "auto":
            num_clusters = self.kmeans_k_range[1]
        else:
            num_clusters = int(self.kmeans_k or self.num_clusters)
        return {
            "num_clusters": num_clusters,
            "alpha": self.alpha,
            "beta": self.beta,
            "centroid_distance": self.centroid_distance,
            "centroid_temperature": self.centroid_temperature,
            "selector_hidden_sizes": list(self.selector_hidden_sizes),
            "l1_reduction": self.l1_reduction,
        }


def resolve_training_arguments(
    args: BrowsingTrainingArguments,
    output_dir: str | os.PathLike,
    num_parameters: int,
    has_validation: bool,
    **overrides: Any,
) -> BrowsingTrainingArguments:
    """A copy of ``args`` for one training run: its folder, bf16 decided for ``num_parameters``, no
    validation without a validation split, and ``overrides``.

    Example:
        >>> resolved = resolve_training_arguments(PretrainingArguments(), "runs/x", 10_000, has_validation=False)
        >>> resolved.output_dir, resolved.bf16, resolved.eval_strategy.value
        ('runs/x', False, 'no')
    """
    values: dict[str, Any] = {"output_dir": str(output_dir), **overrides}
    if args.bf16 is None:
        values["bf16"] = default_bf16(num_parameters)
    if not has_validation:
        values["eval_strategy"] = "no"
    return replace(args, **values)
