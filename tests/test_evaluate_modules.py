"""The `evaluate` modules load offline from their folders, also where the package is not installed, and give the
plain functions' values."""

import doctest
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import evaluate
import numpy as np
import pytest

from evaluation import metric_path
from evaluation.bleu import bleu_score
from evaluation.metric_modules import METRIC_MODULES, METRICS_DIR
from evaluation.outcome_metrics import OUTCOME_CART, OUTCOME_PURCHASE, outcome_scores
from evaluation.outcome_probabilities import outcome_probability_scores
from evaluation.page_metrics import page_generation_scores
from evaluation.page_sets import SPECIALS
from evaluation.ranking import ranking_scores
from tokenization import constants
from tokenization.constants import SPECIAL_TOKENS

PACKAGES = {"evaluation", "tokenization", "modeling_hetlm", "trainers", "inference", "application"}
PAGES = ["home", "shoes", "bags", "hats", "cart", "purchase", "[UNK]"]


@pytest.fixture(scope="module")
def sessions():
    rng = np.random.default_rng(0)
    generated = [list(rng.choice(PAGES, size=rng.integers(0, 6))) for _ in range(50)]
    actual = [list(rng.choice(PAGES[:-1], size=rng.integers(0, 5))) for _ in range(50)]
    inputs = [list(rng.choice(PAGES[:-1], size=rng.integers(1, 8))) for _ in range(50)]
    return generated, actual, inputs


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    # Load from another working directory, to show nothing depends on the repository root.
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("elsewhere"))
    try:
        yield {name: evaluate.load(metric_path(name)) for name in METRIC_MODULES}
    finally:
        os.chdir(previous)


def test_every_module_has_a_folder_script_and_metric_card():
    for name in METRIC_MODULES:
        assert (METRICS_DIR / name / f"{name}.py").is_file()
        assert (METRICS_DIR / name / "README.md").read_text().startswith("---\ntitle:")
    with pytest.raises(ValueError, match="unknown metric module 'bleu'"):
        metric_path("bleu")


def test_page_generation_module_matches_function(modules, sessions):
    generated, actual, inputs = sessions
    vocabulary = set(PAGES[:-1])
    expected = page_generation_scores(generated, actual, inputs, vocabulary)
    results = modules["page_generation"].compute(
        predictions=generated, references=actual, inputs=inputs, vocabulary=vocabulary
    )
    assert expected["n_excluded_empty_actual"] > 0
    assert results == pytest.approx(expected)


def test_outcome_module_matches_function_with_batches(modules, sessions):
    generated, actual, _ = sessions
    metric = modules["browsing_outcomes"]
    metric.add_batch(predictions=generated[:20], references=actual[:20])
    metric.add_batch(predictions=generated[20:], references=actual[20:])
    assert metric.compute() == pytest.approx(outcome_scores(generated, actual))


def test_bleu_module_matches_function(modules, sessions):
    generated, actual, _ = sessions
    for level in ("sentence", "corpus"):
        results = modules["page_bleu"].compute(predictions=generated, references=actual, level=level)
        assert results["bleu"] == pytest.approx(bleu_score(generated, actual, level=level))


def test_ranking_module_matches_function(modules):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(40, 12)).astype(np.float32)
    targets = rng.integers(4, 12, size=40)
    results = modules["page_ranking"].compute(
        predictions=scores.tolist(), references=targets.tolist(), ks=(1, 5), exclude_ids=[0, 1, 2, 3]
    )
    assert results == pytest.approx(ranking_scores(scores, targets, ks=(1, 5), exclude_ids=[0, 1, 2, 3]))


def test_outcome_probability_module_matches_function_with_batches(modules):
    rng = np.random.default_rng(2)
    probabilities = rng.random((30, 3))
    labels = (rng.random((30, 2)) < probabilities[:, :2]).astype(int)
    metric = modules["outcome_probabilities"]
    metric.add_batch(predictions=probabilities[:12].tolist(), references=labels[:12].tolist())
    metric.add_batch(predictions=probabilities[12:].tolist(), references=labels[12:].tolist())
    results = metric.compute(epsilon=0.01)
    expected = outcome_probability_scores(probabilities, labels, epsilon=0.01)
    assert results.pop("undefined_auc") == expected.pop("undefined_auc") == []
    assert results == pytest.approx(expected)


def test_outcome_probability_module_imports_nothing_from_the_package():
    # The script and its logic import relatively from their own folder, never the HeTLM packages.
    folder = METRICS_DIR / "outcome_probabilities"
    for script in folder.glob("*.py"):
        imports = [line for line in script.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert imports and not [line for line in imports if line.split()[1].split(".")[0] in PACKAGES], script


@pytest.mark.parametrize("name", METRIC_MODULES)
def test_kwargs_description_example_runs(modules, name):
    # _KWARGS_DESCRIPTION is the module's inputs_description; its example must run as written.
    test = doctest.DocTestParser().get_doctest(modules[name].inputs_description, {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert test.examples and runner.failures == 0


CHILD_SCRIPT = """
import importlib.util, json, sys
for name in ("evaluation", "tokenization", "modeling_hetlm", "trainers", "inference", "application"):
    if importlib.util.find_spec(name) is not None:
        sys.exit(f"{name} is importable: the package is not hidden")
import evaluate
results = {}
for name, kwargs in json.loads(sys.argv[1]).items():
    module = evaluate.load(name)
    results[name] = [type(module).__name__, module.compute(**kwargs)]
print(json.dumps(results))
"""


def test_modules_load_where_the_package_is_not_installed(tmp_path, sessions):
    # The folders copied elsewhere (links followed, as an upload does), a fresh interpreter without the
    # site hook (so neither the editable-install finder nor the repository is on the path, only the
    # installed libraries), HF_HUB_OFFLINE=1, an empty modules cache and another working directory.
    generated, actual, inputs = sessions
    shutil.copytree(METRICS_DIR, tmp_path / "metrics")
    ranking_inputs = {"predictions": [[0.1, 0.7, 0.2], [0.5, 0.1, 0.4]], "references": [1, 2], "ks": [1, 2]}
    requests = {
        "page_generation": {"predictions": generated, "references": actual, "inputs": inputs},
        "browsing_outcomes": {"predictions": generated, "references": actual},
        "page_ranking": ranking_inputs,
        "page_bleu": {"predictions": generated, "references": actual},
        "outcome_probabilities": {"predictions": [[0.9, 0.2, 0.9], [0.1, 0.6, 0.6]], "references": [[1, 0], [0, 1]]},
    }
    library_paths = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_MODULES_CACHE=str(tmp_path / "modules"),
        PYTHONPATH=os.pathsep.join(library_paths),
    )
    completed = subprocess.run(
        [sys.executable, "-S", "-c", CHILD_SCRIPT, json.dumps(requests)],
        cwd=tmp_path / "metrics",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.splitlines()[-1])
    assert {name: class_name for name, (class_name, _) in results.items()} == {
        "page_generation": "PageGeneration",
        "browsing_outcomes": "BrowsingOutcomes",
        "page_ranking": "PageRanking",
        "page_bleu": "PageBleu",
        "outcome_probabilities": "OutcomeProbabilities",
    }
    assert results["page_generation"][1] == pytest.approx(page_generation_scores(generated, actual, inputs))
    assert results["browsing_outcomes"][1] == pytest.approx(outcome_scores(generated, actual))
    expected_ranking = ranking_scores(np.array(ranking_inputs["predictions"]), np.array([1, 2]), ks=(1, 2))
    assert results["page_ranking"][1] == pytest.approx(expected_ranking)
    assert results["page_bleu"][1]["bleu"] == pytest.approx(bleu_score(generated, actual))
    probability_request = requests["outcome_probabilities"]
    expected_probabilities = outcome_probability_scores(
        np.array(probability_request["predictions"]), np.array(probability_request["references"])
    )
    assert results["outcome_probabilities"][1]["Cart Brier"] == pytest.approx(expected_probabilities["Cart Brier"])
    assert (tmp_path / "modules").is_dir()


def test_module_constants_match_the_tokenizer():
    # The metric folders cannot import tokenization/, so they spell these names themselves.
    assert SPECIALS == frozenset(SPECIAL_TOKENS)
    assert (OUTCOME_CART, OUTCOME_PURCHASE) == (constants.OUTCOME_CART, constants.OUTCOME_PURCHASE)
