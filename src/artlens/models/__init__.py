"""Learned heads over cached features, by name: ``create_head("fusion", config)``, ``load_head(path)``.

A head turns the raw vectors of its input extractors into one L2-normalised embedding (the
``learned`` aspect of a collection) and predicts its label column with a small classifier.
"""

from __future__ import annotations

from pathlib import Path

from artlens.errors import ArtlensError
from artlens.models.fusion import (
    HEAD_SCHEMA_VERSION,
    FusionHead,
    HeadConfig,
    HeadShape,
    InputSpec,
    read_head_payload,
)
from artlens.models.losses import LOSSES

_HEADS: dict[str, type] = {"fusion": FusionHead}


def register_head(kind: str, cls: type) -> None:
    """Make a head class available by name; it needs ``from_payload`` and ``save`` (the built-in does)."""
    _HEADS[kind] = cls


def list_heads() -> list[str]:
    return sorted(_HEADS)


def create_head(kind: str, config: HeadConfig):
    if kind not in _HEADS:
        raise ArtlensError(f"unknown head {kind!r}", f"choose one of: {', '.join(list_heads())}")
    return _HEADS[kind](config)


def load_head(path: str | Path):
    """A head saved by :meth:`FusionHead.save` (or another registered kind)."""
    payload = read_head_payload(path)
    kind = payload.get("kind", "fusion")
    if kind not in _HEADS:
        raise ArtlensError(f"{path} holds a {kind!r} head, which this artlens does not know",
                           f"known heads: {', '.join(list_heads())}")
    return _HEADS[kind].from_payload(payload)


__all__ = ["FusionHead", "HeadConfig", "HeadShape", "InputSpec", "LOSSES", "HEAD_SCHEMA_VERSION", "create_head", "list_heads",
           "load_head", "register_head"]
