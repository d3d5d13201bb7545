"""The collection's typed settings (``collection.toml``): what it extracts and indexes. Every option
has one default, here; the CLI and the API map onto these. Weights and filters as users write
them are parsed in ``artlens.search.options``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from artlens import settings
from artlens.imaging import DEFAULT_MAX_PIXELS

ASPECTS = ("content", "style", "colour", "text")


@dataclass(frozen=True)
class AspectConfig:
    """One searchable aspect: which extractor feeds it and how its vectors are reduced."""

    extractor: str
    pca_dims: int | None = None  # PCA fitted on the collection; None keeps the raw dimension


@dataclass(frozen=True)
class IndexConfig:
    # "flat" (exact), "ivf" or "hnsw" (approximate, float vectors in memory), "ivfpq" (compressed codes in
    # memory, exact vectors memory-mapped from disk for re-ranking), or "auto": flat, ivf from
    # approx_threshold vectors, ivfpq from pq_threshold (see docs/indexes.md)
    kind: str = "auto"
    approx_threshold: int = 200_000
    pq_threshold: int = 1_000_000
    ivf_nlist: int | None = None  # None: about 4 x sqrt(n) lists
    ivf_nprobe: int = 32
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    # Binary codes for `search --fast`: PCA-ITQ codes of every aspect (0 turns them off), and how many
    # nearest codes by Hamming distance are re-ranked by exact cosine.
    hash_bits: int = 128
    fast_shortlist: int = 1000
    # IVF-PQ (kind "ivfpq"). None derives from the number of vectors n and their dimension d: lists
    # about sqrt(n) / 3 (a power of two), about d / 8 sub-quantisers, a training sample of 64 per list.
    pq_nlist: int | None = None
    pq_m: int | None = None  # sub-quantisers (must divide d); codes take pq_m * pq_nbits / 8 bytes a vector
    pq_nbits: int = 8
    pq_train_size: int | None = None
    pq_nprobe: int = 32  # lists searched per query
    pq_rerank: int = 256  # nearest codes re-ranked by exact cosine on the stored vectors (0: none)
    pq_exact_below: int = 10_000  # a filter leaving at most this many artworks is searched exactly
    pq_add_batch: int = 65_536  # vectors projected and added at a time while building
    scratch_dir: str | None = None  # where a build writes its vectors before they are saved (None: the temp dir)


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
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_size: int = 32
    index: IndexConfig = field(default_factory=IndexConfig)

    def extractor_names(self) -> list[str]:
        return list(dict.fromkeys(a.extractor for a in self.aspects.values()))

    def save(self, path: str | Path) -> None:
        settings.save_toml(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "CollectionConfig":
        return settings.load_toml(cls, path)
