"""A report people can read: the glossary, the side-by-side plot, base rates beside the outcome accuracies,
cluster profiles, and known segments of a generic log scored like the simulator's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from datasets import Dataset

from application.experiment_report import summary_table
from evaluation.baselines import MostPopularPagesBaseline, RepeatLastSessionBaseline
from evaluation.cluster_profiles import (
    PROFILE_COLUMNS,
    compute_cluster_profiles,
    load_cluster_profiles,
    profiles_markdown,
    save_cluster_profiles,
)
from evaluation.comparison_uncertainty import INTERVAL_METRICS
from evaluation.composite import COMPOSITE_GROUPS, OVERALL
from evaluation.glossary import GLOSSARY, glossary_markdown, undefined_headers
from evaluation.report import INTERVALS_PLOT, evaluate_generator, report_sections, save_comparison
from evaluation.report_tables import image_links
from tokenization.errors import DataFormatError
from tokenization.examples import ExampleOptions, load_prepared
from tokenization.prepare import prepare


def table_headers(markdown: str) -> list[str]:
    """Every column header of every Markdown table in ``markdown``."""
    lines = markdown.splitlines()
    headers = []
    for line, below in zip(lines, lines[1:]):
        if line.startswith("| ") and below.startswith("|---"):
            headers += [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    return headers


@pytest.fixture(scope="module")
def test_users() -> Dataset:
    """Four users; actual next sessions: 1 cart of 4, 1 purchase of 4, 2 cart-or-purchase of 4."""
    return Dataset.from_dict(
        {
            "user_id": ["u1", "u2", "u3", "u4"],
            "input_sessions": [[["home", "shoes"]], [["home"]], [["bags"]], [["home", "bags"]]],
            "target_session": [["home", "cart"], ["home"], ["bags", "purchase"], ["shoes"]],
        }
    )


def test_the_glossary_defines_every_abbreviation_and_every_table_header():
    headers = [column for _, columns in report_sections() for column in columns]
    headers += table_headers(summary_table({"models": {}, "clusterwise": {}}))
    headers += [*PROFILE_COLUMNS, *COMPOSITE_GROUPS, OVERALL, "ARI", "NMI", *INTERVAL_METRICS]
    assert undefined_headers(headers) == []
    text = glossary_markdown()
    for term in ("HR", "IoA", "IoP", "IoU", "Val-P", "New-P", "CoP", "-var", "ROC-AUC", "PR-AUC", "Brier"):
        assert f"- **{term}**:" in text, term
    for term in ("Recall@K", "NDCG@K", "MRR@K", "BLEU", "K", "ARI", "NMI", "Composite", "BaseRate", "Lift"):
        assert f"- **{term}**:" in text, term
    assert "fraction of metrics" in GLOSSARY["Composite"]
    assert undefined_headers(["HR-var", "Cart Wobble", "Zed@5"]) == ["Cart Wobble", "Zed@5"]


def test_base_rates_and_majority_accuracy_sit_beside_the_outcome_accuracies(test_users):
    report = evaluate_generator(RepeatLastSessionBaseline(), test_users, name="repeat-last", progress=False)
    combined = report.combined
    assert combined["Cart BaseRate"] == 0.25 and combined["Cart Majority Acc"] == 0.75
    assert combined["Purchase BaseRate"] == 0.25 and combined["Purchase Majority Acc"] == 0.75
    assert combined["CoP BaseRate"] == 0.5 and combined["CoP Majority Acc"] == 0.5
    # Repeat-last never predicts an outcome here: its accuracy is the majority class's, recall 0.
    assert combined["Cart Acc"] == combined["Cart Majority Acc"] and combined["Cart Rec"] == 0.0
    outcome_table = report.to_markdown().split("## Outcome prediction")[1].split("\n## ")[0]
    header = table_headers(outcome_table)
    assert header.index("Cart BaseRate") < header.index("Cart Majority Acc") < header.index("Cart Acc")
    assert "| Combined | 4 | 0.250 | 0.250 | 0.500 | 0.750 | 0.750 | 0.500 | 0.750 |" in outcome_table


def test_the_comparison_has_the_glossary_and_the_side_by_side_plot(test_users, tmp_path):
    reports = [
        evaluate_generator(RepeatLastSessionBaseline(), test_users, name="repeat-last", progress=False),
        evaluate_generator(MostPopularPagesBaseline(["home"]), test_users, name="most-popular", progress=False),
    ]
    save_comparison(reports, tmp_path, baseline=reports[0])
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert markdown.index("## Glossary") < markdown.index("## Decoding")
    assert undefined_headers(table_headers(markdown)) == []
    assert image_links(markdown) == [INTERVALS_PLOT]
    plot = tmp_path / INTERVALS_PLOT
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5_000


def test_profiles_of_a_planted_case(caplog):
    # Cluster 0: 4 shoe shoppers (all visit home + shoes, 2 put something in the cart, one also saw "socks");
    # cluster 1: 4 book readers (home + books, one purchase). Pages: share of users, lift against all 8 users.
    shoes = [[["home", "shoes", "cart"]], [["home", "shoes"], ["shoes", "cart"]], [["home", "shoes", "socks"]]]
    shoes.append([["home", "shoes"]])
    books = [[["home", "books"]], [["home", "books", "purchase"]], [["books"]], [["home", "books"]]]
    profiles = compute_cluster_profiles(shoes + books, [0] * 4 + [1] * 4, top_pages=3, min_support=0.3)
    shoe, book = profiles
    assert (shoe["users"], shoe["sessions"], book["users"], book["sessions"]) == (4, 5, 4, 4)
    assert shoe["cart_rate"] == 2 / 5 and shoe["purchase_rate"] == 0.0 and book["purchase_rate"] == 0.25
    assert [(item["page"], item["share"], item["users"]) for item in shoe["top_pages"]] == [
        ("home", 1.0, 4),
        ("shoes", 1.0, 4),
        ("socks", 0.25, 1),
    ]
    # shoes: 4/4 of the cluster over 4/8 overall = lift 2; home 1.0 / (7/8) < 2; socks (1 user) under min_support.
    assert [(item["page"], item["lift"]) for item in shoe["distinctive_pages"]] == [("shoes", 2.0), ("home", 8 / 7)]
    assert [item["page"] for item in book["distinctive_pages"]] == ["books"]  # home: 3/4 vs 7/8, lift < 1
    # The label: pages most users visited with a lift of at least 1.25 (home, 8/7, is everyone's).
    assert shoe["label_pages"] == ["shoes"] and shoe["label"] == "shoes browsers, cart 40%, purchase 0%"
    assert book["label"] == "books browsers, cart 0%, purchase 25%"
    assert "cart" not in {item["page"] for item in shoe["top_pages"]}  # outcomes are rates, not pages
    with pytest.raises(ValueError, match="2 users' sessions but 1 cluster"):
        compute_cluster_profiles(shoes[:2], [0])


def test_profiles_round_trip_through_the_model_folder_and_missing_ones_are_said(tmp_path, caplog):
    profiles = compute_cluster_profiles([[["a"]], [["b", "cart"]]], [3, 5])
    save_cluster_profiles(profiles, tmp_path / "model")
    loaded = load_cluster_profiles(tmp_path / "model")
    assert sorted(loaded) == [3, 5] and loaded[5]["label"] == "b browsers, cart 100%, purchase 0%"
    assert "| 5 | 1 | 1.000 | 0.000 | b (100%) | b (100%, x2.0) |" in profiles_markdown(loaded)
    with caplog.at_level(logging.WARNING):
        assert load_cluster_profiles(tmp_path / "old-model") is None
    assert "has no cluster_profiles.json" in caplog.text
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cluster_profiles.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a cluster profiles file"):
        load_cluster_profiles(tmp_path / "bad")


def write_segment_log(path: Path, missing_segment: bool = False) -> Path:
    """Twenty users in two known segments ("loyal", "bargain"), three sessions each."""
    lines = ["user,ts,url,tier"]
    for user in range(20):
        tier = "loyal" if user % 2 == 0 else " bargain "
        for session in range(3):
            for step, page in enumerate(["home", "shoes" if user % 2 == 0 else "sale", "cart"][: 2 + session % 2]):
                minute = session * 120 + step
                tier_cell = "" if missing_segment and user == 5 and session == 2 else tier
                lines.append(f"u{user},2024-03-01T{minute // 60:02d}:{minute % 60:02d}:00Z,{page},{tier_cell}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_known_segment_column_goes_through_prepare_to_the_recovery_scores(tmp_path):
    log = write_segment_log(tmp_path / "events.csv")
    columns = {"user_column": "user", "timestamp_column": "ts", "page_column": "url", "segment_column": "tier"}
    options = ExampleOptions(test_fraction=0.3, validation_fraction=0.2, seed=0)
    summary = prepare(
        log, "csv", tmp_path / "data", options, reader_options=columns, progress=False, show_summary=False
    )
    assert summary["segment_codes"] == {"loyal": 0, "bargain": 1}
    assert "'bargain' = 1" in (tmp_path / "data" / "summary.md").read_text(encoding="utf-8")
    splits, _, _ = load_prepared(tmp_path / "data")
    test = splits["test"]
    # Codes in order of first appearance: u0 is "loyal" (0), u1 " bargain " trimmed (1).
    expected = {f"u{user}": user % 2 for user in range(20)}
    assert len(test) > 0 and [expected[user] for user in test["user_id"]] == test["segment"]
    clusters = [7 if segment == 0 else 2 for segment in test["segment"]]
    report = evaluate_generator(RepeatLastSessionBaseline(), test, clusters=clusters, progress=False)
    assert report.recovery["ARI"] == 1.0 and report.recovery["NMI"] == 1.0
    assert "## Cluster recovery" in report.to_markdown()


def test_a_row_without_its_segment_is_a_bad_row(tmp_path):
    log = write_segment_log(tmp_path / "events.csv", missing_segment=True)
    columns = {"user_column": "user", "timestamp_column": "ts", "page_column": "url", "segment_column": "tier"}
    with pytest.raises(DataFormatError, match="missing segment"):
        prepare(log, "csv", tmp_path / "data", reader_options=columns, progress=False, show_summary=False)
    summary = prepare(
        log,
        "csv",
        tmp_path / "skipped",
        on_bad_rows="skip",
        reader_options=columns,
        progress=False,
        show_summary=False,
    )
    assert "missing segment" in str(summary)
