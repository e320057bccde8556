"""Outcome pages and URL logs end to end: the options of every reader, the warning when no outcome
page is found, and the mapping travelling prepare -> tokenizer -> train (tiny) -> model -> generate."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from application.cli import main
from tokenization.event_partitions import EventPartitioner
from tokenization.examples import load_prepared
from tokenization.page_rules import PageRules
from tokenization.readers import read_events
from trainers.pretrain import pretrain_language_model
from trainers.training_arguments import PretrainingArguments

FIXTURES = Path(__file__).parent / "fixtures"
SHOP_LOG = FIXTURES / "shop_urls_sample.csv"
SHOP_COLUMNS = [
    "--reader-option",
    "user_column=visitor",
    "--reader-option",
    "timestamp_column=time",
    "--reader-option",
    "page_column=url",
]
OUTCOME_OPTIONS = [
    "--cart-page",
    "/cart",
    "--cart-page",
    "/basket*",
    "--purchase-page",
    "/checkout/thank-you",
    "--keep-query-parameter",
    "q",
]


def shop_pages(rules: PageRules) -> Counter:
    """The fixture's page views after ``rules``, counted directly from the CSV."""
    lines = SHOP_LOG.read_text(encoding="utf-8").splitlines()[1:]
    return Counter(rules.page(line.split(",", 2)[2]) for line in lines)


def all_pages(dataset) -> set[str]:
    return {
        page
        for split in dataset.values()
        for row in split
        for page in [*sum(row["input_sessions"], []), *row["target_session"]]
    }


@pytest.fixture(scope="module")
def shop_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop") / "data"
    assert main(["prepare", str(SHOP_LOG), "--out", str(out), "--no-progress", *SHOP_COLUMNS, *OUTCOME_OPTIONS]) == 0
    return out


def test_prepare_maps_outcome_pages_and_merges_url_variants(shop_data):
    dataset, tokenizer, summary = load_prepared(shop_data)
    rules = PageRules(
        cart_pages=("/cart", "/basket*"), purchase_pages=("/checkout/thank-you",), keep_query_parameters=("q",)
    )
    expected = shop_pages(rules)
    assert all_pages(dataset) == set(expected)  # every page, mapped
    assert {"cart", "purchase", "/search?q=shoes", "/"} <= set(expected)
    assert not any(
        page.startswith(("/cart", "/basket", "/checkout/thank-you", "http")) or "utm_" in page for page in expected
    )
    raw_names = {line.split(",", 2)[2] for line in SHOP_LOG.read_text(encoding="utf-8").splitlines()[1:]}
    assert summary["page_variants"] == {
        "raw_names": len(raw_names),
        "pages": len(expected),
        "merged": len(raw_names) - len(expected),
    }
    assert summary["outcomes_found"] is True
    assert summary["outcome_pages"] == {"cart": ["/cart", "/basket*"], "purchase": ["/checkout/thank-you"]}
    assert summary["url_normalization"] == {"enabled": True, "keep_query_parameters": ["q"]}
    targets = [row["target_session"] for split in dataset.values() for row in split]
    assert summary["outcome_rates"]["cart"] == pytest.approx(sum("cart" in t for t in targets) / len(targets))
    assert summary["outcome_rates"]["cart"] > 0
    assert PageRules.of_tokenizer(tokenizer) == rules
    tokenizer_config = json.loads((shop_data / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer_config["outcome_pages"] == summary["outcome_pages"]
    markdown = (shop_data / "summary.md").read_text()
    assert f"{len(raw_names)} distinct raw names -> {len(expected)} pages" in markdown
    assert "WARNING" not in markdown


@pytest.fixture(scope="module")
def plain_shop_data(tmp_path_factory):
    """The same log prepared without outcome patterns."""
    out = tmp_path_factory.mktemp("plain") / "data"
    assert main(["prepare", str(SHOP_LOG), "--out", str(out), "--no-progress", *SHOP_COLUMNS]) == 0
    return out


def test_prepare_warns_loudly_when_no_outcome_page_is_found(tmp_path, caplog):
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="tokenization.prepare"):
        assert main(["prepare", str(SHOP_LOG), "--out", str(out), "--no-progress", *SHOP_COLUMNS]) == 0
    assert "no outcome page found" in caplog.text and "--cart-page" in caplog.text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcomes_found"] is False and summary["outcome_rates"] == {"cart": 0.0, "purchase": 0.0}
    assert "WARNING: no outcome page (cart or purchase) found" in (out / "summary.md").read_text()
    # Without outcome patterns the URL normalisation alone still merges the variants.
    assert summary["page_variants"]["pages"] == len(shop_pages(PageRules()))


def partitioned_pages(stream, rules: PageRules) -> list[str]:
    partitioner = EventPartitioner(page_rules=rules)
    for batch in stream:
        partitioner.add(batch)
    return [partitioner.pages[code] for table in partitioner.partitions() for code in table.column("page").to_pylist()]


def test_outcome_options_apply_to_every_reader():
    generic = read_events(FIXTURES / "events_sample.csv", "events", on_bad_rows="skip")
    plain = partitioned_pages(generic, PageRules())
    mapped = partitioned_pages(generic, PageRules(cart_pages=("category/*",)))
    categories = sum(page.startswith("category/") for page in plain)
    assert categories > 0 and mapped.count("cart") == plain.count("cart") + categories
    # GA360 and REES46 emit cart / purchase from their action types; the patterns add more.
    ga_plain = partitioned_pages(read_events(FIXTURES / "ga_sessions_sample.json", "ga360"), PageRules())
    ga_mapped = partitioned_pages(
        read_events(FIXTURES / "ga_sessions_sample.json", "ga360"),
        PageRules(cart_pages=("/basket.html",), purchase_pages=("/ordercompleted.html",)),
    )
    assert ga_mapped.count("cart") == ga_plain.count("cart") + ga_plain.count("/basket.html") > ga_plain.count("cart")
    assert ga_mapped.count("purchase") == ga_plain.count("purchase") + 1
    rees = read_events(FIXTURES / "rees46_sample.csv", "rees46")
    rees_plain = partitioned_pages(rees, PageRules())
    rees_mapped = partitioned_pages(rees, PageRules(purchase_pages=("re:product/.*/1004237",)))
    assert rees_mapped.count("purchase") == rees_plain.count("purchase") + 1
    assert rees_mapped.count("cart") == rees_plain.count("cart") == 2


def test_outcome_mapping_round_trip_prepare_train_generate(shop_data, plain_shop_data, tmp_path, caplog):
    splits, tokenizer, _ = load_prepared(shop_data)
    pretrain_language_model(
        splits,
        tokenizer,
        tmp_path / "lm",
        PretrainingArguments(
            family="opt", size="tiny", num_train_epochs=1, max_length=64, bf16=False, disable_tqdm=True
        ),
    )
    assert json.loads((tmp_path / "lm" / "config.json").read_text())["outcome_pages"]["cart"] == ["/cart", "/basket*"]
    config = tmp_path / "train.json"
    config.write_text(
        json.dumps(
            {
                "num-clusters": 2,
                "epochs": 1,
                "max_length": 64,
                "selector_hidden_sizes": [8],
                "selector_pretrain_epochs": 1,
                "bf16": False,
            }
        )
    )
    model_dir = tmp_path / "hetlm"
    assert (
        main(
            [
                "train",
                "--data",
                str(shop_data),
                "--pretrained",
                str(tmp_path / "lm"),
                "--out",
                str(model_dir),
                "--config",
                str(config),
                "--min-cluster-size",
                "1",
            ]
        )
        == 0
    )
    model_config = json.loads((model_dir / "config.json").read_text())
    assert PageRules.from_dict(model_config) == PageRules.of_tokenizer(tokenizer)

    # A new log of raw URL variants: generate maps them exactly as prepare did, so none is unknown.
    new_log = tmp_path / "new.csv"
    new_log.write_text(
        "visitor,time,url\n"
        "n1,2024-04-01T10:00:00Z,https://shop.example.com/?utm_source=ad\n"
        "n1,2024-04-01T10:01:00Z,/Category/Shoes/Running/\n"
        "n1,2024-04-01T10:02:00Z,/search?q=shoes&utm_campaign=x\n"
        "n1,2024-04-01T10:03:00Z,/basket/view#items\n"
        "n1,2024-04-01T10:04:00Z,/checkout/thank-you?order=1\n"
    )
    out = tmp_path / "predictions.jsonl"
    assert (
        main(
            [
                "generate",
                str(model_dir),
                str(new_log),
                "--out",
                str(out),
                "--no-progress",
                "--device",
                "cpu",
                "--max-new-tokens",
                "6",
                "--reader-option",
                "user_column=visitor",
                "--reader-option",
                "timestamp_column=time",
                "--reader-option",
                "page_column=url",
            ]
        )
        == 0
    )
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["users_predicted"] == 1 and summary["input_pages"] == 5
    assert summary["unknown_input_pages"] == 0, summary["unknown_pages_most_common"]
    assert summary["outcome_pages"] == model_config["outcome_pages"]
    assert summary["url_normalization"] == model_config["url_normalization"]

    # evaluate records the data's outcome definition, and warns when the model's rules are not the data's.
    with caplog.at_level(logging.WARNING, logger="evaluation.batch_evaluation"):
        assert (
            main(
                [
                    "evaluate",
                    str(model_dir),
                    "--data",
                    str(shop_data),
                    "--out",
                    str(tmp_path / "same"),
                    "--no-progress",
                    "--device",
                    "cpu",
                    "--max-new-tokens",
                    "6",
                ]
            )
            == 0
        )
        assert "other rules" not in caplog.text
        assert (
            main(
                [
                    "evaluate",
                    str(model_dir),
                    "--data",
                    str(plain_shop_data),
                    "--out",
                    str(tmp_path / "other"),
                    "--no-progress",
                    "--device",
                    "cpu",
                    "--max-new-tokens",
                    "6",
                ]
            )
            == 0
        )
    assert "trained on pages mapped by other rules" in caplog.text
    report = json.loads((tmp_path / "same" / "hetlm" / "report.json").read_text())
    assert "'/basket*'" in report["metadata"]["outcome_pages"]
