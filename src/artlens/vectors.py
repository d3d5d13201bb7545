"""Vector helpers every stage shares."""

from __future__ import annotations

import numpy as np


def l2_normalise(x, axis: int = -1, dtype=None) -> np.ndarray:
    """Rows (vectors along ``axis``) scaled to unit length; zero vectors stay zero. Floating input keeps
    its precision unless ``dtype`` is given (FAISS and the heads take float32); other input becomes
    float32."""
    x = np.asarray(x, dtype=dtype)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    norms = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norms, 1e-12)
