"""Form fields of the search endpoint: weights, filters and liked ids, as text or JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from artlens.api.errors import ApiError
from artlens.errors import ArtlensError
from artlens.search.options import parse_filters, parse_weights


def _json(text: str, what: str, example: str):
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise ApiError(422, f"{what} is not valid JSON: {text[:80]!r}", f"write it like {example}") from None


def weights_from_form(text: str | None) -> dict[str, float] | None:
    """``content=0.5,style=0.5`` or ``{"content": 0.5, "style": 0.5}``; every weight finite and >= 0."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.startswith("{"):
        raw = _json(text, "weights", '{"content": 0.5, "style": 0.5}')
        if not isinstance(raw, dict):
            raise ApiError(422, "weights must be a JSON object", 'write it like {"content": 0.5, "style": 0.5}')
        weights = {}
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ApiError(422, f"weight of {name!r} is not a number", "weights are numbers, e.g. style=0.7")
            weights[str(name)] = float(value)
    else:
        try:
            weights = parse_weights(text)
        except ArtlensError as exc:
            raise ApiError(422, exc.message, exc.hint) from None
    for name, value in weights.items():
        if not math.isfinite(value) or value < 0:
            raise ApiError(422, f"weight of {name!r} must be a number >= 0, got {value}", "e.g. content=0.5,style=0.5")
    return weights


MAX_FILTER_COLUMNS = 20
MAX_FILTER_VALUES = 200


def filters_from_form(items: Sequence[str] | None) -> dict[str, list[str]] | None:
    """Each item a JSON object ``{"style": ["wave", "dot"]}`` or ``column=value`` (repeatable)."""
    filters: dict[str, list[str]] = {}
    for item in items or []:
        item = item.strip()
        if not item:
            continue
        if item.startswith("{"):
            raw = _json(item, "filters", '{"style": ["wave"]}')
            if not isinstance(raw, dict):
                raise ApiError(422, "filters must be a JSON object", 'write it like {"style": ["wave"]}')
            for column, values in raw.items():
                values = values if isinstance(values, list) else [values]
                if not values or any(isinstance(v, (dict, list)) or v is None for v in values):
                    raise ApiError(422, f"filter values of {column!r} must be strings or numbers",
                                   'write it like {"style": ["wave", "dot"]}')
                filters.setdefault(str(column), []).extend(str(v) for v in values)
        else:
            try:
                for column, values in parse_filters([item]).items():
                    filters.setdefault(column, []).extend(values)
            except ArtlensError as exc:
                raise ApiError(422, exc.message, "write filters as column=value, e.g. style=wave") from None
    total = sum(len(set(v)) for v in filters.values())
    if len(filters) > MAX_FILTER_COLUMNS or total > MAX_FILTER_VALUES:
        raise ApiError(422, f"too many filters ({len(filters)} columns, {total} distinct values; at most "
                            f"{MAX_FILTER_COLUMNS} columns and {MAX_FILTER_VALUES} values)",
                       "narrow the filters, e.g. pick a few styles")
    return filters or None


def liked_from_form(items: Sequence[str] | None) -> list[int] | None:
    """Liked artwork ids: repeated fields, comma-separated, or a JSON list."""
    if items is None:
        return None
    ids: list[int] = []
    for item in items:
        item = item.strip()
        parts = _json(item, "liked", "[1, 2, 3]") if item.startswith("[") else item.split(",")
        if not isinstance(parts, list):
            raise ApiError(422, "liked must be a list of artwork ids", "e.g. liked=1,2,3")
        for part in parts:
            try:
                value = int(str(part).strip())
            except ValueError:
                raise ApiError(422, f"liked ids must be integers, got {str(part)[:40]!r}", "e.g. liked=1,2,3") from None
            if not 0 <= value < 2**63:
                raise ApiError(422, f"no artwork has id {value}", "use ids from /api/search results")
            ids.append(value)
    return ids
