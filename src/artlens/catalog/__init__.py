"""Catalog: ingest images and metadata into an embedded SQLite catalog."""
