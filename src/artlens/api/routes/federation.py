"""A member's federation endpoints, ``/api/federation/*``: info, search by query vectors, stored
vectors of liked works (only where the member shares them), artworks' exposed metadata, browsing and
small thumbnails. Every one answers 401 without a bearer token whose SHA-256 is in MEMBER.toml."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from artlens.api.errors import ApiError
from artlens.api.routes._common import MAX_ID
from artlens.federation import FederationError, LiveMember, Member, MemberSettings
from artlens.progress import QUIET, Reporter


def _as_api_error(exc: FederationError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.hint)


def member_router(live: LiveMember) -> APIRouter:
    def authorised(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not live.settings.accepts(token.strip()):
            raise ApiError(401, "this federation endpoint needs a valid bearer token",
                           "send Authorization: Bearer TOKEN with a token this member accepts (MEMBER.toml tokens_sha256)")

    router = APIRouter(prefix="/api/federation", tags=["federation"], dependencies=[Depends(authorised)])

    async def call(name: str, *args):
        def run():  # the member of the newest generation, looked up in the worker thread (it may open one)
            return getattr(live.member(), name)(*args)

        try:
            return await run_in_threadpool(run)
        except FederationError as exc:
            raise _as_api_error(exc) from None

    @router.get("/info")
    async def info():
        """Name, head id, artwork count, indexed aspects and the exposed facets of this member."""
        return await call("info")

    @router.post("/search")
    async def search(request: dict = Body(...)):
        """Hits for query vectors: ``head_id``, ``k``, ``weights``, ``learned`` and ``raw`` (base64
        float32 by extractor id), optional ``filters`` (exposed columns), ``exclude`` and ``fast``."""
        return await call("search", request)

    @router.post("/vectors")
    async def vectors(request: dict = Body(...)):
        """Stored vectors of liked works: 403 unless this member shares them."""
        return await call("vectors", request)

    @router.post("/browse")
    async def browse(request: dict = Body(...)):
        offset, limit, seed = request.get("offset", 0), request.get("limit", 24), request.get("seed")
        for name, value, high in (("offset", offset, 10**9), ("limit", limit, 200), ("seed", seed, 2**32 - 1)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high):
                raise ApiError(422, f"{name} must be an integer between 0 and {high}", f"send e.g. {name}: 0")
        return await call("browse", offset, max(1, limit), seed, request.get("filters"))

    @router.get("/artworks/{artwork_id}")
    async def artwork(artwork_id: int = Path(ge=0, le=MAX_ID)):
        """An artwork's exposed metadata (never its path or MD5)."""
        return await call("artwork", artwork_id)

    @router.get("/artworks/{artwork_id}/thumbnail", response_class=FileResponse)
    async def thumbnail(request: Request, artwork_id: int = Path(ge=0, le=MAX_ID)):
        path, etag = await call("thumbnail", artwork_id)
        headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return FileResponse(path, media_type="image/jpeg", headers=headers)

    return router


def install_member(app: FastAPI, settings: MemberSettings, reporter: Reporter = QUIET) -> LiveMember:
    """Make the app's server a federation member (``artlens serve --member``): the collection it
    serves is indexed with the federation's head, and the member follows the collection's committed
    generations as the rest of the API does."""
    service = app.state.service
    first = Member.open(service.collection, settings, reporter, thumbnails=service.thumbnails,
                        facets=lambda: service.current().facets()["facets"])
    live = LiveMember(first, lambda: service.current().collection)
    app.state.member = live
    app.include_router(member_router(live))
    return live
