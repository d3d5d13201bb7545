"""The web page: a few static files read once into memory (no request path reaches the disk)."""

from __future__ import annotations

import hashlib
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    folder = resources.files("artlens.web") / "static"
    files = {}
    for name, media_type in _TYPES.items():
        data = (folder / name).read_bytes()
        files[name] = (data, media_type, '"' + hashlib.md5(data).hexdigest() + '"')
    return files


def page_router() -> APIRouter:
    files = _load()
    router = APIRouter(include_in_schema=False)

    def serve(name: str):
        data, media_type, etag = files[name]

        def handler(request: Request) -> Response:
            headers = {"ETag": etag, "Cache-Control": "no-cache"}
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers=headers)
            return Response(data, media_type=media_type, headers=headers)

        return handler

    router.add_api_route("/", serve("index.html"), methods=["GET"])
    for name in _TYPES:
        router.add_api_route(f"/{name}", serve(name), methods=["GET"])
    return router
