"""What a cluster is, in words: per cluster of a clusterwise model, its training users' size, top pages, the pages
that set it apart, outcome rates and a readable label, computed once at training and saved with the model.

For each cluster, from the sessions of its training users:

- ``users``, ``sessions``: how many training users the model routes to it, and their sessions;
- ``cart_rate``, ``purchase_rate``: the share of those sessions that contain the outcome page;
- ``top_pages``: the pages most of its users visited, with ``share`` = the share of its users who visited the
  page at least once (outcome pages left out: they are the rates);
- ``distinctive_pages``: the pages with the highest **lift**, ``share`` in the cluster over ``overall_share``
  among all training users, among the pages at least ``min_support`` of its users visited (so one user's
  rare page does not win) and with a lift above 1;
- ``label_pages``: the pages that name the cluster: the most visited among those at least ``min_support``
  of its users visited with a lift of at least 1.25 (a cluster is named by what most of its users do more than
  others, not by one product few of them saw);
- ``label``: the first two label pages (``general`` without any) and the outcome rates, e.g.
  ``"category/electronics/phones + category/electronics browsers, cart 42%, purchase 12%"``.

The profiles are saved as ``cluster_profiles.json`` in the model folder (:func:`save_cluster_profiles`) so
``hetlm generate`` can label its users offline and the experiment report can show them
(:func:`profiles_markdown`); :func:`load_cluster_profiles` returns None, with a warning, for a model saved
without them.

Example:
    >>> sessions = [[["home", "shoes", "cart"]], [["home", "shoes"]], [["home", "books"]], [["books"]]]
    >>> profiles = compute_cluster_profiles(sessions, [0, 0, 1, 1], top_pages=2)
    >>> profiles[0]["top_pages"][1], profiles[0]["cart_rate"]
    ({'page': 'shoes', 'share': 1.0, 'users': 2}, 0.5)
    >>> profiles[1]["label"]
    'books browsers, cart 0%, purchase 0%'
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenization.atomic_files import write_text_atomically
from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE

from .report_tables import markdown_table

logger = logging.getLogger(__name__)

PROFILES_FILE = "cluster_profiles.json"
DEFAULT_TOP_PAGES = 5
DEFAULT_MIN_SUPPORT = 0.1
PROFILE_COLUMNS: list[str] = [
    "Cluster",
    "Users",
    "Cart rate",
    "Purchase rate",
    "Top pages",
    "Distinctive pages",
    "Label",
]
_LABEL_PAGES = 2
LABEL_MIN_LIFT = 1.25


def compute_cluster_profiles(
    user_sessions: Sequence[Sequence[Sequence[str]]],
    clusters: Sequence[int],
    top_pages: int = DEFAULT_TOP_PAGES,
    min_support: float = DEFAULT_MIN_SUPPORT,
) -> list[dict[str, Any]]:
    """One profile per cluster id present in ``clusters`` (ascending), see the module docstring.

    Args:
        user_sessions: Per training user, its sessions (lists of pages).
        clusters: Per training user, the cluster the model routes it to.
        top_pages: Pages listed in ``top_pages`` and ``distinctive_pages``.
        min_support: The share of a cluster's users that must have visited a page for it to count as distinctive.
    """
    if len(user_sessions) != len(clusters):
        raise ValueError(f"{len(user_sessions)} users' sessions but {len(clusters)} cluster assignments")
    if not 0 <= min_support <= 1:
        raise ValueError(f"min_support is a share of a cluster's users, between 0 and 1; got {min_support}")
    if top_pages < 1:
        raise ValueError(f"top_pages must be at least 1, got {top_pages}")
    outcomes = {OUTCOME_CART, OUTCOME_PURCHASE}
    visited = [{page for session in sessions for page in session} - outcomes for sessions in user_sessions]
    overall = Counter(page for pages in visited for page in pages)
    num_users = len(user_sessions)
    profiles = []
    for cluster in sorted(set(int(cluster) for cluster in clusters)):
        members = [user for user, assigned in enumerate(clusters) if int(assigned) == cluster]
        counts = Counter(page for user in members for page in visited[user])
        sessions = [session for user in members for session in user_sessions[user]]
        share = {page: count / len(members) for page, count in counts.items()}
        lift = {page: share[page] / (overall[page] / num_users) for page in counts}
        ranked = sorted(counts, key=lambda page: (-counts[page], page))[:top_pages]
        distinctive = sorted(
            (page for page in counts if share[page] >= min_support and lift[page] > 1),
            key=lambda page: (-lift[page], -share[page], page),
        )[:top_pages]
        profile = {
            "cluster": cluster,
            "users": len(members),
            "sessions": len(sessions),
            "cart_rate": _share_containing(sessions, OUTCOME_CART),
            "purchase_rate": _share_containing(sessions, OUTCOME_PURCHASE),
            "top_pages": [{"page": page, "share": share[page], "users": counts[page]} for page in ranked],
            "distinctive_pages": [
                {"page": page, "share": share[page], "overall_share": overall[page] / num_users, "lift": lift[page]}
                for page in distinctive
            ],
        }
        profile["label_pages"] = sorted(
            (page for page in counts if share[page] >= min_support and lift[page] >= LABEL_MIN_LIFT),
            key=lambda page: (-counts[page], -lift[page], page),
        )[:_LABEL_PAGES]
        profile["label"] = cluster_label(profile)
        profiles.append(profile)
    return profiles


def _share_containing(sessions: Sequence[Sequence[str]], page: str) -> float:
    return sum(page in session for session in sessions) / len(sessions) if sessions else 0.0


def cluster_label(profile: dict[str, Any]) -> str:
    """A readable name for a profile: its label pages and outcome rates.

    Example:
        >>> cluster_label({"label_pages": ["category/phones"], "cart_rate": 0.42, "purchase_rate": 0.1})
        'category/phones browsers, cart 42%, purchase 10%'
        >>> cluster_label({"label_pages": [], "cart_rate": 0.0, "purchase_rate": 0.0})
        'general browsers, cart 0%, purchase 0%'
    """
    what = " + ".join(profile["label_pages"]) or "general"
    return f"{what} browsers, cart {profile['cart_rate']:.0%}, purchase {profile['purchase_rate']:.0%}"


def save_cluster_profiles(profiles: list[dict[str, Any]], model_dir: str | os.PathLike) -> Path:
    """Write ``cluster_profiles.json`` into the model folder; return its path.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> path = save_cluster_profiles(compute_cluster_profiles([[["a"]], [["b"]]], [0, 1]), folder)
        >>> load_cluster_profiles(folder)[0]["label"]
        'a browsers, cart 0%, purchase 0%'
    """
    path = Path(model_dir) / PROFILES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"computed_from": "training users", "clusters": profiles}
    write_text_atomically(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


def load_cluster_profiles(model_dir: str | os.PathLike) -> dict[int, dict[str, Any]] | None:
    """The profiles saved in a model folder by cluster id, or None (with a warning saying why) without them.

    Example:
        >>> import tempfile
        >>> load_cluster_profiles(tempfile.mkdtemp()) is None
        True
    """
    path = Path(model_dir) / PROFILES_FILE
    if not path.is_file():
        logger.warning(
            "%s has no %s (a model saved before cluster profiles were kept, or not a clusterwise model): "
            "clusters stay bare ids; retrain it to get profiles and labels",
            model_dir,
            PROFILES_FILE,
        )
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {int(profile["cluster"]): profile for profile in document["clusters"]}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a cluster profiles file ({error})") from None


def profiles_markdown(profiles: dict[int, dict[str, Any]]) -> str:
    """The profiles as one Markdown table (shares as percentages, lifts as ``x2.5``).

    Example:
        >>> profiles = {0: compute_cluster_profiles([[["a", "cart"]], [["b"]]], [0, 1])[0]}
        >>> print(profiles_markdown(profiles).splitlines()[-1])
        | 0 | 1 | 1.000 | 0.000 | a (100%) | a (100%, x2.0) | a browsers, cart 100%, purchase 0% |
    """
    rows = [
        {
            "Cluster": str(cluster),
            "Users": profile["users"],
            "Cart rate": profile["cart_rate"],
            "Purchase rate": profile["purchase_rate"],
            "Top pages": ", ".join(f"{item['page']} ({item['share']:.0%})" for item in profile["top_pages"]) or "-",
            "Distinctive pages": ", ".join(
                f"{item['page']} ({item['share']:.0%}, x{item['lift']:.1f})" for item in profile["distinctive_pages"]
            )
            or "-",
            "Label": profile["label"],
        }
        for cluster, profile in sorted(profiles.items())
    ]
    return markdown_table(rows, PROFILE_COLUMNS)
