"""The portal's app: the same web page and REST API as ``artlens serve``, over a whole federation.
``create_portal_app(PortalSettings(members=PATH), portal)`` serves ``/api/search`` (fan-out to the
members, hits merged by score, each with its institution, plus ``members[]``: who answered),
``/api/stats``, ``/api/facets`` (the union of the members' exposed ones), ``/api/artworks`` (browse,
details, thumbnails fetched from the members) and ``/api/members`` (the check of every member)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from types import SimpleNamespace

from fastapi import FastAPI, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool

from artlens import __version__
from artlens.api.errors import ApiError, error_response, install_error_handlers
from artlens.api.limits import BodySizeLimit
from artlens.api.routes import portal as portal_routes
from artlens.api.routes.page import page_router
from artlens.api.service import _LRU
from artlens.api.settings import PortalSettings
from artlens.api.uploads import UploadedImage, UploadRef, decode_or_422
from artlens.federation import FederationError, Portal, QueryVectors
from artlens.recommend import diversify

DESCRIPTION = """Search every institution of a federation at once, by image, text, artwork or liked
artworks. Queries are encoded here; only their vectors reach the members, which answer with scores,
exposed metadata and small thumbnails. Every answer says which members answered (`members[]`)."""

_FORM_OVERHEAD = 256 * 1024
DIVERSITY_COLUMN, DIVERSITY_SHARE, DIVERSITY_PENALTY, POOL = "artist", 0.25, 0.05, 4


class PortalService:
    """What the portal's routes call: the :class:`Portal`, the request limits, recent query vectors."""

    def __init__(self, settings: PortalSettings, portal: Portal):
        self.settings = settings
        self.portal = portal
        self._queries = _LRU(settings.query_cache_size)

    async def search(self, *, image: UploadedImage | UploadRef | None = None, text: str | None = None,
                     artwork_id: int | None = None, liked: Sequence[int] | None = None, k: int | None = None,
                     aspect: str | None = None, weights: Mapping[str, float] | None = None,
                     filters: Mapping[str, Sequence[str]] | None = None, fast: bool = False) -> dict:
        s = self.settings
        k = s.default_k if k is None else k
        if not 1 <= k <= s.max_k:
            raise ApiError(422, f"k must be between 1 and {s.max_k}, got {k}", f"ask for at most {s.max_k} results")
        given = [n for n, v in (("image", image), ("text", text), ("id", artwork_id), ("liked", liked)) if v is not None]
        if len(given) != 1:
            raise ApiError(422, "give exactly one query: image, text, id or liked" + (f" (got {', '.join(given)})" if given else ""),
                           "send an image upload, a text, an artwork id, or liked artwork ids")
        await self.portal.ensure_infos()
        exclude, notes, pool = None, [], k
        if image is not None:
            query, described = await self._image_query(image), {"image": "upload", "upload_id": image.md5}
        elif text is not None:
            query = self._queries.get(("text", text))
            if query is None:
                query = await run_in_threadpool(self.portal.encode_text, text)
                self._queries.put(("text", text), query)
            described = {"text": text}
        else:
            ids = [artwork_id] if artwork_id is not None else self._liked(liked)
            query, exclude, notes = await self.portal.artworks_query(ids)
            described = {"id": artwork_id} if artwork_id is not None else {"liked": list(ids)}
            if liked is not None:
                pool, weights = k * POOL, ({aspect: 1.0} if aspect else weights)
                aspect = None
        answer = await self.portal.search(query, min(pool, s.max_k * POOL), weights=weights, aspect=aspect,
                                          filters=filters, exclude=exclude, fast=fast, described=described)
        if liked is not None:
            wrapped = [SimpleNamespace(score=h["score"], hit=h) for h in answer["results"]]
            picked = diversify(wrapped, k, lambda w: w.hit["metadata"].get(DIVERSITY_COLUMN),
                               max(1, math.ceil(DIVERSITY_SHARE * k)), DIVERSITY_PENALTY)
            answer["results"] = [w.hit for w in picked]
        if notes:
            answer["notes"] = notes
        return answer

    def _liked(self, liked: Sequence[int]) -> list[int]:
        if not liked:
            raise ApiError(422, "the liked list is empty", "like at least one artwork")
        if len(liked) > self.settings.max_liked:
            raise ApiError(422, f"too many liked artworks ({len(liked)}; at most {self.settings.max_liked})",
                           "send the most recent ones")
        return list(dict.fromkeys(int(i) for i in liked))

    async def _image_query(self, image: UploadedImage | UploadRef) -> QueryVectors:
        key = ("image", image.md5)
        query = self._queries.get(key)
        if query is None and isinstance(image, UploadRef):
            raise ApiError(404, "that upload is no longer remembered by the portal", "send the image again")
        if query is None:
            decoded = await run_in_threadpool(decode_or_422, image)
            query = await run_in_threadpool(self.portal.encode_image, decoded)
            self._queries.put(key, query)
        return query

    async def stats(self) -> dict:
        await self.portal.ensure_infos()
        s, portal = self.settings, self.portal
        infos = [portal.infos[m.name] for m in portal.members if m.name in portal.infos]
        aspects = sorted(portal.member_aspects())
        columns = sorted({c for info in infos for c in info.get("expose", [])})
        return {"collection": s.title, "artworks": sum(int(i.get("artworks", 0)) for i in infos), "skipped": 0,
                "aspects": aspects, "default_weights": {a: w for a, w in portal.weights.items() if a in aspects},
                "indexes": {}, "extractors": {}, "metadata_columns": columns, "text_columns": [],
                "features": {"annotation": False, "copyright": False, "artists": False},
                "limits": {"max_upload_bytes": s.max_upload_bytes, "max_upload_pixels": s.max_upload_pixels,
                           "max_k": s.max_k, "default_k": s.default_k, "max_liked": s.max_liked},
                "portal": portal.stats()}


def create_portal_app(settings: PortalSettings, portal: Portal, warm_up: bool = True) -> FastAPI:
    """The portal over ``portal``'s members; with ``warm_up`` it loads the extractors and asks every
    member for its info on start."""
    service = PortalService(settings, portal)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up:
            await portal.refresh()
            await run_in_threadpool(portal.encode_image, _grey())
        yield
        await portal.aclose()

    app = FastAPI(title=f"{settings.title} API", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.portal_service = service
    app.state.settings = settings
    install_error_handlers(app)

    @app.exception_handler(FederationError)
    async def _federation_error(request: Request, exc: FederationError):
        return error_response(exc.status, exc.message, exc.hint)

    app.include_router(portal_routes.router)
    app.include_router(page_router(settings.title, with_page=settings.serve_page))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    return app


def _grey() -> Image.Image:
    return Image.new("RGB", (64, 64), (128, 128, 128))
