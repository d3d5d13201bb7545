"""Colour histogram: the classic baseline of the retrieval literature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from artlens.features.base import ImageExtractor


class ColourHistogramExtractor(ImageExtractor):
    """Joint HSV histogram (hue x saturation x value bins) of the image at 128 px, square-rooted
    (Hellinger) so that cosine similarity compares distributions sensibly."""

    name = "colour-hist"
    aspect = "colour"
    bins = (12, 4, 4)
    dim = 12 * 4 * 4

    def histogram(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((128, 128), Image.BILINEAR).convert("HSV")
        hsv = np.asarray(small, dtype=np.int32).reshape(-1, 3)
        hb, sb, vb = self.bins
        idx = (hsv[:, 0] * hb // 256) * sb * vb + (hsv[:, 1] * sb // 256) * vb + hsv[:, 2] * vb // 256
        hist = np.bincount(idx, minlength=self.dim).astype(np.float32)
        hist = np.sqrt(hist / hist.sum())
        return hist / max(np.linalg.norm(hist), 1e-12)

    def from_taps(self, taps: dict[str, torch.Tensor], images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([self.histogram(im) for im in images]).astype(np.float32)
