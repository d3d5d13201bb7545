"""``POST /api/annotate``: predicted labels (artist, style, genre, ...) of an uploaded image."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from artlens.api.routes._common import errors, service, upload_of
from artlens.api.schemas import AnnotationResponse

router = APIRouter(tags=["annotation"])


@router.post("/api/annotate", response_model=AnnotationResponse, responses=errors(400, 413, 415, 422, 429, 501))
async def annotate(request: Request, image: UploadFile = File(..., description="Image to annotate"),
                   top: int = Form(3, ge=1, le=20, description="Labels per column")):
    """The most probable values of each label column of the collection, with probabilities, and
    whether the nearest labelled works are far (``weak``: the labels are guesses). Answers 501 when
    the collection has no label columns (the error says why)."""
    service(request).require_annotator()
    upload = await upload_of(request, image)
    with service(request).encoding.reserve():
        return await run_in_threadpool(service(request).annotate, upload, top)
