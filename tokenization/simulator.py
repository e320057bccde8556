"""The built-in browsing simulator: HeTLM's default data. Everything it produces is SYNTHETIC.

The paper's data sets (a Google Analytics 360 store export, the REES46 store log) are private or
behind accounts, so the package ships a seeded simulator of an online store. Its output is labelled
synthetic: the table's schema metadata carries ``synthetic: true`` and
``generator: hetlm.simulator`` (plus the seed), and ``hetlm prepare`` writes ``synthetic: true``
into its summary.

**The store.** ``num_categories`` top categories, each with ``subcategories_per_category``
subcategories, each with ``products_per_subcategory`` products. Every level is a page with a
readable name, plus the two outcome pages::

    category/apparel   category/apparel/mens   product/apparel/mens/tee-0042   cart   purchase

The default 8 x 4 x 33 store has 8 + 32 + 1,056 + 2 = 1,098 pages, about the size of the paper's
Dataset I (Google Merchandise Store).

**The users.** Each user belongs to one latent segment; segments differ strongly in category
loyalty, session length, how often they come back to products seen before, cart and purchase rates
and time between sessions. Each user draws their own interests over the subcategories around a
favourite category. Two scenarios (``SimulatorConfig.scenario``):

- ``"default"`` (``SEGMENT_PROFILES``): each segment has its own favourite category, so what a user
  browses gives the segment away (a sentence encoder of the page names separates the segments well);
- ``"behaviour"`` (``BEHAVIOUR_PROFILES``: decisive buyers, cart abandoners, product revisitors, wide
  browsers): segments share the same interest settings and differ only in *how* they browse and
  convert; every user's favourite category is drawn uniformly, independently of the segment. The
  category words that dominate a sentence encoder's embedding then say nothing about the segment,
  which only a model of the browsing itself can recover.

**The sessions.** Sessions are linked over time, so the next session is predictable from past ones:
interests drift slowly from session to session; a session often opens on a product seen in the
previous sessions (the segment's ``return_rate``); a cart left without a purchase is often picked
up at the start of the next session and bought (``cart_return_rate``). Within a session navigation
is Markov: category page -> subcategory page -> products, sometimes back up, sideways to another
product, back to an earlier product, to ``cart`` (then ``purchase`` or back to browsing). A
purchase ends the session. Events inside a session are at most ``max_dwell_minutes`` apart and
sessions at least ``min_session_gap_minutes`` apart, so splitting the log at a 30-minute
inactivity gap gives back the simulator's sessions.

The whole population is simulated in lockstep with numpy (one vectorised step per page position),
so 100,000 users take seconds. A given config (seed included) always gives a bit-identical table;
a user's events depend on ``num_users`` as well as the seed.

Example:
    >>> table = simulate_events(SimulatorConfig(num_users=50, seed=1))
    >>> table.column_names
    ['user_id', 'session_id', 'timestamp', 'page', 'segment']
    >>> table.schema.metadata[b"synthetic"]
    b'true'
    >>> len(store_pages(SimulatorConfig()))
    1098
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .constants import EVENT_SCHEMA, OUTCOME_CART, OUTCOME_PURCHASE, SEGMENT_FIELD

GENERATOR_NAME = "hetlm.simulator"

# (category, ((subcategory, product noun), ...)) of the default store; larger stores get
# generated names (`dept-09`, `line-05`, `item`).
_CATALOGUE: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("apparel", (("mens", "tee"), ("womens", "dress"), ("kids", "hoodie"), ("accessories", "cap"))),
    ("electronics", (("phones", "phone"), ("audio", "headphones"), ("computers", "laptop"), ("cameras", "camera"))),
    ("home", (("kitchen", "pan"), ("furniture", "chair"), ("decor", "lamp"), ("bedding", "pillow"))),
    ("beauty", (("skincare", "serum"), ("makeup", "lipstick"), ("fragrance", "perfume"), ("haircare", "shampoo"))),
    ("sports", (("fitness", "dumbbell"), ("outdoor", "tent"), ("cycling", "helmet"), ("running", "shoe"))),
    ("books", (("fiction", "novel"), ("nonfiction", "biography"), ("children", "picturebook"), ("comics", "comic"))),
    ("toys", (("games", "boardgame"), ("puzzles", "puzzle"), ("plush", "teddy"), ("building", "blockset"))),
    ("grocery", (("snacks", "chips"), ("drinks", "juice"), ("coffee", "beans"), ("pantry", "pasta"))),
)

# Navigation shared by every segment.
_CATEGORY_TO_SUBCATEGORY = 0.9  # from a category page: down to one of its subcategories, else another category
_SUBCATEGORY_TO_PRODUCT = 0.85  # from a subcategory page: to one of its products, else up to the category
_PRODUCT_BACK_TO_SUBCATEGORY = 0.1  # from a product page: back up to its subcategory page

# Page kinds while simulating.
_CATEGORY, _SUBCATEGORY, _PRODUCT, _CART, _PURCHASE = 0, 1, 2, 3, 4

_MICROSECONDS_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class SegmentProfile:
    """The browsing habits of one latent user segment.

    Args:
        name (`str`): Readable name, e.g. ``"loyal-apparel-buyers"``.
        favourite_category (`int`): Index of the segment's favourite top category in the default
            catalogue (0 apparel, 1 electronics, 2 home, 3 beauty, 4 sports, 5 books, 6 toys,
            7 grocery); taken modulo the store's number of categories.
        loyalty (`float`): Share of the segment's interest prior on the favourite category.
        interest_concentration (`float`): Dirichlet concentration per subcategory of each user's
            own interests; low values give each user a few sharp favourites.
        interest_drift (`float`): Weight of a fresh interest draw mixed in before every session
            after the first (0 = fixed interests).
        mean_session_length (`float`): Mean pages per session (at least 2; a purchase ends a
            session early).
        category_entry_rate (`float`): Probability that a fresh session opens on a top-category
            page rather than a subcategory page.
        return_rate (`float`): Probability that a session opens on a product seen before.
        revisit_rate (`float`): Probability that a product page is followed by a product seen
            before (in this or earlier sessions).
        same_subcategory_rate (`float`): Probability that a product page is followed by another
            product of the same subcategory.
        cart_rate (`float`): Probability that a product page is followed by ``cart``.
        purchase_rate (`float`): Probability that ``cart`` is followed by ``purchase`` in the
            same session.
        cart_return_rate (`float`): Probability that a user who left a cart without buying opens
            the next session on that product, then ``cart``, then ``purchase``.
        mean_gap_hours (`float`): Mean time between sessions (exponential, on top of the minimum
            gap of the config).
        popularity_exponent (`float`): Zipf exponent of product popularity inside a subcategory;
            high values send everybody to the same bestsellers, 0 spreads views evenly.

    Example:
        >>> SEGMENT_PROFILES[0].name
        'loyal-apparel-buyers'
    """

    name: str
    favourite_category: int
    loyalty: float
    interest_concentration: float
    interest_drift: float
    mean_session_length: float
    category_entry_rate: float
    return_rate: float
    revisit_rate: float
    same_subcategory_rate: float
    cart_rate: float
    purchase_rate: float
    cart_return_rate: float
    mean_gap_hours: float
    popularity_exponent: float

    def __post_init__(self):
        product_moves = self.cart_rate + self.revisit_rate + self.same_subcategory_rate + _PRODUCT_BACK_TO_SUBCATEGORY
        if product_moves > 1:
            raise ValueError(
                f"segment {self.name!r}: cart_rate + revisit_rate + same_subcategory_rate + "
                f"{_PRODUCT_BACK_TO_SUBCATEGORY} (back to the subcategory) must be <= 1, got {product_moves:.3f}"
            )
        if self.mean_session_length < 2:
            raise ValueError(
                f"segment {self.name!r}: mean_session_length must be >= 2, got {self.mean_session_length}"
            )


# The first `num_segments` of these are used by the default scenario. They differ strongly on purpose:
# a model that tells segments apart should predict next sessions better, which is what HeTLM's clusters are for.
SEGMENT_PROFILES: tuple[SegmentProfile, ...] = (
    SegmentProfile(
        "loyal-apparel-buyers",
        favourite_category=0,
        loyalty=0.85,
        interest_concentration=0.3,
        interest_drift=0.05,
        mean_session_length=6,
        category_entry_rate=0.2,
        return_rate=0.45,
        revisit_rate=0.2,
        same_subcategory_rate=0.45,
        cart_rate=0.15,
        purchase_rate=0.6,
        cart_return_rate=0.7,
        mean_gap_hours=48,
        popularity_exponent=1.2,
    ),
    SegmentProfile(
        "bargain-browsers",
        favourite_category=2,
        loyalty=0.25,
        interest_concentration=2.0,
        interest_drift=0.35,
        mean_session_length=14,
        category_entry_rate=0.7,
        return_rate=0.05,
        revisit_rate=0.03,
        same_subcategory_rate=0.3,
        cart_rate=0.03,
        purchase_rate=0.1,
        cart_return_rate=0.1,
        mean_gap_hours=120,
        popularity_exponent=0.3,
    ),
    SegmentProfile(
        "tech-researchers",
        favourite_category=1,
        loyalty=0.8,
        interest_concentration=0.3,
        interest_drift=0.1,
        mean_session_length=11,
        category_entry_rate=0.1,
        return_rate=0.4,
        revisit_rate=0.35,
        same_subcategory_rate=0.4,
        cart_rate=0.06,
        purchase_rate=0.35,
        cart_return_rate=0.85,
        mean_gap_hours=20,
        popularity_exponent=0.8,
    ),
    SegmentProfile(
        "quick-grocery-shoppers",
        favourite_category=7,
        loyalty=0.9,
        interest_concentration=0.2,
        interest_drift=0.02,
        mean_session_length=4,
        category_entry_rate=0.05,
        return_rate=0.7,
        revisit_rate=0.3,
        same_subcategory_rate=0.2,
        cart_rate=0.35,
        purchase_rate=0.85,
        cart_return_rate=0.5,
        mean_gap_hours=168,
        popularity_exponent=1.5,
    ),
    SegmentProfile(
        "gift-hunters",
        favourite_category=6,
        loyalty=0.55,
        interest_concentration=1.0,
        interest_drift=0.25,
        mean_session_length=8,
        category_entry_rate=0.5,
        return_rate=0.15,
        revisit_rate=0.1,
        same_subcategory_rate=0.35,
        cart_rate=0.1,
        purchase_rate=0.5,
        cart_return_rate=0.4,
        mean_gap_hours=72,
        popularity_exponent=1.0,
    ),
    SegmentProfile(
        "beauty-regulars",
        favourite_category=3,
        loyalty=0.8,
        interest_concentration=0.4,
        interest_drift=0.05,
        mean_session_length=5,
        category_entry_rate=0.15,
        return_rate=0.6,
        revisit_rate=0.3,
        same_subcategory_rate=0.4,
        cart_rate=0.2,
        purchase_rate=0.7,
        cart_return_rate=0.6,
        mean_gap_hours=96,
        popularity_exponent=1.3,
    ),
)


# The behaviour scenario: one interest model for all (`favourite_category` is ignored: each user
# draws one uniformly), segments differ only in navigation, revisits and conversion.
_SHARED_INTERESTS = {
    "favourite_category": 0,
    "loyalty": 0.7,
    "interest_concentration": 0.5,
    "interest_drift": 0.1,
    "popularity_exponent": 1.0,
    "mean_gap_hours": 72,
}
BEHAVIOUR_PROFILES: tuple[SegmentProfile, ...] = (
    SegmentProfile(
        "decisive-buyers",
        mean_session_length=4,
        category_entry_rate=0.1,
        return_rate=0.2,
        revisit_rate=0.05,
        same_subcategory_rate=0.3,
        cart_rate=0.35,
        purchase_rate=0.9,
        cart_return_rate=0.5,
        **_SHARED_INTERESTS,
    ),
    SegmentProfile(
        "cart-abandoners",
        mean_session_length=7,
        category_entry_rate=0.2,
        return_rate=0.2,
        revisit_rate=0.1,
        same_subcategory_rate=0.35,
        cart_rate=0.3,
        purchase_rate=0.05,
        cart_return_rate=0.1,
        **_SHARED_INTERESTS,
    ),
    SegmentProfile(
        "product-revisitors",
        mean_session_length=10,
        category_entry_rate=0.1,
        return_rate=0.7,
        revisit_rate=0.5,
        same_subcategory_rate=0.3,
        cart_rate=0.05,
        purchase_rate=0.4,
        cart_return_rate=0.8,
        **_SHARED_INTERESTS,
    ),
    SegmentProfile(
        "wide-browsers",
        mean_session_length=14,
        category_entry_rate=0.8,
        return_rate=0.05,
        revisit_rate=0.02,
        same_subcategory_rate=0.15,
        cart_rate=0.02,
        purchase_rate=0.2,
        cart_return_rate=0.1,
        **_SHARED_INTERESTS,
    ),
)
SCENARIOS: dict[str, tuple[SegmentProfile, ...]] = {"default": SEGMENT_PROFILES, "behaviour": BEHAVIOUR_PROFILES}


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of the browsing simulator; the defaults are HeTLM's default data.

    Args:
        num_users (`int`, defaults to 5000): Users to simulate. 5,000 users (about 27,000
            sessions, 220,000 events) keep the default experiment to minutes on 2 CPU cores.
        seed (`int`, defaults to 0): Seed of the only random generator used; same config -> the
            bit-identical table.
        num_categories (`int`, defaults to 8): Top categories of the store (8 are named; more get
            generated names).
        subcategories_per_category (`int`, defaults to 4): Subcategories per top category (4 are
            named per category; more get generated names).
        products_per_subcategory (`int`, defaults to 33): Products per subcategory. With the other
            defaults: 8 + 32 + 1,056 products + cart + purchase = 1,098 pages.
        scenario (`str`, defaults to `"default"`): ``"default"`` (segments with their own favourite
            categories, ``SEGMENT_PROFILES``) or ``"behaviour"`` (segments defined by how users browse
            and convert, category interests independent of the segment, ``BEHAVIOUR_PROFILES``).
        num_segments (`int`, defaults to 4): Latent user segments, the first ones of the scenario's
            profiles (1 to 6 for ``"default"``, 1 to 4 for ``"behaviour"``).
        segment_weights (`tuple[float, ...]` or `None`, defaults to `None`): Share of users in each
            segment (normalised); `None` for equal shares.
        sessions_per_user (`tuple[int, int]`, defaults to `(3, 8)`): Inclusive range of sessions a
            user has, drawn uniformly; the minimum must be at least 2 (one input, one target).
        max_session_length (`int`, defaults to 40): Hard cap on pages per session.
        product_memory (`int`, defaults to 8): How many of a user's most recent product views
            can be revisited.
        start_date (`str`, defaults to `"2026-01-01"`): ISO date or datetime (UTC unless it has an
            offset) of the start of the log.
        first_visit_days (`float`, defaults to 14.0): Users' first sessions start uniformly within
            this many days of ``start_date``.
        min_session_gap_minutes (`float`, defaults to 60.0): Minimum time from the last event of a
            session to the first event of the next.
        mean_dwell_seconds (`float`, defaults to 40.0): Mean time between two events of a session
            (exponential).
        max_dwell_minutes (`float`, defaults to 10.0): Cap on the time between two events of a
            session; must stay below ``min_session_gap_minutes`` so sessions can be recovered from
            inactivity gaps.

    Example:
        >>> config = SimulatorConfig(num_users=200, seed=3)
        >>> config.sessions_per_user
        (3, 8)
    """

    num_users: int = 5000
    seed: int = 0
    scenario: str = "default"
    num_categories: int = 8
    subcategories_per_category: int = 4
    products_per_subcategory: int = 33
    num_segments: int = 4
    segment_weights: tuple[float, ...] | None = None
    sessions_per_user: tuple[int, int] = (3, 8)
    max_session_length: int = 40
    product_memory: int = 8
    start_date: str = "2026-01-01"
    first_visit_days: float = 14.0
    min_session_gap_minutes: float = 60.0
    mean_dwell_seconds: float = 40.0
    max_dwell_minutes: float = 10.0

    def __post_init__(self):
        counts = (
            "num_users",
            "num_categories",
            "subcategories_per_category",
            "products_per_subcategory",
            "num_segments",
            "max_session_length",
            "product_memory",
        )
        for name in (*counts, "seed"):
            if not isinstance(getattr(self, name), (int, np.integer)) or isinstance(getattr(self, name), bool):
                raise ValueError(f"SimulatorConfig.{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("first_visit_days", "min_session_gap_minutes", "mean_dwell_seconds", "max_dwell_minutes"):
            if not isinstance(getattr(self, name), (int, float, np.number)) or isinstance(getattr(self, name), bool):
                raise ValueError(f"SimulatorConfig.{name} must be a number, got {getattr(self, name)!r}")
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"SimulatorConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"SimulatorConfig.scenario must be one of {sorted(SCENARIOS)}, got {self.scenario!r}")
        if not 1 <= self.num_segments <= len(SCENARIOS[self.scenario]):
            raise ValueError(
                f"SimulatorConfig.num_segments must be between 1 and {len(SCENARIOS[self.scenario])} for the "
                f"{self.scenario!r} scenario, got {self.num_segments!r}"
            )
        if self.segment_weights is not None and (
            not isinstance(self.segment_weights, (tuple, list))
            or not all(isinstance(weight, (int, float, np.number)) for weight in self.segment_weights)
            or len(self.segment_weights) != self.num_segments
            or any(weight < 0 for weight in self.segment_weights)
            or sum(self.segment_weights) <= 0
        ):
            raise ValueError(
                f"SimulatorConfig.segment_weights must be {self.num_segments} non-negative numbers with a "
                f"positive sum, got {self.segment_weights!r}"
            )
        sessions = self.sessions_per_user
        if not (
            isinstance(sessions, (tuple, list))
            and len(sessions) == 2
            and all(isinstance(count, (int, np.integer)) for count in sessions)
            and 2 <= sessions[0] <= sessions[1]
        ):
            raise ValueError(
                "SimulatorConfig.sessions_per_user must be (low, high) with 2 <= low <= high, "
                f"got {self.sessions_per_user!r}"
            )
        if self.max_session_length < 3:
            raise ValueError(f"SimulatorConfig.max_session_length must be >= 3, got {self.max_session_length!r}")
        if not 0 < self.max_dwell_minutes < self.min_session_gap_minutes:
            raise ValueError(
                "SimulatorConfig.max_dwell_minutes must be > 0 and below min_session_gap_minutes "
                f"({self.min_session_gap_minutes!r}), got {self.max_dwell_minutes!r}"
            )
        if self.mean_dwell_seconds <= 0 or self.first_visit_days < 0:
            raise ValueError(
                "SimulatorConfig.mean_dwell_seconds must be > 0 and first_visit_days >= 0, got "
                f"{self.mean_dwell_seconds!r} and {self.first_visit_days!r}"
            )
        start_microseconds(self)


def start_microseconds(config: SimulatorConfig) -> int:
    """Start of the simulated log as microseconds since the Unix epoch (UTC).

    Example:
        >>> start_microseconds(SimulatorConfig(start_date="1970-01-02"))
        86400000000
    """
    try:
        start = datetime.fromisoformat(config.start_date)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"SimulatorConfig.start_date must be an ISO date such as '2026-01-01', got {config.start_date!r}"
        ) from error
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return round(start.timestamp() * _MICROSECONDS_PER_SECOND)


def segment_names(config: SimulatorConfig) -> list[str]:
    """Names of the config's segments; the table's ``segment`` column indexes this list.

    Example:
        >>> segment_names(SimulatorConfig(num_segments=2))
        ['loyal-apparel-buyers', 'bargain-browsers']
        >>> segment_names(SimulatorConfig(scenario="behaviour"))
        ['decisive-buyers', 'cart-abandoners', 'product-revisitors', 'wide-browsers']
    """
    return [profile.name for profile in SCENARIOS[config.scenario][: config.num_segments]]


def _category_names(config: SimulatorConfig) -> list[str]:
    return [_CATALOGUE[i][0] if i < len(_CATALOGUE) else f"dept-{i:02d}" for i in range(config.num_categories)]


def _subcategory_names_and_nouns(config: SimulatorConfig, category: int) -> list[tuple[str, str]]:
    named = _CATALOGUE[category][1] if category < len(_CATALOGUE) else ()
    return [
        named[j] if j < len(named) else (f"line-{j:02d}", "item") for j in range(config.subcategories_per_category)
    ]


def store_pages(config: SimulatorConfig) -> list[str]:
    """Every page of the simulated store, in the order of the simulator's page ids.

    Category pages first, then subcategory pages, then product pages (grouped by subcategory),
    then ``cart`` and ``purchase``. Product numbers are unique across the store.

    Example:
        >>> pages = store_pages(SimulatorConfig())
        >>> pages[0], pages[8], pages[40], pages[-2:]
        ('category/apparel', 'category/apparel/mens', 'product/apparel/mens/tee-0000', ['cart', 'purchase'])
    """
    categories = _category_names(config)
    subcategories = [
        (category, subcategory, noun)
        for index, category in enumerate(categories)
        for subcategory, noun in _subcategory_names_and_nouns(config, index)
    ]
    num_products = len(subcategories) * config.products_per_subcategory
    width = max(4, len(str(num_products - 1)))
    products = [
        f"product/{category}/{subcategory}/{noun}-{sub_index * config.products_per_subcategory + item:0{width}d}"
        for sub_index, (category, subcategory, noun) in enumerate(subcategories)
        for item in range(config.products_per_subcategory)
    ]
    return (
        [f"category/{category}" for category in categories]
        + [f"category/{category}/{subcategory}" for category, subcategory, _ in subcategories]
        + products
        + [OUTCOME_CART, OUTCOME_PURCHASE]
    )


def _sample_rows(cumulative: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling, one draw per row of unnormalised cumulative weights."""
    thresholds = uniform * cumulative[:, -1]
    return np.minimum((cumulative < thresholds[:, None]).sum(axis=1), cumulative.shape[1] - 1)


@dataclass
class _SessionBatch:
    """The sessions of one session index, one row per user that has it, advanced in lockstep."""

    users: np.ndarray  # global user index
    segment: np.ndarray
    subcategory_cumulative: np.ndarray  # [rows, subcategories] cumulative interests
    category_cumulative: np.ndarray  # [rows, categories]
    within_category_cumulative: np.ndarray  # [rows, categories, subcategories per category]
    length: np.ndarray  # pages this session wants (a purchase ends it earlier)
    returning: np.ndarray  # comes back for last session's cart: product -> cart -> purchase
    kind: np.ndarray  # kind of the current page
    subcategory: np.ndarray  # subcategory of the current page (first one of the category on category pages)
    product: np.ndarray  # product of the current page (-1 when not a product page)
    carted: np.ndarray  # product of the last cart not purchased yet (-1 when none)
    time: np.ndarray  # timestamp of the current page, microseconds


class _Simulation:
    """One run of the simulator: the population's state, advanced one session index at a time."""

    def __init__(self, config: SimulatorConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.num_categories = config.num_categories
        self.per_category = config.subcategories_per_category
        self.num_subcategories = config.num_categories * config.subcategories_per_category
        self.per_subcategory = config.products_per_subcategory
        self.first_product_page = self.num_categories + self.num_subcategories
        self.cart_page = self.first_product_page + self.num_subcategories * self.per_subcategory
        profiles = SCENARIOS[config.scenario][: config.num_segments]
        self.profile = {
            field.name: np.array([getattr(p, field.name) for p in profiles]) for field in fields(SegmentProfile)
        }

        # Which product of a subcategory is its bestseller is a property of the store.
        self.product_by_rank = np.argsort(self.rng.random((self.num_subcategories, self.per_subcategory)), axis=1)
        ranks = np.arange(1, self.per_subcategory + 1, dtype=float)
        self.popularity_cumulative = np.cumsum(ranks[None, :] ** -self.profile["popularity_exponent"][:, None], axis=1)

        weights = (
            np.ones(len(profiles)) if config.segment_weights is None else np.asarray(config.segment_weights, float)
        )
        num_users = config.num_users
        self.segment = self.rng.choice(len(profiles), size=num_users, p=weights / weights.sum()).astype(np.int32)
        low, high = config.sessions_per_user
        self.num_sessions = self.rng.integers(low, high + 1, size=num_users)
        if config.scenario == "behaviour":
            self.favourite = self.rng.integers(self.num_categories, size=num_users)
        else:
            self.favourite = self.profile["favourite_category"][self.segment] % self.num_categories
        self.interest_prior = self._interest_prior()
        self.interests = self._draw_interests(np.arange(num_users))
        self.memory = np.full((num_users, config.product_memory), -1, dtype=np.int64)
        self.memory_count = np.zeros(num_users, dtype=np.int64)
        self.pending_cart = np.full(num_users, -1, dtype=np.int64)
        day = 86_400 * _MICROSECONDS_PER_SECOND
        self.clock = start_microseconds(config) + (self.rng.random(num_users) * config.first_visit_days * day).astype(
            np.int64
        )
        self.events: list[tuple[np.ndarray, int, int, np.ndarray, np.ndarray]] = []

    def _interest_prior(self) -> np.ndarray:
        """[users, subcategories] prior: the segment's `loyalty` on the user's favourite category, the rest even."""
        favourite = self.favourite
        if self.num_categories == 1:
            return np.full((len(favourite), self.num_subcategories), 1 / self.num_subcategories)
        in_favourite = (np.arange(self.num_subcategories)[None, :] // self.per_category) == favourite[:, None]
        loyalty = self.profile["loyalty"][self.segment][:, None]
        others = self.num_subcategories - self.per_category
        return np.where(in_favourite, loyalty / self.per_category, (1 - loyalty) / others)

    def _draw_interests(self, users: np.ndarray) -> np.ndarray:
        segment = self.segment[users]
        concentration = self.profile["interest_concentration"][segment][:, None] * self.num_subcategories
        # The floor keeps every gamma shape positive.
        draws = self.rng.gamma(concentration * self.interest_prior[users] + 1e-3)
        return draws / draws.sum(axis=1, keepdims=True)

    def run(self) -> None:
        for session_index in range(self.config.sessions_per_user[1]):
            users = np.flatnonzero(self.num_sessions > session_index)
            if session_index > 0:
                drift = self.profile["interest_drift"][self.segment[users]][:, None]
                self.interests[users] = (1 - drift) * self.interests[users] + drift * self._draw_interests(users)
            self._run_sessions(users, session_index)

    def _run_sessions(self, users: np.ndarray, session_index: int) -> None:
        """Simulate one session for each of `users`, all in lockstep, page position by page position."""
        config, rng = self.config, self.rng
        batch = self._open_sessions(users)
        live = np.arange(len(users))
        self._record(batch, live, session_index, 0)
        dwell_cap = config.max_dwell_minutes * 60 * _MICROSECONDS_PER_SECOND
        for step in range(1, config.max_session_length):
            live = live[(batch.length[live] > step) & (batch.kind[live] != _PURCHASE)]
            if len(live) == 0:
                break
            draw = rng.random(len(live))
            # Group by the kind of the current page first: every group then updates only its own rows.
            current = batch.kind[live]
            groups = [(live[current == kind], draw[current == kind]) for kind in range(_PURCHASE)]
            self._leave_category(batch, *groups[_CATEGORY])
            self._leave_subcategory(batch, *groups[_SUBCATEGORY])
            self._leave_product(batch, *groups[_PRODUCT], step)
            self._leave_cart(batch, *groups[_CART], step)
            dwell = rng.exponential(config.mean_dwell_seconds * _MICROSECONDS_PER_SECOND, len(live))
            batch.time[live] += np.minimum(dwell, dwell_cap).astype(np.int64) + 1
            self._record(batch, live, session_index, step)

        self.pending_cart[users] = batch.carted
        gap = config.min_session_gap_minutes * 60 * _MICROSECONDS_PER_SECOND + rng.exponential(
            self.profile["mean_gap_hours"][batch.segment] * 3600 * _MICROSECONDS_PER_SECOND
        )
        self.clock[users] = batch.time + gap.astype(np.int64)

    def _open_sessions(self, users: np.ndarray) -> _SessionBatch:
        """First page: last session's cart, a product seen before, a category page or a subcategory page."""
        rng, profile = self.rng, self.profile
        count = len(users)
        segment = self.segment[users]
        interests = self.interests[users]
        by_category = interests.reshape(count, self.num_categories, self.per_category)
        length = np.minimum(
            2 + rng.poisson(profile["mean_session_length"][segment] - 2), self.config.max_session_length
        )
        returning = (self.pending_cart[users] >= 0) & (rng.random(count) < profile["cart_return_rate"][segment])
        length[returning] = np.maximum(length[returning], 3)
        batch = _SessionBatch(
            users=users,
            segment=segment,
            subcategory_cumulative=np.cumsum(interests, axis=1),
            category_cumulative=np.cumsum(by_category.sum(axis=2), axis=1),
            within_category_cumulative=np.cumsum(by_category, axis=2),
            length=length,
            returning=returning,
            kind=np.full(count, _PRODUCT, dtype=np.int64),
            subcategory=np.zeros(count, dtype=np.int64),
            product=np.full(count, -1, dtype=np.int64),
            carted=np.full(count, -1, dtype=np.int64),
            time=self.clock[users].copy(),
        )
        draw = rng.random(count)
        revisit = ~returning & (draw < profile["return_rate"][segment]) & (self.memory_count[users] > 0)
        fresh = ~returning & ~revisit
        on_category = fresh & (draw >= 1 - profile["category_entry_rate"][segment])
        to_category, to_subcategory = np.flatnonzero(on_category), np.flatnonzero(fresh & ~on_category)

        batch.product[returning] = self.pending_cart[users[returning]]
        batch.product[revisit] = self._remembered_products(users[revisit])
        batch.subcategory = np.where(batch.product >= 0, batch.product // self.per_subcategory, 0)
        batch.kind[to_category] = _CATEGORY
        batch.subcategory[to_category] = self.per_category * _sample_rows(
            batch.category_cumulative[to_category], rng.random(len(to_category))
        )
        batch.kind[to_subcategory] = _SUBCATEGORY
        batch.subcategory[to_subcategory] = _sample_rows(
            batch.subcategory_cumulative[to_subcategory], rng.random(len(to_subcategory))
        )
        return batch

    def _leave_category(self, batch: _SessionBatch, rows: np.ndarray, draw: np.ndarray) -> None:
        """Down to a subcategory of this category (by interest), else across to another category."""
        down, across = rows[draw < _CATEGORY_TO_SUBCATEGORY], rows[draw >= _CATEGORY_TO_SUBCATEGORY]
        category = batch.subcategory[down] // self.per_category
        batch.subcategory[down] = category * self.per_category + _sample_rows(
            batch.within_category_cumulative[down, category], self.rng.random(len(down))
        )
        batch.kind[down] = _SUBCATEGORY
        batch.subcategory[across] = self.per_category * _sample_rows(
            batch.category_cumulative[across], self.rng.random(len(across))
        )

    def _leave_subcategory(self, batch: _SessionBatch, rows: np.ndarray, draw: np.ndarray) -> None:
        """Down to one of its products (by popularity), else up to its category."""
        down, up = rows[draw < _SUBCATEGORY_TO_PRODUCT], rows[draw >= _SUBCATEGORY_TO_PRODUCT]
        batch.kind[down] = _PRODUCT
        batch.product[down] = self._products_in(batch.subcategory[down], batch.segment[down])
        batch.kind[up] = _CATEGORY
        batch.product[up] = -1
        batch.subcategory[up] = batch.subcategory[up] // self.per_category * self.per_category

    def _leave_product(self, batch: _SessionBatch, rows: np.ndarray, draw: np.ndarray, step: int) -> None:
        """To cart, a product seen before, a sibling product, back up, or a subcategory elsewhere."""
        profile, segment = self.profile, batch.segment[rows]
        cart_edge = profile["cart_rate"][segment]
        has_memory = self.memory_count[batch.users[rows]] > 0
        revisit_edge = cart_edge + np.where(has_memory, profile["revisit_rate"][segment], 0.0)
        sibling_edge = revisit_edge + profile["same_subcategory_rate"][segment]
        back_edge = sibling_edge + _PRODUCT_BACK_TO_SUBCATEGORY
        to_cart = (draw < cart_edge) | (batch.returning[rows] & (step == 1))
        move = np.select(
            [to_cart, draw < revisit_edge, draw < sibling_edge, draw < back_edge], [0, 1, 2, 3], default=4
        )

        cart = rows[move == 0]
        batch.kind[cart] = _CART
        batch.carted[cart] = batch.product[cart]
        revisit = rows[move == 1]
        batch.product[revisit] = self._remembered_products(batch.users[revisit])
        batch.subcategory[revisit] = batch.product[revisit] // self.per_subcategory
        sibling = rows[move == 2]
        batch.product[sibling] = self._products_in(batch.subcategory[sibling], batch.segment[sibling])
        up = rows[move >= 3]
        batch.kind[up] = _SUBCATEGORY
        batch.product[up] = -1
        elsewhere = rows[move == 4]
        batch.subcategory[elsewhere] = _sample_rows(
            batch.subcategory_cumulative[elsewhere], self.rng.random(len(elsewhere))
        )

    def _leave_cart(self, batch: _SessionBatch, rows: np.ndarray, draw: np.ndarray, step: int) -> None:
        """To purchase (always for a returning cart), else back to a product next to the carted one."""
        buy = (draw < self.profile["purchase_rate"][batch.segment[rows]]) | (batch.returning[rows] & (step == 2))
        purchase, browse = rows[buy], rows[~buy]
        batch.kind[purchase] = _PURCHASE
        batch.carted[purchase] = -1
        batch.kind[browse] = _PRODUCT
        batch.subcategory[browse] = batch.carted[browse] // self.per_subcategory
        batch.product[browse] = self._products_in(batch.subcategory[browse], batch.segment[browse])

    def _products_in(self, subcategory: np.ndarray, segment: np.ndarray) -> np.ndarray:
        rank = _sample_rows(self.popularity_cumulative[segment], self.rng.random(len(subcategory)))
        return subcategory * self.per_subcategory + self.product_by_rank[subcategory, rank]

    def _remembered_products(self, users: np.ndarray) -> np.ndarray:
        filled = np.minimum(self.memory_count[users], self.memory.shape[1])
        slot = (self.rng.random(len(users)) * filled).astype(np.int64)
        return self.memory[users, slot]

    def _record(self, batch: _SessionBatch, live: np.ndarray, session_index: int, step: int) -> None:
        """Store the current page of the `live` rows and remember product views."""
        kind = batch.kind[live]
        page = np.select(
            [kind == _CATEGORY, kind == _SUBCATEGORY, kind == _PRODUCT],
            [
                batch.subcategory[live] // self.per_category,
                self.num_categories + batch.subcategory[live],
                self.first_product_page + batch.product[live],
            ],
            default=self.cart_page + (kind == _PURCHASE),
        )
        users = batch.users[live]
        self.events.append((users, session_index, step, page, batch.time[live]))
        viewers = users[kind == _PRODUCT]
        self.memory[viewers, self.memory_count[viewers] % self.memory.shape[1]] = batch.product[live][kind == _PRODUCT]
        self.memory_count[viewers] += 1

    def to_table(self, batch_rows: int = 1_000_000) -> pa.Table:
        """The events sorted by user, session and time, in EVENT_SCHEMA plus `segment`."""
        config = self.config
        user = np.concatenate([users for users, *_ in self.events])
        session = np.concatenate([np.full(len(users), index, np.int64) for users, index, *_ in self.events])
        step = np.concatenate([np.full(len(users), position, np.int64) for users, _, position, *_ in self.events])
        page = np.concatenate([pages for *_, pages, _ in self.events])
        time = np.concatenate([times for *_, times in self.events])
        max_sessions, max_length = config.sessions_per_user[1], config.max_session_length
        order = np.argsort((user * max_sessions + session) * max_length + step, kind="stable")

        user_width = max(6, len(str(config.num_users - 1)))
        user_names = pa.array([f"u{index:0{user_width}d}" for index in range(config.num_users)])
        session_names = pa.array([f"{index:02d}" for index in range(max_sessions)])
        page_names = pa.array(store_pages(config))
        schema = simulator_schema(config)
        batches = []
        for start in range(0, len(order), batch_rows):
            rows = order[start : start + batch_rows]
            user_ids = user_names.take(pa.array(user[rows]))
            batches.append(
                pa.record_batch(
                    [
                        user_ids,
                        pc.binary_join_element_wise(user_ids, session_names.take(pa.array(session[rows])), "-s"),
                        pa.array(time[rows], type=pa.timestamp("us", tz="UTC")),
                        page_names.take(pa.array(page[rows])),
                        pa.array(self.segment[user[rows]], type=pa.int32()),
                    ],
                    schema=schema,
                )
            )
        return pa.Table.from_batches(batches, schema=schema)


def simulator_schema(config: SimulatorConfig) -> pa.Schema:
    """EVENT_SCHEMA plus the `segment` column, with metadata labelling the table synthetic.

    Example:
        >>> simulator_schema(SimulatorConfig(seed=7)).metadata[b"seed"]
        b'7'
    """
    metadata = {
        "synthetic": "true",
        "generator": GENERATOR_NAME,
        "seed": str(config.seed),
        "segment_names": json.dumps(segment_names(config)),
        "scenario": config.scenario,
    }
    return pa.schema([*EVENT_SCHEMA, SEGMENT_FIELD], metadata=metadata)


def simulate_events(config: SimulatorConfig | None = None) -> pa.Table:
    """Simulate a SYNTHETIC browsing log of the built-in store.

    Args:
        config: The simulator settings; `None` for the defaults (5,000 users, seed 0).

    Returns:
        A `pyarrow.Table` in EVENT_SCHEMA (`user_id` like ``"u000123"``, `session_id` like
        ``"u000123-s02"``, `timestamp` in microseconds UTC, `page`) plus `segment: int32`, the
        user's true latent segment (an index into ``segment_names(config)``). Rows are sorted by
        user, session and time; the schema metadata says ``synthetic: true``.

    Example:
        >>> table = simulate_events(SimulatorConfig(num_users=20, seed=0))
        >>> table.column("user_id")[0].as_py(), table.column("session_id")[0].as_py()
        ('u000000', 'u000000-s00')
    """
    simulation = _Simulation(config or SimulatorConfig())
    simulation.run()
    return simulation.to_table()
