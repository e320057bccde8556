"""URL normalisation of page names (tokenization/urls.py) and the page rules around it (tokenization/page_rules.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tokenization.event_partitions import PageCoder
from tokenization.page_rules import PageRules
from tokenization.page_tokenizer import normalize_page
from tokenization.urls import normalize_url

URL_CASES = [
    # (raw page, kept query parameters, page)
    ("/search?q=shoes", (), "/search"),  # query dropped
    ("/product/sneakers#reviews", (), "/product/sneakers"),  # fragment dropped
    ("/category/shoes/running/", (), "/category/shoes/running"),  # trailing slash
    ("/category/shoes//", (), "/category/shoes"),  # every trailing slash
    ("/", (), "/"),  # the root keeps its slash
    ("/?utm_source=newsletter&utm_medium=email", (), "/"),  # tracking parameters
    ("/#top", (), "/"),
    ("/search?utm_campaign=spring&q=shoes&page=2", ("q",), "/search?q=shoes"),  # whitelist
    ("/search?sort=price&q=shoes", ("sort", "q"), "/search?q=shoes&sort=price"),  # kept, sorted by name
    ("/search?Q=Shoes", ("Q",), "/search?q=shoes"),  # parameter names fold case like pages
    ("/search?utm_source=x", ("q",), "/search"),  # nothing kept: no "?"
    ("https://shop.example.com/cart?ref=home", (), "/cart"),  # scheme and host dropped
    ("HTTP://Shop.Example.com", (), "/"),  # no path: the root
    ("https://shop.example.com?x=1", (), "/"),
    ("/%7Euser/%41bc", (), "/~user/abc"),  # unreserved escapes decoded, case folded
    ("/a%2Fb%3Fc", (), "/a%2fb%3fc"),  # reserved escapes kept (hex lower-cased)
    ("/Category/Men's Shoes/", (), "/category/men's%20shoes"),  # whitespace escaped, then the slash
    ("/Product/Sneakers", (), "/product/sneakers"),  # case
    ("category/shoes?x=1", (), "category/shoes?x=1"),  # not URL-like: unchanged
    ("cart", (), "cart"),
]


@pytest.mark.parametrize("raw, keep, expected", URL_CASES)
def test_url_normalisation(raw, keep, expected):
    page = PageRules(keep_query_parameters=keep).page(raw)
    assert page == expected
    assert PageRules(keep_query_parameters=keep).page(page) == page  # idempotent
    assert normalize_page(page) == page  # and stable under the tokenizer's normalisation


def test_normalize_url_leaves_other_pages_and_can_be_switched_off():
    assert normalize_url("product/electronics.smartphone/1004237") == "product/electronics.smartphone/1004237"
    assert PageRules(normalize_urls=False).page("/Search/?q=Shoes#x") == "/search/?q=shoes#x"


def test_merged_variants_are_counted_once_per_raw_name():
    coder = PageCoder(PageRules(keep_query_parameters=("q",)))
    raw = [
        "/",
        "/?utm_source=a",
        "/#top",
        "https://shop.example.com/",
        "/search?q=a",
        "/search?q=a&utm_x=1",
        "/search?q=b",
        "/Cart/",
        "/cart",
    ]
    codes = coder.encode(pa.array(raw + raw)).tolist()  # every raw name twice: still counted once
    assert sorted(coder.pages) == ["/", "/cart", "/search?q=a", "/search?q=b"]
    assert coder.raw_names == len(raw) == 9
    assert codes[: len(raw)] == codes[len(raw) :]
    assert len(set(codes[:4])) == 1 and codes[4] == codes[5] != codes[6]


THANKS = "re:/checkout/(done|thank-you)"


@pytest.mark.parametrize(
    "rules, raw, expected",
    [
        (PageRules(cart_pages=("/cart",)), "/Cart/?utm_source=x", "cart"),  # exact, after URL normalisation
        (PageRules(cart_pages=("/Cart/",)), "/cart", "cart"),  # the pattern is normalised like a page
        (PageRules(cart_pages=("/basket*",)), "/basket/view", "cart"),  # glob
        (PageRules(cart_pages=("/basket*",)), "/my-basket", "/my-basket"),
        (PageRules(purchase_pages=(THANKS,)), "/checkout/thank-you?order=1", "purchase"),
        (PageRules(purchase_pages=(THANKS,)), "/checkout/thank-you/x", "/checkout/thank-you/x"),  # a whole match
        (PageRules(purchase_pages=("re:ORDER-.*",)), "order-42", "purchase"),  # regexes ignore case
        (PageRules(cart_pages=("/cart",)), "purchase", "purchase"),  # the canonical pages stay outcomes
        (PageRules(cart_pages=("/cart", "/basket")), "/basket", "cart"),  # several patterns
    ],
)
def test_outcome_patterns(rules, raw, expected):
    assert rules.page(raw) == expected


def test_bad_outcome_patterns_are_clear_errors():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        PageRules(cart_pages=("re:/cart(",))
    with pytest.raises(ValueError, match="blank"):
        PageRules(purchase_pages=(" ",))
    with pytest.raises(ValueError, match="sequence of strings"):
        PageRules(cart_pages="/cart")
    with pytest.raises(ValueError, match="matches both a cart and a purchase"):
        PageRules(cart_pages=("/checkout*",), purchase_pages=("/checkout/done",)).page("/checkout/done")


def test_rules_round_trip_through_their_two_keys():
    rules = PageRules(
        cart_pages=("/cart", "/basket*"),
        purchase_pages=("re:/thanks.*",),
        normalize_urls=False,
        keep_query_parameters=("q",),
    )
    stored = rules.to_dict()
    assert stored == {
        "outcome_pages": {"cart": ["/cart", "/basket*"], "purchase": ["re:/thanks.*"]},
        "url_normalization": {"enabled": False, "keep_query_parameters": ["q"]},
    }
    assert PageRules.from_dict(stored) == rules
    # Data and models from before the rules: pages were only case-folded.
    assert PageRules.from_dict({"other": 1}) == PageRules(normalize_urls=False)
