"""Where the profiles and their head are found when a command or the web service does not name them.

Profiles: ``--profiles FILE`` (of ``artlens artists search`` or ``artlens serve``), else for the web
service ``$ARTLENS_ARTIST_PROFILES``, else ``COLLECTION/artists/profiles.json``. Their head: ``--head
FILE``, else ``$ARTLENS_ARTIST_HEAD``, else the collection's own head (``heads/learned.pt``). A head whose id is not the one the profiles
record is an error (the profiles live in another space).
"""

from __future__ import annotations

import os
from pathlib import Path

from artlens.artists.profiles import ProfileSet
from artlens.errors import ArtlensError

PROFILES_ENV = "ARTLENS_ARTIST_PROFILES"
HEAD_ENV = "ARTLENS_ARTIST_HEAD"
COLLECTION_PROFILES = Path("artists") / "profiles.json"


def profiles_path(collection_root: str | Path | None = None, given: str | Path | None = None) -> Path | None:
    """The profile file a service of ``collection_root`` answers from (``given``, else the
    environment's, else the collection's), or None when there is none."""
    if given is not None:
        return Path(given)
    if os.environ.get(PROFILES_ENV):
        return Path(os.environ[PROFILES_ENV])
    if collection_root is not None and (Path(collection_root) / COLLECTION_PROFILES).is_file():
        return Path(collection_root) / COLLECTION_PROFILES
    return None


def load_head_for(profiles: ProfileSet, head_path: str | Path | None = None,
                  collection_root: str | Path | None = None):
    """The head the profiles were made with: the given file, else $ARTLENS_ARTIST_HEAD, else the
    collection's head. Fails clearly when none is found or its id differs."""
    from artlens.models import load_head

    candidates = [Path(head_path)] if head_path else []
    if not candidates and os.environ.get(HEAD_ENV):
        candidates.append(Path(os.environ[HEAD_ENV]))
    if not candidates and collection_root is not None:
        own = Path(collection_root) / "heads" / "learned.pt"
        if own.is_file():
            candidates.append(own)
    if not candidates:
        raise ArtlensError(f"no head to embed the references: the profiles were made with head {profiles.head_id}",
                           f"pass --head FILE with that head (or set ${HEAD_ENV})")
    head = load_head(candidates[0])
    profiles.require_head(head.id, f"head {candidates[0].name}")
    return head
