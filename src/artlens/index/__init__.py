"""FAISS indexes, one per aspect, persisted with a manifest and written atomically."""

from artlens.index.aspect_index import INDEX_SCHEMA_VERSION, AspectIndex

__all__ = ["AspectIndex", "INDEX_SCHEMA_VERSION"]
