"""Metadata filters: which stored values a filter value stands for. Values match ignoring case
("baroque" finds "Baroque"), and a decade ("1880s") stands for every year-like value of that decade."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from artlens.errors import ArtlensError

_YEAR = re.compile(r"(?<!\d)(\d{3,4})(?!\d)")
_DECADE = re.compile(r"^(\d{2,3})0s$")
SHOWN_VALUES = 12  # how many of a column's values an error lists


def year_of(value: str) -> int | None:
    match = _YEAR.search(value)
    return int(match.group(1)) if match and 100 <= int(match.group(1)) <= 2999 else None


def decade_of(value: str) -> str | None:
    year = year_of(value)
    return f"{year // 10 * 10}s" if year is not None else None


def is_decade(value: str) -> bool:
    return bool(_DECADE.match(value))


def match_values(stored: Iterable[str], wanted: Sequence[str], decades: bool = True) -> tuple[list[str], list[str]]:
    """(the stored values the wanted ones stand for, the wanted values that match none). A wanted value
    matches the stored values equal to it ignoring case; failing that, with ``decades``, a decade
    ("1880s") matches the stored values of that decade."""
    by_fold: dict[str, list[str]] = {}
    for value in dict.fromkeys(stored):
        by_fold.setdefault(value.casefold(), []).append(value)
    by_decade: dict[str, list[str]] | None = None  # built once, on the first decade asked for
    matched: dict[str, None] = {}
    unmatched: list[str] = []
    for value in dict.fromkeys(v.strip() for v in wanted):
        found = by_fold.get(value.casefold(), [])
        if not found and decades and is_decade(value):
            if by_decade is None:
                by_decade = {}
                for v in sorted(v for fold in by_fold.values() for v in fold):
                    if (d := decade_of(v)) is not None:
                        by_decade.setdefault(d, []).append(v)
            found = by_decade.get(value, [])
        matched.update(dict.fromkeys(found))
        if not found:
            unmatched.append(value)
    return list(matched), unmatched


def check_columns(catalog, columns: Iterable[str]) -> None:
    """Fail on a filter column the catalog does not have, listing the ones it has."""
    have = catalog.metadata_columns()
    unknown = sorted(set(columns) - set(have))
    if unknown:
        raise ArtlensError(f"unknown filter column(s) {unknown}", f"columns of this collection: {', '.join(have)}")


def resolve_filters(catalog, filters: Mapping[str, Sequence[str]], strict: bool = True) -> dict[str, list[str]]:
    """Filters with each value replaced by the stored values it stands for (see :func:`match_values`).
    A column the catalog lacks is an error; so is, with ``strict``, a value that matches nothing (the
    error lists the column's most frequent values). Without ``strict`` such a value is kept as given,
    so it matches no artwork."""
    check_columns(catalog, filters)
    out: dict[str, list[str]] = {}
    for column, wanted in filters.items():
        counts = Counter(catalog.column(column).values())
        matched, unmatched = match_values(counts, list(wanted))
        if unmatched and strict:
            top = sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))
            shown = ", ".join(v for v, _ in top[:SHOWN_VALUES]) + (f", … ({len(top)} values)" if len(top) > SHOWN_VALUES else "")
            raise ArtlensError(
                f"no artwork has {column} = {', '.join(repr(v) for v in unmatched)}",
                f"values of {column} (case does not matter): {shown}",
            )
        out[column] = matched + unmatched
    return out
