"""Pieces every router uses: the service of the app, the error responses in the schema, uploads."""

from __future__ import annotations

from fastapi import Request, UploadFile

from artlens.api.errors import ErrorBody
from artlens.api.service import ArtService
from artlens.api.uploads import UploadedImage, read_upload

MAX_ID = 2**63 - 1  # SQLite's integer range


def service(request: Request) -> ArtService:
    return request.app.state.service.current()  # the newest generation of the collection


def errors(*codes: int) -> dict:
    text = {400: "Malformed request body", 401: "No valid token (see WWW-Authenticate)", 403: "Not allowed with this token",
            404: "Not found", 409: "Collection not ready", 413: "Upload too large", 415: "Not an image type",
            422: "Bad parameters or undecodable image", 429: "Too many requests, or the image queue is full: retry after "
            "the seconds in Retry-After", 501: "Not available on this server"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


async def upload_of(request: Request, image: UploadFile) -> UploadedImage:
    svc = service(request)
    s = svc.settings
    return await read_upload(image, s.max_upload_bytes, s.max_upload_pixels, svc.collection.config.crop_letterbox)
