"""Tests of the built-in browsing simulator (tokenization/simulator.py)."""

from __future__ import annotations

import doctest
import re
from collections import defaultdict
from datetime import timedelta

import pytest

from tokenization import simulator
from tokenization.constants import EVENT_SCHEMA, OUTCOME_CART, OUTCOME_PURCHASE
from tokenization.simulator import SimulatorConfig, segment_names, simulate_events, store_pages

PAGE_PATTERN = re.compile(
    r"^(category/[a-z0-9-]+(/[a-z0-9-]+)?|product/[a-z0-9-]+/[a-z0-9-]+/[a-z]+-\d{4,}|cart|purchase)$"
)
CONFIG = SimulatorConfig(num_users=400, seed=11)


@pytest.fixture(scope="module")
def table():
    return simulate_events(CONFIG)


@pytest.fixture(scope="module")
def sessions(table):
    """session_id -> (user_id, segment, [(timestamp, page), ...]) in table order."""
    by_session = {}
    for row in table.to_pylist():
        _, _, events = by_session.setdefault(row["session_id"], (row["user_id"], row["segment"], []))
        events.append((row["timestamp"], row["page"]))
    return by_session


@pytest.fixture(scope="module")
def sessions_by_segment(sessions):
    grouped = defaultdict(list)
    for _, segment, events in sessions.values():
        grouped[segment].append([page for _, page in events])
    return grouped


def test_docstring_examples_hold():
    assert doctest.testmod(simulator).failed == 0


def test_same_seed_gives_identical_table_and_other_seed_differs(table):
    assert simulate_events(CONFIG).equals(table, check_metadata=True)
    other = simulate_events(SimulatorConfig(num_users=400, seed=12))
    assert not other.equals(table)
    assert other.column("page").to_pylist() != table.column("page").to_pylist()


def test_default_store_has_about_1100_well_formed_pages():
    pages = store_pages(SimulatorConfig())
    assert 1050 <= len(pages) <= 1150
    assert len(set(pages)) == len(pages)
    assert sum(page.startswith("product/") for page in pages) == 8 * 4 * 33
    assert pages[-2:] == [OUTCOME_CART, OUTCOME_PURCHASE]
    assert "category/apparel/mens" in pages
    assert all(PAGE_PATTERN.match(page) for page in pages), [page for page in pages if not PAGE_PATTERN.match(page)][
        :5
    ]


def test_store_size_follows_the_config():
    pages = store_pages(SimulatorConfig(num_categories=10, subcategories_per_category=5, products_per_subcategory=3))
    assert len(pages) == 10 + 50 + 150 + 2
    assert "category/dept-09/line-04" in pages
    assert all(PAGE_PATTERN.match(page) for page in pages)


def test_schema_is_event_schema_plus_segment_and_labelled_synthetic(table):
    assert table.schema.names == [*EVENT_SCHEMA.names, "segment"]
    for field in EVENT_SCHEMA:
        assert table.schema.field(field.name).type == field.type
    assert str(table.schema.field("segment").type) == "int32"
    metadata = table.schema.metadata
    assert metadata[b"synthetic"] == b"true"
    assert metadata[b"generator"] == b"hetlm.simulator"
    assert metadata[b"seed"] == b"11"
    assert all(column.null_count == 0 for column in table.columns)


def test_pages_come_from_the_store_and_have_no_whitespace(table):
    seen = set(table.column("page").to_pylist())
    assert seen <= set(store_pages(CONFIG))
    assert {OUTCOME_CART, OUTCOME_PURCHASE} <= seen
    assert not any(re.search(r"\s", page) for page in seen)


def test_every_segment_is_present_and_balanced(table):
    segment_of_user = dict(zip(table.column("user_id").to_pylist(), table.column("segment").to_pylist()))
    assert len(segment_of_user) == CONFIG.num_users
    counts = [list(segment_of_user.values()).count(segment) for segment in range(CONFIG.num_segments)]
    assert min(counts) >= 0.15 * CONFIG.num_users, counts
    assert segment_names(CONFIG) == [
        "loyal-apparel-buyers",
        "bargain-browsers",
        "tech-researchers",
        "quick-grocery-shoppers",
    ]


def test_every_user_has_enough_sessions_in_time_order_with_gaps(sessions):
    sessions_of_user = defaultdict(list)
    for session_id, (user_id, _, events) in sessions.items():
        assert session_id.startswith(user_id + "-s")
        assert [time for time, _ in events] == sorted(time for time, _ in events)
        assert all(
            later - earlier <= timedelta(minutes=CONFIG.max_dwell_minutes)
            for (earlier, _), (later, _) in zip(events, events[1:])
        )
        assert len(events) >= 2
        sessions_of_user[user_id].append(events)
    low, high = CONFIG.sessions_per_user
    for user_sessions in sessions_of_user.values():
        assert low <= len(user_sessions) <= high
        for previous, following in zip(user_sessions, user_sessions[1:]):
            assert following[0][0] - previous[-1][0] >= timedelta(minutes=CONFIG.min_session_gap_minutes)


def test_segments_differ_in_outcomes_length_and_loyalty(sessions_by_segment):
    def purchase_rate(segment):
        return sum(OUTCOME_PURCHASE in pages for pages in sessions_by_segment[segment]) / len(
            sessions_by_segment[segment]
        )

    def mean_length(segment):
        return sum(map(len, sessions_by_segment[segment])) / len(sessions_by_segment[segment])

    def share_in(segment, category):
        pages = [page for session in sessions_by_segment[segment] for page in session if page.count("/") >= 1]
        return sum(page.split("/")[1] == category for page in pages) / len(pages)

    loyal, browsers, grocery = 0, 1, 3
    assert purchase_rate(grocery) > 3 * purchase_rate(browsers)
    assert purchase_rate(loyal) > 3 * purchase_rate(browsers)
    assert mean_length(browsers) > 2 * mean_length(grocery)
    assert share_in(loyal, "apparel") > 0.6 > 0.4 > share_in(browsers, "home")


def test_next_session_reuses_past_products_and_carts(sessions):
    """Sessions are linked: products come back, and a cart left behind is often bought next time."""
    ordered = defaultdict(list)
    for user_id, segment, events in sessions.values():
        ordered[user_id].append((segment, [page for _, page in events]))
    revisits = defaultdict(list)
    carts_bought_next = 0
    for user_sessions in ordered.values():
        for (segment, previous), (_, following) in zip(user_sessions, user_sessions[1:]):
            products = {page for page in previous if page.startswith("product/")}
            revisits[segment].append(bool(products & set(following)))
            last_cart = max((i for i, page in enumerate(previous) if page == OUTCOME_CART), default=None)
            if last_cart is not None and OUTCOME_PURCHASE not in previous[last_cart:]:
                carts_bought_next += following[:3] == [previous[last_cart - 1], OUTCOME_CART, OUTCOME_PURCHASE]
    revisit_rate = {segment: sum(flags) / len(flags) for segment, flags in revisits.items()}
    assert revisit_rate[2] > 0.5 > 0.3 > revisit_rate[1]
    assert carts_bought_next >= 100


@pytest.mark.parametrize(
    "options, field",
    [
        ({"num_segments": 7}, "num_segments"),
        ({"sessions_per_user": (1, 4)}, "sessions_per_user"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"max_dwell_minutes": 90}, "max_dwell_minutes"),
        ({"segment_weights": (1.0, 2.0)}, "segment_weights"),
        ({"num_users": 0}, "num_users"),
        ({"num_users": "100"}, "num_users"),
        ({"sessions_per_user": 3}, "sessions_per_user"),
        ({"mean_dwell_seconds": "40"}, "mean_dwell_seconds"),
    ],
)
def test_bad_config_names_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        SimulatorConfig(**options)


def test_behaviour_scenario_segments_differ_in_how_not_what_users_browse():
    """Behaviour segments: distinct cart / purchase / revisit habits, the same mix of categories."""
    config = SimulatorConfig(num_users=1200, seed=3, scenario="behaviour")
    rows = simulate_events(config).to_pylist()
    assert segment_names(config) == ["decisive-buyers", "cart-abandoners", "product-revisitors", "wide-browsers"]
    assert simulate_events(config).schema.metadata[b"scenario"] == b"behaviour"
    pages_by_segment = defaultdict(list)
    for row in rows:
        pages_by_segment[row["segment"]].append(row["page"])
    assert sorted(pages_by_segment) == [0, 1, 2, 3]
    categories = sorted({page.split("/")[1] for page in store_pages(config) if page.startswith("category/")})

    def category_shares(pages):
        browsed = [page.split("/")[1] for page in pages if "/" in page]
        return [browsed.count(category) / len(browsed) for category in categories]

    shares = [category_shares(pages_by_segment[segment]) for segment in range(4)]
    for share in shares[1:]:  # every category's share within a few points of the first segment's
        assert max(abs(a - b) for a, b in zip(share, shares[0])) < 0.05
    cart = [pages.count(OUTCOME_CART) / len(pages) for pages in pages_by_segment.values()]
    purchase_per_cart = {
        segment: pages.count(OUTCOME_PURCHASE) / max(1, pages.count(OUTCOME_CART))
        for segment, pages in pages_by_segment.items()
    }
    assert max(cart) > 5 * min(cart)
    assert purchase_per_cart[0] > 0.6 > 0.1 > purchase_per_cart[1]  # decisive buyers buy, abandoners do not


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="scenario"):
        SimulatorConfig(scenario="surface")
    with pytest.raises(ValueError, match="between 1 and 4"):
        SimulatorConfig(scenario="behaviour", num_segments=5)
