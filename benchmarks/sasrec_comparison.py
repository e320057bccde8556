"""SASRec of RecBole against our models and baselines on the next session's first page (issue 11, item 8).

The comparison uses the split and the metrics of our report (:mod:`evaluation.report`):

- **Training data**: the train users' sessions, the ones our LMs train on
  (:func:`tokenization.examples.user_histories` of the train split), concatenated in time order with an
  ``[EOS]`` item closing every session (``--no-session-boundaries`` leaves it out). The boundary is
  the default because it is what our LMs see (``[BOS] ... [EOS]``): a history ending with ``[EOS]``
  asks for the first page of a *new* session, which is what is scored. Each user's sequence gives
  one training row per item after its first, its last ``max_seq_len`` items as history: RecBole's
  own sequential augmentation, written out here because the split is ours (RecBole's benchmark files).
- **Validation** (early stopping) and **test**: one row per user of that split: history = the
  user's input sessions (each closed by ``[EOS]``), target = the first page of the next session.
  Pages unseen in train are dropped from histories (our LMs read them as ``[UNK]``; counted).
- **Scoring**, exactly as our report: candidates = every page of the page tokenizer (specials, the
  boundary item included, are not candidates), rank = 1 + the candidates scored at least as high
  as the target (:func:`evaluation.ranking.target_ranks`), Recall@10/20, NDCG@10/20, MRR@10 over
  the users whose next session is not empty (:func:`evaluation.ranking.scores_from_ranks`). A
  target page unseen in train counts as a miss, as it does for our models. RecBole's own evaluator
  on the same test rows is printed too, as a check of the conversion (its candidates include the
  boundary item).
- **Model and budget**: RecBole's SASRec with its standard hyper-parameters (hidden 64, inner 256,
  2 layers, 2 heads, dropout 0.5, GELU, max_seq_len 50, cross-entropy over all items), Adam lr 1e-3,
  batch 256, at most ``--epochs`` epochs (default 50) with RecBole's early stopping on the
  validation users' NDCG@10 (patience ``--stopping-step``, default 5); the best epoch's weights
  are kept in memory and scored. Seeds are fixed (RecBole's ``init_seed``), torch uses one thread.

RecBole is an optional extra, installed into its own venv (never the package's main one), e.g.:

    $ python3 -m venv /work/venv-sasrec
    $ /work/venv-sasrec/bin/pip install torch==2.13.0
    $ /work/venv-sasrec/bin/pip install -e ".[comparison]"
    $ OMP_NUM_THREADS=1 /work/venv-sasrec/bin/python benchmarks/sasrec_comparison.py runs/default/data \\
          --summary runs/default/summary.json

Measured on the default run of main (``/work/main/runs/default``: 2,000 simulated users, 1,710 train
users giving 81,538 training rows, 90 validation and 200 test users; SYNTHETIC DATA) with
``--epochs 8 --stopping-step 3`` (the CPU time allowed no more: 210-830 s an epoch), RecBole 1.2.1,
torch 2.13.0 CPU, NumPy 2.4.6, pandas 2.3.3, one thread on a shared, loaded 2-core AMD EPYC: 173,696
parameters, best validation NDCG@10 0.352 at the 7th of 8 epochs (still near its best: more epochs
may help), 54 min in all. The models' rows are the run's summary.json (sampled decoding; the
ranking is each model's next-token distribution after the prompt's ``[BOS]``):

| model | N | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | MRR@10 |
|---|---:|---:|---:|---:|---:|---:|
| SASRec (RecBole) | 200 | 0.6500 | 0.7800 | 0.3967 | 0.4297 | 0.3196 |
| lm-large | 200 | 0.5550 | 0.6550 | 0.3106 | 0.3359 | 0.2360 |
| lm-small | 200 | 0.6600 | 0.7900 | 0.3903 | 0.4233 | 0.3077 |
| kmeans-k6 | 200 | 0.6650 | 0.7850 | 0.3984 | 0.4286 | 0.3164 |
| kmeans-auto | 200 | 0.6650 | 0.7750 | 0.3942 | 0.4225 | 0.3112 |
| hetlm-a5-b9 | 200 | 0.6500 | 0.7900 | 0.3918 | 0.4272 | 0.3113 |
| repeat-last | 200 | 0.4200 | 0.4350 | 0.3123 | 0.3162 | 0.2784 |
| most-popular | 200 | 0.2400 | 0.3800 | 0.0938 | 0.1292 | 0.0500 |
| markov | 200 | 0.4000 | 0.5250 | 0.1785 | 0.2099 | 0.1119 |
| personal-popular | 200 | 0.6200 | 0.7300 | 0.3326 | 0.3609 | 0.2446 |
| sknn | 200 | 0.5250 | 0.6800 | 0.2760 | 0.3146 | 0.2000 |

SASRec ranks at the level of the small LM-based models (NDCG@10 0.397 against 0.390-0.398; with 200
test users no interval was computed, and differences this small are not evidence either way) and
above every simple baseline and the large LM. Without the boundary item (``--no-session-boundaries
--max-train-minutes 17``: 6 epochs, the validation NDCG@10 best at the 2nd, 0.265, then falling) it
reaches only Recall@10 0.440, NDCG@10 0.237, MRR@10 0.176: plain next-item training learns the
within-session transitions, not the first page of a new session. RecBole's own evaluator on the
same test rows gave the same figures (Recall@10 0.65, NDCG@10 0.3967, MRR@10 0.3196).

Example:
    >>> sessions = [["home", "shoes"], ["bags"]]
    >>> item_sequence(sessions, {"home": 5, "shoes": 6, "bags": 7}, boundary="3")
    (['5', '6', '3', '7', '3'], 0)
    >>> rows = training_rows([("u", ["5", "6", "3"])], max_seq_len=2)
    >>> rows.histories, rows.targets
    ([['5'], ['5', '6']], ['6', '3'])
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.ranking import scores_from_ranks, target_ranks
from evaluation.report import RANKING_KS, RANKING_METRICS
from tokenization.examples import load_prepared, user_histories

logger = logging.getLogger(__name__)

DATASET_NAME = "hetlm"
# RecBole's benchmark files: <dataset>.<suffix>.inter, in the order train, valid, test.
BENCHMARK_SUFFIXES = ("train", "valid", "test")
HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token"
SASREC_HYPERPARAMETERS: dict[str, Any] = {
    "hidden_size": 64,
    "inner_size": 256,
    "n_layers": 2,
    "n_heads": 2,
    "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5,
    "hidden_act": "gelu",
    "loss_type": "CE",
    "MAX_ITEM_LIST_LENGTH": 50,
}


@dataclass
class SequenceRows:
    """Rows of one RecBole benchmark file: a user, its history (item tokens, oldest first), the next item."""

    user_ids: list[str] = field(default_factory=list)
    histories: list[list[str]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, user_id: str, history: list[str], target: str) -> None:
        self.user_ids.append(user_id)
        self.histories.append(history)
        self.targets.append(target)

    def count(self, reason: str, number: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + number


def item_sequence(
    sessions: Sequence[Sequence[str]], page_ids: Mapping[str, int], boundary: str | None
) -> tuple[list[str], int]:
    """A user's sessions as one item sequence (page ids as tokens, ``boundary`` closing each session when
    given) and the number of pages dropped because they are not in ``page_ids``.

    Example:
        >>> item_sequence([["a", "x"], ["b"]], {"a": 4, "b": 5}, boundary=None)
        (['4', '5'], 1)
    """
    items: list[str] = []
    dropped = 0
    for session in sessions:
        for page in session:
            if page in page_ids:
                items.append(str(page_ids[page]))
            else:
                dropped += 1
        if boundary is not None:
            items.append(boundary)
    return items, dropped


def training_rows(sequences: Iterable[tuple[str, list[str]]], max_seq_len: int) -> SequenceRows:
    """One row per item after a user's first: its last ``max_seq_len`` items before it -> the item
    (RecBole's ``SequentialDataset.data_augmentation``); see the module example."""
    rows = SequenceRows()
    for user_id, items in sequences:
        for position in range(1, len(items)):
            rows.add(user_id, items[max(0, position - max_seq_len) : position], items[position])
    return rows


def evaluation_rows(
    split: Iterable[Mapping[str, Any]], page_ids: Mapping[str, int], boundary: str | None, max_seq_len: int
) -> tuple[SequenceRows, list[str]]:
    """The rows of a validation or test split (history = the input sessions, target = the next
    session's first page) and every user's first target page (``""`` when its next session is empty).

    Users left out of the rows are counted: ``empty_target`` (excluded from the metrics, as in our
    report), ``unseen_target`` (a miss), ``empty_history`` (a miss: no page of the history is known);
    ``unseen_history_pages`` counts the pages dropped from histories.

    Example:
        >>> split = [{"user_id": "t1", "input_sessions": [["a"], ["b", "x"]], "target_session": ["b", "a"]},
        ...          {"user_id": "t2", "input_sessions": [["a"]], "target_session": ["x"]}]
        >>> rows, first_pages = evaluation_rows(split, {"a": 4, "b": 5}, boundary="3", max_seq_len=3)
        >>> rows.histories, rows.targets, first_pages, rows.counts
        ([['3', '5', '3']], ['5'], ['b', 'x'], {'unseen_history_pages': 1, 'unseen_target': 1})
    """
    rows = SequenceRows()
    first_pages = []
    for example in split:
        target = example["target_session"]
        first_pages.append(target[0] if target else "")
        history, dropped = item_sequence(example["input_sessions"], page_ids, boundary)
        if dropped:
            rows.count("unseen_history_pages", dropped)
        if not target:
            rows.count("empty_target")
        elif target[0] not in page_ids:
            rows.count("unseen_target")
        elif not any(item != boundary for item in history):
            rows.count("empty_history")
        else:
            rows.add(example["user_id"], history[-max_seq_len:], str(page_ids[target[0]]))
    return rows, first_pages


def write_benchmark_file(rows: SequenceRows, path: Path) -> Path:
    """Write ``rows`` as a RecBole atomic file (tab-separated, typed header, histories space-separated).

    Example:
        >>> rows = SequenceRows(["u"], [["5", "6"]], ["3"])
        >>> path = write_benchmark_file(rows, Path(tempfile.mkdtemp()) / "x.train.inter")
        >>> path.read_text().splitlines()
        ['user_id:token\\titem_id_list:token_seq\\titem_id:token', 'u\\t5 6\\t3']
    """
    lines = [HEADER]
    lines += [
        f"{user}\t{' '.join(history)}\t{target}"
        for user, history, target in zip(rows.user_ids, rows.histories, rows.targets)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class ConvertedData:
    """Our prepared data in RecBole's layout: the three benchmark files' rows and what scoring needs."""

    train: SequenceRows
    valid: SequenceRows
    test: SequenceRows
    test_first_pages: list[str]
    page_ids: dict[str, int]
    special_ids: list[int]
    boundary: str | None
    train_users: int
    vocabulary_size: int


def convert(data_dir: str | os.PathLike, session_boundaries: bool = True, max_seq_len: int = 50) -> ConvertedData:
    """Read a folder written by ``hetlm prepare`` and build the RecBole rows of its three splits.

    Item tokens are the page tokenizer's ids (so any page name is a valid RecBole token); the boundary
    item is the id of ``[EOS]``.
    """
    dataset, tokenizer, _ = load_prepared(data_dir)
    special_ids = sorted(set(tokenizer.all_special_ids))
    page_ids = {page: index for page, index in tokenizer.get_vocab().items() if index not in special_ids}
    boundary = str(tokenizer.eos_token_id) if session_boundaries else None
    sequences = []
    unseen_train_pages = 0
    for user_id, sessions in user_histories(dataset["train"]):
        items, dropped = item_sequence(sessions, page_ids, boundary)
        unseen_train_pages += dropped
        sequences.append((user_id, items))
    if unseen_train_pages:
        raise ValueError(f"{unseen_train_pages} train pages are not in the tokenizer fitted on the train pages")
    train = training_rows(sequences, max_seq_len)
    valid, _ = evaluation_rows(dataset["validation"], page_ids, boundary, max_seq_len)
    test, test_first_pages = evaluation_rows(dataset["test"], page_ids, boundary, max_seq_len)
    return ConvertedData(
        train, valid, test, test_first_pages, page_ids, special_ids, boundary, len(sequences), len(tokenizer)
    )


def our_ranking_metrics(scores: np.ndarray, data: ConvertedData) -> dict[str, float | int]:
    """Recall/NDCG/MRR of the test users by our definitions, from SASRec's scores ``[test rows, V]``
    over our vocabulary ids (the rows of ``data.test``; the users not among them are misses or excluded).

    Example:
        >>> rows = SequenceRows(["t1"], [["4"]], ["5"], {"unseen_target": 1, "empty_target": 1})
        >>> data = ConvertedData(SequenceRows(), SequenceRows(), rows, ["b", "x", ""], {"a": 4, "b": 5}, [0, 1, 2, 3],
        ...                      "3", train_users=1, vocabulary_size=6)
        >>> scores = np.array([[9.0, 9.0, 9.0, 9.0, 0.2, 0.1]])
        >>> metrics = our_ranking_metrics(scores, data)
        >>> metrics["Recall@10"], metrics["MRR@10"], metrics["n_users"]
        (0.5, 0.25, 2)
    """
    targets = np.array([int(target) for target in data.test.targets], dtype=np.int64)
    ranks = target_ranks(scores, targets, exclude_ids=data.special_ids) if targets.size else np.array([])
    misses = data.test.counts.get("unseen_target", 0) + data.test.counts.get("empty_history", 0)
    all_ranks = np.concatenate([ranks.astype(np.float64), np.full(misses, np.inf)])
    expected = sum(1 for page in data.test_first_pages if page)
    if all_ranks.size != expected:
        raise ValueError(f"{all_ranks.size} ranked test users, expected {expected} with a non-empty next session")
    return scores_from_ranks(all_ranks, RANKING_KS)


class TrainingBudgetSpent(Exception):
    """Raised after an epoch once ``max_train_minutes`` are spent; the best epoch so far is kept."""


@dataclass
class SASRecResult:
    """The trained SASRec's test scores ``[test rows, V]`` over our ids, RecBole's own test figures, the budget."""

    scores: np.ndarray
    recbole_test: dict[str, float]
    best_valid: dict[str, float]
    best_epoch: int
    epochs_run: int
    train_seconds: float
    parameters: int


def recbole_config(
    work_dir: Path, epochs: int, stopping_step: int, batch_size: int, learning_rate: float, seed: int, max_seq_len: int
) -> dict[str, Any]:
    """RecBole's settings: our three benchmark files, SASRec's standard hyper-parameters, full-sort evaluation."""
    return {
        "data_path": str(work_dir),
        "benchmark_filename": list(BENCHMARK_SUFFIXES),
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "alias_of_item_id": ["item_id_list"],
        **SASREC_HYPERPARAMETERS,
        "MAX_ITEM_LIST_LENGTH": max_seq_len,
        "train_neg_sample_args": None,
        "epochs": epochs,
        "stopping_step": stopping_step,
        "eval_step": 1,
        "train_batch_size": batch_size,
        "eval_batch_size": 1024,
        "learning_rate": learning_rate,
        "metrics": ["Recall", "NDCG", "MRR"],
        "topk": list(RANKING_KS),
        "valid_metric": "NDCG@10",
        "eval_args": {"order": "TO", "group_by": "user", "mode": "full"},
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "worker": 0,
        "checkpoint_dir": str(work_dir / "saved"),
        "show_progress": False,
        "log_wandb": False,
    }


def restore_numpy1_aliases() -> None:
    """Give NumPy 2 the three aliases that RecBole 1.2.1's ``Config`` reads (``np.float_``, ``np.complex_``,
    ``np.unicode_``, removed in NumPy 2.0) so that its own compatibility step, which re-creates ``np.float``,
    ``np.long``... from them, runs; with NumPy 1 nothing changes.

    Example:
        >>> restore_numpy1_aliases()
        >>> np.float_ is np.float64
        True
    """
    for name, value in {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}.items():
        if name not in vars(np):
            setattr(np, name, value)


def train_sasrec(
    data: ConvertedData,
    work_dir: Path,
    *,
    epochs: int = 50,
    stopping_step: int = 5,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    max_seq_len: int = 50,
    max_train_minutes: float | None = None,
) -> SASRecResult:
    """Write the benchmark files into ``work_dir``, train RecBole's SASRec with early stopping on the
    validation rows (and, when given, no new epoch after ``max_train_minutes``), and score the test rows
    (the best epoch's weights, kept in memory: no checkpoint file is written or unpickled)."""
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    class InMemoryBestTrainer(Trainer):
        """RecBole's trainer keeping the best epoch's weights in memory instead of a pickled checkpoint."""

        best_state: dict[str, torch.Tensor] | None = None
        best_epoch: int = -1

        def _save_checkpoint(self, epoch, verbose=True, **kwargs):
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.best_epoch = epoch

    folder = work_dir / DATASET_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, rows in zip(BENCHMARK_SUFFIXES, (data.train, data.valid, data.test)):
        write_benchmark_file(rows, folder / f"{DATASET_NAME}.{suffix}.inter")
    restore_numpy1_aliases()
    settings = recbole_config(work_dir, epochs, stopping_step, batch_size, learning_rate, seed, max_seq_len)
    previous_dir = Path.cwd()
    os.chdir(work_dir)  # RecBole's trainer writes its tensorboard folder into the working directory
    try:
        command_line, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config would read our --key=value options
        try:
            config = Config(model="SASRec", dataset=DATASET_NAME, config_dict=settings)
        finally:
            sys.argv = command_line
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        model = SASRec(config, train_data.dataset).to(config["device"])
        trainer = InMemoryBestTrainer(config, model)
        started = time.perf_counter()

        def stop_when_spent(epoch: int, valid_score: float) -> None:
            if max_train_minutes is not None and time.perf_counter() - started >= 60 * max_train_minutes:
                raise TrainingBudgetSpent(f"stopped after epoch {epoch}: {max_train_minutes} minutes spent")

        try:
            _, best_valid = trainer.fit(train_data, valid_data, verbose=True, saved=True, callback_fn=stop_when_spent)
        except TrainingBudgetSpent as stop:
            logger.warning("%s (best epoch %d)", stop, trainer.best_epoch)
            best_valid = trainer.best_valid_result
        train_seconds = time.perf_counter() - started
        model.load_state_dict(trainer.best_state)
        recbole_test = trainer.evaluate(test_data, load_best_model=False)
        item_tokens = dataset.field2id_token["item_id"]
        history = torch.zeros((len(data.test.histories), max_seq_len), dtype=torch.long)
        for row, items in enumerate(data.test.histories):
            history[row, : len(items)] = torch.as_tensor(dataset.token2id("item_id", items))
        lengths = torch.tensor([len(items) for items in data.test.histories], dtype=torch.long)
        model.eval()
        with torch.no_grad():
            recbole_scores = model.full_sort_predict(Interaction({"item_id_list": history, "item_length": lengths}))
    finally:
        os.chdir(previous_dir)
    scores = np.full((len(data.test.histories), data.vocabulary_size), -np.inf)
    our_ids = np.array([int(token) for token in item_tokens[1:]], dtype=np.int64)  # id 0 is RecBole's padding
    scores[:, our_ids] = recbole_scores[:, 1:].numpy()
    return SASRecResult(
        scores=scores,
        recbole_test={key: float(value) for key, value in recbole_test.items()},
        best_valid={key: float(value) for key, value in (best_valid or {}).items()},
        best_epoch=trainer.best_epoch,
        epochs_run=len(trainer.train_loss_dict),
        train_seconds=train_seconds,
        parameters=sum(parameter.numel() for parameter in model.parameters()),
    )


def comparison_table(sasrec: Mapping[str, float], models: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of the ranking metrics: SASRec's row, then each model's Combined row of a run summary.

    Example:
        >>> print(comparison_table({"Recall@10": 0.5, "Recall@20": 0.6, "NDCG@10": 0.3, "NDCG@20": 0.32,
        ...                         "MRR@10": 0.25, "n_users": 2}, {}))
        | model | N | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | MRR@10 |
        |---|---:|---:|---:|---:|---:|---:|
        | SASRec (RecBole) | 2 | 0.5000 | 0.6000 | 0.3000 | 0.3200 | 0.2500 |
    """
    lines = ["| model | N | " + " | ".join(RANKING_METRICS) + " |", "|---|---:|" + "---:|" * len(RANKING_METRICS)]
    rows = [("SASRec (RecBole)", sasrec.get("n_users"), sasrec)]
    rows += [(name, model["Combined"].get("N"), model["Combined"]) for name, model in models.items()]
    for name, users, figures in rows:
        lines.append(
            f"| {name} | {users} | " + " | ".join(f"{figures[metric]:.4f}" for metric in RANKING_METRICS) + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="a folder written by `hetlm prepare` (e.g. runs/default/data)")
    parser.add_argument("--summary", help="the run's summary.json: its models' ranking figures join the table")
    parser.add_argument("--no-session-boundaries", action="store_true", help="no [EOS] item between sessions")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--stopping-step", type=int, default=5, help="epochs without a better validation NDCG@10")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-seq-len", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-minutes", type=float, help="start no epoch after this much training time")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = convert(args.data_dir, session_boundaries=not args.no_session_boundaries, max_seq_len=args.max_seq_len)
    print(
        f"train users {data.train_users}, training rows {len(data.train.targets):,}, validation rows "
        f"{len(data.valid.targets)} {data.valid.counts}, test rows {len(data.test.targets)} {data.test.counts}, "
        f"session boundaries {'on' if data.boundary else 'off'}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sasrec-") as work_dir:
        result = train_sasrec(
            data,
            Path(work_dir),
            epochs=args.epochs,
            stopping_step=args.stopping_step,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            max_seq_len=args.max_seq_len,
            max_train_minutes=args.max_train_minutes,
        )
    ours = our_ranking_metrics(result.scores, data)
    models = json.loads(Path(args.summary).read_text(encoding="utf-8"))["models"] if args.summary else {}
    print(comparison_table(ours, models))
    print(
        f"\nSASRec: {result.parameters:,} parameters, {result.epochs_run} epochs run (best {result.best_epoch}), "
        f"training {result.train_seconds:.0f} s; RecBole's own test figures (candidates include the boundary "
        f"item): {result.recbole_test}"
    )
    figures = {
        "sasrec": ours,
        "recbole_test": result.recbole_test,
        "best_valid": result.best_valid,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": result.train_seconds,
        "parameters": result.parameters,
        "session_boundaries": data.boundary is not None,
        "settings": {key: value for key, value in vars(args).items() if key not in ("data_dir", "summary", "out")},
        "counts": {"train_rows": len(data.train.targets), "valid": data.valid.counts, "test": data.test.counts},
    }
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
