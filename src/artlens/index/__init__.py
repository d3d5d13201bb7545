"""FAISS indexes, one per aspect, persisted with a manifest and written atomically: flat, IVF and
HNSW over float vectors in memory (:mod:`artlens.index.aspect_index`), and IVF-PQ with exact
re-ranking from memory-mapped vectors for collections of millions (:mod:`artlens.index.ivfpq`)."""

from artlens.index.aspect_index import (
    INDEX_SCHEMA_VERSION,
    KINDS,
    AspectIndex,
    IndexManifest,
    choose_kind,
)
from artlens.index.ivfpq import IVFPQIndex, ivfpq_params

__all__ = ["AspectIndex", "INDEX_SCHEMA_VERSION", "IVFPQIndex", "IndexManifest", "KINDS", "choose_kind", "ivfpq_params"]
