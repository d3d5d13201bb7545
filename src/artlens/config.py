"""Typed settings. Every option has one default, here; the CLI and the API map onto these."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from artlens.errors import CollectionError

ASPECTS = ("content", "style", "colour", "text")


@dataclass(frozen=True)
class AspectConfig:
    """One searchable aspect: which extractor feeds it and how its vectors are reduced."""

    extractor: str
    pca_dims: int | None = None  # PCA fitted on the collection; None keeps the raw dimension


@dataclass(frozen=True)
class IndexConfig:
    kind: str = "auto"  # "flat" (exact), "ivf" or "hnsw" (approximate), or "auto": ivf above approx_threshold items
    approx_threshold: int = 200_000
    ivf_nlist: int | None = None  # None: about 4 x sqrt(n) lists
    ivf_nprobe: int = 32
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    # Binary codes for `search --fast`: PCA-ITQ codes of every aspect (0 turns them off), and how many
    # nearest codes by Hamming distance are re-ranked by exact cosine.
    hash_bits: int = 128
    fast_shortlist: int = 1000


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection extracts and indexes. Stored as ``collection.toml`` in the collection."""

    aspects: dict[str, AspectConfig] = field(
        default_factory=lambda: {
            "content": AspectConfig("effnet-lite0", pca_dims=256),
            "style": AspectConfig("gram-block4+block5", pca_dims=256),
            "colour": AspectConfig("colour-hist"),
            "text": AspectConfig("minilm"),
        }
    )
    # Default mix of aspect scores for image and artwork queries (chosen by benchmarks/retrieval.py
    # on wikiart_styles and louvre_genre; see docs/RESULTS.md).
    weights: dict[str, float] = field(
        default_factory=lambda: {"content": 0.25, "style": 0.65, "colour": 0.1, "text": 0.0}
    )
    text_columns: tuple[str, ...] = ("title", "description")
    crop_letterbox: bool = True
    max_pixels: int = 89_478_485
    batch_size: int = 32
    index: IndexConfig = field(default_factory=IndexConfig)

    def extractor_names(self) -> list[str]:
        return list(dict.fromkeys(a.extractor for a in self.aspects.values()))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["text_columns"] = list(self.text_columns)
        return _drop_none(d)

    @classmethod
    def from_dict(cls, d: dict) -> "CollectionConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise CollectionError(f"unknown settings in collection config: {sorted(unknown)}", f"known: {sorted(known)}")
        if "aspects" in d:
            d["aspects"] = {k: AspectConfig(**v) for k, v in d["aspects"].items()}
        if "index" in d:
            d["index"] = IndexConfig(**d["index"])
        if "text_columns" in d:
            d["text_columns"] = tuple(d["text_columns"])
        return cls(**d)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(tomli_w.dumps(self.to_dict()).encode())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "CollectionConfig":
        try:
            return cls.from_dict(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
            raise CollectionError(f"cannot read collection config {path}: {exc}", "fix or delete the file") from exc


def _drop_none(value):
    """TOML has no null: unset options are left out and take their defaults when read back."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


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
