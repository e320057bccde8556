"""Reports, plots, the model session generator and `hetlm evaluate`."""

from __future__ import annotations

import csv
import json
import random

import pytest
import torch
from datasets import Dataset
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from transformers import LlamaConfig, LlamaForCausalLM

from application.cli import main as cli_main
from evaluation.baselines import MostPopularPagesBaseline, RepeatLastSessionBaseline
from evaluation.bleu import bleu_score
from evaluation.composite import composite_scores
from evaluation.outcome_metrics import OUTCOME_METRICS, outcome_scores
from evaluation.page_metrics import PAGE_MEAN_METRICS, page_generation_scores
from evaluation.plots import load_training_log, plot_report, plot_training_log
from evaluation.report import METRIC_COLUMNS, evaluate_generator, metric_row, save_comparison
from inference.prompts import pad_sequences
from inference.session_generator import ModelSessionGenerator
from modeling_fixtures import predictor_config
from modeling_hetlm import HeTLMForBrowsing, build_encoder_tokenizer, build_hetlm
from tokenization.examples import load_prepared
from tokenization.page_tokenizer import build_page_tokenizer, decode_session, encode_sessions

PAGES = ["home", "shoes", "bags", "hats", "socks", "cart", "purchase"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_users(num_users: int = 40, seed: int = 0) -> Dataset:
    rng = random.Random(seed)

    def session() -> list[str]:
        return rng.sample(PAGES, rng.randint(1, 4))

    return Dataset.from_dict(
        {
            "user_id": [f"user-{i}" for i in range(num_users)],
            "input_sessions": [[session() for _ in range(rng.randint(1, 3))] for _ in range(num_users)],
            # Every tenth user has an empty actual session: excluded from the metrics, still counted in N.
            "target_session": [[] if i % 10 == 9 else session() for i in range(num_users)],
            "segment": [i % 3 for i in range(num_users)],
        }
    )


class RoutingGenerator:
    """Routes a user by the length of their last input session and repeats it, with a hallucination."""

    def __call__(self, input_sessions):
        sessions = [[*user[-1], "[UNK]"] if len(user[-1]) == 2 else list(user[-1]) for user in input_sessions]
        return sessions, [len(user[-1]) % 3 for user in input_sessions]


@pytest.fixture(scope="module")
def users() -> Dataset:
    return make_users()


@pytest.fixture(scope="module")
def report(users):
    return evaluate_generator(
        RoutingGenerator(), users, batch_size=7, vocabulary=set(PAGES), name="routing", progress=False
    )


def flat_inputs(users: Dataset) -> list[list[str]]:
    return [[page for session in sessions for page in session] for sessions in users["input_sessions"]]


def test_combined_row_equals_the_metric_functions_on_all_users(users, report):
    generated = [
        [*sessions[-1], "[UNK]"] if len(sessions[-1]) == 2 else sessions[-1] for sessions in users["input_sessions"]
    ]
    assert report.generated == generated
    page = page_generation_scores(generated, users["target_session"], flat_inputs(users), set(PAGES))
    outcomes = outcome_scores(generated, users["target_session"])
    combined = report.combined
    assert combined["Cluster"] == "Combined"
    assert combined["N"] == 40 and combined["Excluded"] == page["n_excluded_empty_actual"] == 4
    for key in PAGE_MEAN_METRICS + ("HR-var", "IoA-var", "IoP-var", "IoU-var"):
        assert combined[key] == pytest.approx(page[key])
    for key in OUTCOME_METRICS:
        assert combined[key] == pytest.approx(outcomes[key])
    assert combined["BLEU"] == pytest.approx(bleu_score(generated, users["target_session"]))
    assert combined["Val-P"] < 1.0  # the generated [UNK]s are hallucinations
    assert report.user_ids == users["user_id"]


def test_cluster_rows_partition_the_users(users, report):
    cluster_rows = report.cluster_rows
    assert [row["Cluster"] for row in cluster_rows] == ["Cluster 0", "Cluster 1", "Cluster 2"]
    assert sum(row["N"] for row in cluster_rows) == len(users)
    inputs = flat_inputs(users)
    for row in cluster_rows:
        cluster = int(row["Cluster"].split()[1])
        members = [i for i, assigned in enumerate(report.clusters) if assigned == cluster]
        expected = metric_row(
            row["Cluster"],
            [report.generated[i] for i in members],
            [users["target_session"][i] for i in members],
            [inputs[i] for i in members],
            set(PAGES),
        )
        assert {key: row[key] for key in expected} == pytest.approx(expected, nan_ok=True)


def test_cluster_recovery_and_given_clusters(users, report):
    segments = users["segment"]
    assert report.recovery["ARI"] == pytest.approx(adjusted_rand_score(segments, report.clusters))
    assert report.recovery["NMI"] == pytest.approx(normalized_mutual_info_score(segments, report.clusters))
    assert sum(sum(counts.values()) for counts in report.recovery["contingency"].values()) == len(users)
    # Clusters given by the caller override the generator's: here the true segments, recovered perfectly.
    given = evaluate_generator(RoutingGenerator(), users, clusters=segments, progress=False)
    assert given.recovery["ARI"] == 1.0 and given.recovery["NMI"] == pytest.approx(1.0)
    assert [row["N"] for row in given.cluster_rows] == [14, 13, 13]
    # No clusters (a baseline) or no true segments: no per-cluster rows, no recovery.
    plain = evaluate_generator(RepeatLastSessionBaseline(), users, progress=False)
    assert [row["Cluster"] for row in plain.rows] == ["Combined"] and plain.recovery is None
    unlabelled = evaluate_generator(RoutingGenerator(), users.remove_columns("segment"), progress=False)
    assert unlabelled.recovery is None and len(unlabelled.rows) == 4


def test_report_files(tmp_path, users, report):
    paths = report.save(tmp_path)
    markdown = paths["markdown"].read_text()
    for title in ("Page generation", "Variance in page generation", "Outcome prediction", "BLEU", "Cluster recovery"):
        assert f"## {title}" in markdown
    assert "| Combined | 40 |" in markdown
    with paths["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == METRIC_COLUMNS and [row["Cluster"] for row in rows][-1] == "Combined"
    assert float(rows[-1]["IoU"]) == pytest.approx(report.combined["IoU"])
    saved = json.loads(paths["json"].read_text())
    assert saved["rows"] == report.rows and saved["cluster_recovery"]["ARI"] == pytest.approx(report.recovery["ARI"])
    generations = [json.loads(line) for line in paths["generations"].read_text().splitlines()]
    assert len(generations) == 40 and generations[0]["user_id"] == "user-0"
    assert generations[0]["cluster"] == report.clusters[0]


def test_comparison_against_a_baseline(tmp_path, users, report):
    baseline = evaluate_generator(MostPopularPagesBaseline(["home", "shoes"]), users, name="popular", progress=False)
    text = save_comparison([report, baseline], tmp_path, baseline)
    rows = json.loads((tmp_path / "comparison.json").read_text())["rows"]
    assert [row["Model"] for row in rows] == ["routing", "popular"]
    expected = composite_scores(report.combined, baseline.combined, decimals=3)
    assert {key: rows[0][key] for key in expected} == expected
    assert "Overall Composite" not in rows[1]
    assert "Composite scores against popular" in text and (tmp_path / "comparison.csv").is_file()
    assert f"{expected['Overall Composite']:.3f} (" in text


def test_generator_errors(users):
    with pytest.raises(ValueError, match="returned 1 sessions for 5 users"):
        evaluate_generator(lambda batch: ([["home"]], None), users, batch_size=5, progress=False)
    with pytest.raises(ValueError, match="target_session"):
        evaluate_generator(RoutingGenerator(), users.remove_columns("target_session"), progress=False)
    with pytest.raises(ValueError, match="3 cluster labels given for 40"):
        evaluate_generator(RoutingGenerator(), users, clusters=[0, 1, 2], progress=False)


def test_report_plots(tmp_path, report):
    paths = plot_report(report.rows, tmp_path, PAGE_MEAN_METRICS, OUTCOME_METRICS, "routing")
    assert [path.name for path in paths] == [
        "page_metrics_per_cluster.png",
        "outcomes_per_cluster.png",
        "cluster_sizes.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_training_log_plot_handles_missing_keys(tmp_path):
    log_history = [
        {"step": 10, "loss": 3.2, "l1": 3.0, "num_clusters": 6, "cluster_sizes": [5, 5, 4, 3, 2, 1]},
        {"step": 20, "loss": 2.9, "learning_rate": 1e-5},
        {"step": 30, "l1": 2.5, "l3": 0.01, "num_clusters": 2, "cluster_size_0": 12, "cluster_size_3": 8},
        {"step": 30, "train_runtime": 12.0},
    ]
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"global_step": 30, "log_history": log_history}))
    assert load_training_log(state) == log_history
    path = plot_training_log(load_training_log(state), tmp_path / "training.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert plot_training_log([{"epoch": 1.0, "learning_rate": 1e-5}], tmp_path / "none.png") is None
    moved = [
        {"epoch": 1.0, "share_users_moved_since_kmeans": 0.1, "share_users_moved_since_last": 0.1},
        {"epoch": 2.0, "share_users_moved_since_kmeans": 0.15, "share_users_moved_since_last": 0.05},
    ]
    assert plot_training_log(moved, tmp_path / "moved.png").read_bytes()[:8] == PNG_SIGNATURE
    bad = tmp_path / "log.jsonl"
    bad.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        load_training_log(bad)


def tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def test_model_session_generator_batches_like_one_user_at_a_time(users):
    tokenizer = build_page_tokenizer(PAGES)
    lm = tiny_llama(len(tokenizer))
    generator = ModelSessionGenerator(lm, tokenizer, max_new_tokens=6)
    batch = users["input_sessions"][:4]
    sessions, clusters = generator(batch)
    assert clusters is None and len(sessions) == 4
    for user_sessions, session in zip(batch, sessions):
        prompt = torch.tensor([encode_sessions(tokenizer, user_sessions, open_next_session=True)])
        with torch.no_grad():
            output = lm.generate(
                prompt,
                max_new_tokens=6,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        assert session == decode_session(tokenizer, output[0, prompt.shape[1] :].tolist())
    assert all(page in set(PAGES) | {"[UNK]"} for session in sessions for page in session)


def test_model_session_generator_cuts_long_prompts():
    tokenizer = build_page_tokenizer(PAGES)
    generator = ModelSessionGenerator(tiny_llama(len(tokenizer)), tokenizer, max_new_tokens=4, max_prompt_length=8)
    sessions, _ = generator([[["home"] * 3, ["shoes", "bags"]], [["home"] * 20]])
    assert len(sessions) == 2 and generator.truncated_prompts == 2
    assert generator.max_prompt_length == 8


def tiny_hetlm(tokenizer, centroid_sessions) -> HeTLMForBrowsing:
    """A tiny 3-cluster HeTLM over the tokenizer's pages, routed to the nearest centroid, the
    centroids being the embeddings of three users' sessions (so the users spread over clusters)."""
    pages = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    torch.manual_seed(0)
    model = build_hetlm(
        tokenizer,
        encoder_tokenizer=build_encoder_tokenizer(pages, vocab_size=120),
        num_clusters=3,
        selector_hidden_sizes=[8],
        encoder_max_length=64,
        routing="centroids",
        predictor_config=predictor_config("llama", len(tokenizer)),
        encoder_config={
            "model_type": "bert",
            "vocab_size": 120,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
        },
    ).eval()
    prompts = [encode_sessions(tokenizer, sessions, open_next_session=True) for sessions in centroid_sessions]
    model.set_centroids(model.embed_users(*pad_sequences(prompts, tokenizer.pad_token_id, side="left")))
    return model


def test_model_session_generator_routes_hetlm_users(users):
    tokenizer = build_page_tokenizer(PAGES)
    model = tiny_hetlm(tokenizer, [users["input_sessions"][i] for i in (0, 3, 5)])
    generator = ModelSessionGenerator(model, tokenizer, max_new_tokens=5)
    batch = users["input_sessions"][:8]
    sessions, clusters = generator(batch)
    prompts = [encode_sessions(tokenizer, user_sessions, open_next_session=True) for user_sessions in batch]
    input_ids, attention_mask = pad_sequences(prompts, tokenizer.pad_token_id, side="left")
    with torch.no_grad():
        new_tokens, expected_clusters = model.generate(
            input_ids, attention_mask=attention_mask, return_clusters=True, max_new_tokens=5, do_sample=False
        )
    assert clusters == expected_clusters.tolist() and len(set(clusters)) > 1
    assert sessions == [decode_session(tokenizer, row.tolist()) for row in new_tokens]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A simulator dataset prepared by `hetlm prepare simulator` (synthetic, 200 users)."""
    data = tmp_path_factory.mktemp("prepared")
    assert cli_main(["prepare", "simulator", "--out", str(data), "--simulator-users", "200", "--no-progress"]) == 0
    return data


def test_evaluate_command_scores_the_baselines(prepared, tmp_path, capsys):
    out = tmp_path / "evaluation"
    num_test_users = len(load_prepared(prepared)[0]["test"])
    assert (
        cli_main(
            [
                "evaluate",
                "repeat-last",
                "most-popular",
                "markov",
                "--data",
                str(prepared),
                "--baseline",
                "most-popular",
                "--out",
                str(out),
                "--batch-size",
                "8",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "# Combined results" in printed and "synthetic data" in printed
    assert "Composite scores against most-popular" in printed
    for name in ("repeat-last", "most-popular", "markov"):
        assert f"| {name} | {num_test_users} |" in printed
        assert {
            "report.md",
            "report.csv",
            "report.json",
            "generations.jsonl",
            "page_metrics_per_cluster.png",
            "outcomes_per_cluster.png",
        } <= {path.name for path in (out / name).iterdir()}
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert [row["Model"] for row in rows] == ["repeat-last", "most-popular", "markov"]
    assert "Overall Composite" in rows[0] and "Overall Composite" not in rows[1]
    assert cli_main(["evaluate", "no-such-model", "--data", str(prepared), "--out", str(out)]) == 2
    assert "neither a baseline" in capsys.readouterr().err


def test_evaluate_command_scores_a_hetlm_model(prepared, tmp_path):
    dataset, tokenizer, _ = load_prepared(prepared)
    model_dir = tmp_path / "hetlm-model"
    tiny_hetlm(tokenizer, dataset["test"]["input_sessions"][:3]).save_pretrained(model_dir)
    (model_dir / "trainer_state.json").write_text(
        json.dumps(
            {"log_history": [{"step": 1, "loss": 4.0, "num_clusters": 3}, {"step": 2, "loss": 3.5, "num_clusters": 2}]}
        )
    )
    out = tmp_path / "evaluation"
    assert (
        cli_main(
            [
                "evaluate",
                str(model_dir),
                "--data",
                str(prepared),
                "--baseline",
                "repeat-last",
                "--out",
                str(out),
                "--max-users",
                "12",
                "--max-new-tokens",
                "4",
                "--no-progress",
            ]
        )
        == 0
    )
    report = json.loads((out / "hetlm-model" / "report.json").read_text())
    assert report["n_users"] == 12 and report["rows"][-1]["Cluster"] == "Combined" and len(report["rows"]) > 2
    assert report["cluster_recovery"]["n_users"] == 12
    for png in ("cluster_sizes.png", "training.png"):
        assert (out / "hetlm-model" / png).read_bytes()[:8] == PNG_SIGNATURE
    assert "Overall Composite" in json.loads((out / "comparison.json").read_text())["rows"][0]
