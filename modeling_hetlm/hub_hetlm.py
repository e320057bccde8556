"""Saving, loading and sharing a HeTLM: a strict `from_pretrained`, a `save_pretrained` that adds the page
tokenizer and the model card, `push_to_hub` in one commit, and the card itself.

This file is copied into saved folders (imported relatively by `modeling_hetlm.py`), so it imports
only `safetensors`, `huggingface_hub`, `transformers`' own dependencies and `weights_integrity_hetlm.py`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Sequence

from huggingface_hub import CommitInfo, HfApi
from safetensors import SafetensorError
from transformers import PreTrainedTokenizerFast

from .weights_integrity_hetlm import (
    check_finite_weights,
    check_loading_info,
    verify_weights_checksums,
    write_weights_checksums,
)

MODEL_CARD_TAGS = ("hetlm", "browsing", "recommendation", "next-session-prediction", "clustering", "custom_code")
# The `training_summary` entry that fills the card's cluster table (training users per cluster).
CLUSTER_SIZES_KEY = "cluster_sizes"
PAGE_TOKENIZER_FILE = "tokenizer.json"


class HeTLMHubMixin:
    """Hub and model-card code of `HeTLMForBrowsing` (placed before `PreTrainedModel` in its bases)."""

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
        """Save a self-contained folder: config (with `auto_map`), safetensors weights (encoder and page
        table included) and their sha256 (`weights_sha256.json`), generation config, the code files, the
        page tokenizer (`page_tokenizer` or `self.page_tokenizer`, checked against the model) and a model
        card built from `training_summary` (its `cluster_sizes` fill the cluster table) and `metrics`.

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

    def write_model_card(
        self,
        save_directory: str | Path,
        training_summary: dict | None = None,
        metrics: dict | None = None,
        tags: Sequence[str] | None = None,
    ) -> Path:
        """Write `README.md` (Hub model card with YAML metadata; `tags` extend HeTLM's) into `save_directory`.
        `training_summary["cluster_sizes"]` (training users per cluster, one entry per cluster) fills
        the cluster table; the other entries are listed under "Training data".

        Example:
            >>> model.write_model_card("runs/hetlm", training_summary={"users": 47274},  # doctest: +SKIP
            ...                        metrics={"IoU": 0.3})
        """
        config = self.config
        predictor = config.predictor_config
        per_predictor = sum(p.numel() for p in self.predictors[0].parameters())
        summary = dict(training_summary or {})
        sizes = summary.pop(CLUSTER_SIZES_KEY, None)
        if sizes is not None and len(sizes) != config.num_clusters:
            raise ValueError(
                f"training_summary[{CLUSTER_SIZES_KEY!r}] has {len(sizes)} entries for {config.num_clusters} clusters"
            )
        cluster_lines = "\n".join(
            f"| {k} | {sizes[k] if sizes is not None else 'unknown'} |" for k in range(config.num_clusters)
        )
        lines = [
            "---",
            "library_name: transformers",
            "pipeline_tag: text-generation",
            "tags:",
            *(f"- {tag}" for tag in dict.fromkeys([*MODEL_CARD_TAGS, *(tags or ())])),
            "---",
            "",
            "# HeTLM: clusterwise small language models of browsing sessions",
            "",
            f"{config.num_clusters} `{predictor.model_type}` predictors ({per_predictor:,} parameters each), "
            f"a frozen BERT sentence encoder ({config.encoder_config.num_hidden_layers} layers, "
            f"{config.embedding_dim}-d, mean pooling, normalised) and a selector MLP "
            f"(hidden sizes {list(config.selector_hidden_sizes)}) that routes each user to a predictor "
            f"(routing: `{config.routing}`). Losses: alpha={config.alpha}, beta={config.beta}, "
            f"L3 `{config.centroid_distance}`.",
            "",
            "## Clusters",
            "",
            "| cluster | training users |",
            "|---|---|",
            cluster_lines,
            "",
            "## Usage",
            "",
            "```python",
            "from transformers import AutoModel, AutoTokenizer",
            "model = AutoModel.from_pretrained(FOLDER, trust_remote_code=True)",
            "tokenizer = AutoTokenizer.from_pretrained(FOLDER)",
            "# prompts: the user's sessions as [BOS] page ... [EOS], then one [BOS]; left padding",
            "new_tokens, clusters = model.generate(prompt_ids, prompt_mask, return_clusters=True)",
            "```",
        ]
        if summary:
            lines += ["", "## Training data", "", *_markdown_items(summary)]
        if metrics:
            lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
            lines += [f"| {name} | {_format_value(value)} |" for name, value in metrics.items()]
        path = Path(save_directory) / "README.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def _format_value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _markdown_items(summary: dict) -> list[str]:
    return [
        f"- **{key}**: {json.dumps(value) if isinstance(value, (dict, list)) else _format_value(value)}"
        for key, value in summary.items()
    ]


__all__ = ["CLUSTER_SIZES_KEY", "HeTLMHubMixin", "MODEL_CARD_TAGS"]
