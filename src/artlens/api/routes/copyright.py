"""``POST /api/copyright/check``: is an uploaded image a registered protected work? And free alternatives."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from artlens.api.routes._common import errors, service, upload_of
from artlens.api.schemas import CopyrightResponse

router = APIRouter(tags=["copyright"])


@router.post("/api/copyright/check", response_model=CopyrightResponse, responses=errors(400, 413, 415, 422, 501))
async def check(request: Request, image: UploadFile = File(..., description="Image to check"),
                k: int = Form(6, ge=1, le=50, description="Number of free alternatives"),
                fast: bool = Form(False, description="Shortlist registered works by Hamming distance on binary "
                                  "codes, then re-rank them by exact cosine (same threshold; evidence.search "
                                  "says which search answered)")):
    """Verdict (registered with owner, matched work, score and stage, or not-registered) and the most
    similar free-to-use works. Answers 501 while no copyright module or registry is set up."""
    service(request).require_copyright_checker()
    upload = await upload_of(request, image)
    return await run_in_threadpool(service(request).check_copyright, upload, k, fast)
