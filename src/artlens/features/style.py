"""Style features from intermediate feature maps: Gram, Cosine and Gram·Cosine matrices.

The Gram matrix (Gatys et al.; DeepArt) holds the correlations between channels of a layer; the Cosine
matrix normalises them by the channels' norms, and Gram·Cosine multiplies the two element-wise (the
three matrices compared in the Ukiyo-e similarity study). Only the upper triangle is kept; a signed
square root damps the largest entries. The collection's index reduces them with PCA.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from artlens.features.base import ImageExtractor

STYLE_KINDS = ("gram", "cosine", "gramcos")


def style_matrices(fmap: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, C, H, W) feature maps -> (B, C, C) style matrices of the given kind."""
    b, c, h, w = fmap.shape
    flat = fmap.reshape(b, c, h * w).float()
    gram = flat @ flat.transpose(1, 2) / (h * w)
    if kind == "gram":
        return gram
    norms = torch.sqrt(torch.clamp(torch.diagonal(gram, dim1=1, dim2=2), min=1e-12))
    cosine = gram / (norms[:, :, None] * norms[:, None, :])
    if kind == "cosine":
        return cosine
    if kind == "gramcos":
        return gram * cosine
    raise ValueError(f"unknown style matrix kind {kind!r}; choose one of {STYLE_KINDS}")


def upper_triangle(mats: torch.Tensor) -> torch.Tensor:
    c = mats.shape[-1]
    rows, cols = torch.triu_indices(c, c)
    return mats[:, rows, cols]


class StyleMatrixExtractor(ImageExtractor):
    """Upper triangle of a style matrix of one or more backbone layers, signed-sqrt and L2-normalised
    per layer; several layers are concatenated with equal weight (as in Gatys et al.'s style loss)."""

    aspect = "style"
    store_dtype = "float16"  # thousands of dimensions; half precision halves the cache

    def __init__(self, kind: str, layers: Sequence[str], backbone: str, channels: Sequence[int], name: str):
        if kind not in STYLE_KINDS:
            raise ValueError(f"unknown style matrix kind {kind!r}")
        self.kind, self.layers, self.backbone = kind, tuple(layers), backbone
        self.taps = self.layers
        self.name = name
        self.dim = sum(c * (c + 1) // 2 for c in channels)

    def from_taps(self, taps: dict[str, torch.Tensor], images: Sequence[Image.Image]) -> np.ndarray:
        parts = []
        for layer in self.layers:
            vec = upper_triangle(style_matrices(taps[layer], self.kind))
            vec = torch.sign(vec) * torch.sqrt(torch.abs(vec))
            parts.append(torch.nn.functional.normalize(vec, dim=1))
        vec = torch.cat(parts, dim=1) / np.sqrt(len(parts))
        return vec.numpy().astype(np.float32)
