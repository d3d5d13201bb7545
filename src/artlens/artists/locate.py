"""Where the profiles and their head are found when a command or the web service does not name them.

Profiles: the file given (``--profiles FILE`` of ``artlens artists search`` or ``artlens serve``,
``ApiSettings.artist_profiles``), else ``COLLECTION/artists/profiles.json``. Their head: the file
given (``--head FILE``, ``ApiSettings.artist_head``), else the collection's own head
(``heads/learned.pt``). A head whose id is not the one the profiles record is an error (the profiles
live in another space). The environment is read by the callers, never here.
"""

from __future__ import annotations

from pathlib import Path

from artlens.artists.profiles import ProfileSet
from artlens.errors import ArtlensError
from artlens.models import load_head

COLLECTION_PROFILES = Path("artists") / "profiles.json"
COLLECTION_HEAD = Path("heads") / "learned.pt"


def profiles_path(collection_root: str | Path | None = None, given: str | Path | None = None) -> Path | None:
    """The profile file a service of ``collection_root`` answers from (``given``, else the
    collection's), or None when there is none."""
    if given is not None:
        return Path(given)
    if collection_root is not None and (Path(collection_root) / COLLECTION_PROFILES).is_file():
        return Path(collection_root) / COLLECTION_PROFILES
    return None


def load_head_for(profiles: ProfileSet, head_path: str | Path | None = None,
                  collection_root: str | Path | None = None):
    """The head the profiles were made with: the given file, else the collection's head. Fails clearly
    when none is found or its id differs."""
    path = Path(head_path) if head_path else None
    if path is None and collection_root is not None and (Path(collection_root) / COLLECTION_HEAD).is_file():
        path = Path(collection_root) / COLLECTION_HEAD
    if path is None:
        raise ArtlensError(f"no head to embed the references: the profiles were made with head {profiles.head_id}",
                           "pass --head FILE with that head (or set $ARTLENS_ARTIST_HEAD)")
    head = load_head(path)
    profiles.require_head(head.id, f"head {path.name}")
    return head
