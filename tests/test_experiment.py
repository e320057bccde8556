"""End-to-end ``hetlm experiment`` on the smoke preset (the ``smoke_run`` fixture of conftest.py):
every stage, the report folder, resume, config file."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
from transformers import AutoModelForCausalLM

from application.cli import main as cli_main
from application.commands.experiment import add_arguments, experiment_settings
from application.experiment import CONFIG_FILE
from application.experiment_settings import ExperimentSettings, hetlm_stage_name, route_setting
from application.source_fingerprint import prepared_data_fingerprint
from evaluation.cluster_profiles import load_cluster_profiles
from evaluation.glossary import undefined_headers
from evaluation.history_blend import HISTORY_SUFFIX, HISTORY_WEIGHTS
from evaluation.report_tables import image_links
from modeling_hetlm import HeTLMForBrowsing

LANGUAGE_MODELS = ["lm-large", "lm-small", "kmeans-k3", "hetlm-a5-b9"]
# Each sampled model is reported twice from the same samples: pure, then with the history-aware decoding.
MODELS = [name for model in LANGUAGE_MODELS for name in (model, f"{model}{HISTORY_SUFFIX}")] + [
    "repeat-last",
    "most-popular",
    "markov",
    "personal-popular",
    "sknn",
]


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
        "data",
        "lm-small",
        "lm-large",
        "kmeans-k3",
        "hetlm-a5-b9",
        "evaluation",
    ]
    assert summary["models"]["hetlm-a5-b9"]["cluster_recovery"] is not None
    assert (smoke_run / "evaluation" / "hetlm-a5-b9" / "training.png").stat().st_size > 0
    assert (smoke_run / "evaluation" / "hetlm-a5-b9" / "page_metrics_per_cluster.png").stat().st_size > 0
    assert (smoke_run / "evaluation" / "hetlm-a5-b9" / "reliability.png").stat().st_size > 0
    assert summary["decodings"] == ["sampled"]
    hetlm = summary["models"]["hetlm-a5-b9"]
    assert hetlm["decoding"] == "sampled" and hetlm["decisions"]["page_rule"] == "expected-iou"
    assert hetlm["decisions"]["history_weight"] == {"pages": 0.0, "outcomes": 0.0}
    blended = summary["models"][f"hetlm-a5-b9{HISTORY_SUFFIX}"]["decisions"]
    assert set(blended["history_weight"].values()) <= set(HISTORY_WEIGHTS)
    assert len(blended["validation_scores"]["pages"]) == len(HISTORY_WEIGHTS)
    assert summary["models"]["markov"]["decisions"] is None
    for metric in ("NDCG@10", "Recall@20", "MRR@10", "CoP Brier"):
        assert 0 <= hetlm["Combined"][metric] <= 1, metric
    for name in MODELS:
        interval = summary["uncertainty"]["intervals"][name]["IoU"]
        assert interval["low"] <= summary["models"][name]["Combined"]["IoU"] <= interval["high"], name
    assert set(summary["uncertainty"]["paired"]["tests"]) == set(MODELS) - {"lm-large"}
    assert "bootstrap intervals" in report and "Paired tests against lm-large" in report


def test_the_report_is_written_for_people(smoke_run):
    report = (smoke_run / "report.md").read_text()
    # The glossary first, defining every header of every table below it.
    assert report.index("## Glossary") < report.index("## Summary") and report.count("## Glossary") == 1
    lines = report.splitlines()
    headers = [
        cell.strip()
        for line, below in zip(lines, lines[1:])
        if line.startswith("| ") and below.startswith("|---")
        for cell in line.strip().strip("|").split(" | ")
    ]
    assert "Cart Majority Acc" in headers and "Distinctive pages" in headers
    assert undefined_headers(headers) == []
    # Every image link resolves from the report's folder: the side-by-side plot and each model's plots.
    links = image_links(report)
    assert "evaluation/comparison_intervals.png" in links and "evaluation/hetlm-a5-b9/training.png" in links
    assert all((smoke_run / link).is_file() for link in links), [
        link for link in links if not (smoke_run / link).is_file()
    ]
    # Each clusterwise model's profiles: saved with the model and shown in the report.
    summary = json.loads((smoke_run / "summary.json").read_text())
    for name in ("kmeans-k3", "hetlm-a5-b9"):
        profiles = load_cluster_profiles(smoke_run / name)
        training_users = sum(summary["clusterwise"][name]["kmeans"]["sizes"])
        assert sum(profile["users"] for profile in profiles.values()) == training_users
        section = report.split(f"**{name}**\n\n")[1]
        assert all(profile["label"] in section for profile in profiles.values())


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
    assert (
        cli_main(
            ["--log-level", "WARNING", "experiment", "--config", str(smoke_run / CONFIG_FILE), "--out", str(smoke_run)]
        )
        == 0
    )
    timings = {t["name"]: t["reused"] for t in json.loads((smoke_run / "summary.json").read_text())["stage_timings"]}
    assert timings == {
        "data": True,
        "lm-small": True,
        "lm-large": True,
        "kmeans-k3": True,
        "hetlm-a5-b9": True,
        "evaluation": False,
    }


def test_bad_settings_are_refused(tmp_path, capsys):
    assert cli_main(["experiment", "--preset", "smoke", "--num-clusters", "0", "--out", str(tmp_path / "r")]) == 2
    assert "num_clusters must be at least 1" in capsys.readouterr().err


def test_the_readme_results_block_comes_from_the_run(smoke_run, tmp_path):
    from application.readme_results import END_MARKER, START_MARKER
    from application.readme_results import main as readme_main

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START_MARKER}\nstale\n{END_MARKER}\n\n## Next\n")
    assert readme_main([str(smoke_run), str(readme)]) == 0
    text = readme.read_text()
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert "stale" not in text and text.endswith("## Next\n")
    assert "### Summary (test users, Combined" in text
    assert f"Wall time {summary['total_seconds'] / 60:.1f} minutes" in text
    hetlm_row = next(line for line in text.splitlines() if line.startswith(f"| {hetlm_stage_name(5.0, 9.0)} |"))
    assert f"{summary['models'][hetlm_stage_name(5.0, 9.0)]['Combined']['HR']:.3f}" in hetlm_row
    links = image_links(text)
    assert links and all((tmp_path / link).is_file() for link in links)  # the run's plots, from the README's folder


class StopAfterStage(Exception):
    """Raised by a stand-in for a stage's work: the test has seen what reached it."""


def _settings_from_flags(argv: list[str]) -> ExperimentSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return experiment_settings(parser.parse_args(argv))


def test_the_training_settings_are_the_argument_dataclasses_and_the_seed_is_the_experiments():
    settings = _settings_from_flags(
        [
            "--preset",
            "smoke",
            "--num-clusters",
            "4",
            "--family",
            "qwen2",
            "--clusterwise-epochs",
            "2",
            "--centroid-distance",
            "normalized",
            "--no-cluster-batches",
            "--merge-max-cost",
            "0.01",
            "--seed",
            "7",
        ]
    )
    assert settings.clusterwise == {
        "num_clusters": 4,
        "num_train_epochs": 2.0,
        "centroid_distance": "normalized",
        "cluster_batches": False,
        "merge_max_cost": 0.01,
    }
    assert settings.pretraining == {"family": "qwen2"}
    hetlm = settings.clusterwise_arguments(alpha=0.5, beta=1.0)
    assert (hetlm.num_clusters, hetlm.num_train_epochs, hetlm.centroid_distance) == (4, 2.0, "normalized")
    assert (hetlm.cluster_batches, hetlm.merge_max_cost) == (False, 0.01)
    assert (hetlm.alpha, hetlm.beta, hetlm.seed) == (0.5, 1.0, 7)
    lm = settings.pretraining_arguments("tiny", 2.0)
    assert (lm.family, lm.min_ratio, lm.seed, settings.example_options().seed) == ("qwen2", 4.0, 7, 7)
    with pytest.raises(ValueError, match="clusterwise: seed cannot be set here"):
        ExperimentSettings(clusterwise={"seed": 1})
    with pytest.raises(ValueError, match="ClusterwiseTrainingArguments has no field colour"):
        ExperimentSettings(clusterwise={"colour": 1})
    with pytest.raises(ValueError, match="'learning_rate' is one of both pretraining and clusterwise"):
        route_setting("learning_rate", 1e-3)
    assert route_setting("bf16", False) == {"pretraining": {"bf16": False}, "clusterwise": {"bf16": False}}


def test_data_flags_and_config_keys_reach_the_data_stage(tmp_path, monkeypatch):
    seen = {}

    def stand_in_prepare(source, format, out_dir, options, **keywords):
        seen.update(source=source, format=format, options=options, keywords=keywords)
        raise StopAfterStage

    monkeypatch.setattr("application.experiment.prepare", stand_in_prepare)
    log = tmp_path / "visits.csv"
    log.write_text("visitor,timestamp,page\nu1,2024-03-01T10:00:00Z,home\n")
    config = tmp_path / "settings.yaml"
    config.write_text(
        "reader_options: {user_column: visitor}\nsplit: time\non_bad_rows: skip\n"
        "data_options: {min_session_length: 2}\nnum_clusters: 2\n"
    )
    argv = [
        "--log-level",
        "WARNING",
        "experiment",
        "--preset",
        "smoke",
        "--config",
        str(config),
        "--source",
        str(log),
        "--session-gap-minutes",
        "10",
        "--reader-option",
        "timestamp_unit=s",
        "--time-cutoff",
        "2024-03-02",
        "--train-examples",
        "last_session",
        "--out",
        str(tmp_path / "run"),
    ]
    with pytest.raises(StopAfterStage):
        cli_main(argv)
    options = seen["options"]
    assert (seen["source"], seen["format"]) == (str(log), "events")
    assert (
        options.session_gap_minutes,
        options.split,
        options.time_cutoff,
        options.min_session_length,
        options.train_examples,
        options.seed,
    ) == (10.0, "time", "2024-03-02", 2, "last_session", 0)
    assert seen["keywords"] == {
        "on_bad_rows": "skip",
        "reader_options": {"user_column": "visitor", "timestamp_unit": "s"},
    }
    written = tmp_path / "run" / CONFIG_FILE
    settings = _settings_from_flags(["--config", str(written)])
    assert settings == ExperimentSettings(**json.loads(written.read_text()))
    assert settings.data_options["reader_options"] == {"user_column": "visitor", "timestamp_unit": "s"}
    assert settings.num_clusters == 2 and settings.encoder == "tiny"


@pytest.mark.parametrize("where", ["flag", "config"])
def test_a_bad_reader_option_is_a_one_line_error(tmp_path, capsys, where):
    if where == "flag":
        options = ["--reader-option", "colour=red"]
    else:
        (tmp_path / "c.json").write_text(json.dumps({"reader_options": {"colour": "red"}}))
        options = ["--config", str(tmp_path / "c.json")]
    assert cli_main(["experiment", "--preset", "smoke", *options, "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("hetlm experiment: error: reader_options: format 'simulator' has no option colour")
    assert not (tmp_path / "run").exists()


def test_a_prepared_folder_is_used_as_it_is(smoke_run, tmp_path, monkeypatch):
    seen = {}

    def stand_in_pretrain(splits, tokenizer, out_dir, arguments):
        seen.update(train_users=len(set(splits["train"]["user_id"])), vocabulary=len(tokenizer))
        raise StopAfterStage

    monkeypatch.setattr("application.experiment.prepare", lambda *args, **kwargs: pytest.fail("the data stage ran"))
    monkeypatch.setattr("application.experiment.pretrain_language_model", stand_in_pretrain)
    prepared = tmp_path / "prepared"
    shutil.copytree(smoke_run / "data", prepared)
    with pytest.raises(StopAfterStage):
        cli_main(
            [
                "--log-level",
                "WARNING",
                "experiment",
                "--config",
                str(smoke_run / CONFIG_FILE),
                "--data",
                str(prepared),
                "--out",
                str(tmp_path / "run"),
            ]
        )
    summary = json.loads((prepared / "summary.json").read_text())
    assert seen == {"train_users": summary["splits"]["train"]["users"], "vocabulary": summary["vocabulary_size"]}
    assert not (tmp_path / "run" / "data").exists()
    # A copy is the same data; another content is not.
    assert prepared_data_fingerprint(prepared) == prepared_data_fingerprint(smoke_run / "data")
    (prepared / "tokenizer" / "tokenizer.json").write_text("{}")
    assert prepared_data_fingerprint(prepared) != prepared_data_fingerprint(smoke_run / "data")
    assert cli_main(["experiment", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "other")]) == 2
    with pytest.raises(ValueError, match="data_options split apply to preparing a source"):
        ExperimentSettings(prepared_data=str(prepared), data_options={"split": "time"})
