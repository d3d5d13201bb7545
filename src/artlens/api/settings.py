"""Settings of the web service. Every option has one default, here; ``artlens serve`` maps its flags
onto the same fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ApiSettings:
    """What the API serves and the limits it enforces on requests.

    ``thumbnail_dir`` defaults to ``COLLECTION/thumbnails``; ``copyright_registry`` and
    ``copyright_free`` are the collections the copyright check compares an upload with (the free
    collection defaults to the served one); ``artist_profiles`` and ``artist_head`` are the profile
    file the artist search answers from and the head it embeds uploads with (defaults: see
    :mod:`artlens.artists.locate`).
    """

    collection: Path
    # Uploads: bytes per request, decoded pixels per image, and how many images decode at once.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_upload_pixels: int = 40_000_000
    max_concurrent_encodes: int = 1
    # Results.
    default_k: int = 24
    max_k: int = 200
    max_liked: int = 100
    max_text_chars: int = 1000
    # Recommendation: at most this share of a page from one value of ``diversity_column``.
    diversity_column: str = "artist"
    diversity_share: float = 0.25
    # Facets: columns with more distinct values than this (and not years) are not offered as filters.
    facet_max_values: int = 60
    facet_top: int = 50
    # Thumbnails (pixels on the longer side) and where they are cached.
    thumbnail_dir: Path | None = None
    thumbnail_sizes: dict[str, int] = field(default_factory=lambda: {"small": 320, "large": 1024})
    # Query vectors of recent uploads and texts, so moving a weight slider does not re-encode.
    query_cache_size: int = 128
    # Optional collaborators.
    copyright_registry: Path | None = None
    copyright_free: Path | None = None
    artist_profiles: Path | None = None
    artist_head: Path | None = None
    serve_page: bool = True
    title: str = "artlens"

    def resolved_thumbnail_dir(self) -> Path:
        return Path(self.thumbnail_dir) if self.thumbnail_dir else Path(self.collection) / "thumbnails"
