"""Data-independent and linear hashing baselines: random-projection LSH and PCA-ITQ."""

from __future__ import annotations

from typing import Any

import numpy as np

from artlens.errors import ArtlensError

from .base import BaseHasher, register_hasher


def pca_basis(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and top-``dims`` principal directions ``(D, dims)`` of ``x``, float64.

    Eigenvector signs are fixed (largest-magnitude entry positive) so the basis is reproducible.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / max(1, len(x) - 1)
    vals, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, np.argsort(vals)[::-1][:dims]]
    flip = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
    flip[flip == 0] = 1
    return mean, vecs * flip


class _LinearHasher(BaseHasher):
    """Bits are the signs of a centred linear projection: ``(x - mean) @ projection``."""

    def _project(self, x):
        return (x - self.mean) @ self.projection

    def _arrays(self):
        return {"mean": self.mean, "projection": self.projection}

    def _set_arrays(self, arrays):
        self.mean = arrays["mean"].astype(np.float32)
        self.projection = arrays["projection"].astype(np.float32)


@register_hasher
class LSHHasher(_LinearHasher):
    """Sign of Gaussian random projections of the mean-centred features (Charikar's SimHash)."""

    name = "lsh"

    def _fit(self, x, seed, reporter):
        rng = np.random.default_rng(seed)
        self.mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.projection = rng.standard_normal((x.shape[1], self.bits)).astype(np.float32)


@register_hasher
class ITQHasher(_LinearHasher):
    """PCA to ``bits`` dimensions, then Iterative Quantization (Gong & Lazebnik, CVPR 2011)."""

    name = "itq"

    def __init__(self, bits: int, feature_id: str | None = None, iterations: int = 50):
        super().__init__(bits, feature_id)
        self.iterations = int(iterations)

    def hyperparameters(self) -> dict[str, Any]:
        return {"iterations": self.iterations}

    def _fit(self, x, seed, reporter):
        if self.bits > x.shape[1]:
            raise ArtlensError(
                f"ITQ needs bits <= feature dimension, got {self.bits} bits for {x.shape[1]}-d features",
                "use fewer bits or the lsh hasher",
            )
        mean, basis = pca_basis(x, self.bits)
        v = (x - mean) @ basis
        rng = np.random.default_rng(seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        for _ in range(self.iterations):
            b = np.where(v @ rotation >= 0, 1.0, -1.0)
            # argmin_R ||B - V R||_F over orthogonal R: with B^T V = U S W^T, R = W U^T
            u, _, wt = np.linalg.svd(b.T @ v)
            rotation = wt.T @ u.T
        self.mean = mean.astype(np.float32)
        self.projection = (basis @ rotation).astype(np.float32)
