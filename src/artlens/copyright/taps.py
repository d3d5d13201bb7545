"""Pooled multi-layer taps of the default backbone: the input of the robust copy descriptor.

Mid-level stages keep the texture and stroke detail that tells one painting from a similar one; the
head's last feature map carries what survives crops, rotation and recolouring. The extractor pools
four maps of one forward pass (mean and max of stages 4-6, mean and GeM of the 1280-channel head
map). The mean of the head map is exactly the default ``effnet-lite0`` content vector before its L2
normalisation, so a check also gets the content query for the free collection from the same pass.

Registered as the extractor ``copy-taps`` (by :func:`artlens.copyright.extractors.register_extractors`)
so that collections cache it like any other feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from artlens.features.backbone import KNOWN_CHANNELS, get_backbone
from artlens.features.base import ImageExtractor
from artlens.vectors import l2_normalise

COPY_TAPS = "copy-taps"
_BACKBONE = "effnet-lite0"
_STAGES = ("block4", "block5", "block6")
_HEAD_CHANNELS = KNOWN_CHANNELS[_BACKBONE]["pool"]
_GEM_P = 3.0


def _layout() -> dict[str, slice]:
    """Where each pooled part sits in the vector."""
    parts, start = {}, 0
    for stage in _STAGES:
        for pool in ("mean", "max"):
            width = KNOWN_CHANNELS[_BACKBONE][stage]
            parts[f"{stage}.{pool}"] = slice(start, start + width)
            start += width
    for pool in ("mean", "gem"):
        parts[f"head.{pool}"] = slice(start, start + _HEAD_CHANNELS)
        start += _HEAD_CHANNELS
    return parts


TAP_LAYOUT = _layout()
TAPS_DIM = max(s.stop for s in TAP_LAYOUT.values())
CONTENT_SLICE = TAP_LAYOUT["head.mean"]  # the effnet-lite0 content vector (before L2 normalisation)


def gem(x: torch.Tensor, p: float = _GEM_P, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling of a non-negative (B, C, H, W) map -> (B, C)."""
    return x.clamp(min=eps).pow(p).mean((2, 3)).pow(1.0 / p)


class CopyTapsExtractor(ImageExtractor):
    """(B, 3808) pooled taps of EfficientNet-Lite0, stored as float16 in the feature cache."""

    name = COPY_TAPS
    version = 1
    aspect = "copy"
    backbone = _BACKBONE
    taps = _STAGES
    dim = TAPS_DIM
    store_dtype = "float16"

    @torch.inference_mode()
    def from_taps(self, taps: dict[str, torch.Tensor], images: Sequence[Image.Image]) -> np.ndarray:
        parts = []
        for stage in _STAGES:
            x = taps[stage].float()
            parts += [x.mean((2, 3)), x.amax((2, 3))]
        head_map = get_backbone(self.backbone).model.head(taps["block6"]).float()
        parts += [head_map.mean((2, 3)), gem(head_map)]
        return torch.cat(parts, dim=1).numpy().astype(np.float32)


def content_vectors(taps: np.ndarray) -> np.ndarray:
    """The L2-normalised ``effnet-lite0`` content vectors contained in pooled taps."""
    return l2_normalise(np.asarray(taps, dtype=np.float32)[:, CONTENT_SLICE], axis=1)
