"""Access control of an artlens web app, in pieces any app adopts (``artlens serve``, the federation
portal) with :func:`secure`: API tokens kept hashed, who a request comes from, per-client rate
limits, security headers and the CORS policy.

**Tokens.** A token is a random string shown once, when it is minted (``artlens token``); servers
keep only the SHA-256 hex of its UTF-8 bytes, one token a line, with a name for logs and limits::

    # artlens API tokens: SHA-256 of the token, then its name
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  museum-frontend

The file is re-read when it changes, so a deleted line revokes its token without a restart. A
request presents a token as ``Authorization: Bearer TOKEN`` (programs) or in the ``artlens_token``
cookie that ``POST /api/session`` sets (the page: its ``<img>`` requests carry no header). Reads
(``/api/...``) need a token only when ``AccessSettings.private`` is on; writes always do (routes
depend on :func:`require_token`). A token that is presented but not valid is refused (401) rather
than ignored, so a revoked one is noticed.

**Limits.** Each client (its token's name, else its address) has a bucket of ``rate_burst``
requests refilled at ``rate_limit`` per second; an empty bucket answers 429 with ``Retry-After``.
Behind a reverse proxy on the same machine the address is the proxy's ``X-Forwarded-For`` (uvicorn
trusts it from 127.0.0.1 only).

**Headers.** Every answer carries a Content-Security-Policy that allows only the server's own
scripts and styles (no inline code), ``X-Content-Type-Options: nosniff``, ``frame-ancestors`` (none
unless ``frame_ancestors`` names the sites that may embed the page), ``Referrer-Policy`` and, over
HTTPS, ``Strict-Transport-Security``. CORS is explicit: same origin only unless ``cors_origins``
names the other origins whose pages may call the API.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.middleware.cors import CORSMiddleware

from artlens.api.errors import ApiError, ErrorBody
from artlens.api.settings import AccessSettings
from artlens.errors import ArtlensError
from artlens.files import write_text

__all__ = ["AccessControl", "AccessPolicy", "AccessSettings", "Client", "RateLimiter", "SecurityHeaders", "TokenFile",
           "add_token", "client_of", "hash_token", "require_token", "secure"]

TOKEN_COOKIE = "artlens_token"
TOKEN_PREFIX = "artlens_"
_HASH_LINE = re.compile(r"^([0-9a-fA-F]{64})(?:\s+(\S.*?))?\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")


# -- tokens ---------------------------------------------------------------------------------------
def hash_token(token: str) -> str:
    """The SHA-256 hex of the token's UTF-8 bytes: what a tokens file holds."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token() -> str:
    """A new token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_tokens(text: str, where: str) -> dict[str, str]:
    """hash -> name of every token line of a tokens file (``#`` starts a comment)."""
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _HASH_LINE.match(line)
        if not match:
            raise ArtlensError(f"{where}, line {number}: not a SHA-256 hex token hash followed by a name",
                               "mint tokens with `artlens token --tokens FILE --name NAME` (the file holds hashes, "
                               "never tokens)")
        digest = match.group(1).lower()
        tokens[digest] = match.group(2) or digest[:12]
    return tokens


class TokenFile:
    """The hashed tokens of a file, re-read when the file changes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._tokens: dict[str, str] = {}
        self.tokens()  # a missing or malformed file is an error now, not on the first request

    def tokens(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ArtlensError(f"cannot read the tokens file {self.path} ({exc.strerror or exc})",
                               "create it with `artlens token --tokens FILE --name NAME`") from None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._tokens = parse_tokens(self.path.read_text(encoding="utf-8"), str(self.path))
                self._stamp = stamp
            return self._tokens

    def identify(self, token: str) -> str | None:
        """The name of ``token``, or None when it is not one of the file's."""
        return self.tokens().get(hash_token(token))


def add_token(path: str | Path, name: str) -> str:
    """Mint a token, add its hash under ``name`` to the tokens file ``path`` (made if missing) and
    return the token: the only time it is shown."""
    if not _NAME.match(name or ""):
        raise ArtlensError(f"bad token name {name!r}", "use 1-64 letters, digits, '.', '_', '@' or '-'")
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else "# artlens API tokens: SHA-256 of the token, then its name\n"
    if name in parse_tokens(old, str(path)).values():
        raise ArtlensError(f"{path} already has a token named {name!r}",
                           "choose another --name, or delete that line first to replace it")
    token = mint_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text((old if old.endswith("\n") else old + "\n") + f"{hash_token(token)}  {name}\n", path)
    os.chmod(path, 0o600)
    return token


# -- who a request comes from ---------------------------------------------------------------------
@dataclass(frozen=True)
class Client:
    key: str  # what rate limits count by: "token:NAME" or "ip:ADDRESS"
    token: str | None = None  # the name of the request's valid token, None when it has none
    refused: bool = False  # it presented a token that is not valid


def presented_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's bearer token, else its token cookie."""
    cookie = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                continue
            if TOKEN_COOKIE in jar:
                cookie = jar[TOKEN_COOKIE].value
    return cookie


class AccessPolicy:
    def __init__(self, settings: AccessSettings):
        if settings.private and settings.tokens is None:
            raise ArtlensError("a private server needs tokens", "give --tokens FILE (mint one: artlens token --tokens FILE)")
        self.settings = settings
        self.tokens = TokenFile(settings.tokens) if settings.tokens is not None else None

    def client(self, scope) -> Client:
        address = (scope.get("client") or ("unknown",))[0]
        token = presented_token(scope.get("headers", ()))
        if token is None or self.tokens is None:
            return Client(f"ip:{address}")
        name = self.tokens.identify(token)
        return Client(f"token:{name}", name) if name else Client(f"ip:{address}", refused=True)


def client_of(request: Request) -> Client:
    """Who the request comes from (set by :class:`AccessControl`)."""
    return request.scope.get("state", {}).get("artlens_client") or Client(f"ip:{(request.client or ('unknown',))[0]}")


def require_token(request: Request) -> Client:
    """FastAPI dependency of every route that writes: the request must carry a valid token."""
    client = client_of(request)
    if client.token is None:
        raise _unauthorised(request.app.state.access.tokens is None)
    return client


def _unauthorised(no_tokens: bool) -> ApiError:
    if no_tokens:
        return ApiError(401, "this server takes no writes: it has no tokens",
                        "start it with --tokens FILE (mint one: artlens token --tokens FILE --name NAME)",
                        {"WWW-Authenticate": "Bearer"})
    return ApiError(401, "a valid token is needed", "send it as `Authorization: Bearer TOKEN` (or sign in on the page)",
                    {"WWW-Authenticate": "Bearer"})


# -- rate limits ----------------------------------------------------------------------------------
class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, refilled at ``rate`` per second. The
    least recently seen clients are forgotten beyond ``max_clients`` (a forgotten one starts full)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000):
        self.rate, self.burst, self.max_clients = float(rate), max(1, int(burst)), max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when ``key`` may send a request now (and counts it), else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, when = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


# -- middleware -----------------------------------------------------------------------------------
async def send_error(send, status: int, message: str, hint: str | None, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message, "hint": hint, "status": status}).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


class AccessControl:
    """ASGI middleware over the API's paths (``prefix``): says who each request comes from
    (``scope["state"]["artlens_client"]``), answers 429 when its client's bucket is empty, and 401
    when it presents a token that is not valid or, on a private server, none (``open_paths``
    excepted: health checks and signing in)."""

    def __init__(self, app, policy: AccessPolicy, limiter: RateLimiter | None = None, prefix: str = "/api/",
                 open_paths: Sequence[str] = ("/api/health", "/api/session", "/api/session/end")):
        self.app, self.policy, self.limiter = app, policy, limiter
        self.prefix, self.open_paths = prefix, frozenset(open_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            return await self.app(scope, receive, send)
        client = self.policy.client(scope)
        scope.setdefault("state", {})["artlens_client"] = client
        if self.limiter is not None:
            wait = self.limiter.take(client.key)
            if wait > 0:
                return await send_error(send, 429, "too many requests from this client",
                                        f"retry after {math.ceil(wait)} s (Retry-After)", {"Retry-After": str(math.ceil(wait))})
        path = scope["path"]
        if path not in self.open_paths and (client.refused or (self.policy.settings.private and client.token is None)):
            error = _unauthorised(False)
            message = "that token is not valid (revoked, or mistyped)" if client.refused else error.message
            return await send_error(send, 401, message, error.hint, error.headers)
        return await self.app(scope, receive, send)


def content_security_policy(frame_ancestors: Sequence[str] = ()) -> str:
    """Only the server's own scripts, styles and images (plus the page's local previews: blob:)."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            f"frame-ancestors {ancestors}")


class SecurityHeaders:
    """ASGI middleware adding the security headers to every answer; a route that sets its own
    Content-Security-Policy (the Swagger page, which loads from a CDN) keeps it."""

    def __init__(self, app, frame_ancestors: Sequence[str] = ()):
        self.app = app
        self.headers = [(b"content-security-policy", content_security_policy(frame_ancestors).encode()),
                        (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                        (b"cross-origin-opener-policy", b"same-origin")]
        if not frame_ancestors:
            self.headers.append((b"x-frame-options", b"DENY"))  # for browsers without frame-ancestors

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        https = scope.get("scheme") == "https"

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.headers if k not in present]
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, with_headers)


# -- signing in (the page) ------------------------------------------------------------------------
class SessionIn(BaseModel):
    token: str = Field(..., min_length=1, max_length=256, description="An API token of this server")


class Session(BaseModel):
    name: str | None = Field(description="The token's name; null once signed out")


session_router = APIRouter(tags=["access"])


@session_router.post("/api/session", response_model=Session, responses={
    400: {"model": ErrorBody, "description": "Malformed request body"},
    401: {"model": ErrorBody, "description": "Not a valid token"},
    422: {"model": ErrorBody, "description": "Bad parameters"},
    429: {"model": ErrorBody, "description": "Too many requests: retry after the seconds in Retry-After"}})
def sign_in(request: Request, response: Response, body: SessionIn):
    """Sign the page in: the token, if valid, is kept in an HttpOnly, SameSite=Strict cookie, so that
    the page's requests (its images too) carry it. Programs send ``Authorization: Bearer TOKEN`` instead."""
    policy: AccessPolicy = request.app.state.access
    name = policy.tokens.identify(body.token) if policy.tokens is not None else None
    if name is None:
        raise ApiError(401, "that token is not valid" if policy.tokens is not None else "this server has no tokens",
                       "ask the server's operator for a token (artlens token)", {"WWW-Authenticate": "Bearer"})
    response.set_cookie(TOKEN_COOKIE, body.token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return {"name": name}


@session_router.post("/api/session/end", response_model=Session, responses={
    429: {"model": ErrorBody, "description": "Too many requests: retry after the seconds in Retry-After"}})
def sign_out(response: Response):
    """Forget the page's token cookie."""
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return {"name": None}


def secure(app, settings: AccessSettings) -> AccessPolicy:
    """Put an app behind ``settings``: tokens, limits, headers, CORS and ``/api/session``. Call it
    after the app's other middleware is added, so that these run first."""
    policy = AccessPolicy(settings)
    app.state.access = policy
    app.include_router(session_router)
    limiter = RateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit > 0 else None
    app.add_middleware(AccessControl, policy=policy, limiter=limiter)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"],
                           allow_credentials=False, max_age=600)
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)
    return policy
