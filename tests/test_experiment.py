"""End-to-end ``hetlm experiment`` on the smoke preset (the ``smoke_run`` fixture of conftest.py):
every stage, the report folder, resume, config file."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM

from modeling_hetlm import HeTLMForBrowsing
from application.cli import main as cli_main
from application.experiment import CONFIG_FILE
from application.experiment_settings import ExperimentSettings, hetlm_stage_name

MODELS = ["lm-large", "lm-small", "kmeans-k3", "hetlm-a5-b9", "repeat-last", "most-popular", "markov"]


def test_the_report_folder_holds_every_model_side_by_side(smoke_run):
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert summary["synthetic"] is True
    assert list(summary["models"]) == MODELS
    for name, result in summary["models"].items():
        assert result["Combined"]["N"] > 0, name
    report = (smoke_run / "report.md").read_text()
    assert "SYNTHETIC DATA" in report
    for name in MODELS:
        assert f"| {name} |" in report
    assert (smoke_run / "evaluation" / "comparison.md").is_file()
    assert "Overall Composite" in (smoke_run / "evaluation" / "comparison.md").read_text()
    assert [t["name"] for t in summary["stage_timings"]] == [
        "data", "lm-small", "lm-large", "kmeans-k3", "hetlm-a5-b9", "evaluation"]
    assert summary["models"]["hetlm-a5-b9"]["cluster_recovery"] is not None
    assert (smoke_run / "evaluation" / "hetlm-a5-b9" / "training.png").stat().st_size > 0
    assert (smoke_run / "evaluation" / "hetlm-a5-b9" / "page_metrics_per_cluster.png").stat().st_size > 0
    assert (smoke_run / "evaluation" / "hetlm-a5-b9" / "reliability.png").stat().st_size > 0
    assert summary["decodings"] == ["sampled"]
    hetlm = summary["models"]["hetlm-a5-b9"]
    assert hetlm["decoding"] == "sampled" and 0 < hetlm["decisions"]["tau"]["threshold"] <= 1
    assert summary["models"]["markov"]["decisions"] is None
    for metric in ("NDCG@10", "Recall@20", "MRR@10", "CoP Brier"):
        assert 0 <= hetlm["Combined"][metric] <= 1, metric
    for name in MODELS:
        interval = summary["uncertainty"]["intervals"][name]["IoU"]
        assert interval["low"] <= summary["models"][name]["Combined"]["IoU"] <= interval["high"], name
    assert set(summary["uncertainty"]["paired"]["tests"]) == set(MODELS) - {"lm-large"}
    assert "bootstrap intervals" in report and "Paired tests against lm-large" in report


def test_the_models_load_and_the_large_lm_is_k_times_bigger(smoke_run):
    hetlm = HeTLMForBrowsing.from_pretrained(smoke_run / hetlm_stage_name(5.0, 9.0))
    small = AutoModelForCausalLM.from_pretrained(smoke_run / "lm-small")
    large = AutoModelForCausalLM.from_pretrained(smoke_run / "lm-large")
    assert 1 <= hetlm.config.num_clusters <= 3
    assert large.num_parameters() >= 3 * small.num_parameters()


def test_a_rerun_reuses_every_finished_stage(smoke_run, capsys):
    config = smoke_run / CONFIG_FILE
    assert ExperimentSettings(**json.loads(config.read_text())).simulator_users == 160
    before = (smoke_run / "summary.json").read_text()
    assert cli_main(["--log-level", "WARNING", "experiment", "--config", str(config), "--out", str(smoke_run)]) == 0
    after = json.loads((smoke_run / "summary.json").read_text())
    assert all(timing["reused"] for timing in after["stage_timings"])
    assert after["models"] == json.loads(before)["models"]
    assert "(reused)" in capsys.readouterr().out


def test_an_interrupted_stage_is_redone(smoke_run):
    marker = smoke_run / "evaluation" / "stage_done.json"
    marker.unlink()
    assert cli_main(["--log-level", "WARNING", "experiment", "--config", str(smoke_run / CONFIG_FILE),
                     "--out", str(smoke_run)]) == 0
    timings = {t["name"]: t["reused"] for t in json.loads((smoke_run / "summary.json").read_text())["stage_timings"]}
    assert timings == {"data": True, "lm-small": True, "lm-large": True, "kmeans-k3": True, "hetlm-a5-b9": True,
                       "evaluation": False}


def test_bad_settings_are_refused(tmp_path, capsys):
    assert cli_main(["experiment", "--preset", "smoke", "--num-clusters", "0", "--out", str(tmp_path / "r")]) == 2
    assert "num_clusters must be at least 1" in capsys.readouterr().err
