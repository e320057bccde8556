"""The paper's protocol end to end (``hetlm experiment``): data, single LMs, K-means, HeTLM, baselines, evaluation.

Stages, each a folder of the run directory with a completion marker (see :mod:`application.stages`),
so an interrupted run resumes at the first unfinished stage:

1. ``data``: ``hetlm prepare`` on the source (the built-in simulator by default: synthetic data);
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
from transformers import AutoModelForCausalLM

from evaluation.batch_evaluation import EvaluationOptions, evaluate_models
from modeling_hetlm.builders import tiny_encoder
from tokenization.examples import ExampleOptions, load_prepared
from tokenization.prepare import prepare

from trainers.hetlm_training import train_hetlm
from trainers.initialization import ClusterwiseSettings
from trainers.kmeans_baseline import train_kmeans_baseline
from trainers.pretrain import PretrainSettings, pretrain_language_model
from .experiment_report import report_markdown
from .experiment_settings import ExperimentSettings, hetlm_stage_name
from .source_fingerprint import source_fingerprint
from .stages import RunLock, StageRunner, write_text_atomically

logger = logging.getLogger(__name__)

CONFIG_FILE = "experiment_config.json"
EMBEDDING_CACHE = "embedding-cache"
SIMPLE_BASELINES: tuple[str, ...] = ("repeat-last", "most-popular", "markov")
LARGE_LM = "lm-large"
SMALL_LM = "lm-small"



def _encoder_overrides(settings: ExperimentSettings, tokenizer) -> dict[str, Any]:
    if settings.encoder == "minilm":
        return {}
    encoder_tokenizer, encoder_config = tiny_encoder(tokenizer)
    return {"encoder_tokenizer": encoder_tokenizer, "encoder_config": encoder_config}


def _clusterwise_settings(settings: ExperimentSettings, cache_dir: Path, **overrides: Any) -> ClusterwiseSettings:
    return ClusterwiseSettings(
        num_clusters=settings.num_clusters, centroid_distance=settings.centroid_distance,
        epochs=settings.clusterwise_epochs, bf16=settings.bf16, seed=settings.seed,
        embedding_cache_dir=str(cache_dir), **overrides,
    )


def _pretrain_stage(settings: ExperimentSettings, data_dir: Path, size: str, epochs: float):
    def work(out_dir: Path) -> dict[str, Any]:
        splits, tokenizer, _ = load_prepared(data_dir)
        lm_settings = PretrainSettings(family=settings.family, size=size, epochs=epochs, bf16=settings.bf16,
                                       seed=settings.seed, min_ratio=float(settings.num_clusters))
        result = pretrain_language_model(splits, tokenizer, out_dir, lm_settings)
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
        return {"num_parameters": result.model.num_parameters(), "initial_eval_loss": result.initial_eval_loss,
                "final_eval_loss": result.final_eval_loss, "log_history": result.log_history}
    return work


def _clusterwise_stage(settings: ExperimentSettings, data_dir: Path, lm_dir: Path, method: str, **overrides: Any):
    def work(out_dir: Path) -> dict[str, Any]:
        splits, tokenizer, _ = load_prepared(data_dir)
        lm = AutoModelForCausalLM.from_pretrained(lm_dir)
        # The frozen encoder's user embeddings are shared by every clusterwise stage of the run.
        cluster_settings = _clusterwise_settings(settings, data_dir.parent / EMBEDDING_CACHE, **overrides)
        encoder = _encoder_overrides(settings, tokenizer)
        if method == "kmeans":
            result = train_kmeans_baseline(splits, tokenizer, lm, out_dir, cluster_settings, **encoder)
            history = result.history
        else:
            result = train_hetlm(splits, tokenizer, lm, out_dir, cluster_settings, **encoder)
            history = {key: value for key, value in result.history.items() if key != "log_history"}
            history.update(initial_eval_nll=result.initial_eval_nll, final_eval_nll=result.final_eval_nll)
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
        return {"num_clusters": result.model.config.num_clusters, "cluster_sizes": result.history["cluster_sizes"],
                "history": json.loads(json.dumps(history, default=str))}
    return work


def _evaluation_stage(settings: ExperimentSettings, data_dir: Path, specs: list[str]):
    """Every spec scored with each decoding of ``settings.decodings``: the first into the stage folder, each
    other one into ``decoding-<name>/``; the result holds the first's models and every decoding's."""
    def work(out_dir: Path) -> dict[str, Any]:
        by_decoding, markdown = {}, []
        for index, decoding in enumerate(settings.decodings):
            options = EvaluationOptions(batch_size=settings.batch_size, max_users=settings.max_test_users,
                                        max_new_tokens=settings.max_new_tokens, seed=settings.seed,
                                        decoding=decoding, num_samples=settings.num_samples)
            decoding_dir = out_dir if index == 0 else out_dir / f"decoding-{decoding}"
            reports = evaluate_models(specs, data_dir, decoding_dir, baseline=specs[0], options=options)
            comparison = json.loads((decoding_dir / "comparison.json").read_text(encoding="utf-8"))
            by_decoding[decoding] = {
                "models": {
                    report.name: {"Combined": report.combined, "clusters": report.cluster_rows,
                                  "cluster_recovery": report.recovery, "seconds": report.seconds,
                                  "validation_seconds": report.metadata.get("validation_seconds", 0.0),
                                  "decoding": report.decoding, "decisions": report.decisions}
                    for report in reports.values()
                },
                "uncertainty": comparison["uncertainty"],
            }
            text = (decoding_dir / "comparison.md").read_text(encoding="utf-8")
            markdown.append(text.replace("# Combined results", f"# Combined results ({decoding} decoding)"))
        headline = by_decoding[settings.decodings[0]]
        return {"models": headline["models"], "uncertainty": headline["uncertainty"], "by_decoding": by_decoding,
                "comparison_markdown": "\n".join(markdown)}
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
    (run_dir / CONFIG_FILE).write_text(json.dumps(asdict(settings), indent=2) + "\n", encoding="utf-8")
    started = time.perf_counter()
    data_config = {key: value for key, value in asdict(settings).items()
                   if key in ("source", "format", "simulator_users", "simulator_seed", "seed")}
    data_config["source_fingerprint"] = source_fingerprint(settings.source)
    reader_options = {"num_users": settings.simulator_users, "seed": settings.simulator_seed} \
        if settings.format == "simulator" else {}
    data_result = runner.run("data", data_config, lambda out: prepare(
        settings.source, settings.format, out, ExampleOptions(seed=settings.seed), reader_options=reader_options))
    data_dir = runner.stage_dir("data")

    lm_config = {**data_config, "family": settings.family, "seed": settings.seed, "bf16": settings.bf16,
                 "num_clusters": settings.num_clusters}
    runner.run(SMALL_LM, {**lm_config, "size": settings.small_size, "epochs": settings.pretrain_epochs},
               _pretrain_stage(settings, data_dir, settings.small_size, settings.pretrain_epochs))
    runner.run(LARGE_LM, {**lm_config, "size": settings.large_size, "epochs": settings.large_pretrain_epochs},
               _pretrain_stage(settings, data_dir, settings.large_size, settings.large_pretrain_epochs))
    small_lm_dir = runner.stage_dir(SMALL_LM)

    cluster_config = {**lm_config, "small": settings.small_size, "small_epochs": settings.pretrain_epochs,
                      "epochs": settings.clusterwise_epochs, "encoder": settings.encoder,
                      "centroid_distance": settings.centroid_distance}
    kmeans_runs = {f"kmeans-k{settings.num_clusters}": settings.num_clusters}
    if settings.kmeans_silhouette:
        kmeans_runs["kmeans-auto"] = "auto"
    clusterwise_results = {}
    for name, k in kmeans_runs.items():
        clusterwise_results[name] = runner.run(name, {**cluster_config, "kmeans_k": k},
                                               _clusterwise_stage(settings, data_dir, small_lm_dir, "kmeans", kmeans_k=k))
    for alpha, beta in settings.ablation:
        name = hetlm_stage_name(alpha, beta)
        clusterwise_results[name] = runner.run(name, {**cluster_config, "alpha": alpha, "beta": beta},
                                               _clusterwise_stage(settings, data_dir, small_lm_dir, "hetlm",
                                                                  alpha=alpha, beta=beta))

    model_names = [LARGE_LM, SMALL_LM, *clusterwise_results]  # the first is the composites' baseline
    specs = [str(runner.stage_dir(name)) for name in model_names] + list(SIMPLE_BASELINES)
    evaluation = runner.run("evaluation", {**cluster_config, "models": model_names, "ablation": settings.ablation,
                                           "max_test_users": settings.max_test_users,
                                           "max_new_tokens": settings.max_new_tokens,
                                           "decodings": settings.decodings, "num_samples": settings.num_samples},
                            _evaluation_stage(settings, data_dir, specs))

    summary = {
        "synthetic": bool(data_result.get("synthetic", False)),
        "settings": asdict(settings),
        "machine": machine_description(),
        "data": {key: data_result.get(key) for key in ("totals", "splits", "filters") if key in data_result},
        "models": evaluation["models"],
        "decodings": settings.decodings,
        "uncertainty": evaluation["uncertainty"],
        "by_decoding": evaluation["by_decoding"],
        "clusterwise": {name: {key: result[key] for key in ("num_clusters", "cluster_sizes")}
                        for name, result in clusterwise_results.items()},
        "stage_timings": [asdict(timing) for timing in runner.timings],
        "total_seconds": time.perf_counter() - started,
    }
    write_text_atomically(run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    write_text_atomically(run_dir / "report.md", report_markdown(summary, evaluation["comparison_markdown"], settings))
    return summary



def machine_description() -> dict[str, Any]:
    """What the run ran on (numbers in a report mean little without it)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
