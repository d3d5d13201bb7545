"""Which metadata columns the page offers as filters, with their value counts. Year-like columns are
grouped into decades ("1880s"); a decade in a filter stands for every value of that decade. Numbers
sort as numbers (1, 2, 10), never as text (1, 10, 2)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from artlens.catalog.db import Catalog
from artlens.search.filters import decade_of, match_values, year_of

# Columns that identify files rather than describe artworks.
_NOT_FACETS = {"path", "file", "filename", "md5", "url", "image", "id"}


def number(value: str) -> float | None:
    """The value as a finite number, or None."""
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def value_order(value: str) -> tuple:
    """Sort key of facet values: numbers by size, before text ignoring case."""
    x = number(value)
    return (0, x, value) if x is not None else (1, value.casefold(), value)


@dataclass(frozen=True)
class Facet:
    column: str
    kind: str  # "values" or "decades"
    counts: tuple[tuple[str, int], ...]  # (value, count), most frequent first (decades and numbers in order)

    def as_list(self) -> list[dict]:
        return [{"value": v, "count": n} for v, n in self.counts]


class FacetIndex:
    """Facets of a catalog, recomputed when the number of artworks changes or after ``ttl`` seconds."""

    def __init__(self, catalog: Catalog, text_columns: Sequence[str], max_values: int = 60, top: int = 50,
                 ttl: float = 60.0):
        self.catalog = catalog
        self.text_columns = set(text_columns)
        self.max_values = max_values
        self.top = top
        self.ttl = ttl
        self._lock = threading.Lock()
        self._facets: dict[str, Facet] = {}
        self._values: dict[str, dict[int, str]] = {}
        self._stamp: tuple[int, float] | None = None

    def facets(self) -> dict[str, Facet]:
        with self._lock:
            n = len(self.catalog)
            if self._stamp is None or self._stamp[0] != n or time.monotonic() - self._stamp[1] > self.ttl:
                self._compute(n)
                self._stamp = (n, time.monotonic())
            return self._facets

    def _compute(self, n: int) -> None:
        facets, values = {}, {}
        for column in self.catalog.metadata_columns():
            if column in self.text_columns or column.lower() in _NOT_FACETS:
                continue
            by_id = self.catalog.column(column)
            if not by_id:
                continue
            counts = Counter(by_id.values())
            mean_len = sum(len(v) * c for v, c in counts.items()) / max(1, len(by_id))
            years = sum(c for v, c in counts.items() if year_of(v) is not None)
            if len(counts) > 12 and years >= 0.9 * len(by_id):
                decades = Counter(d for v in by_id.values() if (d := decade_of(v)))
                facets[column] = Facet(column, "decades", tuple(sorted(decades.items())))
            elif mean_len <= 40 and (len(counts) <= self.max_values or len(counts) <= 0.5 * n):
                top = sorted(counts.items(), key=lambda vc: (-vc[1], value_order(vc[0])))[: self.top]
                if all(number(v) is not None for v, _ in top):  # a numeric column reads in order, like decades
                    top.sort(key=lambda vc: value_order(vc[0]))
                facets[column] = Facet(column, "values", tuple(top))
            else:
                continue
            values[column] = by_id
        self._facets, self._values = facets, values

    def expand(self, filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """Filters with each value of a facet column replaced by the stored values it stands for:
        matched ignoring case, and a decade of a decade facet by the values of that decade
        (:func:`artlens.search.filters.match_values`); other columns ignoring case too, read from the
        catalog. A value that matches nothing is kept, so the search answers no results."""
        facets = self.facets()
        out: dict[str, list[str]] = {}
        for column, wanted in filters.items():
            facet = facets.get(column)
            if facet is not None:
                stored, decades = self._values.get(column, {}).values(), facet.kind == "decades"
            else:
                stored, decades = self.catalog.column(column).values(), False
            matched, unmatched = match_values(stored, list(wanted), decades=decades)
            out[column] = matched + unmatched
        return out

    def counts(self, metadata: Iterable[Mapping[str, str]]) -> dict[str, list[dict]]:
        """Facet counts over some artworks (the results of a search)."""
        facets = self.facets()
        tallies: dict[str, Counter] = {c: Counter() for c in facets}
        for meta in metadata:
            for column, facet in facets.items():
                value = meta.get(column)
                if value is None:
                    continue
                tallies[column][decade_of(value) if facet.kind == "decades" else value] += 1
        return {c: [{"value": v, "count": n} for v, n in sorted(t.items(), key=lambda vc: (-vc[1], value_order(vc[0]))) if v]
                for c, t in tallies.items() if t}
