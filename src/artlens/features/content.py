"""Content features: the pooled output of a pretrained CNN."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from artlens.features.base import ImageExtractor


class PooledFeatureExtractor(ImageExtractor):
    """Global-pooled backbone features, L2-normalised."""

    aspect = "content"
    taps = ("pool",)

    def __init__(self, name: str, backbone: str, dim: int):
        self.name, self.backbone, self.dim = name, backbone, dim

    def from_taps(self, taps: dict[str, torch.Tensor], images: Sequence[Image.Image]) -> np.ndarray:
        return torch.nn.functional.normalize(taps["pool"].float(), dim=1).numpy().astype(np.float32)
