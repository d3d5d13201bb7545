"""Request body limit, enforced while the body streams in (before any parsing or spooling)."""

from __future__ import annotations

import json


class _TooLarge(BaseException):
    """A BaseException so that body parsers' ``except Exception`` cannot turn it into a 400."""


class BodySizeLimit:
    """ASGI middleware: answers 413 (JSON) to a request whose body exceeds ``max_bytes``, judged by
    its Content-Length header when it has one and by counting the bytes as they arrive otherwise."""

    def __init__(self, app, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app = app
        self.default_max_bytes = max_bytes
        self.per_path = per_path or {}  # routes that take several uploads get a larger budget

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        max_bytes = self.per_path.get(scope.get("path", ""), self.default_max_bytes)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > max_bytes:
                        return await self._reject(send, max_bytes)
                except ValueError:
                    pass
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, max_bytes)

    async def _reject(self, send, max_bytes: int) -> None:
        mib = max_bytes / 2**20
        body = json.dumps({"error": f"the request is larger than {mib:.0f} MiB",
                           "hint": "send a smaller or more compressed image", "status": 413}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
