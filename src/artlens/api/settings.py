"""Settings of the web service. Every option has one default, here; ``artlens serve`` maps its flags
onto the same fields, and :meth:`ApiSettings.from_env` is the one place the service's environment
variables are read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from artlens.settings import with_changes

# Fields a deployment may set through the environment, by variable.
ENVIRONMENT = {
    "copyright_registry": "ARTLENS_REGISTRY",
    "copyright_free": "ARTLENS_FREE",
    "artist_profiles": "ARTLENS_ARTIST_PROFILES",
    "artist_head": "ARTLENS_ARTIST_HEAD",
    "study_dir": "ARTLENS_STUDY",
}


@dataclass(frozen=True)
class AccessSettings:
    """Who may use a server and how much. ``tokens``: the hashed tokens file (None: no tokens, so
    reads are open and writes refused); ``private``: reads need a token too; ``rate_limit``:
    requests per second per client, sustained (0: no limit), with bursts of ``rate_burst``;
    ``cors_origins``: other origins whose pages may call the API (``*``: any; default none, same
    origin only); ``frame_ancestors``: sites that may show the page in a frame (default none)."""

    tokens: Path | None = None
    private: bool = False
    rate_limit: float = 20.0
    rate_burst: int = 200
    cors_origins: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiSettings:
    """What the API serves and the limits it enforces on requests.

    ``thumbnail_dir`` defaults to ``COLLECTION/thumbnails``; ``copyright_registry`` and
    ``copyright_free`` are the collections the copyright check compares an upload with (the free
    collection defaults to the served one); ``artist_profiles`` and ``artist_head`` are the profile
    file the artist search answers from and the head it embeds uploads with (defaults:
    ``COLLECTION/artists/profiles.json`` and the collection's own head, see
    :mod:`artlens.artists.locate`); ``study_dir`` is the study served at ``/study`` (default
    ``COLLECTION/study``).
    """

    collection: Path
    # Uploads: bytes per request, decoded pixels per image, and how many images decode at once.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_upload_pixels: int = 40_000_000
    max_concurrent_encodes: int = 1
    # Image encodings that may wait for one of those; more answer 429 with Retry-After.
    max_queued_encodes: int = 8
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
    max_alternatives: int = 50
    artist_profiles: Path | None = None
    artist_head: Path | None = None
    study_dir: Path | None = None
    serve_page: bool = True
    title: str = "artlens"
    # Tokens, rate limits, CORS, framing (artlens.api.security).
    access: AccessSettings = field(default_factory=AccessSettings)

    @classmethod
    def from_env(cls, collection: str | Path, environ: Mapping[str, str] | None = None, **given) -> ApiSettings:
        """Settings of ``collection``: the fields ``given`` (None: not given), else the paths in the
        environment's variables (:data:`ENVIRONMENT`), else the defaults."""
        environ = os.environ if environ is None else environ
        from_environment = {name: Path(environ[var]) for name, var in ENVIRONMENT.items() if environ.get(var)}
        given = {name: value for name, value in given.items() if value is not None}
        return with_changes(cls(collection=Path(collection)), {**from_environment, **given})

    def resolved_thumbnail_dir(self) -> Path:
        return Path(self.thumbnail_dir) if self.thumbnail_dir else Path(self.collection) / "thumbnails"

    def resolved_study_dir(self) -> Path:
        return Path(self.study_dir) if self.study_dir else Path(self.collection) / "study"


@dataclass(frozen=True)
class PortalSettings:
    """What ``artlens portal`` serves: the federation of ``members`` (MEMBERS.toml), searched in the
    space of ``head`` (without one, the head most members report, over pretrained aspects only),
    each member given ``timeout`` seconds to answer, and the limits it enforces on requests."""

    members: Path
    head: Path | None = None
    timeout: float = 2.0
    title: str = "artlens federation"
    # the request limits of a server, with their one default each in ApiSettings
    max_upload_bytes: int = ApiSettings.max_upload_bytes
    max_upload_pixels: int = ApiSettings.max_upload_pixels
    default_k: int = ApiSettings.default_k
    max_k: int = ApiSettings.max_k
    max_liked: int = ApiSettings.max_liked
    query_cache_size: int = ApiSettings.query_cache_size
    serve_page: bool = True
