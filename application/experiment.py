"""The paper's protocol end to end (``hetlm experiment``): data, single LMs, K-means, HeTLM, baselines, evaluation.

Stages, each a folder of the run directory with a completion marker (see :mod:`application.stages`),
so an interrupted run resumes at the first unfinished stage:

1. ``data``: ``hetlm prepare`` on the source (the built-in simulator by default: synthetic data) with the
   settings' ``data_options``; skipped when ``prepared_data`` names an already prepared folder;
2. ``lm-small``: the single small LM (the predictors' starting point, the paper's Step 1);
3. ``lm-large``: a single larger LM of the same family with at least K times its parameters;
4. ``kmeans-k<K>`` / ``kmeans-auto``: the exogenous clusterwise baseline (fixed K, and K by silhouette);
5. ``hetlm-a<alpha>-b<beta>``: HeTLM for each (alpha, beta) pair (several pairs = the Table 7 ablation);
6. ``evaluation``: every model and the simple baselines on the test users, composites against the
   larger single LM, per-cluster tables, plots;
7. the run folder's ``report.md`` / ``summary.json``: the comparison, the ablation, cluster recovery,
   and the stage timings.

Example:
    >>> settings = ExperimentSettings.from_preset("smoke")  # doctest: +SKIP
    >>> summary = run_experiment(settings, "runs/smoke")  # doctest: +SKIP
    >>> summary["models"]["hetlm-a5-b9"]["Combined"]["IoU"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from evaluation.batch_evaluation import EvaluationOptions, evaluate_models
from evaluation.model_cards import write_metrics_to_model_cards
from evaluation.report_tables import rebase_image_links
from inference.loading import load_pretrained_lm
from modeling_hetlm.builders import tiny_encoder
from modeling_hetlm.hub_hetlm import update_model_card
from tokenization.atomic_files import write_text_atomically
from tokenization.examples import load_prepared
from tokenization.prepare import prepare
from trainers.hetlm_training import train_hetlm
from trainers.kmeans_baseline import train_kmeans_baseline
from trainers.model_sizes import cpu_supports_bf16
from trainers.pretrain import pretrain_language_model

from .experiment_report import EVALUATION_STAGE, report_markdown
from .experiment_settings import ExperimentSettings, hetlm_stage_name
from .source_fingerprint import prepared_data_fingerprint, source_fingerprint
from .stages import RunLock, StageRunner

logger = logging.getLogger(__name__)

CONFIG_FILE = "experiment_config.json"
# What each clusterwise stage's summary keeps of its training history.
CLUSTERWISE_SUMMARY_KEYS = (
    "kmeans",
    "segment_ari",
    "segment_ari_kmeans_init",
    "routed_validation_nll",
    "dynamics",
    "selector_pretraining_agreement",
    "selector_pretraining_mean_max_probability",
    "initial_partition",
)
EMBEDDING_CACHE = "embedding-cache"
SIMPLE_BASELINES: tuple[str, ...] = ("repeat-last", "most-popular", "markov", "personal-popular", "sknn")
LARGE_LM = "lm-large"
SMALL_LM = "lm-small"
# The prepared data's summary keys the run's summary (and report) repeats.
DATA_SUMMARY_KEYS = ("source", "format", "events", "users", "sessions", "split", "splits", "filters")


def _encoder_overrides(settings: ExperimentSettings, tokenizer) -> dict[str, Any]:
    if settings.encoder == "minilm":
        return {}
    encoder_tokenizer, encoder_config = tiny_encoder(tokenizer)
    return {"encoder_tokenizer": encoder_tokenizer, "encoder_config": encoder_config}


def _pretrain_stage(settings: ExperimentSettings, data_dir: Path, size: str, epochs: float):
    def work(out_dir: Path) -> dict[str, Any]:
        splits, tokenizer, _ = load_prepared(data_dir)
        result = pretrain_language_model(splits, tokenizer, out_dir, settings.pretraining_arguments(size, epochs))
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
        return {
            "num_parameters": result.model.num_parameters(),
            "bf16": result.bf16,
            "initial_eval_loss": result.initial_eval_loss,
            "final_eval_loss": result.final_eval_loss,
            "log_history": result.log_history,
        }

    return work


def _clusterwise_stage(
    settings: ExperimentSettings, data_dir: Path, lm_dir: Path, cache_dir: Path, method: str, **stage_values: Any
):
    def work(out_dir: Path) -> dict[str, Any]:
        splits, tokenizer, data_summary = load_prepared(data_dir)
        lm = load_pretrained_lm(lm_dir, tokenizer)
        cluster_settings = settings.clusterwise_arguments(embedding_cache_dir=str(cache_dir), **stage_values)
        encoder = _encoder_overrides(settings, tokenizer)
        if method == "kmeans":
            result = train_kmeans_baseline(splits, tokenizer, lm, out_dir, cluster_settings, **encoder)
            history = result.history
        else:
            result = train_hetlm(splits, tokenizer, lm, out_dir, cluster_settings, **encoder)
            history = {key: value for key, value in result.history.items() if key != "log_history"}
            history.update(initial_eval_nll=result.initial_eval_nll, final_eval_nll=result.final_eval_nll)
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
        update_model_card(out_dir, data_summary=data_summary)
        return {
            "num_clusters": result.model.config.num_clusters,
            "cluster_sizes": result.history["cluster_sizes"],
            "bf16": result.history["bf16"],
            "history": json.loads(json.dumps(history, default=str)),
        }

    return work


def _evaluation_stage(settings: ExperimentSettings, data_dir: Path, specs: list[str]):
    """Every spec scored with each decoding of ``settings.decodings``: the first into the stage folder, each
    other one into ``decoding-<name>/``; the result holds the first's models and every decoding's."""

    def work(out_dir: Path) -> dict[str, Any]:
        by_decoding, markdown = {}, []
        for index, decoding in enumerate(settings.decodings):
            options = EvaluationOptions(
                batch_size=settings.batch_size,
                max_users=settings.max_test_users,
                max_new_tokens=settings.max_new_tokens,
                seed=settings.seed,
                decoding=decoding,
                num_samples=settings.num_samples,
                page_rule=settings.page_rule,
                history_blend=settings.history_blend,
            )
            decoding_dir = out_dir if index == 0 else out_dir / f"decoding-{decoding}"
            reports = evaluate_models(specs, data_dir, decoding_dir, baseline=specs[0], options=options)
            if index == 0:
                write_metrics_to_model_cards(reports)
            comparison = json.loads((decoding_dir / "comparison.json").read_text(encoding="utf-8"))
            by_decoding[decoding] = {
                "models": {
                    report.name: {
                        "Combined": report.combined,
                        "clusters": report.cluster_rows,
                        "cluster_recovery": report.recovery,
                        "seconds": report.seconds,
                        "validation_seconds": report.metadata.get("validation_seconds", 0.0),
                        "decoding": report.decoding,
                        "decisions": report.decisions,
                    }
                    for report in reports.values()
                },
                "uncertainty": comparison["uncertainty"],
            }
            # Embedded in the run folder's report.md: image links relative to the run folder.
            text = rebase_image_links(
                (decoding_dir / "comparison.md").read_text(encoding="utf-8"), decoding_dir.relative_to(out_dir.parent)
            )
            markdown.append(text.replace("# Combined results", f"# Combined results ({decoding} decoding)"))
        headline = by_decoding[settings.decodings[0]]
        return {
            "models": headline["models"],
            "uncertainty": headline["uncertainty"],
            "by_decoding": by_decoding,
            "comparison_markdown": "\n".join(markdown),
        }

    return work


def run_experiment(settings: ExperimentSettings, run_dir: str | Path, force: bool = False) -> dict[str, Any]:
    """Run (or resume) every stage into ``run_dir`` and write ``report.md`` and ``summary.json`` there.

    Returns the summary: settings, per-model Combined rows, the ablation, stage timings.
    """
    run_dir = Path(run_dir)
    with RunLock(run_dir):
        return _run_stages(settings, run_dir, force)


def _run_stages(settings: ExperimentSettings, run_dir: Path, force: bool) -> dict[str, Any]:
    runner = StageRunner(run_dir, force=force)
    write_text_atomically(run_dir / CONFIG_FILE, json.dumps(settings.to_dict(), indent=2) + "\n")
    started = time.perf_counter()
    data_dir, data_config, data_result = _data_stage(settings, runner)

    lm_config = {
        **data_config,
        "seed": settings.seed,
        "pretraining": settings.pretraining,
        "num_clusters": settings.num_clusters,
    }
    lm_results = {
        SMALL_LM: runner.run(
            SMALL_LM,
            {**lm_config, "size": settings.small_size, "epochs": settings.pretrain_epochs},
            _pretrain_stage(settings, data_dir, settings.small_size, settings.pretrain_epochs),
        ),
        LARGE_LM: runner.run(
            LARGE_LM,
            {**lm_config, "size": settings.large_size, "epochs": settings.large_pretrain_epochs},
            _pretrain_stage(settings, data_dir, settings.large_size, settings.large_pretrain_epochs),
        ),
    }
    small_lm_dir = runner.stage_dir(SMALL_LM)
    cache_dir = run_dir / EMBEDDING_CACHE  # the frozen encoder's user embeddings, shared by the clusterwise stages

    cluster_config = {
        **lm_config,
        "small": settings.small_size,
        "small_epochs": settings.pretrain_epochs,
        "clusterwise": settings.clusterwise,
        "encoder": settings.encoder,
    }
    kmeans_runs = {f"kmeans-k{settings.num_clusters}": settings.num_clusters}
    if settings.kmeans_silhouette:
        kmeans_runs["kmeans-auto"] = "auto"
    clusterwise_results = {}
    for name, k in kmeans_runs.items():
        clusterwise_results[name] = runner.run(
            name,
            {**cluster_config, "kmeans_k": k},
            _clusterwise_stage(settings, data_dir, small_lm_dir, cache_dir, "kmeans", kmeans_k=k),
        )
    for alpha, beta in settings.ablation:
        name = hetlm_stage_name(alpha, beta)
        clusterwise_results[name] = runner.run(
            name,
            {**cluster_config, "alpha": alpha, "beta": beta},
            _clusterwise_stage(settings, data_dir, small_lm_dir, cache_dir, "hetlm", alpha=alpha, beta=beta),
        )

    model_names = [LARGE_LM, SMALL_LM, *clusterwise_results]  # the first is the composites' baseline
    specs = [str(runner.stage_dir(name)) for name in model_names] + list(SIMPLE_BASELINES)
    evaluation = runner.run(
        EVALUATION_STAGE,
        {
            **cluster_config,
            "models": model_names,
            "ablation": settings.ablation,
            "max_test_users": settings.max_test_users,
            "max_new_tokens": settings.max_new_tokens,
            "decodings": settings.decodings,
            "num_samples": settings.num_samples,
            "page_rule": settings.page_rule,
            "history_blend": settings.history_blend,
        },
        _evaluation_stage(settings, data_dir, specs),
    )

    summary = {
        "synthetic": bool(data_result.get("synthetic", False)),
        "settings": settings.to_dict(),
        "machine": machine_description(),
        "data": {key: data_result[key] for key in DATA_SUMMARY_KEYS if key in data_result},
        "models": evaluation["models"],
        "decodings": settings.decodings,
        "uncertainty": evaluation["uncertainty"],
        "by_decoding": evaluation["by_decoding"],
        "clusterwise": {
            name: {
                "num_clusters": result["num_clusters"],
                "cluster_sizes": result["cluster_sizes"],
                **{key: result["history"][key] for key in CLUSTERWISE_SUMMARY_KEYS if key in result["history"]},
            }
            for name, result in clusterwise_results.items()
        },
        # settings.bf16 None means "where supported": the values used make the run reproducible on another CPU.
        "bf16_used": {name: result.get("bf16") for name, result in {**lm_results, **clusterwise_results}.items()},
        "stage_timings": [asdict(timing) for timing in runner.timings],
        "total_seconds": time.perf_counter() - started,
    }
    write_text_atomically(run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    write_text_atomically(
        run_dir / "report.md", report_markdown(summary, evaluation["comparison_markdown"], settings, run_dir)
    )
    return summary


def _data_stage(settings: ExperimentSettings, runner: StageRunner) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The data folder, the data's part of every later stage's configuration, and the data summary: the
    ``prepared_data`` folder as it is (its content's fingerprint), or the ``data`` stage preparing the source."""
    if settings.prepared_data is not None:
        data_dir = Path(settings.prepared_data)
        _, _, summary = load_prepared(data_dir)  # checks the folder is one `hetlm prepare` wrote
        return data_dir, {"prepared_data": prepared_data_fingerprint(data_dir)}, summary
    data_config = {
        "source": settings.source,
        "format": settings.format,
        "seed": settings.seed,
        "data_options": settings.data_options,
        "source_fingerprint": source_fingerprint(settings.source),
    }
    if settings.format == "simulator":
        data_config.update(
            simulator_users=settings.simulator_users,
            simulator_seed=settings.simulator_seed,
            simulator_scenario=settings.simulator_scenario,
        )
    summary = runner.run(
        "data",
        data_config,
        lambda out: prepare(
            settings.source, settings.format, out, settings.example_options(), **settings.prepare_options()
        ),
    )
    return runner.stage_dir("data"), data_config, summary


def _cpu_info() -> tuple[str | None, set[str]]:
    """The CPU's model name and feature flags (Linux ``/proc/cpuinfo``; None and no flags elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, set()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name"), set(fields.get("flags", "").split())


def machine_description() -> dict[str, Any]:
    """What the run ran on (numbers in a report mean little without it): the CPU model, whether it has
    AVX-512 and native bf16 (which decide the kernels and the bf16 default), threads, torch, GPU."""
    model, flags = _cpu_info()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": model,
        "avx512": "avx512f" in flags,
        # The kernels torch actually runs (lower than the CPU's flags under ATEN_CPU_CAPABILITY=avx2, say).
        "kernel_isa": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_supports_bf16(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
