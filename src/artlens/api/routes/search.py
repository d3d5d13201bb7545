"""``POST /api/search``: by uploaded image, text, artwork id or liked ids."""

from __future__ import annotations

from contextlib import nullcontext

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from artlens.api.errors import ApiError
from artlens.api.params import filters_from_form, liked_from_form, weights_from_form
from artlens.api.routes._common import MAX_ID, errors, service, upload_of
from artlens.api.schemas import SearchResponse
from artlens.api.settings import ApiSettings
from artlens.api.uploads import UploadedImage, UploadRef


def build_router(settings: ApiSettings) -> APIRouter:
    """The search route of an app: its schema bounds ``k`` by the server's own ``max_k``, so that the
    schema and the answers agree (a ``k`` the schema allows is never refused)."""
    router = APIRouter(tags=["search"])
    router.add_api_route("/api/search", _search_endpoint(settings.default_k, settings.max_k), methods=["POST"],
                         response_model=SearchResponse, responses=errors(400, 404, 409, 413, 415, 422, 429))
    return router


def _search_endpoint(default_k: int, max_k: int):
    async def search(
        request: Request,
        image: UploadFile | None = File(None, description="Query image (JPEG, PNG, WebP, GIF, BMP, TIFF)"),
        upload_id: str | None = Form(None, pattern="^[0-9a-f]{32}$",
                                     description="Re-rank an earlier upload (query.upload_id of its answer) without sending it again"),
        text: str | None = Form(None, max_length=1000, description="Query text, matched with titles and descriptions"),
        artwork_id: int | None = Form(None, alias="id", ge=0, le=MAX_ID, description="More like this artwork"),
        liked: list[str] | None = Form(None, description="Liked artwork ids (repeat the field, or 1,2,3, or a JSON list): recommendations"),
        k: int | None = Form(None, ge=1, le=max_k, description=f"Number of results (default {default_k}, at most {max_k})"),
        aspect: str | None = Form(None, max_length=64, description="Rank by this aspect only"),
        weights: str | None = Form(None, max_length=1000, description="Aspect mix: content=0.5,style=0.5 or a JSON object"),
        filters: list[str] | None = Form(None, description='Metadata filters: column=value (repeatable) or a JSON object {"style": ["wave"]}'),
        fast: bool = Form(False, description="Shortlist candidates by Hamming distance on binary codes, then re-rank by exact cosine"),
    ):
        """Artworks most similar to exactly one query, each with its mixed score and the score of every
        aspect (why it is similar), plus facet counts over the results and the weights used."""
        text = text if text and text.strip() else None
        liked_ids = liked_from_form([x for x in liked if x.strip()] or None) if liked else None
        upload = await upload_of(request, image) if image is not None else None
        if upload_id is not None:
            if upload is not None:
                raise ApiError(422, "give either image or upload_id, not both", "send upload_id to re-rank an earlier upload")
            upload = UploadRef(upload_id)
        svc = service(request)
        # An upload to encode takes its place in the image queue now: a full queue answers 429 at once.
        with svc.encoding.reserve() if isinstance(upload, UploadedImage) else nullcontext():
            return await run_in_threadpool(
                svc.search, image=upload, text=text, artwork_id=artwork_id, liked=liked_ids, k=k,
                aspect=aspect or None, weights=weights_from_form(weights), filters=filters_from_form(filters), fast=fast)

    return search
