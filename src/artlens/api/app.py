"""The application factory: ``create_app(ApiSettings(collection=PATH))`` gives a FastAPI app serving
the REST API under ``/api``, its OpenAPI schema at ``/openapi.json`` (browsable offline at ``/docs``)
and the web page at ``/``."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from artlens import __version__
from artlens.api.errors import install_error_handlers
from artlens.api.limits import BodySizeLimit
from artlens.api.protocols import Annotator, CopyrightChecker
from artlens.api.routes import (
    annotate,
    artists,
    artworks,
    copyright,
    duplicates,
    search,
    study,
)
from artlens.api.routes import collection as collection_routes
from artlens.api.routes._common import errors
from artlens.api.routes.page import page_router
from artlens.api.security import secure
from artlens.api.service import ArtService
from artlens.api.settings import ApiSettings
from artlens.collection import Collection

DESCRIPTION = """Search an artwork collection by image, text, artwork or liked artworks, with the
score of every aspect (content, style, colour, text) so each result says why it is similar.
Errors are JSON: `{"error", "hint", "status"}`. A server started with tokens takes them as
`Authorization: Bearer TOKEN` (or the cookie `POST /api/session` sets); every client's requests are
rate limited (429 with `Retry-After`)."""

# Room for the multipart envelope and form fields around the largest allowed upload.
_FORM_OVERHEAD = 256 * 1024


def create_app(settings: ApiSettings, collection: Collection | None = None, annotator: Annotator | None = None,
               copyright_checker: CopyrightChecker | None = None, warm_up: bool = True) -> FastAPI:
    """The app for one collection. ``collection`` may be passed already open (tests, the demo);
    ``annotator`` and ``copyright_checker`` replace the collection's annotator and the checker of
    ``settings.copyright_registry`` (see :mod:`artlens.api.protocols`)."""
    service = ArtService(settings, collection, annotator=annotator, copyright_checker=copyright_checker)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up:
            service.warm_up()
        yield

    app = FastAPI(title=f"{settings.title} API", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.settings = settings
    install_error_handlers(app)
    # Any API answer may be a 429 (rate limit) or a 401 (a token not valid, or none on a private server).
    access_errors = errors(401, 429)
    app.include_router(search.build_router(settings), responses=access_errors)
    for module in (artworks, collection_routes, annotate, copyright, duplicates, artists, study):
        app.include_router(module.router, responses=access_errors)
    app.include_router(page_router(settings.title, with_page=settings.serve_page))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD,
                       per_path={"/api/artists/search": artists.MAX_REFERENCES * settings.max_upload_bytes + _FORM_OVERHEAD})
    secure(app, settings.access)  # after the other middleware: limits and tokens are checked first
    return app
