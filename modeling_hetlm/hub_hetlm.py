"""Saving, loading and sharing a HeTLM: a strict `from_pretrained`, a `save_pretrained` that adds the page
tokenizer and the model card, `push_to_hub` in one commit, and the card itself.

This file is copied into saved folders (imported relatively by `modeling_hetlm.py`), so it imports
only `safetensors`, `huggingface_hub`, `transformers`' own dependencies and `weights_integrity_hetlm.py`.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Sequence

from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCard, ModelCardData
from safetensors import SafetensorError
from transformers import PreTrainedTokenizerFast
from transformers.utils import cached_file

from .weights_integrity_hetlm import (
    check_finite_weights,
    check_loading_info,
    verify_weights_checksums,
    write_weights_checksums,
)

MODEL_CARD_TAGS = ("hetlm", "browsing", "recommendation", "next-session-prediction", "clustering", "custom_code")
# The `training_summary` entry that fills the card's cluster table (training users per cluster).
CLUSTER_SIZES_KEY = "cluster_sizes"
# The card's facts (architecture, training and data summaries, metrics, tags, licence), saved beside README.md so
# that a reloaded model, `push_to_hub` and `update_model_card` rebuild the whole card.
CARD_FACTS_FILE = "hetlm_card.json"
MODEL_NAME = "HeTLM: clusterwise small language models of browsing sessions"
DEFAULT_LICENSE = "apache-2.0"
# The outcome pages when the prepared data names none (tokenization.constants' OUTCOME_CART, OUTCOME_PURCHASE:
# this file is copied into saved folders and cannot import the package).
OUTCOME_PAGES = ("cart", "purchase")
PAGE_TOKENIZER_FILE = "tokenizer.json"


class HeTLMHubMixin:
    """Hub and model-card code of `HeTLMForBrowsing` (placed before `PreTrainedModel` in its bases)."""

    # Auto classes the saved config's `auto_map` names besides the class's own (`register_for_auto_class`).
    extra_auto_map: dict[str, str] = {}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, strict and checked: safetensors only, a local folder's weights must
        have the sha256 of its `weights_sha256.json`, a missing, unexpected or misshaped weight or an unreadable
        safetensors file raises `OSError` instead of leaving random weights, a NaN or inf weight raises
        `ValueError`, and a page tokenizer saved in a local folder must match the model."""
        want_info = kwargs.pop("output_loading_info", False)
        kwargs.setdefault("use_safetensors", True)
        folder = Path(pretrained_model_name_or_path)
        if folder.is_dir():
            try:
                verify_weights_checksums(folder)
            except OSError as error:
                raise OSError(f"{folder}: {error}") from None
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        except SafetensorError as error:
            raise OSError(f"cannot read the weights of {pretrained_model_name_or_path}: {error}") from error
        try:
            check_loading_info(info)
        except OSError as error:
            raise OSError(f"{pretrained_model_name_or_path}: {error}") from None
        try:
            check_finite_weights(model)
            if (folder / PAGE_TOKENIZER_FILE).is_file():
                model.check_page_tokenizer(PreTrainedTokenizerFast.from_pretrained(str(folder)))
        except ValueError as error:
            raise ValueError(f"{pretrained_model_name_or_path}: {error}") from None
        model.card_facts = _load_card_facts(pretrained_model_name_or_path, kwargs)
        return (model, info) if want_info else model

    def save_pretrained(
        self,
        save_directory: str | Path,
        *args,
        page_tokenizer=None,
        training_summary: dict | None = None,
        metrics: dict | None = None,
        **kwargs,
    ) -> None:
        """Save a self-contained folder: config (with `auto_map`, `extra_auto_map` included), safetensors
        weights (encoder and page table included) and their sha256 (`weights_sha256.json`), generation config,
        the code files, the page tokenizer (`page_tokenizer` or `self.page_tokenizer`, checked against the
        model) and a model card built from `training_summary` (its `cluster_sizes` fill the cluster table)
        and `metrics`.

        Example:
            >>> model.save_pretrained("runs/hetlm", page_tokenizer=tok, metrics={"IoU": 0.31})  # doctest: +SKIP
        """
        if kwargs.get("is_main_process", True):
            # Written before the weights, so that save_pretrained(..., push_to_hub=True) uploads them too.
            Path(save_directory).mkdir(parents=True, exist_ok=True)
            tokenizer = page_tokenizer if page_tokenizer is not None else self.page_tokenizer
            if tokenizer is not None:
                self.check_page_tokenizer(tokenizer)
                tokenizer.save_pretrained(save_directory)
            self.write_model_card(save_directory, training_summary=training_summary, metrics=metrics)
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self.extra_auto_map}
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            write_weights_checksums(save_directory)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        page_tokenizer=None,
        training_summary: dict | None = None,
        metrics: dict | None = None,
    ) -> CommitInfo:
        """Upload the `save_pretrained` folder to the Hub in one commit, HeTLM's model card included
        (transformers' own `push_to_hub` would replace it with a generic card); `tags` are added to
        the card's tags.

        Example:
            >>> model.push_to_hub("org/hetlm-ga360", token=token, metrics={"IoU": 0.31})  # doctest: +SKIP
        """
        api = HfApi()
        repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size, page_tokenizer=page_tokenizer)
            self.write_model_card(folder, training_summary=training_summary, metrics=metrics, tags=tags)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message or "Upload HeTLM",
                commit_description=commit_description,
                token=token,
                revision=revision,
                create_pr=create_pr,
            )

    def card_model_facts(self) -> dict:
        """What the card says about the architecture (stored in `hetlm_card.json` with the other card facts)."""
        config = self.config
        return {
            "num_clusters": config.num_clusters,
            "predictor_type": config.predictor_config.model_type,
            "parameters_per_predictor": sum(p.numel() for p in self.predictors[0].parameters()),
            "encoder_layers": config.encoder_config.num_hidden_layers,
            "embedding_dim": config.embedding_dim,
            "selector_hidden_sizes": list(config.selector_hidden_sizes),
            "routing": config.routing,
            "alpha": config.alpha,
            "beta": config.beta,
            "centroid_distance": config.centroid_distance,
        }

    def write_model_card(
        self,
        save_directory: str | Path,
        training_summary: dict | None = None,
        metrics: dict | None = None,
        tags: Sequence[str] | None = None,
        data_summary: dict | None = None,
        license: str | None = None,
    ) -> Path:
        """Write `README.md` (a `huggingface_hub` `ModelCard`) and `hetlm_card.json` (its facts) into `save_directory`.

        Facts not given are kept from the model's card (`self.card_facts`, read by `from_pretrained`), so
        a reloaded model pushes the card it was saved with. `training_summary["cluster_sizes"]` (training
        users per cluster) fills the cluster table, the other entries are listed under "Training";
        `data_summary` is a prepared data set's `summary.json` (source, synthetic flag, outcome rates);
        `metrics` (name -> number) go to the card's table and its `eval_results`; `tags` extend HeTLM's.

        Example:
            >>> model.write_model_card("runs/hetlm", training_summary={"users": 47274},  # doctest: +SKIP
            ...                        metrics={"IoU": 0.3})
        """
        sizes = (training_summary or {}).get(CLUSTER_SIZES_KEY)
        if sizes is not None and len(sizes) != self.config.num_clusters:
            raise ValueError(
                f"training_summary[{CLUSTER_SIZES_KEY!r}] has {len(sizes)} entries for {self.config.num_clusters} "
                "clusters"
            )
        facts = merge_card_facts(
            getattr(self, "card_facts", None) or {},
            model=self.card_model_facts(),
            training_summary=training_summary,
            data=data_facts(data_summary) if data_summary is not None else None,
            metrics=metrics,
            tags=tags,
            license=license,
        )
        self.card_facts = facts
        return write_card_files(save_directory, facts)


def update_model_card(
    model_directory: str | Path,
    *,
    metrics: dict | None = None,
    data_summary: dict | None = None,
    tags: Sequence[str] | None = None,
) -> Path:
    """Add facts to a saved model's card without loading the model: metrics after an evaluation (also written as
    the card's `eval_results`), the prepared data's summary after training. Rewrites `README.md` and
    `hetlm_card.json`.

    Example:
        >>> update_model_card("runs/hetlm", metrics={"IoU": 0.31, "HR": 0.52})  # doctest: +SKIP
    """
    facts = read_card_facts(model_directory)
    if facts is None:
        raise OSError(f"{model_directory} has no {CARD_FACTS_FILE}: it is not a saved HeTLM folder")
    facts = merge_card_facts(
        facts, data=data_facts(data_summary) if data_summary is not None else None, metrics=metrics, tags=tags
    )
    return write_card_files(model_directory, facts)


def read_card_facts(model_directory: str | Path) -> dict | None:
    """The card facts saved in a model folder (`hetlm_card.json`), or None when there are none.

    Example:
        >>> read_card_facts("no/such/folder") is None
        True
    """
    path = Path(model_directory) / CARD_FACTS_FILE
    if not path.is_file():
        return None
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OSError(f"cannot read the model card facts {path}: {error}") from error
    if not isinstance(facts, dict):
        raise OSError(f"{path} must hold a JSON object, got {type(facts).__name__}")
    return facts


def merge_card_facts(facts: dict, **updates) -> dict:
    """`facts` with each update that is not None: dicts are merged key by key, tags added, the rest replaced.

    Example:
        >>> merge_card_facts({"metrics": {"HR": 0.5}, "tags": ["a"]}, metrics={"IoU": 0.3}, tags=["b"], data=None)
        {'metrics': {'HR': 0.5, 'IoU': 0.3}, 'tags': ['a', 'b']}
    """
    merged = dict(facts)
    for key, value in updates.items():
        if value is None:
            continue
        if key == "tags":
            merged[key] = list(dict.fromkeys([*merged.get(key, []), *value]))
        elif isinstance(value, dict) and key != "model":
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def data_facts(data_summary: dict) -> dict:
    """What the card says about a prepared data set, from its `summary.json`.

    Example:
        >>> facts = data_facts({"synthetic": True, "source": "simulator", "format": "simulator",
        ...                     "users": {"in_examples": 200}, "outcome_rates": {"cart": 0.25}, "splits": {}})
        >>> facts["synthetic"], facts["users"], sorted(facts)
        (True, 200, ['format', 'outcome_rates', 'source', 'synthetic', 'users'])
    """
    users = data_summary.get("users")
    facts = {
        "synthetic": bool(data_summary.get("synthetic", False)),
        "source": data_summary.get("source"),
        "format": data_summary.get("format"),
        "users": users.get("in_examples") if isinstance(users, dict) else users,
        "outcome_rates": data_summary.get("outcome_rates"),
    }
    for key in ("outcome_pages", "label"):
        if key in data_summary:
            facts[key] = data_summary[key]
    return {key: value for key, value in facts.items() if value is not None}


def write_card_files(save_directory: str | Path, facts: dict) -> Path:
    """Render `facts` as the model card and write `README.md` and `hetlm_card.json`; returns the card's path."""
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_FACTS_FILE).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    path = folder / "README.md"
    build_model_card(facts).save(path)
    return path


def build_model_card(facts: dict) -> ModelCard:
    """The HeTLM model card (YAML metadata from `ModelCardData`, then the sections) of a card's facts.

    Example:
        >>> card = build_model_card({"model": {"num_clusters": 2}, "metrics": {"IoU": 0.31}})
        >>> card.data.eval_results[0].metric_type, card.data.pipeline_tag
        ('IoU', None)
        >>> [line for line in card.text.splitlines() if line.startswith("## ")][:3]
        ['## Intended use', '## Limitations', '## Clusters']
    """
    model = facts.get("model", {})
    data = facts.get("data", {})
    training = dict(facts.get("training_summary") or {})
    metrics = {name: value for name, value in (facts.get("metrics") or {}).items() if _is_number(value)}
    synthetic = bool(data.get("synthetic"))
    dataset_name = "synthetic browsing sessions (simulator)" if synthetic else str(data.get("source", "unknown"))
    card_data = ModelCardData(
        library_name="transformers",
        license=facts.get("license", DEFAULT_LICENSE),
        tags=list(
            dict.fromkeys([*MODEL_CARD_TAGS, *(["synthetic-data"] if synthetic else []), *facts.get("tags", [])])
        ),
        model_name=MODEL_NAME,
        eval_results=[
            EvalResult(
                task_type="text-generation",
                task_name="next-session prediction",
                dataset_type="browsing-sessions",
                dataset_name=dataset_name,
                metric_type=name,
                metric_name=name,
                metric_value=value,
            )
            for name, value in metrics.items()
        ]
        or None,
    )
    count = model.get("num_clusters", 0)
    sizes = training.pop(CLUSTER_SIZES_KEY, None)
    lines = [
        f"# {MODEL_NAME}",
        "",
        f"{count} `{model.get('predictor_type', '?')}` predictors ({model.get('parameters_per_predictor', 0):,} "
        f"parameters each), a frozen BERT sentence encoder ({model.get('encoder_layers', '?')} layers, "
        f"{model.get('embedding_dim', '?')}-d, mean pooling, normalised) and a selector MLP (hidden sizes "
        f"{model.get('selector_hidden_sizes', '?')}) that routes each user to a predictor (routing: "
        f"`{model.get('routing', '?')}`). Losses: alpha={model.get('alpha', '?')}, beta={model.get('beta', '?')}, "
        f"L3 `{model.get('centroid_distance', '?')}`.",
        "",
        "## Intended use",
        "",
        "Predicting a web-shop visitor's next browsing session (the pages, in order, and whether it reaches the cart "
        "or a purchase) from the visitor's past sessions, and grouping visitors into behavioural clusters, for "
        "research, simulation and offline analysis of the shop the training log comes from.",
        "",
        "## Limitations",
        "",
        "- It knows only the pages of its training log: any other page is `[UNK]`, and predictions for another shop "
        "or after a site change are meaningless.",
        "- Predictions reflect past behaviour in the log, biases included; they are not meant for decisions about "
        "individual people.",
        "- Prompts longer than the predictors' positions keep only their latest sessions.",
        *(
            ["- **Trained on synthetic data** (the HeTLM simulator): its numbers say nothing about real visitors."]
            if synthetic
            else []
        ),
        "",
        "## Clusters",
        "",
        "| cluster | training users |",
        "|---|---|",
        *(f"| {k} | {sizes[k] if sizes is not None else 'unknown'} |" for k in range(count)),
        "",
        "## Training data",
        "",
        _data_source_line(data),
        "",
        "## Outcome definition",
        "",
        _outcome_line(data),
    ]
    if training:
        lines += ["", "## Training", "", *_markdown_items(training)]
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_format_value(value)} |" for name, value in metrics.items()]
    else:
        lines.append("Not evaluated yet (`hetlm evaluate MODEL --data DATA` writes the Combined metrics here).")
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer, pipeline",
        "model = AutoModel.from_pretrained(FOLDER, trust_remote_code=True)",
        "tokenizer = AutoTokenizer.from_pretrained(FOLDER)  # pads on the left, as generate wants",
        "# prompts: the user's sessions as [BOS] page ... [EOS], then one [BOS]",
        "output = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, return_dict_in_generate=True)",
        "output.sequences, output.clusters  # new tokens per row, cluster per row",
        "",
        "# the text-generation pipeline (pipeline_tag): the prompt in the tokenizer's text, the next session's",
        "# page names out, space-separated; the pipeline samples (temperature 0.7) unless do_sample=False",
        'generator = pipeline("text-generation", model=FOLDER, trust_remote_code=True)',
        'generator("[BOS] /home /category/shoes [EOS] [BOS]", return_full_text=False, do_sample=False)',
        "",
        "# with the hetlm package installed: page names in, page names out",
        "import inference.pipeline  # registers the next-session-prediction task",
        'predict = pipeline("next-session-prediction", model=FOLDER)',
        'predict([["/home", "/category/shoes"], ["/product/sneakers-189"]])  # {"pages": [...], "cluster": k}',
        "```",
        "",
        "## Licence",
        "",
        f"`{card_data.license}`. The training log's own terms also apply to the model.",
    ]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"
    return ModelCard(content, ignore_metadata_errors=False)


def _load_card_facts(pretrained_model_name_or_path, kwargs: dict) -> dict | None:
    """The card facts of a local folder or Hub repo being loaded (None when it has none)."""
    hub_kwargs = {key: kwargs[key] for key in ("cache_dir", "revision", "token", "local_files_only") if key in kwargs}
    path = cached_file(
        str(pretrained_model_name_or_path),
        CARD_FACTS_FILE,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **hub_kwargs,
    )
    return None if path is None else read_card_facts(Path(path).parent)


def _data_source_line(data: dict) -> str:
    if not data:
        return "Not recorded (the model was saved without its prepared data's summary)."
    label = "**Synthetic** sessions from the HeTLM simulator. " if data.get("synthetic") else ""
    users = f", {data['users']:,} users with an example" if isinstance(data.get("users"), int) else ""
    return f"{label}Source `{data.get('source', 'unknown')}` (format `{data.get('format', 'unknown')}`{users})."


def _outcome_line(data: dict) -> str:
    pages = data.get("outcome_pages") or {"cart": [OUTCOME_PAGES[0]], "purchase": [OUTCOME_PAGES[1]]}
    rates = data.get("outcome_rates") or {}
    parts = []
    for outcome, names in pages.items():
        names = names if isinstance(names, (list, tuple)) else [names]
        rate = f" ({rates[outcome]:.1%} of target sessions)" if _is_number(rates.get(outcome)) else ""
        parts.append(f"**{outcome}**: the next session contains one of {', '.join(f'`{n}`' for n in names)}{rate}")
    return "An outcome is reached when " + "; ".join(parts) + "."


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _format_value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _markdown_items(summary: dict) -> list[str]:
    return [
        f"- **{key}**: {json.dumps(value) if isinstance(value, (dict, list)) else _format_value(value)}"
        for key, value in summary.items()
    ]


__all__ = [
    "CARD_FACTS_FILE",
    "CLUSTER_SIZES_KEY",
    "HeTLMHubMixin",
    "MODEL_CARD_TAGS",
    "build_model_card",
    "read_card_facts",
    "update_model_card",
]
