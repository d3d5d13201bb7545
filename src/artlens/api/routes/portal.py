"""The portal's routes: the endpoints of ``artlens serve`` that the page calls, answered over the
whole federation (see :mod:`artlens.api.portal`), and ``/api/members``."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from artlens.api.errors import ApiError
from artlens.api.params import filters_from_form, liked_from_form, weights_from_form
from artlens.api.routes._common import MAX_ID, errors
from artlens.api.uploads import UploadRef, read_upload

router = APIRouter(tags=["portal"])


def portal_service(request: Request):
    return request.app.state.portal_service


@router.post("/api/search", responses=errors(400, 404, 409, 413, 415, 422))
async def search(
    request: Request,
    image: UploadFile | None = File(None, description="Query image (JPEG, PNG, WebP, GIF, BMP, TIFF), encoded on the portal"),
    upload_id: str | None = Form(None, pattern="^[0-9a-f]{32}$", description="Re-rank an earlier upload without sending it again"),
    text: str | None = Form(None, max_length=1000, description="Query text, matched with titles and descriptions"),
    artwork_id: int | None = Form(None, alias="id", ge=0, le=MAX_ID, description="More like this artwork (a portal id)"),
    liked: list[str] | None = Form(None, description="Liked artwork ids (portal ids, from any members): recommendations"),
    k: int | None = Form(None, ge=1, le=1000, description="Number of results (default 24)"),
    aspect: str | None = Form(None, max_length=64, description="Rank by this aspect only"),
    weights: str | None = Form(None, max_length=1000, description="Aspect mix: learned=1 or a JSON object"),
    filters: list[str] | None = Form(None, description='Metadata filters over the members\' exposed columns: column=value or {"style": ["wave"]}'),
    fast: bool = Form(False, description="Members shortlist by binary codes, then re-rank by exact cosine"),
):
    """Hits from every member merged by score, each with its ``institution``, its mixed score and the
    score of every aspect, plus ``members[]`` (name, status, ms, count): which members answered."""
    svc = portal_service(request)
    text = text if text and text.strip() else None
    liked_ids = liked_from_form([x for x in liked if x.strip()] or None) if liked else None
    upload = None
    if image is not None:
        s = svc.settings
        upload = await read_upload(image, s.max_upload_bytes, s.max_upload_pixels)
    if upload_id is not None:
        if upload is not None:
            raise ApiError(422, "give either image or upload_id, not both", "send upload_id to re-rank an earlier upload")
        upload = UploadRef(upload_id)
    return await svc.search(image=upload, text=text, artwork_id=artwork_id, liked=liked_ids, k=k, aspect=aspect or None,
                            weights=weights_from_form(weights), filters=filters_from_form(filters), fast=fast)


@router.get("/api/stats")
async def stats(request: Request):
    """The federation as the page needs it: artworks, aspects, exposed columns, limits, members."""
    return await portal_service(request).stats()


@router.get("/api/facets")
async def facets(request: Request):
    """The union of the members' exposed facets, counts summed."""
    portal = portal_service(request).portal
    await portal.ensure_infos()
    return {"artworks": sum(int(i.get("artworks", 0)) for i in portal.infos.values()), "facets": portal.facets()}


@router.get("/api/health")
async def health(request: Request):
    portal = portal_service(request).portal
    await portal.ensure_infos()
    return {"status": "ok", "artworks": sum(int(i.get("artworks", 0)) for i in portal.infos.values()),
            "aspects": sorted(portal.member_aspects()), "version": portal.stats()["version"]}


@router.get("/api/members")
async def members(request: Request):
    """Every member checked now: reachable, token accepted, head matches, artworks, latency."""
    return {"members": await portal_service(request).portal.check()}


@router.get("/api/artworks", responses=errors(422))
async def browse(request: Request, offset: int = Query(0, ge=0, le=10**9), limit: int = Query(24, ge=1, le=200),
                 filters: list[str] | None = Query(None, description="column=value (repeatable) or a JSON object"),
                 seed: int | None = Query(None, ge=0, le=2**32 - 1)):
    """A page of the federation, the members' pages interleaved."""
    return await portal_service(request).portal.browse(offset, limit, seed, filters_from_form(filters))


@router.get("/api/artworks/{artwork_id}", responses=errors(404, 422))
async def artwork(request: Request, artwork_id: int = Path(ge=0, le=MAX_ID)):
    """An artwork's exposed metadata, from its member."""
    return await portal_service(request).portal.artwork(artwork_id)


@router.get("/api/artworks/{artwork_id}/thumbnail", responses={200: {"content": {"image/jpeg": {}}}, **errors(404, 422)})
async def thumbnail(request: Request, artwork_id: int = Path(ge=0, le=MAX_ID),
                    size: str = Query("small", description="the member's one small size, whatever is asked")):
    data = await portal_service(request).portal.thumbnail(artwork_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
