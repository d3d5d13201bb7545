"""What travels between a portal and its members: query vectors as base64 of little-endian float32,
the protocol version, and the names of the endpoints. Nothing here decodes an image."""

from __future__ import annotations

import base64

import numpy as np

from artlens.errors import ArtlensError

PROTOCOL = 1
PREFIX = "api/federation/"
INFO, SEARCH, VECTORS, ARTWORKS, BROWSE = "info", "search", "vectors", "artworks", "browse"
MAX_DIM = 65_536  # no extractor in artlens is wider; a larger vector is garbage


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str, where: str = "vector") -> np.ndarray:
    """A vector sent by :func:`encode_vector`; anything else is an error naming ``where``."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise ArtlensError(f"{where} is not base64", "send vectors as base64 of float32 values") from None
    if not data or len(data) % 4 or len(data) // 4 > MAX_DIM:
        raise ArtlensError(f"{where} does not hold float32 values ({len(data)} bytes)", "send base64 of float32 values")
    vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ArtlensError(f"{where} holds values that are not finite", "send finite float32 values")
    return vector


def encode_vectors(vectors: dict[str, np.ndarray]) -> dict[str, str]:
    return {key: encode_vector(v) for key, v in vectors.items()}


def decode_vectors(data, where: str = "vectors") -> dict[str, np.ndarray]:
    if not isinstance(data, dict):
        raise ArtlensError(f"{where} must be an object of base64 vectors", "send {\"id\": \"base64...\"}")
    return {str(key): decode_vector(text, f"{where}[{key!r}]") for key, text in data.items()}
