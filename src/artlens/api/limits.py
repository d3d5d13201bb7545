"""Limits on requests: the body size, enforced while the body streams in (before any parsing or
spooling), and the bounded queue of image encodings."""

from __future__ import annotations

import contextvars
import json
import math
import threading
import time
from contextlib import contextmanager

from artlens.api.errors import ApiError


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


class EncodingQueue:
    """At most ``workers`` image encodings at once (feature extraction takes every core it gets) and
    at most ``waiting`` more queued for them; a request beyond that answers 429 at once, with a
    ``Retry-After`` of the expected wait, instead of queueing unseen for many seconds.

        with queue.slot():
            vectors = encode(image)

    A route reserves its place before handing the request to a worker thread (:meth:`reserve`).
    """

    def __init__(self, workers: int = 1, waiting: int = 8):
        self.workers, self.waiting = max(1, workers), max(0, waiting)
        self._slots = threading.BoundedSemaphore(self.workers)
        self._lock = threading.Lock()
        self._queued = 0  # running and waiting
        self._seconds = 0.5  # moving average of one encoding, for Retry-After
        # Set while a request holds a reservation; worker threads see it (they run in a copy of its context).
        self._reserved: contextvars.ContextVar[bool] = contextvars.ContextVar(f"encoding-{id(self)}", default=False)

    @property
    def queued(self) -> int:
        return self._queued

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the encodings ahead, shared by the workers."""
        ahead = max(1, self._queued - self.workers + 1)
        return max(1, math.ceil(self._seconds * ahead / self.workers))

    @contextmanager
    def reserve(self):
        """Take a place in the queue, or answer 429 now: a route holds one from before it hands the
        request to a worker thread, so that a request waiting for a thread counts as queued and a
        full queue is told at once. :meth:`slot` inside it uses the place taken."""
        if self._reserved.get():
            yield
            return
        self._enter()
        marker = self._reserved.set(True)
        try:
            yield
        finally:
            self._reserved.reset(marker)
            self._leave()

    @contextmanager
    def slot(self):
        """Encode in one of the ``workers`` places (waiting for one), within a reservation or not."""
        reserved = self._reserved.get()
        if not reserved:
            self._enter()
        try:
            with self._slots:
                start = time.perf_counter()
                yield
                self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)
        finally:
            if not reserved:
                self._leave()

    def _enter(self) -> None:
        with self._lock:
            if self._queued >= self.workers + self.waiting:
                wait = self.retry_after()
                raise ApiError(429, f"the server is busy encoding images ({self._queued} queued)",
                               f"retry after {wait} s (Retry-After)", {"Retry-After": str(wait)})
            self._queued += 1

    def _leave(self) -> None:
        with self._lock:
            self._queued -= 1
