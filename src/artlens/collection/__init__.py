"""A collection: catalog, feature cache, per-aspect indexes, heads and settings at one committed
generation, in a folder (:mod:`artlens.collection.folder`, the embedded default) or in a schema of a
PostgreSQL database (:mod:`artlens.collection.postgres`); :func:`copy_collection` moves one between them."""

from artlens.collection.copy import copy_collection
from artlens.collection.folder import DEFAULT_COLLECTION, HEAD, LEARNED_ASPECT, SETTINGS, Collection
from artlens.collection.postgres import PostgresCollection

__all__ = ["DEFAULT_COLLECTION", "HEAD", "LEARNED_ASPECT", "SETTINGS", "Collection", "PostgresCollection",
           "copy_collection"]
