"""Every error the API answers is JSON: ``{"error": what failed, "hint": what to do, "status": code}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from artlens.errors import ArtlensError, CollectionError, ImageDecodeError

log = logging.getLogger("artlens.api")


class ErrorBody(BaseModel):
    error: str
    hint: str | None = None
    status: int
    detail: list[dict] | None = None


class ApiError(Exception):
    """An error with its HTTP status; raised anywhere below a route."""

    def __init__(self, status: int, message: str, hint: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = headers  # e.g. Retry-After of a 429, WWW-Authenticate of a 401


def error_response(status: int, message: str, hint: str | None = None, detail: list | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": message, "hint": hint, "status": status}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(p for p in loc if p not in ("body", "query", "path", "form")), "message": err.get("msg", "")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.hint, headers=exc.headers)

    @app.exception_handler(ImageDecodeError)
    async def _decode_error(request: Request, exc: ImageDecodeError):
        return error_response(422, exc.message, exc.hint)

    @app.exception_handler(CollectionError)
    async def _collection_error(request: Request, exc: CollectionError):
        status = 404 if "not in this collection" in exc.message else 422
        return error_response(status, exc.message, exc.hint)

    @app.exception_handler(ArtlensError)
    async def _artlens_error(request: Request, exc: ArtlensError):
        return error_response(422, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        detail = _validation_detail(exc)
        first = detail[0] if detail else {"field": "", "message": "invalid request"}
        field, said = first["field"], first["message"]
        if field and said.startswith("Input should be"):  # "k must be less than or equal to 200"
            message = f"{field} must be{said[len('Input should be'):]}"
        else:
            message = f"{field}: {said}" if field else said
        return error_response(422, f"invalid request ({message})", "see /docs for the parameters of this endpoint", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        hints = {404: "see /docs for the endpoints", 405: "see /docs for the methods of this endpoint"}
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, message, hints.get(exc.status_code), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__})",
                              "this is a bug in artlens: please report it with the request that caused it")
