"""What every feature extractor is: a named, versioned function from an image (or a text) to a vector."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


class Extractor(ABC):
    """A feature extractor. ``id`` changes whenever its output would change, so cached vectors
    computed by another version or configuration are never mixed with new ones."""

    name: str
    version: int = 1
    aspect: str  # the aspect it naturally feeds: content, style, colour, text
    modality: str  # "image" or "text"
    dim: int
    store_dtype: str = "float32"  # how the cache stores its vectors

    @property
    def id(self) -> str:
        return f"{self.name}/v{self.version}"

    def describe(self) -> dict:
        return {"name": self.name, "id": self.id, "aspect": self.aspect, "modality": self.modality, "dim": self.dim}

    def use_device(self, device: str) -> None:
        """Run on ``device`` (a resolved torch device name) from now on. Image extractors run on their
        backbone's device, given per batch; an extractor with a model of its own moves it here."""


class ImageExtractor(Extractor):
    """An image extractor computes its vector from the taps of a shared backbone forward pass
    (``backbone``/``taps``), from the decoded image itself (``backbone = None``), or both."""

    modality = "image"
    backbone: str | None = None
    taps: tuple[str, ...] = ()

    @abstractmethod
    def from_taps(self, taps: dict[str, torch.Tensor], images: Sequence[Image.Image]) -> np.ndarray:
        """(B, dim) float32 vectors for a batch."""


class TextExtractor(Extractor):
    modality = "text"

    @abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(B, dim) float32 vectors for a batch of texts."""
