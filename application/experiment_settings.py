"""What one ``hetlm experiment`` run depends on: :class:`ExperimentSettings` and the named presets.

The experiment declares only its own settings (source, sizes, epochs of the two single LMs, the ablation,
the seed...). The training and data settings are the package's own dataclasses, held as overrides:
``pretraining`` (:class:`~trainers.training_arguments.PretrainingArguments`, e.g. ``family``, ``bf16``),
``clusterwise`` (:class:`~trainers.training_arguments.ClusterwiseTrainingArguments`, e.g. ``num_clusters``,
``centroid_distance``, ``num_train_epochs``) and ``data_options`` (the fields of
:class:`~tokenization.examples.ExampleOptions` and the keyword options of :func:`tokenization.prepare.prepare`:
``session_gap_minutes``, ``split``, ``on_bad_rows``, ``reader_options``...). Each mapping is checked by reading it
into its dataclass, so a wrong key or value fails before any stage runs; a new field of those dataclasses is a
setting of the experiment without new code here. ``seed`` is the experiment's: it seeds the data split, every
training run and the generation, and is refused inside the mappings.

Example:
    >>> settings = ExperimentSettings.from_preset("smoke")
    >>> settings.num_clusters, settings.clusterwise_arguments().num_train_epochs
    (3, 1.0)
    >>> settings.family, settings.example_options().session_gap_minutes
    ('llama', 30.0)
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tokenization.simulator import SCENARIOS

# Set by the experiment for each stage (or the experiment's own), so never given in the override mappings.
_STAGE_SET_PRETRAINING = ("seed", "data_seed", "size", "num_train_epochs", "output_dir")
_STAGE_SET_CLUSTERWISE = ("seed", "data_seed", "alpha", "beta", "kmeans_k", "embedding_cache_dir", "output_dir")
_STAGE_SET_DATA = ("seed", "progress", "show_summary")
OVERRIDE_FIELDS = ("pretraining", "clusterwise", "data_options")
# Flags of ``hetlm experiment`` whose names differ from the dataclass field they set.
FLAG_TARGETS: dict[str, tuple[str, str]] = {"clusterwise_epochs": ("clusterwise", "num_train_epochs")}
# Flat settings of both trainings that apply to both (others, e.g. learning_rate, have different defaults there).
BOTH_TRAININGS = ("bf16",)


@dataclass
class ExperimentSettings:
    """Everything one ``hetlm experiment`` run depends on (a config file holds the same keys).

    Attributes:
        source: ``"simulator"`` or a path to an event log (file or folder).
        format: Reader format (``simulator``, ``events``, ``csv``, ``parquet``, ``jsonl``, ``ga360``, ``rees46``).
        prepared_data: A folder written by ``hetlm prepare`` to use instead of preparing ``source`` (the data
            stage is skipped; the later stages' fingerprints cover the folder's content).
        simulator_users: Users the simulator draws (only for the simulator).
        simulator_seed: The simulator's seed.
        simulator_scenario: ``default`` or ``behaviour`` (segments defined by how users browse and convert,
            category interests independent of the segment; see :mod:`tokenization.simulator`).
        small_size / large_size: Size presets (:mod:`trainers.model_sizes`) of the predictors and of the
            single larger LM (grown to at least ``num_clusters`` times the small one's parameters).
        pretrain_epochs / large_pretrain_epochs: Epochs of the two single LMs (the large one's 1.5: at one epoch of
            the default 1,600 users, 190 steps, its validation loss was still 3.94, the small one's 3.03).
        kmeans_silhouette: Also train K-means with K chosen by silhouette (``kmeans-auto``; the paper's got K=2).
            Off by default: on the default run it cost about a minute (51 s training, 17 s evaluation) of a
            2-core AVX2 CPU, which the 10-minute ``make main`` could not hold.
        ablation: (alpha, beta) pairs; one HeTLM per pair; the first is the headline model.
        encoder: ``minilm`` (all-MiniLM-L6-v2, the paper's) or ``tiny`` (a random 1-layer BERT over
            the page words: smoke tests only).
        max_test_users: Score at most this many test users (None: all).
        max_new_tokens: Longest generated session.
        batch_size: Users per generation batch.
        decodings: How the models decode in the evaluation (``sampled``: S sessions per user, thresholds
            tuned on validation; ``greedy``: the paper's); the first is the headline, each other one is
            reported beside it.
        num_samples: S, sessions sampled per user by the sampled decoding.
        page_rule: How the sampled decoding chooses each user's pages (``expected-iou``: the set maximising the
            user's expected IoU under the samples; ``threshold``: one tau tuned on validation).
        history_blend: Also report each model with the history-aware decoding (``<model>+history``: its samples
            mixed with the user's input sessions, the weight tuned on validation).
        seed: Seed of data split, training and generation.
        pretraining: Overrides of :class:`PretrainingArguments` for both single LMs (``family``, ``bf16``,
            ``learning_rate``...; ``min_ratio`` defaults to ``num_clusters``).
        clusterwise: Overrides of :class:`ClusterwiseTrainingArguments` for HeTLM and K-means (``num_clusters``:
            HeTLM's initial K and the K-means baseline's K; ``num_train_epochs``; ``centroid_distance``...).
        data_options: :class:`ExampleOptions` fields and :func:`prepare` options (``reader_options``,
            ``on_bad_rows``...) of the data stage.
    """

    source: str = "simulator"
    format: str = "simulator"
    prepared_data: str | None = None
    simulator_users: int = 1600
    simulator_seed: int = 0
    simulator_scenario: str = "default"
    small_size: str = "small"
    large_size: str = "large"
    pretrain_epochs: float = 2.0
    large_pretrain_epochs: float = 1.5
    kmeans_silhouette: bool = False
    ablation: list[tuple[float, float]] = field(default_factory=lambda: [(5.0, 9.0)])
    encoder: str = "minilm"
    max_test_users: int | None = None
    max_new_tokens: int = 40
    batch_size: int = 64
    decodings: list[str] = field(default_factory=lambda: ["sampled"])
    num_samples: int = 16
    page_rule: str = "expected-iou"
    history_blend: bool = True
    seed: int = 0
    pretraining: dict[str, Any] = field(default_factory=dict)
    clusterwise: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "ExperimentSettings":
        """Settings of a named preset (:data:`PRESETS`) with ``overrides`` applied (the override mappings merged
        key by key).

        Example:
            >>> ExperimentSettings.from_preset("default").simulator_users
            1600
            >>> ExperimentSettings.from_preset("smoke", clusterwise={"num_clusters": 2}).clusterwise
            {'num_clusters': 2, 'num_train_epochs': 1.0}
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**merge_settings(PRESETS[name], overrides))

    def __post_init__(self) -> None:
        self.ablation = [(float(alpha), float(beta)) for alpha, beta in self.ablation]
        if not self.ablation:
            raise ValueError("ablation needs at least one (alpha, beta) pair")
        if self.encoder not in ("minilm", "tiny"):
            raise ValueError(f"encoder must be 'minilm' or 'tiny', got {self.encoder!r}")
        self.pretraining, self.clusterwise = dict(self.pretraining), dict(self.clusterwise)
        self.data_options = dict(self.data_options)
        self.data_options["reader_options"] = dict(self.data_options.get("reader_options") or {})
        if not self.data_options["reader_options"]:
            del self.data_options["reader_options"]
        if self.simulator_scenario not in SCENARIOS:
            raise ValueError(f"simulator_scenario must be one of {sorted(SCENARIOS)}, got {self.simulator_scenario!r}")
        self.decodings = list(self.decodings)
        if not self.decodings or any(decoding not in ("sampled", "greedy") for decoding in self.decodings):
            raise ValueError(f"decodings must be a non-empty list of 'sampled' / 'greedy', got {self.decodings}")
        if self.num_clusters < 1:
            raise ValueError(f"num_clusters must be at least 1, got {self.num_clusters}")
        self.pretraining_arguments(self.small_size, self.pretrain_epochs)
        self.example_options()
        self._check_data_options()

    @staticmethod
    def keys() -> list[str]:
        """The setting names a config file may hold (besides the fields of the override mappings, see
        :func:`route_setting`)."""
        return [item.name for item in fields(ExperimentSettings)]

    @property
    def num_clusters(self) -> int:
        """HeTLM's initial K and the K-means baseline's K."""
        return self.clusterwise_arguments().num_clusters

    @property
    def family(self) -> str:
        """The backbone family of every LM."""
        return self.pretraining.get("family", _pretraining_class().family)

    def pretraining_arguments(self, size: str, epochs: float) -> Any:
        """The :class:`PretrainingArguments` of one single LM of this run.

        Example:
            >>> settings = ExperimentSettings(pretraining={"family": "qwen2"}, clusterwise={"num_clusters": 4})
            >>> args = settings.pretraining_arguments("tiny", 2.0)
            >>> args.family, args.size, args.num_train_epochs, args.min_ratio, args.seed
            ('qwen2', 'tiny', 2.0, 4.0, 0)
        """
        _refuse_stage_keys("pretraining", self.pretraining, _STAGE_SET_PRETRAINING)
        values = {
            "min_ratio": float(self.clusterwise.get("num_clusters", _clusterwise_class().num_clusters)),
            **self.pretraining,
        }
        return _read_into(
            _pretraining_class(),
            "pretraining",
            {**values, "size": size, "num_train_epochs": epochs, "seed": self.seed},
        )

    def clusterwise_arguments(self, **stage_values: Any) -> Any:
        """The :class:`ClusterwiseTrainingArguments` of HeTLM / K-means, with a stage's own ``stage_values``
        (``alpha``, ``beta``, ``kmeans_k``, ``embedding_cache_dir``).

        Example:
            >>> ExperimentSettings(clusterwise={"centroid_distance": "normalized"}).clusterwise_arguments(
            ...     alpha=0.5).centroid_distance
            'normalized'
        """
        _refuse_stage_keys("clusterwise", self.clusterwise, _STAGE_SET_CLUSTERWISE)
        return _read_into(_clusterwise_class(), "clusterwise", {**self.clusterwise, **stage_values, "seed": self.seed})

    def example_options(self) -> Any:
        """The data stage's :class:`ExampleOptions` (the ``data_options`` that are its fields, and the seed)."""
        from tokenization.examples import ExampleOptions

        names = {item.name for item in fields(ExampleOptions)}
        values = {key: value for key, value in self.data_options.items() if key in names}
        return _read_into(ExampleOptions, "data_options", {**values, "seed": self.seed})

    def prepare_options(self) -> dict[str, Any]:
        """The data stage's keyword options of :func:`prepare` (``reader_options`` with the simulator's
        users and seed added for the simulator)."""
        from tokenization.examples import ExampleOptions

        names = {item.name for item in fields(ExampleOptions)}
        values = {key: value for key, value in self.data_options.items() if key not in names}
        if self.format == "simulator":
            values["reader_options"] = {
                "num_users": self.simulator_users,
                "seed": self.simulator_seed,
                "scenario": self.simulator_scenario,
                **values.get("reader_options", {}),
            }
        return values

    def _check_data_options(self) -> None:
        from tokenization.examples import ExampleOptions
        from tokenization.readers import format_options

        accepted = {item.name for item in fields(ExampleOptions)} | set(prepare_option_names())
        _refuse_stage_keys("data_options", self.data_options, _STAGE_SET_DATA)
        unknown = sorted(set(self.data_options) - accepted)
        if unknown:
            raise ValueError(
                f"data_options: unknown option(s) {', '.join(unknown)} "
                f"(options: {', '.join(sorted(accepted - set(_STAGE_SET_DATA)))})"
            )
        if self.prepared_data is not None:
            if self.data_options:
                raise ValueError(
                    f"data_options {', '.join(sorted(self.data_options))} apply to preparing a source; "
                    f"prepared_data (--data) {self.prepared_data} is used as it was prepared"
                )
            return
        reader_options = self.data_options.get("reader_options", {})
        bad = sorted(set(reader_options) - set(format_options(self.format)))
        if bad:
            raise ValueError(
                f"reader_options: format {self.format!r} has no option {', '.join(bad)} "
                f"(options: {', '.join(format_options(self.format)) or 'none'})"
            )
        if self.format == "simulator" and {"num_users", "seed"} & set(reader_options):
            raise ValueError(
                "reader_options: give the simulator's users and seed as simulator_users / "
                "simulator_seed (--simulator-users)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as the JSON mapping a run writes to ``experiment_config.json`` (read back by ``--config``)."""
        return asdict(self)


def prepare_option_names() -> list[str]:
    """The keyword options of :func:`tokenization.prepare.prepare` an experiment may set in ``data_options``.

    Example:
        >>> "reader_options" in prepare_option_names(), "on_bad_rows" in prepare_option_names()
        (True, True)
    """
    from tokenization.prepare import prepare

    return [
        name
        for name, parameter in inspect.signature(prepare).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in _STAGE_SET_DATA
    ]


def route_setting(key: str, value: Any) -> dict[str, Any]:
    """Where a flat setting (a config-file key or a flag) belongs: an :class:`ExperimentSettings` field, or the
    override mapping whose dataclass has that field (``num_clusters`` -> ``clusterwise``, ``family`` ->
    ``pretraining``, ``reader_options`` -> ``data_options``). Returns a mapping to merge with
    :func:`merge_settings`; ``bf16`` goes to both trainings. Raises ``ValueError`` for a key no dataclass has,
    or another one both trainings have (``learning_rate``: give it inside ``pretraining`` or ``clusterwise``).

    Example:
        >>> route_setting("num_clusters", 4), route_setting("seed", 1)
        ({'clusterwise': {'num_clusters': 4}}, {'seed': 1})
        >>> route_setting("session_gap_minutes", 10)
        {'data_options': {'session_gap_minutes': 10}}
    """
    from tokenization.examples import ExampleOptions

    if key in ExperimentSettings.keys():
        return {key: value}
    if key in FLAG_TARGETS:
        mapping, name = FLAG_TARGETS[key]
        return {mapping: {name: value}}
    if key in BOTH_TRAININGS:
        return {"pretraining": {key: value}, "clusterwise": {key: value}}
    owners = [
        mapping
        for mapping, names in (
            ("pretraining", _init_fields(_pretraining_class())),
            ("clusterwise", _init_fields(_clusterwise_class())),
            ("data_options", {item.name for item in fields(ExampleOptions)} | set(prepare_option_names())),
        )
        if key in names
    ]
    if not owners:
        raise ValueError(f"unknown experiment setting {key!r}; see `hetlm experiment --help`")
    if len(owners) > 1:
        raise ValueError(
            f"setting {key!r} is one of both {' and '.join(owners)}: give it inside one of them "
            f"(e.g. {owners[0]}: {{{key}: ...}})"
        )
    return {owners[0]: {key: value}}


def merge_settings(*layers: dict[str, Any]) -> dict[str, Any]:
    """Settings layered left to right; the override mappings (and ``reader_options`` in ``data_options``) are
    merged key by key, other values replaced.

    Example:
        >>> merge_settings({"seed": 0, "clusterwise": {"num_clusters": 3}}, {"clusterwise": {"alpha_x": 1}})
        {'seed': 0, 'clusterwise': {'num_clusters': 3, 'alpha_x': 1}}
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key in OVERRIDE_FIELDS:
                inner = dict(merged.get(key, {}))
                for name, option in dict(value or {}).items():
                    if name == "reader_options":
                        option = {**inner.get(name, {}), **dict(option or {})}
                    inner[name] = option
                merged[key] = inner
            else:
                merged[key] = value
    return merged


def _pretraining_class() -> type:
    from trainers.training_arguments import PretrainingArguments

    return PretrainingArguments


def _clusterwise_class() -> type:
    from trainers.training_arguments import ClusterwiseTrainingArguments

    return ClusterwiseTrainingArguments


def _init_fields(dataclass_type: type) -> set[str]:
    return {item.name for item in fields(dataclass_type) if item.init}


def _refuse_stage_keys(mapping: str, values: dict[str, Any], stage_set: tuple[str, ...]) -> None:
    refused = sorted(set(values) & set(stage_set))
    if refused:
        raise ValueError(
            f"{mapping}: {', '.join(refused)} cannot be set here: the experiment sets "
            f"{'it' if len(refused) == 1 else 'them'} (seed, sizes, epochs, the ablation's alpha/beta)"
        )


def _read_into(dataclass_type: type, mapping: str, values: dict[str, Any]) -> Any:
    unknown = sorted(set(values) - _init_fields(dataclass_type))
    if unknown:
        raise ValueError(f"{mapping}: {dataclass_type.__name__} has no field {', '.join(unknown)}")
    try:
        return dataclass_type(**values)
    except TypeError as error:
        raise ValueError(f"{mapping}: {error}") from None


PRESETS: dict[str, dict[str, Any]] = {
    # 1,600 simulated users (2,000 until the run on a real AVX2 CPU took 10.5 minutes with the install), 64-d
    # predictors, MiniLM encoder, one clusterwise epoch (every session is an example):
    # sized for `make main` on a 2-core CPU (see the README's results section for the measured time).
    "default": {"clusterwise": {"num_train_epochs": 1.0}},
    # Seconds: for tests and a first look (tiny models, random tiny encoder, few users).
    "smoke": {
        "simulator_users": 240,
        "small_size": "tiny",
        "large_size": "small",
        "pretrain_epochs": 2.0,
        "large_pretrain_epochs": 1.0,
        "clusterwise": {"num_clusters": 3, "num_train_epochs": 1.0},
        "encoder": "tiny",
        "max_new_tokens": 16,
        "kmeans_silhouette": False,
    },
    # The paper's Table 7 grid at the default scale (9 HeTLM runs: about half an hour on 2 cores).
    "ablation": {
        "ablation": [(a, b) for a in (0.5, 2.0, 5.0) for b in (1.0, 5.0, 9.0)],
        "decodings": ["sampled", "greedy"],
    },
    # More users and bigger models, for a GPU or a long CPU run.
    "large": {
        "simulator_users": 50000,
        "pretrain_epochs": 10.0,
        "large_pretrain_epochs": 10.0,
        "clusterwise": {"num_train_epochs": 5.0},
        "batch_size": 256,
    },
}


def hetlm_stage_name(alpha: float, beta: float) -> str:
    """Stage (and model) name of one HeTLM run.

    Example:
        >>> hetlm_stage_name(5.0, 9.0), hetlm_stage_name(0.5, 1.0)
        ('hetlm-a5-b9', 'hetlm-a0.5-b1')
    """
    return f"hetlm-a{alpha:g}-b{beta:g}"
