"""Vector helpers every stage shares."""

from __future__ import annotations

import numpy as np


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows (or vectors along ``axis``) scaled to unit length, as float32; zero vectors stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norms, 1e-12)
