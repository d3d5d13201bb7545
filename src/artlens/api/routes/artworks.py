"""``GET /api/artworks/{id}`` and its thumbnail (from the cache, never the original file)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from artlens.api.params import filters_from_form
from artlens.api.routes._common import MAX_ID, errors, service
from artlens.api.schemas import ArtworkDetail, ArtworkPage

router = APIRouter(tags=["artworks"])


@router.get("/api/artworks", response_model=ArtworkPage, responses=errors(422))
def browse(request: Request, offset: int = Query(0, ge=0, le=10**9), limit: int = Query(24, ge=1, le=200),
           filters: list[str] | None = Query(None, description="column=value (repeatable) or a JSON object"),
           seed: int | None = Query(None, ge=0, le=2**32 - 1, description="Shuffle the collection with this seed")):
    """A page of the collection, in id order or shuffled, optionally filtered."""
    return service(request).browse(offset, limit, filters_from_form(filters), seed)


@router.get("/api/artworks/{artwork_id}", response_model=ArtworkDetail, responses=errors(404, 422))
def artwork(request: Request, artwork_id: int = Path(ge=0, le=MAX_ID)):
    """An artwork's metadata, size, indexed aspects and the URLs of its renditions."""
    return service(request).artwork(artwork_id)


@router.get("/api/artworks/{artwork_id}/thumbnail", response_class=FileResponse, responses={
    200: {"content": {"image/jpeg": {}}, "description": "JPEG thumbnail"}, 304: {"description": "Not modified"},
    **errors(404, 422)})
def thumbnail(request: Request, artwork_id: int = Path(ge=0, le=MAX_ID),
              size: Literal["small", "large"] = Query("small", description="small (320 px) or large (1024 px)")):
    """A JPEG rendition of the artwork, made once and then served from the thumbnail cache."""
    path, etag = service(request).thumbnail(artwork_id, size)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)
