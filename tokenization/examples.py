"""From events to examples: sessions per user, filters, the split, the example windows.

The pipeline, vectorised with Arrow and numpy (no per-event Python loop) and streamed through
per-user partitions on disk (:mod:`tokenization.event_partitions`), so memory stays flat:

1. **Clean and partition**: events without a user, timestamp or page are dropped and counted.
2. **Sessions**: each user's events in time order; a given ``session_id`` is kept; events whose
   ``session_id`` is null are split into sessions wherever the user was inactive for *more* than
   ``session_gap_minutes`` (exactly the gap stays in the same session). Sessions are ordered by
   their first event (ties: the input order of their first events), which is also a session's time.
   Consecutive duplicate page views (reloads) are kept by default: on real logs they carry dwell
   information and the paper's sequences keep them; ``drop_consecutive_duplicates`` removes them (counted).
3. **Filters**, each counted: sessions shorter than ``min_session_length`` pages; sessions longer
   than the ``max_session_length_percentile``-th percentile of session lengths (computed over all
   users after the minimum-length filter; ``None`` disables it); users left with fewer than 2
   sessions. Sessions in no example (older than the window of a user's earliest example) are counted too.
4. **Split** (``split``):

   - ``"user"`` (default, the paper's protocol): each user gets a seeded 64-bit hash of its id; the
     users with the lowest ``test_fraction`` share of hashes form the test split, the next
     ``validation_fraction`` of the remaining users the validation split, the rest train.
     Deterministic for a given seed, and a user's split does not depend on the order of the input.
   - ``"time"`` (a forecast): sessions starting before the cut-off (``time_cutoff``, default the
     ``time_cutoff_quantile`` quantile of session start times) are history; they give every
     user's train examples. Each user's first session at or after the cut-off is the target of its
     evaluation example (input: its last sessions before the cut-off); the evaluation users are
     split by the same hash, ``validation_fraction`` of them to validation, the rest to test
     (``test_fraction`` is not used). Users whose sessions all start after the cut-off are
     counted (``no_history_users``), as are the later sessions after each target (``future_sessions``).

5. **Examples**: ``input_sessions`` = up to ``max_input_sessions`` sessions before the target
   (oldest first), ``target_session`` = the target. Validation and test have one example per user
   (user split: the last session; time split: the first after the cut-off). A train user gives one
   example per session after its first (``train_examples="every_session"``, the default) or one with
   its last session as target (``"last_session"``, the paper's protocol). A user's train rows are
   consecutive and in time order, so its last row holds its latest history.

Example:
    >>> import datetime as dt, tempfile
    >>> import pyarrow as pa
    >>> from tokenization.constants import EVENT_SCHEMA
    >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    >>> minutes = [0, 1, 60, 61, 200]
    >>> events = pa.table({"user_id": ["u"] * 5, "session_id": [None] * 5,
    ...                    "timestamp": [t0 + dt.timedelta(minutes=m) for m in minutes],
    ...                    "page": ["home", "shoes", "home", "cart", "purchase"]}, schema=EVENT_SCHEMA)
    >>> built = build_examples([events], ExampleOptions(test_fraction=0.0, validation_fraction=0.0),
    ...                        work_dir=tempfile.mkdtemp())
    >>> [(row["input_sessions"], row["target_session"]) for row in built.splits["train"]]
    [([['home', 'shoes']], ['home', 'cart']), ([['home', 'shoes'], ['home', 'cart']], ['purchase'])]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
from datasets import Dataset, DatasetDict, load_from_disk
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from .constants import DEFAULT_MAX_INPUT_SESSIONS, OUTCOME_CART, OUTCOME_PURCHASE
from .event_partitions import EventPartitioner, hash_strings, mix64
from .page_rules import PageRules
from .page_tokenizer import PageTokenizer

SPLITS = ("train", "validation", "test")
TRAIN_EXAMPLE_MODES = ("every_session", "last_session")
SPLIT_MODES = ("user", "time")
_GAP_SALT = np.uint64(0x5851F42D4C957F2D)
_MICROSECONDS_PER_MINUTE = 60_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def parse_time(value: str) -> int:
    """An ISO 8601 date or time as microseconds since the epoch (UTC when it names no zone).

    Example:
        >>> parse_time("1970-01-01T00:00:01Z"), parse_time("1970-01-01T01:00:00+01:00")
        (1000000, 0)
    """
    try:
        moment = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"time cut-off {value!r} is not an ISO 8601 date or time (e.g. 2024-03-01T12:00:00Z)"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def format_microseconds(microseconds: int) -> str:
    """Microseconds since the epoch as an ISO 8601 UTC time.

    Example:
        >>> format_microseconds(1_000_000)
        '1970-01-01T00:00:01+00:00'
    """
    return (_EPOCH + dt.timedelta(microseconds=int(microseconds))).isoformat()


@dataclass
class ExampleOptions:
    """How events become examples (see the module docstring for each step).

    Args:
        session_gap_minutes: Inactivity that starts a new session, for events without ``session_id``.
        min_session_length: Sessions with fewer pages are dropped.
        max_session_length_percentile: Sessions longer than this percentile of session lengths are
            dropped (``None`` or 100 keeps them all).
        max_input_sessions: Sessions before the target kept as the example's input.
        test_fraction: Share of users in the test split.
        validation_fraction: Share of the non-test users in the validation split.
        seed: Seed of the user split.
        drop_consecutive_duplicates: Drop a page view repeating the previous one in the same session.
        train_examples: ``"every_session"``: a train user gives one example per session after its
            first; ``"last_session"``: one example per train user, its last session as target (the
            paper's protocol). Validation and test always have one example per user.
        split: ``"user"``: the seeded split by user (the paper's protocol); ``"time"``: the forecast
            split at ``time_cutoff`` (see the module docstring).
        time_cutoff: The time split's cut-off, an ISO 8601 date or time (UTC unless it names a zone);
            ``None``: the ``time_cutoff_quantile`` quantile of the session start times.
        time_cutoff_quantile: The quantile of session start times that is the default cut-off.
        rows_in_memory: Events processed in memory before spilling per-user partitions to disk.
        max_partition_rows: Largest partition processed at once (bigger ones are split again).
    """

    session_gap_minutes: float = 30.0
    min_session_length: int = 1
    max_session_length_percentile: float | None = 99.0
    max_input_sessions: int = DEFAULT_MAX_INPUT_SESSIONS
    test_fraction: float = 0.1
    validation_fraction: float = 0.05
    seed: int = 0
    drop_consecutive_duplicates: bool = False
    rows_in_memory: int = 1_000_000
    max_partition_rows: int = 2_000_000
    train_examples: str = "every_session"
    split: str = "user"
    time_cutoff: str | None = None
    time_cutoff_quantile: float = 0.9

    def __post_init__(self) -> None:
        if self.train_examples not in TRAIN_EXAMPLE_MODES:
            raise ValueError(
                f"ExampleOptions.train_examples must be one of {TRAIN_EXAMPLE_MODES}, got {self.train_examples!r}"
            )
        if self.split not in SPLIT_MODES:
            raise ValueError(f"ExampleOptions.split must be one of {SPLIT_MODES}, got {self.split!r}")
        if self.time_cutoff is not None:
            parse_time(self.time_cutoff)
            if self.split != "time":
                raise ValueError("ExampleOptions.time_cutoff: --time-cutoff applies to --split time only")
        checks = {
            "session_gap_minutes": self.session_gap_minutes > 0,
            "min_session_length": self.min_session_length >= 1,
            "max_session_length_percentile": self.max_session_length_percentile is None
            or 0 < self.max_session_length_percentile <= 100,
            "max_input_sessions": self.max_input_sessions >= 1,
            "test_fraction": 0 <= self.test_fraction < 1,
            "validation_fraction": 0 <= self.validation_fraction < 1,
            "time_cutoff_quantile": 0 < self.time_cutoff_quantile < 1,
        }
        for name, valid in checks.items():
            if not valid:
                raise ValueError(f"ExampleOptions.{name} is out of range: {getattr(self, name)!r}")


@dataclass
class BuiltExamples:
    """What :func:`build_examples` returns.

    Attributes:
        splits: train / validation / test datasets (memory-mapped from the work folder).
        train_page_counts: How often each page occurs in the train examples (fits the tokenizer).
        stats: Counts for the summary: events, users, sessions, filters, splits, outcome rates.
    """

    splits: DatasetDict
    train_page_counts: Counter
    stats: dict[str, Any] = field(default_factory=dict)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start, start + length)`` for each pair, vectorised.

    Example:
        >>> _ranges(np.array([5, 0]), np.array([2, 3])).tolist()
        [5, 6, 0, 1, 2]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shifts = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shifts


def _boundaries(changes: np.ndarray) -> np.ndarray:
    """Offsets of the runs that start where ``changes`` is True (``changes[0]`` must be True)."""
    return np.append(np.flatnonzero(changes), len(changes)).astype(np.int64)


def sessionize(
    events: pa.Table, session_gap_minutes: float = 30.0, drop_consecutive_duplicates: bool = False
) -> tuple[pa.Table, dict[str, int]]:
    """Group one partition's events into time-ordered sessions per user.

    Args:
        events: A partition from :class:`~tokenization.event_partitions.EventPartitioner`.
        session_gap_minutes: Inactivity (strictly longer) that splits events without ``session_id``.
        drop_consecutive_duplicates: Drop a page repeating the previous page of the same session.

    Returns:
        A table with one row per user: ``user_id``, ``sessions`` (list<list<int32>> of page codes,
        oldest session first), ``session_starts`` (list<int64>, each session's first event time in
        microseconds since the epoch) and ``segment`` when the events have one; and counts
        (``consecutive_duplicates`` dropped).

    Example:
        >>> import datetime as dt
        >>> from tokenization.constants import EVENT_SCHEMA
        >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        >>> batch = pa.table({"user_id": ["u", "u", "u"], "session_id": [None] * 3,
        ...                   "timestamp": [t0, t0 + dt.timedelta(minutes=32), t0 + dt.timedelta(minutes=1)],
        ...                   "page": ["a", "c", "b"]}, schema=EVENT_SCHEMA)
        >>> partitioner = EventPartitioner()
        >>> partitioner.add(batch)
        >>> users, _ = sessionize(next(partitioner.partitions()))
        >>> [
        ...     [[partitioner.pages[code] for code in session] for session in user]
        ...     for user in users["sessions"].to_pylist()
        ... ]
        [[['a', 'b'], ['c']]]
    """
    user_hash = events.column("user_hash").to_numpy()
    timestamp = events.column("timestamp").to_numpy()
    has_session = events.column("has_session").to_numpy(zero_copy_only=False)
    gap = int(session_gap_minutes * _MICROSECONDS_PER_MINUTE)

    def gap_starts(rows: np.ndarray) -> np.ndarray:
        # rows are ordered by (user, time): a session starts at a new user or after a long gap.
        starts = np.ones(len(rows), dtype=bool)
        starts[1:] = (user_hash[rows[1:]] != user_hash[rows[:-1]]) | (np.diff(timestamp[rows]) > gap)
        return starts

    if not has_session.any():
        order = np.lexsort((timestamp, user_hash))
        session_offsets = _boundaries(gap_starts(order))
    else:
        session_key = mix64(user_hash ^ mix64(events.column("session_hash").to_numpy()))
        without = np.flatnonzero(~has_session)
        if len(without):
            without = without[np.lexsort((timestamp[without], user_hash[without]))]
            gap_number = np.cumsum(gap_starts(without)).astype(np.uint64)
            session_key[without] = mix64(user_hash[without] ^ mix64(gap_number ^ _GAP_SALT))
        order = np.lexsort((timestamp, session_key))
        key_sorted = session_key[order]
        changes = np.ones(len(order), dtype=bool)
        changes[1:] = key_sorted[1:] != key_sorted[:-1]
        offsets = _boundaries(changes)
        firsts = order[offsets[:-1]]
        # Sessions starting at the same time keep the input order of their first events.
        session_order = np.lexsort((firsts, timestamp[firsts], user_hash[firsts]))
        lengths = np.diff(offsets)[session_order]
        order = order[_ranges(offsets[:-1][session_order], lengths)]
        session_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    pages = events.column("page").to_numpy()[order]
    counts = {"consecutive_duplicates": 0}
    if drop_consecutive_duplicates and len(order):
        session_of_row = np.repeat(np.arange(len(session_offsets) - 1), np.diff(session_offsets))
        duplicate = np.zeros(len(order), dtype=bool)
        duplicate[1:] = (pages[1:] == pages[:-1]) & (session_of_row[1:] == session_of_row[:-1])
        counts["consecutive_duplicates"] = int(duplicate.sum())
        keep = ~duplicate
        order, pages = order[keep], pages[keep]
        kept_per_session = np.bincount(session_of_row[keep], minlength=len(session_offsets) - 1)
        session_offsets = np.concatenate([[0], np.cumsum(kept_per_session)]).astype(np.int64)

    session_first_rows = order[session_offsets[:-1]] if len(order) else np.zeros(0, dtype=np.int64)
    session_users = user_hash[session_first_rows]
    new_user = np.ones(len(session_users), dtype=bool)
    new_user[1:] = session_users[1:] != session_users[:-1]
    user_offsets = _boundaries(new_user) if len(session_users) else np.zeros(1, dtype=np.int64)
    user_first_rows = pa.array(session_first_rows[user_offsets[:-1]])
    sessions = pa.ListArray.from_arrays(
        pa.array(user_offsets, pa.int32()),
        pa.ListArray.from_arrays(pa.array(session_offsets, pa.int32()), pa.array(pages, pa.int32())),
    )
    session_starts = pa.ListArray.from_arrays(
        pa.array(user_offsets, pa.int32()), pa.array(timestamp[session_first_rows], pa.int64())
    )
    columns = {
        "user_id": events.column("user_id").take(user_first_rows),
        "sessions": sessions,
        "session_starts": session_starts,
    }
    if "segment" in events.column_names:
        columns["segment"] = events.column("segment").take(user_first_rows)
    return pa.table(columns), counts


def _list_parts(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Offsets (from 0) and values of a list array."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = array.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0], array.flatten()


def _session_lengths(users: pa.Table) -> np.ndarray:
    """Length of every session of a :func:`sessionize` table."""
    user_offsets, sessions = _list_parts(users.column("sessions"))
    return np.diff(_list_parts(sessions)[0])


def length_cutoff(histogram: np.ndarray, min_session_length: int, percentile: float | None) -> int | None:
    """The longest session length kept: the ``percentile``-th percentile of the lengths >= the minimum.

    ``histogram[n]`` counts sessions of length ``n``. Uses the inverted-CDF definition (the cut-off is
    an observed length); ``None`` when the percentile filter is off or there are no sessions.

    Example:
        >>> length_cutoff(np.bincount([1] * 98 + [5, 40]), 1, 99.0)
        5
    """
    if percentile is None or percentile >= 100:
        return None
    eligible = histogram.astype(np.int64).copy()
    eligible[:min_session_length] = 0
    total = eligible.sum()
    if total == 0:
        return None
    cumulative = np.cumsum(eligible)
    return int(np.searchsorted(cumulative, percentile / 100.0 * total - 1e-9))


def _list_of_lists(user_counts: np.ndarray, lengths: np.ndarray, values: pa.Array) -> pa.Array:
    user_offsets = np.concatenate([[0], np.cumsum(user_counts)])
    session_offsets = np.concatenate([[0], np.cumsum(lengths)])
    return pa.ListArray.from_arrays(
        pa.array(user_offsets, pa.int32()), pa.ListArray.from_arrays(pa.array(session_offsets, pa.int32()), values)
    )


@dataclass
class _UserSessions:
    """One file of users after the session filters: what the split and the example rows need.

    Per session: ``lengths``, ``session_offsets`` into ``pages``, ``user_of_session``, ``kept`` (passed
    the length filters) and ``rank`` (position among the user's kept sessions). Per user:
    ``kept_per_user``, ``last_train_rank`` (the last rank a train target may have: the last kept
    session, or with the time split the last one before the cut-off), ``evaluation_rank`` (the rank
    of the user's evaluation target, -1 without one) and ``split_keys``.
    """

    users: pa.Table
    pages: pa.Array
    session_offsets: np.ndarray
    lengths: np.ndarray
    user_of_session: np.ndarray
    too_short: np.ndarray
    too_long: np.ndarray
    kept: np.ndarray
    rank: np.ndarray
    kept_per_user: np.ndarray
    history_per_user: np.ndarray
    last_train_rank: np.ndarray
    evaluation_rank: np.ndarray
    split_keys: np.ndarray


def _user_sessions(
    users: pa.Table, cutoff: int | None, options: ExampleOptions, time_cutoff: int | None
) -> _UserSessions:
    """Apply the session filters to a :func:`sessionize` table and find each user's targets."""
    user_offsets, sessions = _list_parts(users.column("sessions"))
    session_offsets, pages = _list_parts(sessions)
    lengths = np.diff(session_offsets)
    user_of_session = np.repeat(np.arange(len(users)), np.diff(user_offsets))
    too_short = lengths < options.min_session_length
    too_long = ~too_short & (lengths > cutoff) if cutoff is not None else np.zeros(len(lengths), dtype=bool)
    kept = ~(too_short | too_long)
    kept_per_user = np.bincount(user_of_session[kept], minlength=len(users))
    first_kept = np.concatenate([[0], np.cumsum(kept_per_user)])[:-1]
    rank = np.where(kept, np.cumsum(kept) - 1 - first_kept[user_of_session], -1)
    if time_cutoff is None:
        history_per_user = kept_per_user
        evaluation_rank = np.where(kept_per_user >= 2, kept_per_user - 1, -1)
    else:
        # Sessions are in time order, so a user's sessions before the cut-off are its first ones.
        starts = _list_parts(users.column("session_starts"))[1].to_numpy()
        history_per_user = np.bincount(user_of_session[kept & (starts < time_cutoff)], minlength=len(users))
        evaluation_rank = np.where((history_per_user >= 1) & (kept_per_user > history_per_user), history_per_user, -1)
    return _UserSessions(
        users=users,
        pages=pages,
        session_offsets=session_offsets,
        lengths=lengths,
        user_of_session=user_of_session,
        too_short=too_short,
        too_long=too_long,
        kept=kept,
        rank=rank,
        kept_per_user=kept_per_user,
        history_per_user=history_per_user,
        last_train_rank=history_per_user - 1,
        evaluation_rank=evaluation_rank,
        split_keys=mix64(hash_strings(users.column("user_id"), seed=options.seed)),
    )


def _split_of_users(plan: _UserSessions, thresholds: tuple[int, int], time_split: bool) -> np.ndarray:
    """Per user: 0 = train, 1 = validation, 2 = test for its evaluation example; -1 = none.

    The user split sends each user whole to one split. The time split trains on every user's
    history, so only the evaluation examples are split: validation below the first threshold, test above.
    """
    has_evaluation = plan.evaluation_rank >= 0
    if time_split:
        split = np.where(plan.split_keys < np.uint64(thresholds[0]), 1, 2)
    else:
        split = _split_names(plan.split_keys, thresholds)
    return np.where(has_evaluation, split, -1)


def _example_rows(plan: _UserSessions, targets: np.ndarray, max_input_sessions: int) -> tuple[pa.Table, np.ndarray]:
    """One example row per target session (global session indices, in order): up to
    ``max_input_sessions`` kept sessions before it as input. Returns the rows (page codes) and the
    global indices of the input sessions used."""
    kept_sessions = np.flatnonzero(plan.kept)
    position = np.cumsum(plan.kept) - 1
    num_inputs = np.minimum(plan.rank[targets], max_input_sessions)
    inputs = kept_sessions[_ranges(position[targets] - num_inputs, num_inputs)]
    input_pages = plan.pages.take(pa.array(_ranges(plan.session_offsets[inputs], plan.lengths[inputs])))
    target_pages = plan.pages.take(pa.array(_ranges(plan.session_offsets[targets], plan.lengths[targets])))
    user_rows = pa.array(plan.user_of_session[targets])
    columns = {
        "user_id": plan.users.column("user_id").take(user_rows),
        "input_sessions": _list_of_lists(num_inputs, plan.lengths[inputs], input_pages),
        "target_session": pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(plan.lengths[targets])]), pa.int32()), target_pages
        ),
    }
    if "segment" in plan.users.column_names:
        columns["segment"] = plan.users.column("segment").take(user_rows)
    return pa.table(columns), inputs


def _targets_by_split(plan: _UserSessions, split_of_user: np.ndarray, options: ExampleOptions) -> list[np.ndarray]:
    """The target sessions (global indices, in order) of the train, validation and test rows."""
    user = plan.user_of_session
    last_train_rank = plan.last_train_rank[user]
    if options.train_examples == "every_session":
        train_target = plan.kept & (plan.rank >= 1) & (plan.rank <= last_train_rank)
    else:
        train_target = plan.kept & (plan.rank >= 1) & (plan.rank == last_train_rank)
    if options.split == "user":
        train_target &= split_of_user[user] == 0
    evaluation_target = plan.kept & (plan.rank == plan.evaluation_rank[user])
    return [
        np.flatnonzero(train_target),
        *(np.flatnonzero(evaluation_target & (split_of_user[user] == split)) for split in (1, 2)),
    ]


def _filter_counts(plan: _UserSessions, used: np.ndarray, time_split: bool) -> dict[str, int]:
    """Every filter's count for one file of users; ``used`` marks the sessions in some example."""
    lengths, user = plan.lengths, plan.user_of_session
    few_sessions = plan.kept & (plan.kept_per_user[user] < 2)
    no_history = plan.kept & (plan.kept_per_user[user] >= 2) & (plan.history_per_user[user] == 0)
    last_used_rank = np.full(len(plan.users), -1)
    np.maximum.at(last_used_rank, user[used], plan.rank[used])
    unused = plan.kept & ~used & (last_used_rank[user] >= 0)
    older = unused & (plan.rank < last_used_rank[user])
    later = unused & (plan.rank > last_used_rank[user])
    counts = {
        "users": len(plan.users),
        "sessions": len(lengths),
        "events": int(lengths.sum()),
        "short_sessions": int(plan.too_short.sum()),
        "short_session_events": int(lengths[plan.too_short].sum()),
        "long_sessions": int(plan.too_long.sum()),
        "long_session_events": int(lengths[plan.too_long].sum()),
        "single_session_users": int((plan.kept_per_user < 2).sum()),
        "single_session_user_sessions": int(few_sessions.sum()),
        "single_session_user_events": int(lengths[few_sessions].sum()),
        "older_sessions": int(older.sum()),
        "older_session_events": int(lengths[older].sum()),
        "users_with_examples": int((last_used_rank >= 0).sum()),
        "sessions_in_examples": int(used.sum()),
        "events_in_examples": int(lengths[used].sum()),
    }
    if time_split:
        counts.update(
            {
                "no_history_users": int(((plan.kept_per_user >= 2) & (plan.history_per_user == 0)).sum()),
                "no_history_user_sessions": int(no_history.sum()),
                "no_history_user_events": int(lengths[no_history].sum()),
                "future_sessions": int(later.sum()),
                "future_session_events": int(lengths[later].sum()),
            }
        )
    return counts


def split_thresholds(split_keys: np.ndarray, test_fraction: float, validation_fraction: float) -> tuple[int, int]:
    """Key thresholds: test users have keys below the first, validation users below the second.

    At least one user goes to a split with a positive fraction when there are enough users to
    leave one in train.

    Example:
        >>> keys = np.arange(100, dtype=np.uint64) * np.uint64(7)
        >>> test_below, validation_below = split_thresholds(keys, 0.1, 0.05)
        >>> int((keys < test_below).sum()), int(((keys >= test_below) & (keys < validation_below)).sum())
        (10, 4)
    """
    keys = np.sort(np.asarray(split_keys, dtype=np.uint64))
    total = len(keys)
    num_test = int(round(total * test_fraction))
    if test_fraction > 0 and num_test == 0 and total >= 2:
        num_test = 1
    num_validation = int(round((total - num_test) * validation_fraction))
    if validation_fraction > 0 and num_validation == 0 and total - num_test >= 2:
        num_validation = 1

    def threshold(count: int) -> int:
        return int(keys[count]) if count < total else 2**64 - 1 if total else 0

    return threshold(num_test), threshold(num_test + num_validation)


def _split_names(split_keys: np.ndarray, thresholds: tuple[int, int]) -> np.ndarray:
    """0 = train, 1 = validation, 2 = test for each key."""
    test_below, validation_below = (np.uint64(value) for value in thresholds)
    return np.where(split_keys < test_below, 2, np.where(split_keys < validation_below, 1, 0))


def _decode_example_pages(table: pa.Table, page_names: pa.Array) -> pa.Table:
    """Replace page codes by page names in ``input_sessions`` and ``target_session``."""
    user_offsets, sessions = _list_parts(table.column("input_sessions"))
    session_offsets, input_codes = _list_parts(sessions)
    target_offsets, target_codes = _list_parts(table.column("target_session"))
    columns = {
        "user_id": table.column("user_id"),
        "input_sessions": _list_of_lists(
            np.diff(user_offsets), np.diff(session_offsets), page_names.take(input_codes)
        ),
        "target_session": pa.ListArray.from_arrays(
            pa.array(target_offsets, pa.int32()), page_names.take(target_codes)
        ),
    }
    if "segment" in table.column_names:
        columns["segment"] = table.column("segment")
    return pa.table(columns)


def _example_page_codes(table: pa.Table) -> np.ndarray:
    """All page codes of a table of examples (inputs and targets)."""
    inputs = _list_parts(_list_parts(table.column("input_sessions"))[1])[1]
    targets = _list_parts(table.column("target_session"))[1]
    return np.concatenate([inputs.to_numpy(zero_copy_only=False), targets.to_numpy(zero_copy_only=False)])


def _targets_with_page(table: pa.Table, code: int | None) -> int:
    if code is None or len(table) == 0:
        return 0
    target_offsets, target_codes = _list_parts(table.column("target_session"))
    hits = np.flatnonzero(target_codes.to_numpy(zero_copy_only=False) == code)
    return len(np.unique(np.searchsorted(target_offsets, hits, side="right")))


def prefetch(items: Iterable, depth: int = 1) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (errors re-raised here).

    Reading (parsing CSV, decoding JSON) then overlaps with the partitioning of the previous batch:
    both are mostly Arrow / numpy work that releases the GIL.

    Example:
        >>> list(prefetch(range(3)))
        [0, 1, 2]
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    finished = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
            buffer.put((finished, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put((finished, error))

    worker = threading.Thread(target=produce, name="hetlm-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is finished:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()


def build_examples(
    events: Iterable[pa.RecordBatch | pa.Table],
    options: ExampleOptions | None = None,
    work_dir: str | os.PathLike | None = None,
    progress: bool = False,
    page_rules: PageRules | None = None,
) -> BuiltExamples:
    """Turn a stream of event batches (``EVENT_SCHEMA``, optional ``segment``) into split examples.

    Args:
        events: Record batches or tables of events, in any order (e.g. an ``EventStream``).
        options: See :class:`ExampleOptions`.
        work_dir: Folder for partitions and the split files the returned datasets map (keep it
            until the datasets are saved elsewhere); a temporary folder by default.
        progress: Show tqdm progress bars.
        page_rules: How raw page names become pages (URL normalisation, outcome pages); see
            :class:`~tokenization.page_rules.PageRules`.

    Returns:
        :class:`BuiltExamples` with the splits, the train page counts and the statistics.
    """
    options = options or ExampleOptions()
    work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="hetlm-examples-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    partitioner = EventPartitioner(
        rows_in_memory=options.rows_in_memory,
        max_partition_rows=options.max_partition_rows,
        work_dir=work_dir / "partitions",
        page_rules=page_rules,
    )
    with tqdm(desc="reading events", unit=" events", unit_scale=True, disable=not progress) as bar:
        for batch in prefetch(events):
            partitioner.add(batch)
            bar.update(len(batch))
    timings["read_and_partition"], clock = time.perf_counter() - clock, time.perf_counter()
    session_files, histogram, duplicates, session_starts = _sessions_pass(
        partitioner, options, work_dir / "sessions", progress
    )
    timings["sessions"], clock = time.perf_counter() - clock, time.perf_counter()
    cutoff = length_cutoff(histogram, options.min_session_length, options.max_session_length_percentile)
    time_cutoff = resolve_time_cutoff(options, session_starts)
    split_keys = _split_keys_pass(session_files, cutoff, options, time_cutoff)
    if time_cutoff is None:
        thresholds = split_thresholds(split_keys, options.test_fraction, options.validation_fraction)
    else:
        thresholds = split_thresholds(split_keys, options.validation_fraction, 0.0)
    timings["examples"], clock = time.perf_counter() - clock, time.perf_counter()
    split_paths, page_counts, split_stats, totals = _write_splits(
        session_files, cutoff, time_cutoff, thresholds, options, partitioner, work_dir, progress
    )
    timings["splits"] = time.perf_counter() - clock

    train_codes = np.flatnonzero(page_counts["train"])
    train_counts = Counter(
        dict(zip([partitioner.pages[code] for code in train_codes], page_counts["train"][train_codes].tolist()))
    )
    unseen = page_counts["train"] == 0
    for split in ("validation", "test"):
        split_stats[split]["unseen_page_events"] = int(page_counts[split][unseen].sum())
        split_stats[split]["unseen_pages"] = int((page_counts[split][unseen] > 0).sum())
    stats = {
        "events_read": partitioner.num_events + sum(partitioner.dropped.values()),
        "events_kept": partitioner.num_events,
        "dropped_rows": dict(partitioner.dropped),
        "consecutive_duplicates_dropped": duplicates,
        "session_length_cutoff": cutoff,
        "session_length_histogram": histogram.tolist(),
        "time_cutoff": None if time_cutoff is None else format_microseconds(time_cutoff),
        "totals": dict(totals),
        "splits": {split: dict(split_stats[split]) for split in SPLITS},
        "unique_pages": int((sum(page_counts.values()) > 0).sum()),
        "page_names": {
            "raw": partitioner.raw_page_names,
            "pages": len(partitioner.pages),
            "outcomes": sorted({OUTCOME_CART, OUTCOME_PURCHASE} & set(partitioner.pages)),
        },
        "timings_s": timings,
    }
    splits = DatasetDict({split: Dataset.from_file(str(split_paths[split])) for split in SPLITS})
    return BuiltExamples(splits=splits, train_page_counts=train_counts, stats=stats)


def resolve_time_cutoff(options: ExampleOptions, session_starts: np.ndarray) -> int | None:
    """The time split's cut-off in microseconds since the epoch (None for the user split).

    ``options.time_cutoff`` when given, else the ``time_cutoff_quantile`` quantile of the session
    start times (numpy's default linear rule, rounded down to a microsecond).

    Example:
        >>> resolve_time_cutoff(ExampleOptions(split="time", time_cutoff_quantile=0.5), np.array([0, 10, 20, 40]))
        15
        >>> cutoff = resolve_time_cutoff(ExampleOptions(split="time", time_cutoff="2024-03-01"), np.zeros(0))
        >>> format_microseconds(cutoff)
        '2024-03-01T00:00:00+00:00'
    """
    if options.split != "time":
        return None
    if options.time_cutoff is not None:
        return parse_time(options.time_cutoff)
    if len(session_starts) == 0:
        raise ValueError("the time split needs sessions to take the cut-off quantile of; there are none")
    return int(np.floor(np.quantile(session_starts, options.time_cutoff_quantile)))


def _sessions_pass(
    partitioner: EventPartitioner, options: ExampleOptions, folder: Path, progress: bool
) -> tuple[list[Path], np.ndarray, int, np.ndarray]:
    """Sessionise every partition into a file of users; the histogram of session lengths; the session
    start times when the time split's cut-off is a quantile of them (else an empty array)."""
    folder.mkdir(exist_ok=True)
    histogram = np.zeros(1, dtype=np.int64)
    session_files: list[Path] = []
    starts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    need_starts = options.split == "time" and options.time_cutoff is None
    duplicates = 0
    partitions = tqdm(partitioner.partitions(), desc="sessions", unit=" partitions", disable=not progress)
    for index, partition in enumerate(partitions):
        users, counts = sessionize(partition, options.session_gap_minutes, options.drop_consecutive_duplicates)
        duplicates += counts["consecutive_duplicates"]
        lengths_histogram = np.bincount(_session_lengths(users))
        if len(lengths_histogram) > len(histogram):
            histogram = np.pad(histogram, (0, len(lengths_histogram) - len(histogram)))
        histogram[: len(lengths_histogram)] += lengths_histogram
        if need_starts:
            starts.append(_list_parts(users.column("session_starts"))[1].to_numpy())
        session_files.append(_write_arrow(users, folder / f"users-{index:05d}.arrow"))
    return session_files, histogram, duplicates, np.concatenate(starts)


def _split_keys_pass(
    session_files: list[Path], cutoff: int | None, options: ExampleOptions, time_cutoff: int | None
) -> np.ndarray:
    """The split keys of every user with an evaluation example (the population the split thresholds divide)."""
    keys: list[np.ndarray] = [np.zeros(0, dtype=np.uint64)]
    for path in session_files:
        plan = _user_sessions(_read_arrow(path), cutoff, options, time_cutoff)
        keys.append(plan.split_keys[plan.evaluation_rank >= 0])
    return np.concatenate(keys)


def _write_splits(
    session_files: list[Path],
    cutoff: int | None,
    time_cutoff: int | None,
    thresholds: tuple[int, int],
    options: ExampleOptions,
    partitioner: EventPartitioner,
    work_dir: Path,
    progress: bool,
) -> tuple[dict[str, Path], dict[str, np.ndarray], dict[str, Counter], Counter]:
    """Build and write each split's examples (page names) to one Arrow file; page counts and statistics
    per split; the filter counts."""
    page_names = pa.array(partitioner.pages, pa.string())
    cart_code = _code_of(partitioner.pages, OUTCOME_CART)
    purchase_code = _code_of(partitioner.pages, OUTCOME_PURCHASE)
    page_counts = {split: np.zeros(len(page_names), dtype=np.int64) for split in SPLITS}
    split_stats = {split: Counter() for split in SPLITS}
    totals: Counter = Counter()
    schema = _example_schema(partitioner.has_segment)
    split_paths = {split: work_dir / f"{split}.arrow" for split in SPLITS}
    writers = {split: ipc.new_stream(str(split_paths[split]), schema) for split in SPLITS}
    for path in tqdm(session_files, desc="writing splits", unit=" partitions", disable=not progress):
        plan = _user_sessions(_read_arrow(path), cutoff, options, time_cutoff)
        split_of_user = _split_of_users(plan, thresholds, time_cutoff is not None)
        used = np.zeros(len(plan.lengths), dtype=bool)
        for split, targets in zip(SPLITS, _targets_by_split(plan, split_of_user, options)):
            part, inputs = _example_rows(plan, targets, options.max_input_sessions)
            used[targets] = True
            used[inputs] = True
            codes = _example_page_codes(part)
            page_counts[split] += np.bincount(codes, minlength=len(page_names))
            row_users = np.unique(plan.user_of_session[targets])
            stats = split_stats[split]
            stats["users"] += len(row_users)
            stats["examples"] += len(part)
            stats["input_sessions"] += len(inputs)
            stats["events"] += len(codes)
            stats["targets_with_cart"] += _targets_with_page(part, cart_code)
            stats["targets_with_purchase"] += _targets_with_page(part, purchase_code)
            if partitioner.has_segment:
                segments = plan.users.column("segment").take(pa.array(row_users)).drop_null().to_numpy()
                stats.update(
                    {
                        f"segment_{segment}_users": int(count)  # Counter.update adds
                        for segment, count in zip(*np.unique(segments, return_counts=True))
                    }
                )
            writers[split].write_table(_decode_example_pages(part, page_names).cast(schema))
        totals.update(_filter_counts(plan, used, time_cutoff is not None))
        path.unlink()
    for writer in writers.values():
        writer.close()
    return split_paths, page_counts, split_stats, totals


def _code_of(pages: list[str], page: str) -> int | None:
    try:
        return pages.index(page)
    except ValueError:
        return None


def _example_schema(has_segment: bool | None) -> pa.Schema:
    schema = pa.schema(
        [
            pa.field("user_id", pa.string()),
            pa.field("input_sessions", pa.list_(pa.list_(pa.string()))),
            pa.field("target_session", pa.list_(pa.string())),
        ]
    )
    return schema.append(pa.field("segment", pa.int32())) if has_segment else schema


def _write_arrow(table: pa.Table, path: Path) -> Path:
    with ipc.new_stream(str(path), table.schema) as writer:
        writer.write_table(table)
    return path


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return ipc.open_stream(source).read_all()


def user_histories(dataset: Dataset, batch_size: int = 10_000) -> Iterator[tuple[str | None, list[list[str]]]]:
    """Each user's distinct sessions in time order, rebuilt from a split's rows: ``(user_id, sessions)``.

    A user's rows are consecutive and in time order (see the module docstring), so its sessions are
    its first row's input sessions followed by every row's target: each session once, however many
    windows repeat it. Without a ``user_id`` column each row is its own user (``None``).

    Example:
        >>> rows = Dataset.from_dict({"user_id": ["a", "a", "b"],
        ...                           "input_sessions": [[["x"]], [["x"], ["y"]], [["z"]]],
        ...                           "target_session": [["y"], ["w"], ["v"]]})
        >>> list(user_histories(rows))
        [('a', [['x'], ['y'], ['w']]), ('b', [['z'], ['v']])]
    """
    missing = {"input_sessions", "target_session"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"dataset lacks column(s) {sorted(missing)}; has {dataset.column_names}")
    current: str | None = None
    sessions: list[list[str]] = []
    for batch in dataset.iter(batch_size=batch_size):
        user_ids = batch.get("user_id") or [None] * len(batch["target_session"])
        for user_id, inputs, target in zip(user_ids, batch["input_sessions"], batch["target_session"]):
            if user_id is None or user_id != current:
                if sessions:
                    yield current, sessions
                current, sessions = user_id, list(inputs)
            sessions.append(target)
    if sessions:
        yield current, sessions


def load_prepared(directory: str | os.PathLike) -> tuple[DatasetDict, PreTrainedTokenizerFast, dict[str, Any]]:
    """Load what ``hetlm prepare`` wrote: the dataset splits, the page tokenizer and the summary.

    Example:
        >>> dataset, tokenizer, summary = load_prepared("runs/default/data")  # doctest: +SKIP
        >>> dataset["train"][0]["target_session"]  # doctest: +SKIP
        ['category/apparel', 'product/apparel/mens/tee-0042', 'cart']
    """
    directory = Path(directory)
    for required in ("dataset", "tokenizer", "summary.json"):
        if not (directory / required).exists():
            raise FileNotFoundError(
                f"{directory / required} not found: is {directory} a folder written by `hetlm prepare`?"
            )
    dataset = load_from_disk(str(directory / "dataset"))
    tokenizer = PageTokenizer.from_pretrained(str(directory / "tokenizer"))
    summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    return dataset, tokenizer, summary
