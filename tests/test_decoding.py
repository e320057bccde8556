"""The evaluation's decoding, ranking and uncertainty wiring, against hand-computed cases: the routed
logits and the first-page ranking of a model, sampled forecasts whose samples are known (top_k=1),
thresholds tuned on validation and applied to test, and intervals in the comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM

from evaluation.baselines import RepeatLastSessionBaseline
from evaluation.batch_evaluation import EvaluationOptions
from evaluation.forecasts import Forecast, SessionForecaster, sampled_forecast, session_forecast
from evaluation.model_forecaster import ModelForecaster
from evaluation.report import evaluate_forecaster, save_comparison
from inference.prompts import build_prompt, pad_sequences
from inference.session_generator import ModelSessionGenerator
from modeling_fixtures import FAMILIES, USERS, tiny_model
from tokenization.page_tokenizer import build_page_tokenizer

PAGES = ["home", "shoes", "bags", "cart", "purchase"]


@pytest.fixture(scope="module")
def tiny_lm():
    torch.manual_seed(0)
    tokenizer = build_page_tokenizer(PAGES)
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=False,
        )
    )
    return lm.eval(), tokenizer


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_logits_are_the_assigned_predictors_and_recommend_ranks_them(family):
    model = tiny_model(family)
    tokenizer = model.page_tokenizer
    prompts = [build_prompt(tokenizer, user, 60) for user in USERS]
    ids, mask = pad_sequences(prompts, tokenizer.pad_token_id, side="left")
    output = model(ids, mask, return_logits=True)
    plain = model(ids, mask)
    assert plain.logits is None and torch.equal(plain.loss, output.loss)  # the losses are untouched
    positions = (mask.cumsum(dim=1) * mask - 1).clamp(min=0)
    for row, cluster in enumerate(output.assignments.tolist()):
        expected = model.predictors[cluster](
            input_ids=ids[row : row + 1], attention_mask=mask[row : row + 1], position_ids=positions[row : row + 1]
        ).logits[0]
        torch.testing.assert_close(output.logits[row], expected)
    top = model.recommend(ids, mask, k=3, page_tokenizer=tokenizer)
    page_logits = output.logits[:, -1].clone()
    page_logits[:, :4] = float("-inf")  # the specials are never recommended
    assert top.page_ids.tolist() == page_logits.topk(3).indices.tolist()
    assert top.pages[0] == tokenizer.convert_ids_to_tokens(top.page_ids[0].tolist())
    torch.testing.assert_close(top.scores.exp().sum(dim=1) <= 1.0, torch.ones(len(USERS), dtype=torch.bool))
    with pytest.raises(ValueError, match="k must lie"):
        model.recommend(ids, mask, k=len(tokenizer))


def test_a_planted_first_page_is_ranked_first(tiny_lm):
    lm, tokenizer = tiny_lm
    generator = ModelSessionGenerator(lm, tokenizer, max_new_tokens=4)
    users = [[["home", "shoes"]]]
    batch = generator.encode(users)
    with torch.no_grad():
        hidden = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state[0, -1]
        lm.lm_head.weight.zero_()
        lm.lm_head.weight[tokenizer.convert_tokens_to_ids("bags")] = hidden * 10
        lm.lm_head.weight[tokenizer.bos_token_id] = hidden * 20  # a special: never a candidate
    assert generator.recommend(users, k=1) == [["bags"]]
    forecasts, _ = ModelForecaster(generator, decoding="greedy").forecast(users)
    assert forecasts[0].ranked_pages[0] == "bags" and len(forecasts[0].ranked_pages) == len(PAGES)
    test = Dataset.from_dict({"input_sessions": users * 2, "target_session": [["bags", "home"], ["home"]]})
    report = evaluate_forecaster(ModelForecaster(generator, decoding="greedy"), test, progress=False)
    # user 1: rank 1; user 2: "home" ties with the other zero-logit pages (pessimistic order by id does not
    # matter: its rank is 2 to 5), so MRR@10 = (1 + 1/rank) / 2 with rank in [2, 5].
    assert report.combined["Recall@10"] == 1.0 and 0.6 <= report.combined["MRR@10"] <= 0.75


def test_sampling_with_top_k_1_repeats_the_greedy_session(tiny_lm):
    lm, tokenizer = tiny_lm
    generator = ModelSessionGenerator(lm, tokenizer, max_new_tokens=4)
    users = [[["home", "cart"]], [["bags"], ["shoes", "purchase"]]]
    greedy, _ = generator.greedy(users)
    torch.manual_seed(0)
    forecasts, _ = ModelForecaster(generator, num_samples=5, top_k=1).forecast(users)
    for forecast, session in zip(forecasts, greedy):
        assert forecast.page_probabilities == dict.fromkeys(dict.fromkeys(session), 1.0)
        assert forecast.outcome_probabilities == session_forecast(session).outcome_probabilities


def test_sampled_forecast_shares():
    forecast = sampled_forecast([["home", "cart"], ["home", "home"], ["purchase"], ["bags", "cart"]], ["home"])
    assert forecast.page_probabilities == {"cart": 0.5, "home": 0.5, "bags": 0.25, "purchase": 0.25}
    assert forecast.outcome_probabilities == (0.5, 0.25, 0.75)


class PlantedForecaster:
    """Forecasts looked up by the user's last input page: a forecaster whose probabilities are known."""

    probabilistic = True

    def __init__(self, forecasts: dict[str, Forecast]):
        self.forecasts = forecasts

    def forecast(self, input_sessions):
        return [self.forecasts[sessions[-1][-1]] for sessions in input_sessions], None


def test_thresholds_are_tuned_on_validation_then_applied_to_test():
    forecaster = PlantedForecaster(
        {
            "a": Forecast([], {"home": 0.9, "shoes": 0.6, "bags": 0.2, "cart": 0.7}, (0.7, 0.0, 0.7), ["home"]),
            "b": Forecast([], {"home": 0.5, "bags": 0.4, "cart": 0.3, "purchase": 0.3}, (0.3, 0.3, 0.5), ["bags"]),
        }
    )
    validation = Dataset.from_dict(
        {"input_sessions": [[["a"]], [["b"]]], "target_session": [["home", "shoes", "cart"], ["home", "purchase"]]}
    )
    # theta_cart: P(cart) = 0.7 (positive) and 0.3 (negative) -> 0.7 (F1 1); theta_purchase: 0.3 (F1 1).
    # With cart / purchase fixed, tau = 0.5 keeps {home, shoes, cart} and {home, purchase}: mean IoU 1 (the largest
    # such tau; tau = 0.4 adds bags to user b).
    test = Dataset.from_dict(
        {"input_sessions": [[["b"]], [["a"]]], "target_session": [["bags", "home"], ["home", "cart"]]}
    )
    report = evaluate_forecaster(
        forecaster, test, validation, progress=False, decoding="sampled", page_rule="threshold"
    )
    assert report.decisions["tau"]["threshold"] == 0.5 and report.decisions["tau"]["score"] == 1.0
    assert report.decisions["theta"]["Cart"]["threshold"] == 0.7
    assert report.decisions["theta"]["Purchase"]["threshold"] == 0.3
    assert report.generated == [["home", "purchase"], ["home", "cart", "shoes"]]
    # IoU: {home, purchase} vs {bags, home} = 1/3; {home, cart, shoes} vs {home, cart} = 2/3.
    assert report.combined["IoU"] == pytest.approx(0.5)
    assert report.combined["CoP F1"] == pytest.approx(2 / 3)  # both predicted CoP, one actual
    assert report.combined["MRR@10"] == pytest.approx(1.0)  # bags first for b, home first for a
    assert report.combined["Cart Brier"] == pytest.approx((0.3**2 + 0.3**2) / 2)
    with pytest.raises(ValueError, match="needs validation users"):
        evaluate_forecaster(forecaster, test, progress=False)


def test_the_comparison_has_intervals_and_paired_tests(tmp_path):
    test = Dataset.from_dict(
        {
            "input_sessions": [[["home", "cart"]], [["bags"]], [["shoes"]], [["home"]]] * 5,
            "target_session": [["home", "cart"], ["bags"], ["home"], ["home", "purchase"]] * 5,
        }
    )
    repeat = evaluate_forecaster(
        SessionForecaster(RepeatLastSessionBaseline(), ["home"]), test, name="repeat", progress=False
    )
    popular = evaluate_forecaster(
        SessionForecaster(lambda users: ([["home"]] * len(users), None)), test, name="home", progress=False
    )
    save_comparison([popular, repeat], tmp_path, baseline=popular)
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    for report in (repeat, popular):
        for metric, interval in comparison["uncertainty"]["intervals"][report.name].items():
            value = report.combined[metric]
            assert interval["low"] <= value <= interval["high"] and interval["estimate"] == pytest.approx(value)
    paired = comparison["uncertainty"]["paired"]["tests"]["repeat"]
    # HR: repeat hits 3 of 4 user types (shoes misses), home hits 3 of 4 (bags misses): difference 0.
    assert paired["HR"]["difference"] == pytest.approx(0.0) and paired["HR"]["p_value"] == 1.0
    # NDCG@10: repeat ranks home 1st for types 1 and 4, bags 1st, home 2nd after shoes; home ranks home first only.
    expected = np.mean([1.0, 1.0, 1 / np.log2(3), 1.0]) - np.mean([1.0, 0.0, 1.0, 1.0])
    assert paired["NDCG@10"]["difference"] == pytest.approx(expected)
    text = (tmp_path / "comparison.md").read_text()
    assert "95% bootstrap intervals" in text and "Paired tests against home" in text


def test_sampled_decoding_is_never_tuned_on_the_scored_split():
    with pytest.raises(ValueError, match="another split"):
        EvaluationOptions(split="validation", device="cpu")
    assert EvaluationOptions(split="validation", decoding="greedy", device="cpu").decoding == "greedy"


def test_hetlm_evaluate_decodes_greedily_when_asked(smoke_run, tmp_path):
    from application.cli import main as cli_main

    assert (
        cli_main(
            [
                "--log-level",
                "WARNING",
                "evaluate",
                str(smoke_run / "lm-small"),
                "repeat-last",
                "--data",
                str(smoke_run / "data"),
                "--baseline",
                "repeat-last",
                "--decoding",
                "greedy",
                "--max-users",
                "20",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "lm-small" / "report.json").read_text())
    assert report["decoding"] == "greedy" and report["decisions"] is None
    assert 0 <= report["rows"][-1]["NDCG@10"] <= 1 and report["rows"][-1]["Cart Brier"] is not None
    assert "greedy (one session per user" in (tmp_path / "comparison.md").read_text()


def test_hetlm_evaluate_keeps_the_threshold_rule_and_skips_the_history_blend_when_asked(smoke_run, tmp_path):
    from application.cli import main as cli_main

    arguments = ["--log-level", "WARNING", "evaluate", str(smoke_run / "lm-small"), "--data", str(smoke_run / "data")]
    arguments += ["--max-users", "10", "--num-samples", "4", "--out", str(tmp_path), "--no-progress"]
    assert cli_main([*arguments, "--page-rule", "threshold", "--no-history-blend"]) == 0
    report = json.loads((tmp_path / "lm-small" / "report.json").read_text())
    assert report["decisions"]["page_rule"] == "threshold" and 0 < report["decisions"]["tau"]["threshold"] <= 1
    assert not (tmp_path / "lm-small+history").exists()
    assert "pages with P >= tau=" in (tmp_path / "comparison.md").read_text()
