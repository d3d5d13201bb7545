"""Recommendations from a set of liked artworks: the engine's neighbours of their mean embedding,
re-ordered so that no single artist (or other group column) fills the page."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from artlens.search import Hit, SearchEngine, SearchResult


def diversify(hits: Sequence[Hit], k: int, group: Callable[[Hit], str | None], max_per_group: int,
              penalty: float = 0.0) -> list[Hit]:
    """``k`` hits picked greedily by score minus ``penalty`` for every work of the same group already
    picked, with at most ``max_per_group`` per group (hits without a group are never capped or
    penalised). When the cap leaves fewer than ``k``, it rises one at a time, so the page stays as
    mixed as the candidates allow. ``penalty=0`` keeps score order."""
    chosen: list[Hit] = []
    taken: dict[str, int] = {}
    remaining = list(hits)
    cap = max(1, max_per_group)
    while len(chosen) < k and remaining:
        def worth(hit: Hit) -> float:
            key = group(hit)
            return hit.score - penalty * taken.get(key, 0) if key is not None else hit.score

        allowed = [h for h in remaining if group(h) is None or taken.get(group(h), 0) < cap]
        if not allowed:
            cap += 1
            continue
        best = max(allowed, key=worth)  # first of equals: stable in score order
        chosen.append(best)
        remaining.remove(best)
        if (key := group(best)) is not None:
            taken[key] = taken.get(key, 0) + 1
    return chosen


def recommend(engine: SearchEngine, liked: Sequence[int], k: int = 10, weights: Mapping[str, float] | None = None,
              filters: Mapping[str, Sequence[str]] | None = None, group_column: str | None = "artist",
              max_share: float = 0.25, penalty: float = 0.05, pool: int = 4, fast: bool = False) -> SearchResult:
    """Artworks like the liked ones (never the liked ones themselves): at most ``max_share`` of the
    ``k`` from one value of ``group_column`` while other candidates exist, and each further work of
    an artist ranked as if ``penalty`` lower, so the first rows show several artists. ``fast``: candidates
    from the binary shortlist (see :meth:`SearchEngine.rank`)."""
    result = engine.search(liked=list(liked), k=k * pool if group_column else k, weights=weights, filters=filters,
                           fast=fast)
    if group_column:
        limit = max(1, math.ceil(max_share * k))
        result.hits = diversify(result.hits, k, lambda h: h.metadata.get(group_column), limit, penalty)
    result.hits = result.hits[:k]
    return result
