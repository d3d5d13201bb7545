"""Ranking metrics as pure functions.

Every ranking metric takes ``relevant``: a boolean (or 0/1) vector of the ranked list, best first,
for one query. Batched helpers take a 2-D array, one row per query.
"""

from __future__ import annotations

import numpy as np


def _as_rel(relevant) -> np.ndarray:
    rel = np.asarray(relevant, dtype=np.float64)
    if rel.ndim != 1:
        raise ValueError(f"expected a 1-D relevance vector, got shape {rel.shape}")
    return rel


def precision_at_k(relevant, k: int) -> float:
    """Share of relevant items among the first ``k`` (missing positions count as non-relevant)."""
    if k <= 0:
        raise ValueError("k must be positive")
    rel = _as_rel(relevant)[:k]
    return float(rel.sum() / k)


def recall_at_k(relevant, k: int, n_relevant: int | None = None) -> float:
    """Share of all relevant items found in the first ``k``."""
    rel = _as_rel(relevant)
    total = rel.sum() if n_relevant is None else n_relevant
    return float(rel[:k].sum() / total) if total > 0 else 0.0


def average_precision(relevant, n_relevant: int | None = None) -> float:
    """Average precision of a ranked list.

    ``n_relevant`` is the number of relevant items in the whole collection; by default the number
    found in ``relevant``. Passing a list truncated at k with the default gives the mAP@k used in the
    hashing literature (normalised by relevant items retrieved); passing ``n_relevant=min(k, R)``
    gives the AP@k of the DeepArt tables.
    """
    rel = _as_rel(relevant)
    total = rel.sum() if n_relevant is None else n_relevant
    if total <= 0:
        return 0.0
    hits = np.cumsum(rel)
    ranks = np.arange(1, len(rel) + 1)
    return float(np.sum(rel * hits / ranks) / total)


def dcg_at_k(gains, k: int) -> float:
    """Discounted cumulative gain with the log2(rank + 1) discount."""
    g = _as_rel(gains)[:k]
    return float(np.sum(g / np.log2(np.arange(2, len(g) + 2))))


def ndcg_at_k(relevant, k: int, n_relevant: int | None = None) -> float:
    """Normalised DCG at ``k`` for binary relevance; the ideal list holds min(k, R) relevant items."""
    rel = _as_rel(relevant)
    total = int(rel.sum() if n_relevant is None else n_relevant)
    ideal = dcg_at_k(np.ones(min(k, total)), k)
    return dcg_at_k(rel, k) / ideal if ideal > 0 else 0.0


def reciprocal_rank(relevant) -> float:
    """1 / rank of the first relevant item, 0 when none is relevant."""
    hits = np.flatnonzero(_as_rel(relevant))
    return float(1.0 / (hits[0] + 1)) if len(hits) else 0.0


def retrieval_summary(rel_rows, n_relevant, ks=(10, 60)) -> dict[str, float]:
    """Mean retrieval metrics over queries.

    ``rel_rows``: iterable of full ranked relevance vectors (query itself excluded);
    ``n_relevant``: matching iterable of the number of relevant items per query.
    Returns ``map`` (full ranking), ``p@k``, ``ap@k``, ``ndcg@k`` for each k, and ``n_queries``.
    """
    out: dict[str, list[float]] = {"map": []}
    for k in ks:
        out[f"p@{k}"], out[f"ap@{k}"], out[f"ndcg@{k}"] = [], [], []
    for rel, total in zip(rel_rows, n_relevant):
        rel = _as_rel(rel)
        out["map"].append(average_precision(rel, total))
        for k in ks:
            out[f"p@{k}"].append(precision_at_k(rel, k))
            out[f"ap@{k}"].append(average_precision(rel[:k], min(k, total)))
            out[f"ndcg@{k}"].append(ndcg_at_k(rel, k, total))
    summary = {name: float(np.mean(v)) if v else 0.0 for name, v in out.items()}
    summary["n_queries"] = len(out["map"])
    return summary


def batch_retrieval_metrics(rel, n_relevant, ks=(10, 60)) -> dict[str, np.ndarray]:
    """Vectorised :func:`retrieval_summary` for a block of queries: ``rel`` (Q, N) ranked relevance,
    ``n_relevant`` (Q,). Returns per-query arrays of ``map``, ``p@k``, ``ap@k`` and ``ndcg@k``."""
    rel = np.asarray(rel, dtype=np.float64)
    total = np.asarray(n_relevant, dtype=np.float64)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    hits = np.cumsum(rel, axis=1)
    prec_at_hit = rel * hits / ranks
    out = {"map": np.where(total > 0, prec_at_hit.sum(axis=1) / np.maximum(total, 1), 0.0)}
    discount = 1.0 / np.log2(ranks + 1)
    for k in ks:
        kk = min(k, rel.shape[1])
        out[f"p@{k}"] = rel[:, :kk].sum(axis=1) / k
        denom = np.minimum(k, total)
        out[f"ap@{k}"] = np.where(denom > 0, prec_at_hit[:, :kk].sum(axis=1) / np.maximum(denom, 1), 0.0)
        dcg = (rel[:, :kk] * discount[:kk]).sum(axis=1)
        ideal_cum = np.concatenate([[0.0], np.cumsum(discount[:k] if k <= len(discount) else
                                                     1.0 / np.log2(np.arange(2, k + 2)))])
        idcg = ideal_cum[np.minimum(k, total).astype(int)]
        out[f"ndcg@{k}"] = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0.0)
    return out


def leave_self_out_relevance(scores: np.ndarray, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Ranked relevance (Q, n - 1) of query rows ``queries`` whose ``scores`` (Q, n) cover all n items:
    each query itself left out, ties broken by position, relevant = same code. ``scores`` is changed."""
    n = scores.shape[1]
    scores[np.arange(len(queries)), queries] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, : n - 1]
    return codes[order] == codes[queries][:, None]
