"""User-facing errors: each names what failed, why, and what to do about it."""

from __future__ import annotations


class ArtlensError(Exception):
    """An error a user can act on. ``hint`` says what to do next."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ImageDecodeError(ArtlensError):
    """A file could not be decoded as an image."""


class MetadataError(ArtlensError):
    """A metadata CSV could not be read or lacks a needed column."""


class CollectionError(ArtlensError):
    """A collection is missing, empty, or was built with other settings."""


class ArtifactMismatchError(CollectionError):
    """A stored artifact (features, index, head) does not match what the caller expects."""
