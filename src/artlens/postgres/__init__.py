"""PostgreSQL + pgvector as a collection's backend: one collection per schema, served by many
processes (see docs/postgres.md). psycopg and pgvector are imported when a ``postgresql://``
location is opened, so the base install needs neither."""

from artlens.postgres.catalog import PgCatalog, PgFeatureCache
from artlens.postgres.index import PgAspectIndex
from artlens.postgres.store import (
           AdvisoryLock,
           Location,
           Store,
           is_postgres,
           parse_location,
           side_folder,
)

__all__ = ["AdvisoryLock", "Location", "PgAspectIndex", "PgCatalog", "PgFeatureCache", "Store", "is_postgres", "parse_location",
           "side_folder"]
