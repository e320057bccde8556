"""Composite metrics: hand-counted wins/ties/losses, the paper's Table 5 and the error cases."""

import pytest

from evaluation.composite import COMPOSITE_GROUPS, OVERALL, compare_metric, composite_scores
from evaluation.outcome_metrics import OUTCOME_METRICS
from evaluation.page_metrics import PAGE_MEAN_METRICS, PAGE_VARIANCE_METRICS

# Combined rows of the paper's Tables 2 (page means), 3 (variances) and 4 (outcomes); their column
# orders are ours.
PAPER_ROWS = {
    "OPT-2.7B": (
        (0.813, 0.424, 0.417, 0.31, 0.183, 0.035),
        (0.152, 0.121, 0.119, 0.109),
        (0.74, 0.869, 0.917, 0.55, 0.402, 0.551, 0.532, 0.255, 0.533, 0.542),
    ),
    "Kmeans K=6": (
        (0.761, 0.304, 0.275, 0.18, 0.186, 0.038),
        (0.182, 0.077, 0.074, 0.048),
        (0.665, 0.799, 0.861, 0.467, 0.4, 0.466, 0.41, 0.159, 0.411, 0.437),
    ),
    "HeTLM a=2 b=1": (
        (0.796, 0.367, 0.397, 0.265, 0.156, 0.036),
        (0.162, 0.101, 0.103, 0.082),
        (0.74, 0.849, 0.906, 0.501, 0.397, 0.50, 0.535, 0.216, 0.536, 0.518),
    ),
    "HeTLM a=5 b=9": (
        (0.816, 0.385, 0.407, 0.284, 0.197, 0.044),
        (0.15, 0.103, 0.107, 0.092),
        (0.741, 0.869, 0.918, 0.51, 0.371, 0.508, 0.537, 0.245, 0.537, 0.522),
    ),
}
ROWS = {
    model: dict(zip((*PAGE_MEAN_METRICS, *PAGE_VARIANCE_METRICS, *OUTCOME_METRICS), (*means, *variances, *outcomes)))
    for model, (means, variances, outcomes) in PAPER_ROWS.items()
}
OPT_2_7B, HETLM_A5_B9 = ROWS["OPT-2.7B"], ROWS["HeTLM a=5 b=9"]


@pytest.mark.parametrize(
    "model, expected",
    [
        # Table 5, "Compared with OPT-2.7B": Outcome Prediction, Page Gen Mean, Page Gen Var, Overall.
        ("Kmeans K=6", (0.0, 0.333, 0.75, 0.25)),
        ("HeTLM a=2 b=1", (0.3, 0.167, 0.75, 0.35)),
        ("HeTLM a=5 b=9", (0.5, 0.5, 1.0, 0.6)),
    ],
)
def test_reproduces_the_papers_table_5_when_ties_count_as_wins(model, expected):
    scores = composite_scores(ROWS[model], OPT_2_7B, ties_count_as_wins=True, decimals=3)
    assert [scores[group] for group in (*COMPOSITE_GROUPS, OVERALL)] == pytest.approx(expected, abs=1e-3)


def test_hand_counted_wins_ties_losses():
    # HeTLM (α=5, β=9) vs OPT-2.7B, outcomes: better on Cart Acc (0.741 > 0.74), CoP Acc, Cart Prec,
    # CoP Prec (4 wins); tie on Purchase Acc (0.869); worse on the 3 recalls, Purchase Prec, CoP F1 (5).
    # Page means: better HR, New-P, Val-P (3), worse IoA, IoP, IoU (3). Variances: all 4 lower (4 wins).
    scores = composite_scores(HETLM_A5_B9, OPT_2_7B)
    counts = {
        group: (scores[f"{group} wins"], scores[f"{group} ties"], scores[f"{group} losses"])
        for group in (*COMPOSITE_GROUPS, OVERALL)
    }
    assert counts == {
        "Outcome Prediction": (4, 1, 5),
        "Page Gen Mean": (3, 0, 3),
        "Page Gen Var": (4, 0, 0),
        "Overall Composite": (11, 1, 8),
    }
    # By default a tie is not a win: 4/10, 3/6, 4/4 and 11/20.
    assert scores["Outcome Prediction"] == pytest.approx(0.4)
    assert scores["Page Gen Mean"] == pytest.approx(0.5)
    assert scores["Page Gen Var"] == 1.0
    assert scores["Overall Composite"] == pytest.approx(11 / 20)


def test_lower_is_better_for_variances_only():
    assert compare_metric("IoA-var", 0.1, 0.2) == 1
    assert compare_metric("IoA", 0.1, 0.2) == -1
    assert compare_metric("HR", 0.5, 0.5) == 0


def test_decimals_turn_tiny_differences_into_ties():
    baseline = dict(OPT_2_7B)
    model = dict(OPT_2_7B, HR=0.8131)
    assert composite_scores(model, baseline)["Page Gen Mean wins"] == 1
    rounded = composite_scores(model, baseline, decimals=3)
    assert rounded["Page Gen Mean wins"] == 0 and rounded["Page Gen Mean ties"] == 6


def test_a_model_against_itself_ties_everywhere():
    scores = composite_scores(OPT_2_7B, OPT_2_7B)
    assert scores[OVERALL] == 0.0 and scores["Overall Composite ties"] == 20
    assert composite_scores(OPT_2_7B, OPT_2_7B, ties_count_as_wins=True)[OVERALL] == 1.0


def test_extra_keys_are_ignored():
    model = dict(HETLM_A5_B9, N=5253, BLEU=0.358, Cluster="Combined")
    assert composite_scores(model, OPT_2_7B) == composite_scores(HETLM_A5_B9, OPT_2_7B)


def test_missing_or_non_finite_metric_is_an_error():
    incomplete = {key: value for key, value in OPT_2_7B.items() if key != "CoP F1"}
    with pytest.raises(KeyError, match="model_row has no 'CoP F1'"):
        composite_scores(incomplete, OPT_2_7B)
    with pytest.raises(KeyError, match="baseline_row has no 'CoP F1'"):
        composite_scores(OPT_2_7B, incomplete)
    with pytest.raises(ValueError, match=r"baseline_row\['IoU-var'\] must be a finite number"):
        composite_scores(OPT_2_7B, dict(OPT_2_7B, **{"IoU-var": float("nan")}))
    with pytest.raises(ValueError, match=r"model_row\['HR'\] must be a finite number"):
        composite_scores(dict(OPT_2_7B, HR="0.8"), OPT_2_7B)
