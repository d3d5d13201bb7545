"""The web page and the offline API reference: a few static files read once into memory (no request
path reaches the disk). ``/docs`` renders ``/openapi.json`` without any external code; Swagger UI,
which loads from a CDN, stays available at ``/docs/swagger`` for those online."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "docs.html": "text/html; charset=utf-8", "docs.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
_PAGE_ONLY = {"index.html", "app.js"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    folder = resources.files("artlens.web") / "static"
    files = {}
    for name, media_type in _TYPES.items():
        data = (folder / name).read_bytes()
        files[name] = (data, media_type, '"' + hashlib.md5(data).hexdigest() + '"')
    return files


def page_router(title: str, with_page: bool = True) -> APIRouter:
    """``/`` (the page, unless ``with_page`` is false), ``/docs``, ``/docs/swagger`` and their assets."""
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

    if with_page:
        router.add_api_route("/", serve("index.html"), methods=["GET"])
    for name in _TYPES:
        if with_page or name not in _PAGE_ONLY:
            router.add_api_route(f"/{name}", serve(name), methods=["GET"])
    router.add_api_route("/docs", serve("docs.html"), methods=["GET"])
    router.add_api_route("/docs/swagger", _swagger(title), methods=["GET"])
    return router


def _swagger(title: str):
    """Swagger UI, with a Content-Security-Policy of its own: its code comes from a CDN and it
    starts with one inline script, allowed by its hash (no other inline script runs)."""
    page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} API")
    inline = re.findall(r"<script>(.*?)</script>", page.body.decode(), re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
    cdn = "https://cdn.jsdelivr.net"
    policy = (f"default-src 'self'; script-src {cdn} {hashes}; style-src {cdn} 'unsafe-inline'; "
              f"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; "
              "base-uri 'none'; frame-ancestors 'none'")

    def handler() -> Response:
        return Response(page.body, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": policy})

    return handler
