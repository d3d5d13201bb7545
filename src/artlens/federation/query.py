"""Queries as they leave a portal: decoded and embedded there, so that only vectors travel. An
image (or a text) becomes the raw vector of every pretrained extractor the members index (each
member projects it with its own PCA) and, with the federation's head, its embedding in the shared
space (the ``learned`` aspect)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from artlens.config import CollectionConfig
from artlens.errors import ArtlensError
from artlens.features import ImageExtractor, TextExtractor, create_extractor
from artlens.features.extract import encode_images, prepare_image
from artlens.federation.wire import encode_vector, encode_vectors
from artlens.vectors import l2_normalise


@dataclass
class QueryVectors:
    """A query in the federation: the head's embedding (None without a head, or for text) and raw
    extractor vectors by extractor id; ``modality`` is "image", "text" or "artworks" (liked works)."""

    modality: str
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    learned: np.ndarray | None = None

    def payload(self) -> dict:
        out: dict = {"raw": encode_vectors(self.raw)}
        if self.learned is not None:
            out["learned"] = encode_vector(self.learned)
        return out

    @classmethod
    def mean(cls, queries: Sequence[QueryVectors]) -> QueryVectors:
        """The mean of several queries per vector (recommendations from liked works)."""
        raw: dict[str, list[np.ndarray]] = {}
        learned = []
        for q in queries:
            for key, v in q.raw.items():
                raw.setdefault(key, []).append(v)
            if q.learned is not None:
                learned.append(q.learned)
        return cls("artworks", {k: np.mean(v, axis=0).astype(np.float32) for k, v in raw.items()},
                   l2_normalise(np.mean(learned, axis=0)).astype(np.float32) if learned else None)


def default_extractors() -> list[str]:
    """What a portal encodes before it has heard from any member: the default collection's extractors."""
    return CollectionConfig().extractor_names()


class QueryEncoder:
    """Encodes queries on the portal (one at a time: feature extraction uses every core)."""

    def __init__(self, head=None, max_pixels: int | None = None, crop_letterbox: bool | None = None):
        defaults = CollectionConfig()
        self.head = head
        self.max_pixels = max_pixels or defaults.max_pixels
        self.crop_letterbox = defaults.crop_letterbox if crop_letterbox is None else crop_letterbox
        self._lock = threading.Lock()

    @property
    def head_id(self) -> str | None:
        return self.head.id if self.head is not None else None

    def _head_reads_images(self) -> bool:
        return self.head is not None and any(s.modality == "image" for s in self.head.config.inputs)

    def image(self, image: Image.Image | bytes | str, extractor_names: Iterable[str]) -> QueryVectors:
        """Raw vectors of the image extractors among ``extractor_names`` (and of the head's inputs),
        and the head's embedding."""
        if not isinstance(image, Image.Image):
            image = prepare_image(image, self.max_pixels, self.crop_letterbox)
        extractors = {n: ex for n in dict.fromkeys(extractor_names) if isinstance(ex := create_extractor(n), ImageExtractor)}
        specs = self.head.config.inputs if self._head_reads_images() else ()
        for spec in specs:
            if spec.modality == "image":
                extractors.setdefault(spec.extractor, create_extractor(spec.extractor))
        with self._lock:
            raw = encode_images([image], list(extractors.values()))
            learned = None
            if specs:  # an image has no text: the head's text input is marked missing, as in a collection's search
                inputs = {s.extractor: raw[s.extractor] if s.extractor in raw else np.zeros((1, s.raw_dim), np.float32)
                          for s in specs}
                present = {s.extractor: np.array([s.extractor in raw]) for s in specs if s.optional}
                learned = l2_normalise(self.head.embed(inputs, present))[0].astype(np.float32)
        return QueryVectors("image", {extractors[n].id: v[0].astype(np.float32) for n, v in raw.items()}, learned)

    def text(self, text: str, extractor_names: Iterable[str]) -> QueryVectors:
        """Raw vectors of the text extractors among ``extractor_names``."""
        if not text.strip():
            raise ArtlensError("the text query is empty", "give some words, e.g. --text \"stormy sea at night\"")
        extractors = [ex for n in dict.fromkeys(extractor_names) if isinstance(ex := create_extractor(n), TextExtractor)]
        if not extractors:
            raise ArtlensError("no member indexes texts, so the federation cannot be searched by text",
                               "search by image, or ask the members to ingest titles or descriptions")
        with self._lock:
            return QueryVectors("text", {ex.id: ex.encode_texts([text])[0].astype(np.float32) for ex in extractors})

