"""Weights and filters as users write them, on the command line (``--weights content=0.5,style=0.5``,
``--filter style=Baroque``) and in the API's query strings."""

from __future__ import annotations

from artlens.errors import CollectionError


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``content=0.5,style=0.5`` -> {"content": 0.5, "style": 0.5}."""
    if not text:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        if "=" not in part:
            raise CollectionError(f"bad weight {part!r}", "write weights as aspect=number, e.g. content=0.5,style=0.5")
        name, value = part.split("=", 1)
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise CollectionError(f"bad weight value in {part!r}", "weights must be numbers, e.g. style=0.7") from None
    return weights


def parse_filters(items: list[str] | None) -> dict[str, list[str]]:
    """``["style=Baroque", "style=Rococo", "genre=Portrait"]`` -> {"style": [...], "genre": [...]}."""
    filters: dict[str, list[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise CollectionError(f"bad filter {item!r}", "write filters as column=value, e.g. --filter style=Baroque")
        key, value = item.split("=", 1)
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters
