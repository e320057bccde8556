"""Reader for Google Analytics 360 BigQuery exports (``ga_sessions_*``) as newline-delimited JSON.

The input is exactly what BigQuery writes when the public Google Merchandise Store sample
(``bigquery-public-data.google_analytics_sample.ga_sessions_*``, the paper's Dataset I) is
exported as JSON: one visit per line, INT64 fields written as JSON strings
(``"visitStartTime": "1501591568"``), the hits nested::

    {"visitNumber": "1", "visitId": "1501591568", "visitStartTime": "1501591568", "date": "20170801",
     "fullVisitorId": "3418334011779872055", ...,
     "hits": [{"hitNumber": "1", "time": "0", "type": "PAGE",
               "page": {"pagePath": "/google+redesign/bags", "hostname": "shop.googlemerchandisestore.com", ...},
               "eCommerceAction": {"action_type": "0", "step": "1", "option": null}, ...}, ...]}

Plain JSON numbers are accepted too. Only ``fullVisitorId``, ``visitId``, ``visitStartTime`` and
``hits[].time / type / page.pagePath / eCommerceAction.action_type`` are read; the rest is ignored.
Files may be gzip-compressed (``ga_sessions_20170801.json.gz``); a folder or glob reads them all.

Events:

- user = ``fullVisitorId``; session = ``"<fullVisitorId>:<visitId>"`` (visitId is only unique
  per visitor); timestamp = ``visitStartTime`` (seconds) + ``hits.time`` (milliseconds since the
  visit start).
- **One page view per PAGE hit** (EVENT and other hits are not page views, so repeated events on
  the same page add nothing; ``hetlm prepare --drop-consecutive-duplicates`` removes repeated
  views of one page). The page is ``hits.page.pagePath`` as exported; like every URL-like page of
  every reader it is normalised downstream by the one URL rule (:mod:`tokenization.urls`, applied
  by :class:`tokenization.page_rules.PageRules`): query string and fragment dropped unless
  parameters are whitelisted, lower-cased, trailing slashes removed except for the root ``/``.
  The hostname is ignored.
- **Outcomes**: a hit with ``eCommerceAction.action_type`` "3" (add product to cart) adds the page
  ``cart``, "6" (completed purchase) adds ``purchase``, right after the hit's page view if it has
  one. Hits that are neither a page view nor an outcome are counted in the report as
  ``"GA hits without page view or outcome ignored"``.

A visit with a blank ``fullVisitorId`` / ``visitId``, a non-numeric ``visitStartTime`` or
``hits.time``, or a PAGE hit without ``pagePath`` raises a DataFormatError naming the file, the
line and the field, or is skipped and counted with ``on_bad_rows="skip"``.

Example:
    >>> reader = GA360Reader("tests/fixtures/ga_sessions_sample.json", batch_size=1000)
    >>> table = pa.Table.from_batches(list(reader.batches("error", {})))
    >>> table.column_names
    ['user_id', 'session_id', 'timestamp', 'page']
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from ..constants import EVENT_SCHEMA, OUTCOME_CART, OUTCOME_PURCHASE
from .bad_rows import ROW_COLUMN, BadRowPolicy, Check, as_mask
from .columns import cast_or_null, interleave, is_blank, page_checks, text_column
from .files import block_bytes_for, require_columns, source_files
from .json_lines import first_json_record, ndjson_tables
from .timestamps import TIMESTAMP_TYPE

ACTION_ADD_TO_CART = "3"
ACTION_PURCHASE = "6"
HITS_IGNORED = "GA hits without page view or outcome ignored"
VISITS_WITHOUT_HITS = "GA visits without any page view or outcome ignored"
# A visit line of the Merchandise Store export is a few kilobytes; blocks stay at most 16 MiB anyway.
_BYTES_PER_VISIT = 4096
VISIT_FIELDS = ("fullVisitorId", "visitId", "visitStartTime", "hits")
_HIT_TYPE = pa.struct(
    [
        ("hitNumber", pa.string()),
        ("time", pa.string()),
        ("type", pa.string()),
        ("page", pa.struct([("pagePath", pa.string())])),
        ("eCommerceAction", pa.struct([("action_type", pa.string())])),
    ]
)
GA_SCHEMA = pa.schema(
    [
        ("fullVisitorId", pa.string()),
        ("visitId", pa.string()),
        ("visitStartTime", pa.string()),
        ("hits", pa.list_(_HIT_TYPE)),
    ]
)


class GA360Reader:
    """Streams GA360 ``ga_sessions_*`` JSON lines (file, folder or glob) as batches in EVENT_SCHEMA.

    Args:
        source: The export file(s): ``.json`` / ``.jsonl`` / ``.ndjson``, optionally ``.gz``.
        batch_size: Sizes the blocks read at once (visits are far larger than events).
    """

    def __init__(self, source: str | Path, *, batch_size: int):
        self.files = source_files(source, (".json", ".jsonl", ".ndjson"))
        for path in self.files:
            require_columns(path, list(first_json_record(path)), VISIT_FIELDS, "a GA360 ga_sessions export")
        self.block_bytes = block_bytes_for(batch_size, _BYTES_PER_VISIT)

    def batches(self, on_bad_rows: str, report: dict[str, int]) -> Iterator[pa.RecordBatch]:
        """Yield record batches in EVENT_SCHEMA, file after file, adding skip counts to ``report``."""
        options = pa_json.ParseOptions(
            explicit_schema=GA_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False
        )
        for path in self.files:
            policy = BadRowPolicy(str(path), on_bad_rows, report)
            for visits in ndjson_tables(path, policy, self.block_bytes, options, _normalize_visit):
                events = _events(visits, policy)
                if events.num_rows:
                    yield from events.to_batches()
            policy.finish()


def _events(visits: pa.Table, policy: BadRowPolicy) -> pa.Table:
    visitor = text_column(visits.column("fullVisitorId"), "fullVisitorId", policy.file)
    visit = text_column(visits.column("visitId"), "visitId", policy.file)
    start = cast_or_null(visits.column("visitStartTime").combine_chunks(), pa.int64())
    hits = visits.column("hits").combine_chunks()
    parents = pc.list_parent_indices(hits).to_numpy()
    flat = pc.list_flatten(hits)
    hit_time = cast_or_null(pc.struct_field(flat, "time"), pa.int64())
    is_page = as_mask(pc.equal(pc.struct_field(flat, "type"), "PAGE"))
    path = pc.struct_field(flat, ["page", "pagePath"])

    def per_visit(hit_mask: np.ndarray) -> np.ndarray:
        return np.bincount(parents[hit_mask], minlength=visits.num_rows) > 0

    numbered = pa.table({"visit": np.arange(visits.num_rows), ROW_COLUMN: visits.column(ROW_COLUMN)})
    kept = policy.reject(
        numbered,
        Check(is_blank(visitor), "missing fullVisitorId", "fullVisitorId"),
        Check(is_blank(visit), "missing visitId", "visitId"),
        Check(
            start.is_null(),
            "visitStartTime is not a number of seconds",
            "visitStartTime",
            visits.column("visitStartTime"),
        ),
        Check(per_visit(as_mask(hit_time.is_null())), "hits.time is not a number of milliseconds", "hits.time"),
        Check(per_visit(is_page & as_mask(is_blank(path))), "PAGE hit without page.pagePath", "hits.page.pagePath"),
        *(
            Check(per_visit(is_page & as_mask(check.bad)), f"PAGE hit with a {check.reason}", "hits.page.pagePath")
            for check in page_checks(path, "hits.page.pagePath")[1:]
        ),
    )
    kept_visit = np.zeros(visits.num_rows, dtype=bool)
    kept_visit[kept.column("visit").to_numpy()] = True
    kept_hit = kept_visit[parents]

    action = pc.struct_field(flat, ["eCommerceAction", "action_type"])
    outcome = pc.if_else(
        pc.equal(action, ACTION_ADD_TO_CART),
        OUTCOME_CART,
        pc.if_else(pc.equal(action, ACTION_PURCHASE), OUTCOME_PURCHASE, None),
    )
    has_outcome = as_mask(outcome.is_valid())
    policy.ignore(HITS_IGNORED, int((kept_hit & ~is_page & ~has_outcome).sum()))
    used_hit = kept_hit & (is_page | has_outcome)
    policy.ignore(
        VISITS_WITHOUT_HITS, int((kept_visit & ~(np.bincount(parents[used_hit], minlength=visits.num_rows) > 0)).sum())
    )

    session = pc.binary_join_element_wise(visitor, visit, ":")
    microseconds = start.fill_null(0).to_numpy()[parents] * 1_000_000 + hit_time.fill_null(0).to_numpy() * 1_000
    parent_index = pa.array(parents)
    per_hit = [visitor.take(parent_index), session.take(parent_index), pa.array(microseconds).cast(TIMESTAMP_TYPE)]

    page_hits = np.flatnonzero(kept_hit & is_page)
    outcome_hits = np.flatnonzero(kept_hit & has_outcome)
    page_rows = pa.table(
        [*(c.take(pa.array(page_hits)) for c in per_hit), path.take(pa.array(page_hits))], schema=EVENT_SCHEMA
    )
    outcome_rows = pa.table(
        [*(c.take(pa.array(outcome_hits)) for c in per_hit), outcome.take(pa.array(outcome_hits))], schema=EVENT_SCHEMA
    )
    return interleave(page_rows, page_hits, outcome_rows, outcome_hits)


def _normalize_visit(record: dict) -> dict:
    """One visit with the used fields as text, for blocks pyarrow.json rejects (numbers, odd shapes)."""
    hits = record.get("hits") or []
    if not isinstance(hits, list) or not all(isinstance(hit, dict) for hit in hits):
        raise ValueError("hits: wrong type (expected a list of hit objects)")
    return {
        **{name: _text(record, name) for name in VISIT_FIELDS[:3]},
        "hits": [
            {
                "hitNumber": _text(hit, "hitNumber", "hits"),
                "time": _text(hit, "time", "hits"),
                "type": _text(hit, "type", "hits"),
                "page": {"pagePath": _text(hit.get("page") or {}, "pagePath", "hits.page")},
                "eCommerceAction": {
                    "action_type": _text(hit.get("eCommerceAction") or {}, "action_type", "hits.eCommerceAction")
                },
            }
            for hit in hits
        ],
    }


def _text(record: dict, name: str, parent: str = "") -> str | None:
    if not isinstance(record, dict):
        raise ValueError(f"{parent}: wrong type (expected an object)")
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{parent + '.' if parent else ''}{name}: wrong type {type(value).__name__}")
    return str(value)
