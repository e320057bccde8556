"""Streaming events into per-user partitions, with no per-event Python loop.

Events arrive as Arrow record batches (in ``EVENT_SCHEMA``) in any order. Each batch is cleaned
(rows without a user, timestamp or page are dropped and counted), its pages are normalised and
replaced by integer codes of one global page list, and its users and sessions are hashed to 64-bit
keys. Small inputs stay in memory as one partition; once more than ``rows_in_memory`` events have
arrived, every batch is split by user hash into ``num_partitions`` Arrow IPC files on disk, so a
user's events always land in the same file and memory stays flat however long the log is. A
partition that grows beyond ``max_partition_rows`` is split again with another hash when it is read
back (:meth:`EventPartitioner.partitions`), so the number of partitions grows with the input.

Hashes are 64-bit: two users (or two sessions) would only be merged by a hash collision, with a
probability of about 3e-6 for ten million sessions.

Example:
    >>> import pyarrow as pa, datetime as dt
    >>> from tokenization.constants import EVENT_SCHEMA
    >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    >>> batch = pa.record_batch([["u1", "u2", None], [None, None, None], [t0, t0, t0], ["Home", "cart", "x"]],
    ...                         schema=EVENT_SCHEMA)
    >>> partitioner = EventPartitioner()
    >>> partitioner.add(batch)
    >>> partitioner.dropped
    {'missing_user_id': 1}
    >>> [len(table) for table in partitioner.partitions()]
    [2]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from .page_rules import PageRules

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)

PARTITION_SCHEMA = pa.schema(
    [
        pa.field("user_hash", pa.uint64()),
        pa.field("user_id", pa.string()),
        pa.field("session_hash", pa.uint64()),
        pa.field("has_session", pa.bool_()),
        pa.field("timestamp", pa.int64()),
        pa.field("page", pa.int32()),
    ]
)


def mix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a fast, well-spread bijection of 64-bit integers.

    Example:
        >>> mix64(np.array([0, 1], dtype=np.uint64)).tolist()
        [0, 6238072747940578789]
    """
    values = np.asarray(values, dtype=np.uint64)
    values = (values ^ (values >> np.uint64(30))) * _MIX_1
    values = (values ^ (values >> np.uint64(27))) * _MIX_2
    return values ^ (values >> np.uint64(31))


def hash_strings(array: pa.Array | pa.ChunkedArray, seed: int = 0) -> np.ndarray:
    """A 64-bit hash of every string of an Arrow string array, computed eight bytes at a time.

    The result depends only on the string's bytes and ``seed`` (stable across runs and machines).
    Null entries hash like the empty string; callers mask them.

    Example:
        >>> hashes = hash_strings(pa.array(["user-1", "user-2", "user-1"]))
        >>> bool(hashes[0] == hashes[2]), bool(hashes[0] == hashes[1])
        (True, False)
    """
    if isinstance(array, pa.ChunkedArray):
        chunks = [hash_strings(chunk, seed) for chunk in array.chunks]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint64)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    count = len(array)
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offsets_buffer, data_buffer = array.buffers()
    offsets_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offsets_type)[array.offset : array.offset + count + 1].astype(
        np.int64
    )
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    padded = np.zeros(len(data) + 8, dtype=np.uint8)
    padded[: len(data)] = data
    # words[i] is the little-endian 64-bit word made of bytes i .. i+7 (an unaligned strided view).
    words = np.ndarray(shape=(len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    hashes = lengths.astype(np.uint64) ^ mix64(np.array([seed], dtype=np.uint64))
    for word_index in range(int((lengths.max() + 7) // 8)):
        remaining = lengths - 8 * word_index
        shortest = remaining.min()
        if shortest >= 8:  # a full word of every string: no masking, no row selection
            mixed = (hashes ^ words[starts + 8 * word_index]) * _GOLDEN
            hashes = mixed ^ (mixed >> np.uint64(29))
            continue
        active = slice(None) if shortest > 0 else np.flatnonzero(remaining > 0)
        word = words[starts[active] + 8 * word_index]
        keep_bits = (np.minimum(remaining[active], 8) * 8).astype(np.uint64)
        word &= np.where(keep_bits < 64, (np.uint64(1) << (keep_bits & np.uint64(63))) - np.uint64(1), ~np.uint64(0))
        mixed = (hashes[active] ^ word) * _GOLDEN
        hashes[active] = mixed ^ (mixed >> np.uint64(29))
    hashes = mix64(hashes)
    return hashes


class PageCoder:
    """Maps raw page names to pages (:class:`~tokenization.page_rules.PageRules`) and gives each distinct
    page a global integer code.

    Rows are matched by a 64-bit hash of the raw name (vectorised); only raw names never seen
    before go through the rules in Python, so ``raw_names`` counts every distinct raw name once.

    Args:
        rules: URL normalisation and outcome pages (default: URL normalisation on, no outcome patterns).

    Example:
        >>> coder = PageCoder()
        >>> codes = coder.encode(pa.array(["Home", "home ", "cart", "  ", "/shoes/?utm_source=x", "/shoes"])).tolist()
        >>> [coder.pages[code] if code >= 0 else None for code in codes]
        ['home', 'home', 'cart', None, '/shoes', '/shoes']
        >>> coder.raw_names, len(coder.pages)
        (5, 3)
    """

    def __init__(self, rules: PageRules | None = None) -> None:
        self.rules = rules or PageRules()
        self.pages: list[str] = []
        self.raw_names = 0
        self._codes: dict[str, int] = {}
        self._raw_hashes = pa.array([], pa.uint64())
        self._raw_codes = np.zeros(0, dtype=np.int32)

    def _code(self, raw: str) -> int:
        page = self.rules.page(raw)
        if not page:
            return -1
        self.raw_names += 1
        code = self._codes.setdefault(page, len(self.pages))
        if code == len(self.pages):
            self.pages.append(page)
        return code

    def encode(self, pages: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Codes of ``pages`` (int32); ``-1`` where the name is null or blank after normalisation."""
        hashes = pa.array(hash_strings(pages))
        positions = pc.index_in(hashes, value_set=self._raw_hashes)
        if positions.null_count:
            unknown = np.flatnonzero(positions.is_null().to_numpy(zero_copy_only=False))
            new_hashes, first_rows = np.unique(hashes.to_numpy()[unknown], return_index=True)
            raw_names = pc.take(pages, pa.array(unknown[first_rows])).to_pylist()
            new_codes = np.array([self._code(raw or "") for raw in raw_names], dtype=np.int32)
            self._raw_hashes = pa.concat_arrays([self._raw_hashes, pa.array(new_hashes)])
            self._raw_codes = np.concatenate([self._raw_codes, new_codes])
            positions = pc.index_in(hashes, value_set=self._raw_hashes)
        return self._raw_codes[positions.to_numpy()]


class EventPartitioner:
    """Cleans, encodes and partitions event batches by user (see the module docstring).

    Args:
        rows_in_memory: Events kept in memory before partitions spill to disk.
        num_partitions: Files each spill (and each re-split of an oversized partition) fans out to.
        max_partition_rows: A partition above this is split again when read back.
        work_dir: Folder for the partition files (a temporary folder by default).
        page_rules: How raw page names become pages (:class:`~tokenization.page_rules.PageRules`).

    Attributes:
        dropped: Rows dropped per reason (``missing_user_id``, ``missing_timestamp``, ``missing_page``).
        pages: The normalised page names; ``page`` codes index this list.
        raw_page_names: Distinct raw page names seen (``len(pages)`` fewer are variants merged by the rules).
        num_events: Events kept.
        has_segment: Whether the events carried a ``segment`` column.
    """

    def __init__(
        self,
        rows_in_memory: int = 1_000_000,
        num_partitions: int = 32,
        max_partition_rows: int = 2_000_000,
        work_dir: str | os.PathLike | None = None,
        page_rules: PageRules | None = None,
    ) -> None:
        self.rows_in_memory = rows_in_memory
        self.num_partitions = num_partitions
        self.max_partition_rows = max_partition_rows
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="hetlm-partitions-"))
        self.dropped: dict[str, int] = {}
        self.num_events = 0
        self.has_segment: bool | None = None
        self._coder = PageCoder(page_rules)
        self._memory: list[pa.Table] = []
        self._writers: list[ipc.RecordBatchStreamWriter] | None = None
        self._paths: list[Path] = []
        self._rows_per_file: list[int] = []

    @property
    def pages(self) -> list[str]:
        return self._coder.pages

    @property
    def raw_page_names(self) -> int:
        return self._coder.raw_names

    def _drop(self, reason: str, mask: np.ndarray) -> None:
        count = int(mask.sum())
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def _encode(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        user_id = batch.column("user_id")
        timestamp = batch.column("timestamp")
        missing_user = pc.fill_null(pc.equal(pc.utf8_length(user_id), 0), True).to_numpy(zero_copy_only=False)
        missing_time = timestamp.is_null().to_numpy(zero_copy_only=False) & ~missing_user
        pages = self._coder.encode(batch.column("page"))
        missing_page = (pages < 0) & ~missing_user & ~missing_time
        self._drop("missing_user_id", missing_user)
        self._drop("missing_timestamp", missing_time)
        self._drop("missing_page", missing_page)
        keep = ~(missing_user | missing_time | missing_page)
        has_segment = "segment" in batch.schema.names
        if self.has_segment is None:
            self.has_segment = has_segment
        elif self.has_segment != has_segment:
            raise ValueError("some event batches carry a 'segment' column and others do not")
        if not keep.all():
            batch = batch.filter(pa.array(keep))
            pages = pages[keep]
        session_id = batch.column("session_id")
        columns = {
            "user_hash": hash_strings(batch.column("user_id")),
            "user_id": batch.column("user_id"),
            "session_hash": hash_strings(session_id)
            if session_id.null_count < len(session_id)
            else np.zeros(len(session_id), dtype=np.uint64),
            "has_session": session_id.is_valid(),
            # Microseconds since the epoch; finer precision is truncated.
            "timestamp": pc.cast(batch.column("timestamp"), pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64()),
            "page": pages,
        }
        schema = PARTITION_SCHEMA
        if has_segment:
            columns["segment"] = pc.cast(batch.column("segment"), pa.int32())
            schema = schema.append(pa.field("segment", pa.int32()))
        return pa.table(columns, schema=schema)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Clean, encode and store one batch of events."""
        table = self._encode(batch)
        self.num_events += len(table)
        if self._writers is None:
            self._memory.append(table)
            if self.num_events <= self.rows_in_memory:
                return
            self._open_files(table.schema)
            pending, self._memory = self._memory, []
            for table in pending:
                self._write(table)
        else:
            self._write(table)

    def _open_files(self, schema: pa.Schema) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._paths = [self.work_dir / f"partition-{index:05d}.arrow" for index in range(self.num_partitions)]
        self._writers = [ipc.new_stream(str(path), schema) for path in self._paths]
        self._rows_per_file = [0] * self.num_partitions

    def _write(self, table: pa.Table) -> None:
        for index, part in enumerate(split_by_user(table, self.num_partitions, level=0)):
            if len(part):
                self._writers[index].write_table(part)
                self._rows_per_file[index] += len(part)

    def partitions(self) -> Iterator[pa.Table]:
        """Yield the stored events, one table per partition; every user's events are in one table."""
        if self._writers is None:
            if self._memory:
                yield pa.concat_tables(self._memory)
            self._memory = []
            return
        for writer in self._writers:
            writer.close()
        self._writers = []
        pending = [(path, rows, 0) for path, rows in zip(self._paths, self._rows_per_file)]
        while pending:
            path, rows, level = pending.pop(0)
            if rows > self.max_partition_rows and level >= 0:
                pending = self._resplit(path, rows, level + 1) + pending
                continue
            if rows:
                with pa.memory_map(str(path)) as source:
                    yield ipc.open_stream(source).read_all()
            path.unlink()

    def _resplit(self, path: Path, rows: int, level: int) -> list[tuple[Path, int, int]]:
        """Split a partition file by another user hash; a part that did not shrink (one user with
        more events than ``max_partition_rows``) gets level -1: it is processed whole."""
        paths = [path.with_name(f"{path.stem}-{index:03d}.arrow") for index in range(self.num_partitions)]
        counts = [0] * self.num_partitions
        with pa.memory_map(str(path)) as source:
            reader = ipc.open_stream(source)
            writers = [ipc.new_stream(str(sub_path), reader.schema) for sub_path in paths]
            for batch in reader:
                for index, part in enumerate(
                    split_by_user(pa.Table.from_batches([batch]), self.num_partitions, level)
                ):
                    if len(part):
                        writers[index].write_table(part)
                        counts[index] += len(part)
            for writer in writers:
                writer.close()
        path.unlink()
        return [(sub_path, count, level if count < rows else -1) for sub_path, count in zip(paths, counts)]


def split_by_user(table: pa.Table, num_parts: int, level: int) -> list[pa.Table]:
    """Split ``table`` into ``num_parts`` tables by a hash of ``user_hash`` (different per ``level``).

    Example:
        >>> table = pa.table({"user_hash": np.arange(6, dtype=np.uint64), "x": range(6)})
        >>> sum(len(part) for part in split_by_user(table, 4, level=0))
        6
    """
    user_hash = table.column("user_hash").to_numpy()
    salt = np.uint64(level * int(_GOLDEN) % 2**64)
    part = (mix64(user_hash + salt) % np.uint64(num_parts)).astype(np.int16)
    order = np.argsort(part, kind="stable")  # a radix sort for 16-bit keys
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=num_parts))])
    ordered = table.take(pa.array(order))
    return [ordered.slice(bounds[index], bounds[index + 1] - bounds[index]) for index in range(num_parts)]
