"""Search a collection by image, text, artwork or a set of liked artworks, mixing aspect scores."""

from artlens.search.engine import Hit, SearchEngine, SearchResult

__all__ = ["Hit", "SearchEngine", "SearchResult"]
