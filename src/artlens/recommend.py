"""Recommendations from a set of liked artworks: the engine's neighbours of their mean embedding,
re-ordered so that no single artist (or other group column) fills the page."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from artlens.search import Hit, SearchEngine, SearchResult


def cap_per_group(hits: Sequence[Hit], k: int, group: Callable[[Hit], str | None], max_per_group: int) -> list[Hit]:
    """The best ``k`` hits with at most ``max_per_group`` per group, in score order; hits without a
    group are never capped. When the cap leaves fewer than ``k``, the best capped hits fill up."""
    kept, deferred, taken = [], [], {}
    for hit in hits:
        key = group(hit)
        if key is not None and taken.get(key, 0) >= max_per_group:
            deferred.append(hit)
            continue
        taken[key] = taken.get(key, 0) + 1
        kept.append(hit)
        if len(kept) == k:
            return kept
    return kept + deferred[: k - len(kept)]


def recommend(engine: SearchEngine, liked: Sequence[int], k: int = 10, weights: Mapping[str, float] | None = None,
              filters: Mapping[str, Sequence[str]] | None = None, group_column: str | None = "artist",
              max_share: float = 0.25, pool: int = 4) -> SearchResult:
    """Artworks like the liked ones (never the liked ones themselves), at most ``max_share`` of the
    ``k`` from one value of ``group_column`` while enough other candidates exist."""
    result = engine.search(liked=list(liked), k=k * pool if group_column else k, weights=weights, filters=filters)
    if group_column:
        limit = max(1, math.ceil(max_share * k))
        result.hits = cap_per_group(result.hits, k, lambda h: h.metadata.get(group_column), limit)
    result.hits = result.hits[:k]
    return result
