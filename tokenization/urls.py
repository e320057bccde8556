"""URL normalisation of page names: the variants of one web page become one page.

A page is URL-like when it starts with ``/`` or ``http://`` / ``https://`` (any case); other pages
(``category/shoes``, ``cart``) are left alone. A URL-like page, already through
:func:`tokenization.page_tokenizer.normalize_page` (stripped, lower-cased, whitespace
percent-encoded), is normalised as follows:

1. **Scheme and host dropped**: ``https://shop.example.com/cart`` is the page ``/cart``. A log is
   one site's pages; the host only tells apart mirrors (``www.`` or not) and protocols.
2. **Fragment dropped** (from the first ``#``).
3. **Query string dropped**, except the parameters named in ``keep_query_parameters`` (e.g. ``q``
   for searches): those are kept, sorted by name (stable, so repeated names keep their order),
   as ``?name=value&...``. Tracking parameters (``utm_*``, ``gclid``...) are thus dropped by default.
4. **Percent-encoding**: escapes of unreserved characters (letters, digits, ``-._~``) are decoded
   (``/%7Euser`` is ``/~user``); every other escape is kept, its hex digits lower-cased like the
   rest of the page.
5. **Trailing slashes removed**, except for the root ``/``; an empty path is ``/``.

Case is folded by ``normalize_page`` before (paths are treated case-insensitively). Repeated slashes
inside a path are kept. The rule is idempotent: a normalised page normalises to itself.

Example:
    >>> normalize_url("/search?utm_source=mail&q=running%20shoes&page=2#results", keep_query_parameters=("q",))
    '/search?q=running%20shoes'
    >>> normalize_url("https://shop.example.com/category/shoes/")
    '/category/shoes'
    >>> normalize_url("category/shoes?x=1")
    'category/shoes?x=1'
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

_SCHEME_AND_HOST = re.compile(r"^https?://[^/?#]*", re.IGNORECASE)
_PERCENT_ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def is_url_like(page: str) -> bool:
    """Whether a page name is a URL or an absolute path (what :func:`normalize_url` changes).

    Example:
        >>> is_url_like("/cart"), is_url_like("HTTPS://shop.example.com"), is_url_like("cart")
        (True, True, False)
    """
    return page.startswith("/") or _SCHEME_AND_HOST.match(page) is not None


def _percent_decode_unreserved(text: str) -> str:
    def replace(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char.lower() if char in _UNRESERVED else f"%{match.group(1).lower()}"

    return _PERCENT_ESCAPE.sub(replace, text)


def normalize_url(page: str, keep_query_parameters: Sequence[str] = ()) -> str:
    """Normalise a URL-like page (see the module docstring); other pages are returned unchanged.

    Args:
        page: A page name, already normalised by ``normalize_page`` (lower-case, no whitespace).
        keep_query_parameters: Query parameter names kept (lower-case, as the page is).

    Example:
        >>> normalize_url("/?utm_source=newsletter&utm_medium=email")
        '/'
        >>> normalize_url("/product/sneakers?color=red&size=42", keep_query_parameters=("size", "color"))
        '/product/sneakers?color=red&size=42'
    """
    if not is_url_like(page):
        return page
    page = _SCHEME_AND_HOST.sub("", page, count=1)
    page = page.partition("#")[0]
    path, _, query = page.partition("?")
    path = _percent_decode_unreserved(path).rstrip("/") or "/"
    if not keep_query_parameters or not query:
        return path
    kept = [part for part in query.split("&") if part.partition("=")[0] in keep_query_parameters]
    kept.sort(key=lambda part: part.partition("=")[0])
    return f"{path}?{'&'.join(_percent_decode_unreserved(part) for part in kept)}" if kept else path
