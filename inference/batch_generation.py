"""Batch prediction of every user's next session from an event log (the engine of ``hetlm generate``).

For a firm's everyday use (targeting, journeys): read an event log in any supported format, map its
pages with the rules the model's data was prepared with (URL normalisation and outcome pages,
:class:`tokenization.page_rules.PageRules`, read from the model's page tokenizer), group each user's
events into sessions with the same sessioniser as ``hetlm prepare``
(:func:`tokenization.examples.sessionize`), take the user's LAST ``max_input_sessions`` sessions as
the input (there is no target here: the prediction is the session after the last one in the log),
encode them with the model's own page tokenizer (pages unseen in training become ``[UNK]`` and
are counted), route each user to a cluster and generate the next session, greedy, in batches.
With ``num_samples`` N, N more sessions are sampled per user and the model's probability of ``cart`` /
``purchase`` along them (:mod:`inference.outcome_estimates`) estimates the probability of a cart / a
purchase in the next session.
Each row carries the user's cluster id and, when the model folder holds the clusters' profiles
(``cluster_profiles.json``, :mod:`evaluation.cluster_profiles`), the cluster's readable label
(``cluster_label``); without them the column is left out and a warning says why.

One row per user is written as soon as its batch is done (JSON lines or CSV), so the outputs of a
big log are never held in memory; the events themselves stream through the on-disk per-user
partitions of :class:`tokenization.event_partitions.EventPartitioner`.

Decisions:

- Sessions are the sessioniser's (a given ``session_id`` is kept, otherwise a split at
  ``session_gap_minutes`` of inactivity); sessions shorter than ``min_session_length`` pages are
  not used (counted). The training-time filters that need a target (users with a single session,
  the session-length percentile) do not apply: a user with one session gets a prediction, and a
  prompt longer than the model accepts loses its oldest sessions first
  (:func:`inference.prompts.build_prompt`, counted as ``truncated_prompts``).
- A user appearing in the log without any usable session (all their rows lacked a timestamp or a
  page, or all their sessions were too short) gets no row; such users are counted per reason in
  the summary, never dropped silently.
- Rows come out partition by partition (users hashed to partitions), by ``user_id`` inside each
  partition; a log small enough for one partition comes out sorted by ``user_id``.
- Sampling is seeded once (``seed``) for the whole run: the same log, model, seed and batch size
  give the same probabilities.

Example:
    >>> summary = generate_predictions("runs/default/hetlm", "events.csv", "predictions.jsonl",
    ...                                options=BatchGenerationOptions(num_samples=20))  # doctest: +SKIP
    >>> summary["users_predicted"], summary["unknown_input_pages"]  # doctest: +SKIP
    (4873, 12)
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from evaluation.cluster_profiles import PROFILES_FILE, load_cluster_profiles
from inference.loading import first_line, load_model_folder
from inference.session_generator import ModelSessionGenerator
from modeling_hetlm import HeTLMForBrowsing
from tokenization.atomic_files import atomic_open, write_text_atomically
from tokenization.constants import DEFAULT_MAX_INPUT_SESSIONS, UNK_TOKEN
from tokenization.errors import DataFormatError
from tokenization.event_partitions import EventPartitioner, hash_strings
from tokenization.examples import sessionize
from tokenization.page_rules import PageRules
from tokenization.readers import read_events

logger = logging.getLogger(__name__)

PREDICTION_FORMATS = ("jsonl", "csv")
# The label of a cluster the profiles do not know (a model whose clusters changed after they were computed).
UNPROFILED_LABEL = "(no profile)"
_FORMAT_OF_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
# How many unknown page names (the most frequent) the summary lists.
UNKNOWN_PAGES_LISTED = 20


class BatchGenerationError(ValueError):
    """A bad model folder, event source, output path or option; the message says which and why.

    Example:
        >>> str(BatchGenerationError("model folder runs/x: no config.json"))
        'model folder runs/x: no config.json'
    """


@dataclass
class BatchGenerationOptions:
    """How ``hetlm generate`` predicts.

    Args:
        batch_size: Users per generation call (sampled rows too are generated this many at a time).
        max_input_sessions: Sessions of a user's history in the prompt (the last ones); ``None``
            takes the model config's ``max_input_sessions``, else 3.
        max_new_tokens: Most tokens generated for the next session (its ``[EOS]`` included).
        num_samples: Sessions sampled per user to estimate the cart and purchase probabilities
            (0: greedy session only).
        temperature: Sampling temperature.
        top_k: Sample among the k most likely pages only (0: all pages, the model's distribution).
        seed: Seed of the sampling.
        session_gap_minutes: Inactivity that splits events without a ``session_id`` into sessions.
        min_session_length: Sessions with fewer pages are not used.
        drop_consecutive_duplicates: Drop a page view repeating the previous one in its session.
        on_bad_rows: ``"error"`` (stop at the first malformed row) or ``"skip"`` (skip, count).
        progress: Show the tqdm progress bar over users.

    Example:
        >>> BatchGenerationOptions(num_samples=10, temperature=0.8).num_samples
        10
    """

    batch_size: int = 64
    max_input_sessions: int | None = None
    max_new_tokens: int = 64
    num_samples: int = 0
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0
    session_gap_minutes: float = 30.0
    min_session_length: int = 1
    drop_consecutive_duplicates: bool = False
    on_bad_rows: str = "error"
    progress: bool = True

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "max_input_sessions": self.max_input_sessions is None or self.max_input_sessions >= 1,
            "max_new_tokens": self.max_new_tokens >= 1,
            "num_samples": self.num_samples >= 0,
            "temperature": self.temperature > 0,
            "top_k": self.top_k >= 0,
            "session_gap_minutes": self.session_gap_minutes > 0,
            "min_session_length": self.min_session_length >= 1,
            "on_bad_rows": self.on_bad_rows in ("error", "skip"),
        }
        for name, valid in checks.items():
            if not valid:
                raise BatchGenerationError(f"option {name} is out of range: {getattr(self, name)!r}")


@dataclass
class UserHistory:
    """One user's usable sessions (page names, oldest first) and, for simulated logs, the true segment."""

    user_id: str
    sessions: list[list[str]]
    segment: int | None = None


def prediction_format(path: str | os.PathLike, requested: str | None = None) -> str:
    """The output format: ``requested`` if given, else from the file extension.

    Example:
        >>> prediction_format("out/predictions.csv")
        'csv'
        >>> prediction_format("predictions.txt", "jsonl")
        'jsonl'
    """
    if requested is not None:
        if requested not in PREDICTION_FORMATS:
            raise BatchGenerationError(
                f"output format must be one of {', '.join(PREDICTION_FORMATS)}, got {requested!r}"
            )
        return requested
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMAT_OF_SUFFIX:
        raise BatchGenerationError(
            f"output {path}: cannot tell the format from the extension {suffix or '(none)'!r}; "
            f"use .jsonl or .csv, or give the output format ({', '.join(PREDICTION_FORMATS)})"
        )
    return _FORMAT_OF_SUFFIX[suffix]


def summary_path(out: str | os.PathLike) -> Path:
    """Where the run summary goes: beside the output, ``NAME.summary.json``.

    Example:
        >>> summary_path("runs/predictions.jsonl").as_posix()
        'runs/predictions.summary.json'
    """
    return Path(out).with_suffix(".summary.json")


class DistinctCounter:
    """Counts distinct 64-bit hashes streamed in chunks, in memory proportional to the distinct count.

    Example:
        >>> counter = DistinctCounter()
        >>> counter.add(np.array([3, 1, 3], dtype=np.uint64)); counter.add(np.array([1, 2], dtype=np.uint64))
        >>> len(counter)
        3
    """

    def __init__(self) -> None:
        self._unique = np.zeros(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, hashes: np.ndarray) -> None:
        chunk = np.unique(hashes)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        # Merging only once the pending chunks outgrow the merged set keeps the cost amortised.
        if self._pending_size > max(len(self._unique), 1 << 20):
            self._merge()

    def _merge(self) -> None:
        self._unique = np.unique(np.concatenate([self._unique, *self._pending]))
        self._pending, self._pending_size = [], 0

    def __len__(self) -> int:
        self._merge()
        return len(self._unique)


class SessionizedLog:
    """An event log read once into per-user partitions, then handed out as user histories.

    Args:
        events: Record batches in ``EVENT_SCHEMA`` (optionally with ``segment``), e.g. an ``EventStream``.
        options: Sessionisation settings (``session_gap_minutes``, ``min_session_length``,
            ``drop_consecutive_duplicates``).
        work_dir: Folder for the partitions of a log too big for memory.
        page_rules: How the log's raw page names become the model's pages (the rules the model's
            data was prepared with: :meth:`PageRules.of_tokenizer`).

    Attributes:
        users_seen: Distinct users with a non-empty ``user_id`` in the log.
        events_read: Rows read from the source.
        skipped_users: Users without any usable session, by reason.
        dropped_rows: Rows dropped by reason (no timestamp, no page...).
        consecutive_duplicates: Page views dropped as reloads (with ``drop_consecutive_duplicates``).
        short_sessions: Sessions not used because they are shorter than ``min_session_length``.

    Example:
        >>> log = SessionizedLog(  # doctest: +SKIP
        ...     simulate_events(SimulatorConfig(num_users=20)), BatchGenerationOptions()
        ... )
        >>> next(log.histories(batch_size=4))[0].sessions[-1]  # doctest: +SKIP
        ['category/books', 'category/books/fiction', 'product/books/fiction/novel-0003']
    """

    def __init__(
        self,
        events: Iterable[pa.RecordBatch | pa.Table],
        options: BatchGenerationOptions,
        work_dir: str | os.PathLike,
        page_rules: PageRules | None = None,
    ):
        self.options = options
        self._partitioner = EventPartitioner(work_dir=Path(work_dir) / "partitions", page_rules=page_rules)
        seen = DistinctCounter()
        self.events_read = 0
        for batch in events:
            self.events_read += len(batch)
            user_id = batch.column("user_id")
            present = pc.fill_null(pc.greater(pc.utf8_length(user_id), 0), False)
            seen.add(hash_strings(pc.filter(user_id, present)))
            self._partitioner.add(batch)
        self.users_seen = len(seen)
        self.skipped_users: Counter = Counter()
        self.consecutive_duplicates = 0
        self.short_sessions = 0

    @property
    def dropped_rows(self) -> dict[str, int]:
        return dict(self._partitioner.dropped)

    @property
    def has_segment(self) -> bool:
        """Whether the events carry the users' true segments (simulated logs)."""
        return bool(self._partitioner.has_segment)

    def histories(self, batch_size: int, last_sessions: int | None = None) -> Iterator[list[UserHistory]]:
        """Yield the users with at least one usable session, ``batch_size`` at a time.

        Each history holds the user's ``last_sessions`` latest usable sessions (all when ``None``).
        Once exhausted, ``skipped_users["no_valid_event"]`` counts the users whose every row was dropped.
        """
        pages = self._partitioner.pages
        users_with_events = 0
        for partition in self._partitioner.partitions():
            users, counts = sessionize(
                partition, self.options.session_gap_minutes, self.options.drop_consecutive_duplicates
            )
            del partition
            self.consecutive_duplicates += counts["consecutive_duplicates"]
            users_with_events += len(users)
            users = users.sort_by("user_id")
            for start in range(0, len(users), batch_size):
                histories = self._usable(users.slice(start, batch_size), pages, last_sessions)
                if histories:
                    yield histories
        self.skipped_users["no_valid_event"] = self.users_seen - users_with_events

    def _usable(self, users: pa.Table, pages: Sequence[str], last_sessions: int | None) -> list[UserHistory]:
        segments = users.column("segment").to_pylist() if "segment" in users.column_names else [None] * len(users)
        histories = []
        for user_id, sessions, segment in zip(
            users.column("user_id").to_pylist(), users.column("sessions").to_pylist(), segments
        ):
            kept = [session for session in sessions if len(session) >= self.options.min_session_length]
            self.short_sessions += len(sessions) - len(kept)
            if not kept:
                self.skipped_users["no_session_of_min_length"] += 1
                continue
            latest = kept[-last_sessions:] if last_sessions else kept
            histories.append(UserHistory(user_id, [[pages[code] for code in session] for session in latest], segment))
        return histories


class NextSessionPredictor:
    """Predicts users' next sessions (and outcome probabilities) with a HeTLM model.

    Args:
        model: A ``HeTLMForBrowsing`` in eval mode.
        tokenizer: The page tokenizer saved with the model.
        options: See :class:`BatchGenerationOptions`.

    Attributes:
        max_input_sessions: Sessions per prompt (options, else the model config, else 3).
        generator: The batched generator (:class:`inference.session_generator.ModelSessionGenerator`);
            its ``max_prompt_length`` is the predictor's positions minus ``max_new_tokens`` and its
            ``truncated_prompts`` counts the prompts that lost sessions (or pages) to fit.
        unknown_pages: Occurrences of each page unknown to the tokenizer (``[UNK]``) in the input sessions.
        input_pages: Pages in the input sessions.
        clusters: Users routed to each cluster.

    Example:
        >>> predictor = NextSessionPredictor(  # doctest: +SKIP
        ...     model, tokenizer, BatchGenerationOptions(num_samples=10)
        ... )
        >>> predictor.predict([UserHistory("u1", [["category/books", "cart"]])])[0]["cluster"]  # doctest: +SKIP
        2
    """

    def __init__(
        self,
        model: HeTLMForBrowsing,
        tokenizer: PreTrainedTokenizerBase,
        options: BatchGenerationOptions,
        cluster_labels: dict[int, str] | None = None,
    ):
        self.tokenizer = tokenizer
        self.options = options
        self.cluster_labels = cluster_labels
        self.max_input_sessions = (
            options.max_input_sessions
            or getattr(model.config, "max_input_sessions", None)
            or DEFAULT_MAX_INPUT_SESSIONS
        )
        try:
            self.generator = ModelSessionGenerator(model, tokenizer, max_new_tokens=options.max_new_tokens)
        except ValueError as error:
            raise BatchGenerationError(str(error)) from None
        self._vocabulary = tokenizer.get_vocab()
        self.unknown_pages: Counter = Counter()
        self.input_pages = 0
        self.clusters: Counter = Counter()

    def predict(self, histories: Sequence[UserHistory]) -> list[dict[str, Any]]:
        """One output row per user (see the module docstring), in the order of ``histories``."""
        input_sessions = [history.sessions[-self.max_input_sessions :] for history in histories]
        batch = self.generator.encode(input_sessions)
        sessions, clusters = self.generator.greedy(batch)
        rows = []
        for history, user_sessions, prompt, session, cluster in zip(
            histories, input_sessions, batch.prompts, sessions, clusters
        ):
            unknown = [page for user_session in user_sessions for page in user_session if page not in self._vocabulary]
            self.unknown_pages.update(unknown)
            self.input_pages += sum(len(user_session) for user_session in user_sessions)
            self.clusters[cluster] += 1
            row = {
                "user_id": history.user_id,
                "predicted_session": session,
                "cluster": cluster,
                **(
                    {"cluster_label": self.cluster_labels.get(cluster, UNPROFILED_LABEL)}
                    if self.cluster_labels is not None
                    else {}
                ),
                # Sessions the model sees: a prompt cut to fit loses its oldest sessions first.
                "num_input_sessions": prompt.count(self.tokenizer.eos_token_id),
                "unknown_input_pages": len(unknown),
            }
            if history.segment is not None:
                row["segment"] = int(history.segment)
            rows.append(row)
        if self.options.num_samples:
            _, _, outcomes = self.generator.sample(
                batch,
                self.options.num_samples,
                temperature=self.options.temperature,
                top_k=self.options.top_k,
                max_sequences_per_call=self.options.batch_size,
                return_outcome_probabilities=True,
            )
            for row, (cart, purchase, _) in zip(rows, outcomes.tolist()):
                row["cart_probability"], row["purchase_probability"] = cart, purchase
        return rows


class PredictionWriter:
    """Writes prediction rows to a JSON-lines or CSV file as they come (a context manager), atomically: the rows
    go to a temporary file that replaces ``path`` only when the block ends without an error, so a failure
    (a full disk, Ctrl-C) leaves the previous file, or none, never part of one.

    In CSV, ``predicted_session`` is the page names joined by single spaces (a page never contains
    whitespace); in JSON lines it is a list.

    Example:
        >>> columns = ["user_id", "predicted_session"]  # doctest: +SKIP
        >>> with PredictionWriter("predictions.csv", "csv", columns=columns) as writer:  # doctest: +SKIP
        ...     writer.write([{"user_id": "u1", "predicted_session": ["home", "cart"]}])
    """

    def __init__(self, path: str | os.PathLike, output_format: str, columns: Sequence[str]):
        self.path = Path(path)
        self.output_format = output_format
        self.columns = list(columns)
        self.rows = 0
        self._output = atomic_open(self.path, newline="")
        self._file = None
        self._csv = None

    def __enter__(self) -> "PredictionWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._output.__enter__()
        if self.output_format == "csv":
            self._csv = csv.DictWriter(self._file, fieldnames=self.columns)
            self._csv.writeheader()
        return self

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            ordered = {column: row[column] for column in self.columns}
            if self._csv is not None:
                ordered["predicted_session"] = " ".join(ordered["predicted_session"])
                self._csv.writerow(ordered)
            else:
                self._file.write(json.dumps(ordered, ensure_ascii=False) + "\n")
            self.rows += 1
        self._file.flush()

    def __exit__(self, *exc_info) -> None:
        self._output.__exit__(*exc_info)


def prediction_columns(num_samples: int, has_segment: bool, has_cluster_labels: bool = False) -> list[str]:
    """The output columns, in order.

    Example:
        >>> prediction_columns(num_samples=10, has_segment=False)  # doctest: +NORMALIZE_WHITESPACE
        ['user_id', 'predicted_session', 'cluster', 'num_input_sessions', 'unknown_input_pages',
         'cart_probability', 'purchase_probability']
        >>> prediction_columns(num_samples=0, has_segment=False, has_cluster_labels=True)[:4]
        ['user_id', 'predicted_session', 'cluster', 'cluster_label']
    """
    columns = ["user_id", "predicted_session", "cluster", "num_input_sessions", "unknown_input_pages"]
    if has_cluster_labels:
        columns.insert(3, "cluster_label")
    if num_samples:
        columns += ["cart_probability", "purchase_probability"]
    if has_segment:
        columns.append("segment")
    return columns


def generate_predictions(
    model_dir: str | os.PathLike,
    source: str,
    out: str | os.PathLike,
    *,
    source_format: str | None = None,
    format_options: dict[str, Any] | None = None,
    output_format: str | None = None,
    options: BatchGenerationOptions | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Predict the next session of every user of ``source`` and write one row per user to ``out``.

    Args:
        model_dir: A saved HeTLM model folder (with its page tokenizer).
        source: The event log (file, folder or glob), or ``"simulator"``.
        out: The output file (``.jsonl`` or ``.csv`` unless ``output_format`` says).
        source_format: A ``read_events`` format; default ``"simulator"`` for the source
            ``"simulator"``, else ``"events"`` (generic CSV / Parquet / JSONL by extension).
        format_options: More reader options (e.g. ``{"num_users": 500}`` for the simulator).
        output_format: ``"jsonl"`` or ``"csv"``; default from the extension of ``out``.
        options: See :class:`BatchGenerationOptions`.
        device: Where the model runs (default: CUDA when available).

    Returns:
        The run summary, also written to :func:`summary_path` ``(out)``.

    Raises:
        BatchGenerationError: A bad model folder, source, output path or option.

    Example:
        >>> generate_predictions("runs/default/hetlm", "simulator", "predictions.csv",
        ...                      format_options={"num_users": 200})["users_predicted"]  # doctest: +SKIP
        200
    """
    options = options or BatchGenerationOptions()
    output_format = prediction_format(out, output_format)
    source_format = source_format or ("simulator" if source == "simulator" else "events")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    where = f"source {source} (format {source_format})"
    try:
        # Opening checks the files and columns, so a bad source fails before the model loads.
        stream = read_events(
            source,
            source_format,
            session_gap_minutes=options.session_gap_minutes,
            on_bad_rows=options.on_bad_rows,
            **(format_options or {}),
        )
    except (DataFormatError, ValueError, OSError) as error:
        raise BatchGenerationError(f"{where}: {first_line(error)}") from None
    try:
        model, tokenizer = load_model_folder(model_dir, device, hetlm_only=True)
    except (OSError, ValueError) as error:
        raise BatchGenerationError(str(error)) from None
    profiles = load_cluster_profiles(model_dir)  # None (and a warning) for a model saved without them
    cluster_labels = {cluster: profile["label"] for cluster, profile in profiles.items()} if profiles else None
    predictor = NextSessionPredictor(model, tokenizer, options, cluster_labels)
    # The new log's pages are mapped as the training data's were (URL normalisation, outcome pages).
    page_rules = PageRules.of_tokenizer(tokenizer)
    torch.manual_seed(options.seed)
    with tempfile.TemporaryDirectory(prefix="hetlm-generate-") as work_dir:
        try:
            log = SessionizedLog(stream, options, work_dir, page_rules)
        except (DataFormatError, ValueError, OSError) as error:
            raise BatchGenerationError(f"{where}: {first_line(error)}") from None
        columns = prediction_columns(options.num_samples, log.has_segment, cluster_labels is not None)
        with (
            PredictionWriter(out, output_format, columns) as writer,
            tqdm(total=log.users_seen, desc="predicting", unit=" users", disable=not options.progress) as bar,
        ):
            for histories in log.histories(options.batch_size, predictor.max_input_sessions):
                writer.write(predictor.predict(histories))
                bar.update(writer.rows + sum(log.skipped_users.values()) - bar.n)
            bar.update(writer.rows + sum(log.skipped_users.values()) - bar.n)
    seconds = time.perf_counter() - started
    if log.skipped_users.total():
        logger.warning(
            "%d users without a usable session were skipped: %s", log.skipped_users.total(), dict(log.skipped_users)
        )
    summary = {
        "model_dir": str(model_dir),
        "source": str(source),
        "source_format": source_format,
        "synthetic": bool(stream.synthetic),
        **page_rules.to_dict(),
        "output": str(out),
        "output_format": output_format,
        "events_read": log.events_read,
        "reader_report": dict(stream.report),
        "dropped_rows": log.dropped_rows,
        "consecutive_duplicates_dropped": log.consecutive_duplicates,
        "short_sessions_unused": log.short_sessions,
        "users_seen": log.users_seen,
        "users_predicted": writer.rows,
        "users_skipped": {reason: count for reason, count in log.skipped_users.items() if count},
        "max_input_sessions": predictor.max_input_sessions,
        "max_prompt_length": predictor.generator.max_prompt_length,
        "truncated_prompts": predictor.generator.truncated_prompts,
        "input_pages": predictor.input_pages,
        "unknown_input_pages": sum(predictor.unknown_pages.values()),
        "unknown_distinct_pages": len(predictor.unknown_pages),
        "unknown_pages_most_common": dict(predictor.unknown_pages.most_common(UNKNOWN_PAGES_LISTED)),
        "users_per_cluster": {str(cluster): count for cluster, count in sorted(predictor.clusters.items())},
        "cluster_labels": {str(cluster): label for cluster, label in sorted(cluster_labels.items())}
        if cluster_labels is not None
        else f"none: {Path(model_dir) / PROFILES_FILE} is missing",
        "options": {**asdict(options), "max_input_sessions": predictor.max_input_sessions},
        "device": str(device),
        "seconds": round(seconds, 3),
        "users_per_second": round(writer.rows / seconds, 2) if seconds > 0 else None,
    }
    write_text_atomically(summary_path(out), json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def summary_line(summary: dict[str, Any]) -> str:
    """One line telling what a run did: users predicted and skipped, unknown pages, where the output is.

    Example:
        >>> summary = {"users_predicted": 9, "output": "p.jsonl", "users_skipped": {"no_valid_event": 1},
        ...            "unknown_input_pages": 2, "input_pages": 40, "unknown_distinct_pages": 1,
        ...            "truncated_prompts": 0, "synthetic": False, "reader_report": {}, "dropped_rows": {}}
        >>> summary_line(summary)  # doctest: +NORMALIZE_WHITESPACE
        'predicted 9 users -> p.jsonl; skipped 1 (no_valid_event: 1); unknown pages ([UNK]): 2 of 40 input page views
         (5.00%), 1 distinct; summary: p.summary.json'
    """
    skipped = summary["users_skipped"]
    skipped_text = (
        f"skipped {sum(skipped.values())} ({', '.join(f'{reason}: {count}' for reason, count in skipped.items())})"
        if skipped
        else "skipped 0"
    )
    share = summary["unknown_input_pages"] / summary["input_pages"] if summary["input_pages"] else 0.0
    parts = [
        f"predicted {summary['users_predicted']} users -> {summary['output']}",
        skipped_text,
        f"unknown pages ({UNK_TOKEN}): {summary['unknown_input_pages']} of {summary['input_pages']} input page views "
        f"({share:.2%}), {summary['unknown_distinct_pages']} distinct",
    ]
    rows_not_used = {**summary["reader_report"], **summary["dropped_rows"]}
    if rows_not_used:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in rows_not_used.items())
        parts.append(f"{sum(rows_not_used.values())} rows skipped or ignored ({reasons})")
    if summary["truncated_prompts"]:
        parts.append(f"{summary['truncated_prompts']} prompts cut to fit the model")
    if summary["synthetic"]:
        parts.append("SYNTHETIC data (simulator)")
    parts.append(f"summary: {summary_path(summary['output']).as_posix()}")
    return "; ".join(parts)
