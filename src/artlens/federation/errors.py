"""Errors of the federation protocol, with the HTTP status a member answers them with."""

from __future__ import annotations

from artlens.errors import ArtlensError


class FederationError(ArtlensError):
    """A request a member refuses: ``status`` is its HTTP status (401 token, 403 not shared, 404
    unknown artwork, 409 another head, 422 malformed)."""

    def __init__(self, status: int, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.status = status
