"""``POST /api/copyright/check``: is an uploaded image a registered protected work? And free alternatives."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from artlens.api.routes._common import MAX_ID, errors, service, upload_of
from artlens.api.schemas import CopyrightResponse

router = APIRouter(tags=["copyright"])


@router.post("/api/copyright/check", response_model=CopyrightResponse, responses=errors(400, 413, 415, 422, 429, 501))
async def check(request: Request, image: UploadFile = File(..., description="Image to check"),
                k: int = Form(6, ge=1, le=50, description="Number of free alternatives"),
                fast: bool = Form(False, description="Shortlist registered works by Hamming distance on binary "
                                  "codes, then re-rank them by exact cosine (same threshold; evidence.search "
                                  "says which search answered)")):
    """Verdict (registered with owner, matched work, score and stage, or not-registered) and the most
    similar free-to-use works (title, artist, licence, thumbnail). Answers 501 while no registry is set up."""
    service(request).require_copyright_checker()
    upload = await upload_of(request, image)
    with service(request).encoding.reserve():
        return await run_in_threadpool(service(request).check_copyright, upload, k, fast)


@router.get("/api/copyright/free/{artwork_id}/thumbnail", response_class=FileResponse, responses={
    200: {"content": {"image/jpeg": {}}, "description": "JPEG thumbnail"}, 304: {"description": "Not modified"},
    **errors(404, 422)})
def free_thumbnail(request: Request, artwork_id: int = Path(ge=0, le=MAX_ID),
                   size: Literal["small", "large"] = Query("small", description="small (320 px) or large (1024 px)")):
    """A JPEG rendition of a free alternative when the free works are another collection than the
    served one (from the thumbnail cache, never the original file)."""
    path, etag = service(request).free_thumbnail(artwork_id, size)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)
