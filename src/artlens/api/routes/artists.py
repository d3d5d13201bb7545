"""``GET /api/artists`` and ``POST /api/artists/search``: artists ranked by how well their published
style profiles match uploaded references (and texts, when the profiles' head reads text).

The profiles are ``ApiSettings.artist_profiles`` (``artlens serve --profiles``), else
``COLLECTION/artists/profiles.json``; their head is ``ApiSettings.artist_head`` (``--head``), else the
collection's own head (see :mod:`artlens.api.artists`). The file is re-read when it changes; until
there is one, search answers 501.
"""

from __future__ import annotations

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


@router.get("/api/artists", response_model=ArtistsResponse)
def artists(request: Request):
    """The published artist profiles this server searches (names, works, prototypes, DP epsilon)."""
    try:
        search = service(request).artists.current(required=False)
    except Exception as exc:  # a broken file or a missing head: say so rather than fail the page
        return ArtistsResponse(available=False, hint=getattr(exc, "message", str(exc)))
    if search is None:
        return ArtistsResponse(available=False, hint="publish profiles with `artlens artists publish`")
    items = [ArtistSummary(name=p.name, works=p.works, prototypes=len(p.counts),
                           epsilon=(p.privacy or {}).get("epsilon")) for p in search.profiles.profiles.values()]
    return ArtistsResponse(available=True, head=search.profiles.head_id, text=search.has_text,
                           artists=sorted(items, key=lambda a: a.name))


@router.post("/api/artists/search", response_model=ArtistSearchResponse, responses=errors(400, 413, 415, 422, 429, 501))
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
    search = service(request).artists.current()
    uploads = [await upload_of(request, f) for f in images]

    def run():
        decoded = [decode_or_422(u) for u in uploads]
        with service(request).encoding.slot():
            result = search.search(decoded, [text] if text else None, k,
                                   labels=[f"upload {i + 1}" for i in range(len(decoded))])
        return result.as_dict()

    with service(request).encoding.reserve():
        return await run_in_threadpool(run)
