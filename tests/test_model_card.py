"""The model card: built with huggingface_hub's ModelCard, every section present, facts kept across reloads."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from modeling_fixtures import tiny_model
from modeling_hetlm import HeTLMForBrowsing
from modeling_hetlm.hub_hetlm import CARD_FACTS_FILE, update_model_card

SECTIONS = [
    "Intended use",
    "Limitations",
    "Clusters",
    "Training data",
    "Outcome definition",
    "Training",
    "Metrics",
    "Usage",
    "Licence",
]
SIMULATED = {
    "synthetic": True,
    "label": "SYNTHETIC DATA",
    "source": "simulator",
    "format": "simulator",
    "users": {"with_events": 250, "in_examples": 200},
    "outcome_rates": {"cart": 0.125, "purchase": 0.0625},
    "splits": {"train": {"users": 160}},
}


def section_titles(card: ModelCard) -> list[str]:
    return [line[3:] for line in card.text.splitlines() if line.startswith("## ")]


@pytest.fixture
def saved(tmp_path):
    model = tiny_model("opt", num_clusters=2)
    model.save_pretrained(tmp_path, training_summary={"training users": 160, "cluster_sizes": [100, 60]})
    return model, tmp_path


def test_card_has_every_section_and_flags_synthetic_data(saved):
    _, folder = saved
    update_model_card(folder, data_summary=SIMULATED)
    card = ModelCard.load(folder / "README.md")
    assert section_titles(card) == SECTIONS
    assert card.data.license == "apache-2.0" and card.data.library_name == "transformers"
    assert card.data.pipeline_tag is None and "next-session-prediction" in card.data.tags
    assert "synthetic-data" in card.data.tags
    assert "**Synthetic** sessions from the HeTLM simulator" in card.text
    assert "**Trained on synthetic data**" in card.text
    assert "| 0 | 100 |" in card.text and "| 1 | 60 |" in card.text
    assert "**cart**: the next session contains one of `cart` (12.5% of target sessions)" in card.text
    assert "**purchase**: the next session contains one of `purchase` (6.2% of target sessions)" in card.text
    assert "Not evaluated yet" in card.text and card.data.eval_results is None


def test_metrics_are_written_back_as_eval_results(saved):
    _, folder = saved
    update_model_card(
        folder, metrics={"IoU": 0.3125, "HR": 0.5, "users": 40, "cluster": "Combined", "CoP": float("nan")}
    )
    update_model_card(folder, metrics={"HR": 0.75})
    card = ModelCard.load(folder / "README.md")
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {"IoU": 0.3125, "HR": 0.75, "users": 40}
    assert "| IoU | 0.3125 |" in card.text and "| HR | 0.7500 |" in card.text and "CoP" not in card.text
    real = {"synthetic": False, "source": "logs/shop.csv", "format": "csv", "users": {"in_examples": 9}}
    update_model_card(folder, data_summary=real)
    card = ModelCard.load(folder / "README.md")
    assert "synthetic-data" not in card.data.tags and "Synthetic" not in card.text
    assert "Source `logs/shop.csv` (format `csv`, 9 users with an example)" in card.text
    assert card.data.eval_results[0].dataset_name == "logs/shop.csv"


def test_a_reloaded_model_saves_the_same_card(saved, tmp_path_factory):
    _, folder = saved
    update_model_card(folder, data_summary=SIMULATED, metrics={"IoU": 0.25})
    reloaded = HeTLMForBrowsing.from_pretrained(folder)
    again = tmp_path_factory.mktemp("again")
    reloaded.save_pretrained(again)
    assert (again / "README.md").read_text() == (folder / "README.md").read_text()
    assert json.loads((again / CARD_FACTS_FILE).read_text()) == json.loads((folder / CARD_FACTS_FILE).read_text())


def test_bad_card_inputs_are_clear_errors(saved, tmp_path):
    model, folder = saved
    with pytest.raises(ValueError, match="has 3 entries for 2 clusters"):
        model.write_model_card(folder, training_summary={"cluster_sizes": [1, 2, 3]})
    with pytest.raises(OSError, match="no hetlm_card.json"):
        update_model_card(tmp_path / "elsewhere", metrics={"HR": 0.5})
    (folder / CARD_FACTS_FILE).write_text("{not json")
    with pytest.raises(OSError, match="cannot read the model card facts"):
        update_model_card(folder, metrics={"HR": 0.5})
