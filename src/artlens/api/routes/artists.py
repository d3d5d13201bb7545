"""``GET /api/artists`` and ``POST /api/artists/search``: artists ranked by how well their published
style profiles match uploaded references (and texts, when the profiles' head reads text).

The profiles are ``ApiSettings.artist_profiles`` (``artlens serve --profiles``), else
``$ARTLENS_ARTIST_PROFILES``, else ``COLLECTION/artists/profiles.json``; their head is
``ApiSettings.artist_head`` (``--head``), else ``$ARTLENS_ARTIST_HEAD``, else the collection's own head
(see :mod:`artlens.artists.locate`). The file is re-read when it changes; until there is one, search
answers 501.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from artlens.api.errors import ApiError
from artlens.api.routes._common import errors, service, upload_of
from artlens.api.uploads import decode_or_422

router = APIRouter(tags=["artists"])
MAX_REFERENCES = 8


class ArtistSummary(BaseModel):
    name: str
    works: int
    prototypes: int
    epsilon: float | None = Field(None, description="DP epsilon of the profile, null without DP")


class ArtistsResponse(BaseModel):
    available: bool
    head: str | None = None
    text: bool = Field(False, description="Whether text references are understood (the head has a text input)")
    artists: list[ArtistSummary] = []
    hint: str | None = None


class ReferenceMatch(BaseModel):
    reference: int
    prototype: int
    similarity: float
    prototype_works: int


class ArtistResult(BaseModel):
    artist: str
    score: float = Field(description="Mean over references of the soft maximum (temperature 0.1) of the "
                                     "similarities to the artist's prototypes, weighted by the works behind each")
    works: int
    matches: list[ReferenceMatch]


class ArtistSearchResponse(BaseModel):
    references: list[dict]
    head: str
    results: list[ArtistResult]


class ArtistFinder:
    """The served profiles and their head, loaded on first use and again when the file changes."""

    def __init__(self, collection_root: Path, profiles: Path | None = None, head: Path | None = None):
        self.collection_root = collection_root
        self.profiles, self.head = profiles, head  # given by the settings; None: found as locate says
        self._lock = threading.Lock()
        self._loaded: tuple[Path, float] | None = None
        self._search = None

    def current(self, required: bool = True):
        from artlens.artists.locate import (
            COLLECTION_PROFILES,
            load_head_for,
            profiles_path,
        )
        from artlens.artists.profiles import ProfileSet
        from artlens.artists.search import ArtistSearch

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


def finder(request: Request) -> ArtistFinder:
    state = request.app.state
    if getattr(state, "artist_finder", None) is None:
        settings = service(request).settings
        state.artist_finder = ArtistFinder(Path(service(request).collection.root), settings.artist_profiles,
                                           settings.artist_head)
    return state.artist_finder


@router.get("/api/artists", response_model=ArtistsResponse)
def artists(request: Request):
    """The published artist profiles this server searches (names, works, prototypes, DP epsilon)."""
    try:
        search = finder(request).current(required=False)
    except Exception as exc:  # a broken file or a missing head: say so rather than fail the page
        return ArtistsResponse(available=False, hint=getattr(exc, "message", str(exc)))
    if search is None:
        return ArtistsResponse(available=False, hint="publish profiles with `artlens artists publish`")
    items = [ArtistSummary(name=p.name, works=p.works, prototypes=len(p.counts),
                           epsilon=(p.privacy or {}).get("epsilon")) for p in search.profiles.profiles.values()]
    return ArtistsResponse(available=True, head=search.profiles.head_id, text=search.has_text,
                           artists=sorted(items, key=lambda a: a.name))


@router.post("/api/artists/search", response_model=ArtistSearchResponse, responses=errors(400, 413, 415, 422, 501))
async def search_artists(
    request: Request,
    image: list[UploadFile] | None = File(None, description=f"Reference images (repeat the field, at most {MAX_REFERENCES})"),
    text: str | None = Form(None, max_length=1000, description="A reference text (when the profiles' head reads text)"),
    k: int = Form(5, ge=1, le=100, description="Number of artists"),
):
    """Artists ranked by how well their profile matches the references: each reference is scored
    against each artist's prototypes by a soft maximum of the similarities (temperature 0.1), weighted
    by the works behind each prototype, and those scores are averaged over the references; every
    result says which prototype matched each reference best."""
    images = [f for f in image or [] if f is not None and (f.filename or f.size)]
    text = text if text and text.strip() else None
    if not images and text is None:
        raise ApiError(422, "give at least one reference", "send one or more images (field `image`) or a `text`")
    if len(images) > MAX_REFERENCES:
        raise ApiError(422, f"at most {MAX_REFERENCES} reference images, got {len(images)}", "send fewer references")
    search = finder(request).current()
    uploads = [await upload_of(request, f) for f in images]

    def run():
        decoded = [decode_or_422(u) for u in uploads]
        with service(request).encoding:
            result = search.search(decoded, [text] if text else None, k,
                                   labels=[f"upload {i + 1}" for i in range(len(decoded))])
        return result.as_dict()

    return await run_in_threadpool(run)
