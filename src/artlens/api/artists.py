"""The artist profiles the service searches: ``ApiSettings.artist_profiles``, else
``COLLECTION/artists/profiles.json``, embedded by ``ApiSettings.artist_head``, else the collection's own
head (see :mod:`artlens.artists.locate`). Loaded on first use and again whenever the file changes."""

from __future__ import annotations

import threading
from pathlib import Path

from artlens.api.errors import ApiError
from artlens.artists.locate import COLLECTION_PROFILES, load_head_for, profiles_path
from artlens.artists.profiles import ProfileSet
from artlens.artists.search import ArtistSearch


class ArtistFinder:
    """The served profiles and their head, loaded on first use and again when the file changes."""

    def __init__(self, collection_root: Path, profiles: Path | None = None, head: Path | None = None):
        self.collection_root = collection_root
        self.profiles, self.head = profiles, head  # given by the settings; None: found as locate says
        self._lock = threading.Lock()
        self._loaded: tuple[Path, float] | None = None
        self._search: ArtistSearch | None = None

    def current(self, required: bool = True) -> ArtistSearch | None:
        """The search over the current profiles; without a profile file, None (``required``: a 501)."""
        path = profiles_path(self.collection_root, self.profiles)
        if path is None or not path.is_file():
            if not required:
                return None
            where = f"no profile file at {path}" if path is not None else "this server publishes no artist profiles"
            raise ApiError(501, where,
                           f"publish them: artlens artists publish --collection PATH --artist-column COLUMN --head FILE "
                           f"--out {path or 'PATH/' + COLLECTION_PROFILES.as_posix()}")
        with self._lock:
            stamp = (path, path.stat().st_mtime)
            if self._loaded != stamp:
                profiles = ProfileSet.load(path)
                self._search = ArtistSearch(profiles, load_head_for(profiles, self.head, self.collection_root))
                self._loaded = stamp
            return self._search
