"""Leave-self-out retrieval over vector matrices: every item queries all the others, relevant means
same label. The training loop (validation mAP), the reports and the benchmarks share it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from artlens.metrics.ranking import batch_retrieval_metrics, leave_self_out_relevance


def evaluate_vectors(
    vectors: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    labels: Sequence[str],
    ks=(10, 60),
    query_mask: np.ndarray | None = None,
    block: int = 256,
) -> dict[str, float]:
    """Leave-self-out metrics (``map``, ``p@k``, ``ap@k``, ``ndcg@k``, ``n_queries``) for aligned
    per-aspect vector matrices (rows = items, L2-normalised) mixed by ``weights`` as search mixes
    them. ``query_mask`` restricts which items query (all items are searched)."""
    labels = np.asarray(labels)
    n = len(labels)
    _, codes = np.unique(labels, return_inverse=True)
    class_sizes = np.bincount(codes)
    queries = np.flatnonzero(query_mask) if query_mask is not None else np.arange(n)
    sums: dict[str, float] = {}
    count = 0
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        scores = np.zeros((len(q), n), dtype=np.float32)
        for aspect, w in weights.items():
            scores += w * (vectors[aspect][q] @ vectors[aspect].T)
        rel = leave_self_out_relevance(scores, q, codes)
        metrics = batch_retrieval_metrics(rel, class_sizes[codes[q]] - 1, ks)
        for name, values in metrics.items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
        count += len(q)
    result = {name: total / max(count, 1) for name, total in sums.items()}
    result["n_queries"] = count
    return result


def leave_self_out_map(emb: np.ndarray, codes: np.ndarray, block: int = 512) -> float:
    """Leave-self-out mAP of L2-normalised embeddings, relevant = same (non-negative) code."""
    codes = np.asarray(codes)
    n = len(codes)
    if n < 2:
        return 0.0
    sizes = np.bincount(codes[codes >= 0])
    total = 0.0
    for start in range(0, n, block):
        q = np.arange(start, min(start + block, n))
        rel = leave_self_out_relevance(emb[q] @ emb.T, q, codes)
        total += float(batch_retrieval_metrics(rel, sizes[codes[q]] - 1, ks=())["map"].sum())
    return total / n
