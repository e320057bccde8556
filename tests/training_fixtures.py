"""Small simulated data sets for the training tests, and the tiny encoder they use instead of MiniLM.

``prepare_small_store`` runs the real ``hetlm prepare`` pipeline on the simulator with a small
store (4 categories x 2 subcategories x 5 products: 54 pages) and strongly different segments.

Example:
    >>> splits, tokenizer = simulated_splits(num_users=60)
    >>> sorted(splits)
    ['test', 'train', 'validation']
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from modeling_hetlm.builders import tiny_encoder  # noqa: F401  (re-exported for the tests)
from tokenization.examples import ExampleOptions, load_prepared
from tokenization.prepare import prepare


def prepare_small_store(out_dir: str | Path, num_users: int = 300, seed: int = 0, num_segments: int = 3) -> Path:
    """Write a prepared dataset folder of ``num_users`` simulated users (validation 10% of the non-test users)."""
    simulator = {
        "num_users": num_users,
        "seed": seed,
        "num_categories": 4,
        "subcategories_per_category": 2,
        "products_per_subcategory": 5,
        "num_segments": num_segments,
        "sessions_per_user": (3, 5),
        "max_session_length": 10,
    }
    options = ExampleOptions(validation_fraction=0.1, test_fraction=0.1, seed=seed)
    prepare("simulator", "simulator", out_dir, options, reader_options=simulator, progress=False)
    return Path(out_dir)


def simulated_splits(num_users: int = 300, seed: int = 0, num_segments: int = 3):
    """``(DatasetDict, page tokenizer)`` of a freshly prepared small store."""
    splits, tokenizer, _ = load_prepared(prepare_small_store(tempfile.mkdtemp(), num_users, seed, num_segments))
    return splits, tokenizer
