"""How raw page names of a log become the pages HeTLM models: URL normalisation and outcome pages.

Every log's pages go through :meth:`PageRules.page`: :func:`~tokenization.page_tokenizer.normalize_page`
(strip, lower-case, whitespace escaped), then :func:`~tokenization.urls.normalize_url` for URL-like
pages (on by default), then the **outcome mapping**: a page matching one of the ``cart_pages``
patterns becomes the canonical page ``cart`` (``OUTCOME_CART``), one matching a ``purchase_pages``
pattern ``purchase`` (``OUTCOME_PURCHASE``), so every outcome metric works on any log. The pages
``cart`` and ``purchase`` themselves (what the GA360 and REES46 readers emit for their actions) are
outcomes whatever the patterns.

A pattern is matched against the normalised page, case-insensitively:

- ``re:REGEX``: a regular expression that must match the whole page (``re:/checkout/(done|thank-you)``);
- a pattern with ``*``, ``?`` or ``[``: a shell glob (``/basket*``);
- else an exact page name, normalised like a page (``/Cart/`` is the page ``/cart``).

The rules travel with the data and the model, all under the same two keys (:data:`RULE_KEYS`):
``outcome_pages`` (``{"cart": [...], "purchase": [...]}``) and ``url_normalization``
(``{"enabled": true, "keep_query_parameters": [...]}``), in the prepared data's ``summary.json``, in
the page tokenizer's ``tokenizer_config.json`` and in the saved model's ``config.json``; ``hetlm
generate`` reads them from the model folder and maps a new log's pages the same way. A folder
from before these keys existed is read as "no outcome patterns, URL normalisation off" (how its
pages were made).

Example:
    >>> rules = PageRules(cart_pages=("/basket*",), purchase_pages=("/checkout/thank-you",))
    >>> [rules.page(name) for name in ["/Basket/?utm_source=x", "/checkout/thank-you/", "/search?q=a", "cart"]]
    ['cart', 'purchase', '/search', 'cart']
    >>> PageRules.from_dict(rules.to_dict()) == rules
    True
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .constants import OUTCOME_CART, OUTCOME_PURCHASE
from .page_tokenizer import normalize_page
from .urls import is_url_like, normalize_url

OUTCOME_PAGES_KEY = "outcome_pages"
URL_NORMALIZATION_KEY = "url_normalization"
RULE_KEYS = (OUTCOME_PAGES_KEY, URL_NORMALIZATION_KEY)
_REGEX_PREFIX = "re:"
_GLOB_CHARACTERS = frozenset("*?[")


def _compile(pattern: str, outcome: str) -> re.Pattern:
    """One outcome pattern as a compiled regular expression over normalised pages."""
    if not pattern.strip():
        raise ValueError(f"{outcome} page pattern is blank: name a page, a glob (/basket*) or re:REGEX")
    if pattern.startswith(_REGEX_PREFIX):
        try:
            return re.compile(pattern[len(_REGEX_PREFIX) :], re.IGNORECASE)
        except re.error as error:
            raise ValueError(
                f"{outcome} page pattern {pattern!r} is not a valid regular expression: {error}"
            ) from None
    if _GLOB_CHARACTERS & set(pattern):
        return re.compile(fnmatch.translate(normalize_page(pattern)), re.IGNORECASE)
    page = normalize_page(pattern)
    return re.compile(re.escape(normalize_url(page) if is_url_like(page) else page))


@dataclass(frozen=True)
class PageRules:
    """URL normalisation and outcome pages of a log (see the module docstring).

    Args:
        cart_pages: Patterns of the pages that mean "added to cart".
        purchase_pages: Patterns of the pages that mean "purchased".
        normalize_urls: Normalise URL-like pages (:mod:`tokenization.urls`).
        keep_query_parameters: Query parameters kept by the URL normalisation (case-insensitive).

    Raises:
        ValueError: A blank pattern or an invalid regular expression.

    Example:
        >>> PageRules(cart_pages=("re:/cart/(add|view)",)).page("/CART/add")
        'cart'
        >>> PageRules(normalize_urls=False).page("/search?q=shoes")
        '/search?q=shoes'
    """

    cart_pages: tuple[str, ...] = ()
    purchase_pages: tuple[str, ...] = ()
    normalize_urls: bool = True
    keep_query_parameters: tuple[str, ...] = ()
    _matchers: tuple[tuple[str, tuple[re.Pattern, ...]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cart_pages", "purchase_pages", "keep_query_parameters"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"PageRules.{name} must be a sequence of strings, got the string {value!r}")
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "keep_query_parameters", tuple(name.lower() for name in self.keep_query_parameters))
        matchers = tuple(
            (outcome, tuple(_compile(pattern, outcome) for pattern in patterns))
            for outcome, patterns in ((OUTCOME_CART, self.cart_pages), (OUTCOME_PURCHASE, self.purchase_pages))
        )
        object.__setattr__(self, "_matchers", matchers)

    def page(self, raw: str) -> str:
        """The page a raw name becomes (``""`` for a blank name: a missing page).

        Raises:
            ValueError: The page matches both a cart and a purchase pattern.
        """
        page = normalize_page(raw)
        if self.normalize_urls and is_url_like(page):
            page = normalize_url(page, self.keep_query_parameters)
        outcomes = [outcome for outcome, patterns in self._matchers if any(p.fullmatch(page) for p in patterns)]
        if len(outcomes) > 1:
            raise ValueError(
                f"page {raw!r} ({page!r}) matches both a cart and a purchase page pattern: "
                "make the --cart-page / --purchase-page patterns exclusive"
            )
        return outcomes[0] if outcomes else page

    def to_dict(self) -> dict[str, Any]:
        """The rules under their two documented keys (what summaries, tokenizers and configs store)."""
        return {
            OUTCOME_PAGES_KEY: {OUTCOME_CART: list(self.cart_pages), OUTCOME_PURCHASE: list(self.purchase_pages)},
            URL_NORMALIZATION_KEY: {
                "enabled": self.normalize_urls,
                "keep_query_parameters": list(self.keep_query_parameters),
            },
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PageRules:
        """The rules stored in ``values`` (a summary, a ``tokenizer_config.json``, a model config as a dict).

        Data and models from before the rules existed have neither key: their pages were only
        case-folded, so an absent ``url_normalization`` means URL normalisation off.

        Example:
            >>> PageRules.from_dict({}) == PageRules(normalize_urls=False)
            True
        """
        outcomes = values.get(OUTCOME_PAGES_KEY) or {}
        urls = values.get(URL_NORMALIZATION_KEY) or {"enabled": False}
        return cls(
            cart_pages=tuple(outcomes.get(OUTCOME_CART, ())),
            purchase_pages=tuple(outcomes.get(OUTCOME_PURCHASE, ())),
            normalize_urls=bool(urls.get("enabled", True)),
            keep_query_parameters=tuple(urls.get("keep_query_parameters", ())),
        )

    @classmethod
    def of_tokenizer(cls, tokenizer: Any) -> PageRules:
        """The rules a page tokenizer was saved with (its ``init_kwargs``, from ``tokenizer_config.json``).

        Example:
            >>> from tokenization.page_tokenizer import build_page_tokenizer
            >>> tokenizer = build_page_tokenizer(["home"])
            >>> PageRules(cart_pages=("/cart",)).attach_to(tokenizer)
            >>> PageRules.of_tokenizer(tokenizer).cart_pages
            ('/cart',)
        """
        return cls.from_dict(getattr(tokenizer, "init_kwargs", {}) or {})

    def attach_to(self, tokenizer: Any) -> None:
        """Store the rules in a tokenizer's ``init_kwargs`` (``save_pretrained`` writes them into
        ``tokenizer_config.json``, ``from_pretrained`` reads them back)."""
        tokenizer.init_kwargs.update(self.to_dict())


def record_page_rules(config: Any, tokenizer: Any) -> None:
    """Copy a page tokenizer's rules into a model config (``outcome_pages``, ``url_normalization``).

    Example:
        >>> from transformers import PretrainedConfig
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> config = PretrainedConfig()
        >>> record_page_rules(config, build_page_tokenizer(["home"]))
        >>> config.outcome_pages
        {'cart': [], 'purchase': []}
    """
    config.update(PageRules.of_tokenizer(tokenizer).to_dict())


def describe_outcome_pages(rules: PageRules) -> str:
    """One line saying which pages count as outcomes.

    Example:
        >>> describe_outcome_pages(PageRules(cart_pages=("/cart", "/basket*")))
        "cart: the page 'cart' and pages matching '/cart', '/basket*'; purchase: the page 'purchase'"
    """
    parts = []
    for outcome, patterns in ((OUTCOME_CART, rules.cart_pages), (OUTCOME_PURCHASE, rules.purchase_pages)):
        matching = f" and pages matching {', '.join(map(repr, patterns))}" if patterns else ""
        parts.append(f"{outcome}: the page {outcome!r}{matching}")
    return "; ".join(parts)
