"""Write a realistic synthetic REES46-format CSV (for benchmarks), vectorised with numpy/pyarrow.

Many users with several sessions each, sessions of a few events a few seconds to minutes apart,
a view / cart / remove_from_cart / purchase mix close to the real October 2019 file, 30 % of
views with an empty ``category_code`` (the real file has about a third), rows sorted by time
within each chunk of a million events.

Example:
    $ python benchmarks/rees46_synthetic.py /tmp/rees46.csv --events 1000000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from tokenization.readers.rees46 import REES46_COLUMNS

HEADER = REES46_COLUMNS
EVENT_TYPES = np.array(["view", "cart", "remove_from_cart", "purchase"])
EVENT_TYPE_SHARES = (0.92, 0.05, 0.015, 0.015)
EVENTS_PER_SESSION = 6.0
SESSIONS_PER_USER = 4.0
CHUNK_EVENTS = 1_000_000
NUM_CATEGORIES = 600
NUM_PRODUCTS = 60_000
START_SECONDS = 1_569_888_000  # 2019-10-01 00:00:00 UTC
MONTH_SECONDS = 31 * 86_400


def write_rees46_csv(path: Path, num_events: int, seed: int = 0) -> Path:
    """Write ``num_events`` REES46 rows to ``path`` (CSV with the real header) and return it.

    Example:
        >>> write_rees46_csv(Path("/tmp/rees46_small.csv"), 1000)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    num_users = max(1, int(num_events / (EVENTS_PER_SESSION * SESSIONS_PER_USER)))
    num_chunks = max(1, -(-num_events // CHUNK_EVENTS))
    category_codes = np.array([f"dept{c % 40:02d}.line{c:03d}" for c in range(NUM_CATEGORIES)])
    product_category = rng.integers(0, NUM_CATEGORIES, NUM_PRODUCTS)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as file, pa_csv.CSVWriter(file, _schema(), write_options=options) as writer:
        file.write((",".join(HEADER) + "\n").encode())
        written = 0
        for chunk in range(num_chunks):
            size = min(CHUNK_EVENTS, num_events - written)
            window = (START_SECONDS + MONTH_SECONDS * chunk // num_chunks, MONTH_SECONDS // num_chunks)
            writer.write_table(_chunk(rng, size, written, window, num_users, category_codes, product_category))
            written += size
    return path


def _chunk(rng, size, first_event, window, num_users, category_codes, product_category) -> pa.Table:
    num_sessions = max(1, int(size / EVENTS_PER_SESSION))
    session_of_event = np.sort(rng.integers(0, num_sessions, size))
    session_numbers = first_event + session_of_event  # unique across chunks
    session_user = rng.integers(0, num_users, num_sessions)
    session_start = window[0] + rng.integers(0, window[1], num_sessions)
    starts = np.r_[True, session_of_event[1:] != session_of_event[:-1]]
    gaps = rng.exponential(40.0, size).astype(np.int64)
    gaps[starts] = 0
    # Offset of each event since its session's start: the running sum of gaps, restarted per session.
    offsets = np.cumsum(gaps)
    offsets -= np.maximum.accumulate(np.where(starts, offsets, 0))
    seconds = session_start[session_of_event] + offsets
    # A session mostly browses one category: products drawn near a session-specific anchor.
    anchor = rng.integers(0, len(product_category), num_sessions)
    products = (anchor[session_of_event] + rng.integers(0, 40, size)) % len(product_category)
    categories = product_category[products]
    event_types = EVENT_TYPES[rng.choice(len(EVENT_TYPES), size, p=EVENT_TYPE_SHARES)]
    order = np.argsort(seconds, kind="stable")
    seconds, products, categories, event_types = seconds[order], products[order], categories[order], event_types[order]
    session_numbers, users = session_numbers[order], session_user[session_of_event][order]
    empty_code = (categories % 10) < 3
    times = pc.binary_join_element_wise(pa.array(seconds, pa.timestamp("s")).cast(pa.string()), pa.scalar("UTC"), " ")
    session_ids = pc.binary_join_element_wise(
        "5f1b2c3d-7a1e-4c2b-9d0e", pc.utf8_lpad(pa.array(session_numbers).cast(pa.string()), 12, "0"), "-"
    )
    return pa.table(
        {
            "event_time": times,
            "event_type": event_types,
            "product_id": pa.array(1_000_000 + products),
            "category_id": pa.array(2_053_013_552_000_000_000 + categories.astype(np.int64)),
            "category_code": np.where(empty_code, "", category_codes[categories]),
            "brand": np.where(products % 3 == 0, "", "brand" + (products % 500).astype(str).astype(object)),
            "price": np.round(1 + (products % 997) * 1.37, 2),
            "user_id": pa.array(500_000_000 + users),
            "user_session": session_ids,
        },
        schema=_schema(),
    )


def _schema() -> pa.Schema:
    types = (
        pa.string(),
        pa.string(),
        pa.int64(),
        pa.int64(),
        pa.string(),
        pa.string(),
        pa.float64(),
        pa.int64(),
        pa.string(),
    )
    return pa.schema(list(zip(HEADER, types)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_rees46_csv(args.path, args.events, args.seed)


if __name__ == "__main__":
    main()
