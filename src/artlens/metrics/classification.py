"""Classification metrics as pure functions."""

from __future__ import annotations

import numpy as np


def topk_accuracy(scores, labels, k: int) -> float:
    """Share of rows whose true label index is among the ``k`` highest scores."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if len(scores) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def cross_entropy(proba, labels) -> float:
    """Mean negative log of the probability each row gives its true label index (clipped at 1e-12)."""
    proba = np.asarray(proba)
    labels = np.asarray(labels)
    return float(-np.mean(np.log(np.maximum(proba[np.arange(len(labels)), labels], 1e-12))))
