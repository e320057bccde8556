"""The `evaluate` modules load offline from their folders and give the plain functions' values."""

import doctest
import os
import subprocess
import sys
import textwrap

import evaluate
import numpy as np
import pytest

from evaluation import metric_path
from evaluation.bleu import bleu_score
from evaluation.metric_modules import METRIC_MODULES, METRICS_DIR
from evaluation.outcome_metrics import outcome_scores
from evaluation.outcome_probabilities import outcome_probability_scores
from evaluation.page_metrics import page_generation_scores
from evaluation.ranking import ranking_scores

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


def test_loads_offline_in_a_fresh_process_and_cache(tmp_path):
    # A fresh interpreter, HF_HUB_OFFLINE=1, an empty modules cache and another working directory:
    # evaluate copies each script into the cache and imports it standalone.
    script = textwrap.dedent(
        """
        import evaluate
        from evaluation import METRIC_MODULES, metric_path
        for name in METRIC_MODULES:
            print(name, type(evaluate.load(metric_path(name))).__name__)
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [
        "page_generation", "PageGeneration", "browsing_outcomes", "BrowsingOutcomes",
        "page_ranking", "PageRanking", "page_bleu", "PageBleu", "outcome_probabilities", "OutcomeProbabilities",
    ]
    assert (tmp_path / "modules").is_dir()
