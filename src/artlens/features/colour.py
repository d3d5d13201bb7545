"""Colour histogram: the classic baseline of the retrieval literature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from artlens.features.base import ImageExtractor
from artlens.vectors import l2_normalise


class ColourHistogramExtractor(ImageExtractor):
    """Joint RGB histogram (8 x 8 x 8 bins) of the image at 128 px, square-rooted (Hellinger) so that
    cosine similarity compares distributions sensibly. (On wikiart_styles it beat HSV binnings:
    mAP 0.181 vs 0.175-0.178; see benchmarks/retrieval.py.)"""

    name = "colour-hist"
    version = 2
    aspect = "colour"
    bins = (8, 8, 8)
    dim = 8 * 8 * 8

    def histogram(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((128, 128), Image.BILINEAR)
        rgb = np.asarray(small, dtype=np.int32).reshape(-1, 3)
        rb, gb, bb = self.bins
        idx = (rgb[:, 0] * rb // 256) * gb * bb + (rgb[:, 1] * gb // 256) * bb + rgb[:, 2] * bb // 256
        hist = np.bincount(idx, minlength=self.dim).astype(np.float32)
        hist = np.sqrt(hist / hist.sum())
        return l2_normalise(hist)

    def from_taps(self, taps: dict[str, torch.Tensor], images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([self.histogram(im) for im in images]).astype(np.float32)
