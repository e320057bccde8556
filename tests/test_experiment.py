"""End-to-end ``hetlm experiment`` on the smoke preset (the ``smoke_run`` fixture of conftest.py):
every stage, the report folder, resume, config file."""

from __future__ import annotations

import json

from transformers import AutoModelForCausalLM

from modeling_hetlm import HeTLMForBrowsing
from application.cli import main as cli_main
from application.experiment import CONFIG_FILE
from application.experiment_settings import ExperimentSettings, hetlm_stage_name

MODELS = ["lm-large", "lm-small", "kmeans-k3", "hetlm-a5-b9", "repeat-last", "most-popular", "markov", "personal-popular",
          "sknn"]


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


def test_the_readme_results_block_comes_from_the_run(smoke_run, tmp_path):
    from application.readme_results import END_MARKER, START_MARKER, main as readme_main

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START_MARKER}\nstale\n{END_MARKER}\n\n## Next\n")
    assert readme_main([str(smoke_run), str(readme)]) == 0
    text = readme.read_text()
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert "stale" not in text and text.endswith("## Next\n")
    assert "### Summary (test users, Combined)" in text
    assert f"Wall time {summary['total_seconds'] / 60:.1f} minutes" in text
    hetlm_row = next(line for line in text.splitlines() if line.startswith(f"| {hetlm_stage_name(5.0, 9.0)} |"))
    assert f"{summary['models'][hetlm_stage_name(5.0, 9.0)]['Combined']['HR']:.3f}" in hetlm_row
