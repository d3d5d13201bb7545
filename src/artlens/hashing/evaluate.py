"""Retrieval quality of binary codes: Hamming-ranking mAP@k, the float (cosine) bound, query splits."""

from __future__ import annotations

import numpy as np

from artlens.errors import ArtlensError
from artlens.metrics import average_precision
from artlens.vectors import l2_normalise

from .codes import as_codes, hamming_distances


def _relevance(query_labels, db_labels):
    """Function mapping a block of query rows to a boolean relevance matrix against the database.

    1-D labels: same label. 2-D (multi-hot) labels: at least one label in common.
    """
    ql = np.asarray(query_labels)
    dl = np.asarray(db_labels)
    if ql.ndim != dl.ndim or ql.ndim not in (1, 2):
        raise ArtlensError(f"label arrays must both be 1-D or both 2-D, got {ql.shape} and {dl.shape}")
    if ql.ndim == 1:
        return lambda rows: ql[rows, None] == dl[None, :]
    dlf = dl.astype(np.float32)
    return lambda rows: (ql[rows].astype(np.float32) @ dlf.T) > 0


def _topk_by_key(dist: np.ndarray, k: int) -> np.ndarray:
    """Per row, the column indices of the ``k`` smallest ``dist`` values, ties by column (stable)."""
    n = dist.shape[1]
    key = dist.astype(np.int64) * n + np.arange(n, dtype=np.int64)
    if k < n:
        part = np.argpartition(key, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(key, part, axis=1).argsort(axis=1)
        return np.take_along_axis(part, order, axis=1)
    return key.argsort(axis=1)


def _map_from_rankings(rank_fn, nq: int, nb: int, rel_fn, k: int, block: int) -> float:
    if nq == 0:
        raise ArtlensError("no queries to evaluate")
    if nb == 0:
        raise ArtlensError("empty database")
    k = min(int(k), nb)
    if k <= 0:
        raise ArtlensError("k must be positive")
    aps = []
    for s in range(0, nq, block):
        rows = np.arange(s, min(nq, s + block))
        top = rank_fn(rows, k)
        rel = np.take_along_axis(rel_fn(rows), top, axis=1)
        aps.extend(average_precision(r) for r in rel)
    return float(np.mean(aps))


def hashing_map_at_k(query_codes, db_codes, query_labels, db_labels, k: int = 1000, block: int = 256) -> float:
    """mAP@k of Hamming ranking, hashing-literature convention.

    The database is ranked by Hamming distance to each query, ties broken by database position
    (ascending, i.e. a stable sort). AP is computed on the top ``k`` and normalised by the number of
    relevant items retrieved within them (``average_precision(rel[:k])``); queries with none count 0.
    """
    q = as_codes(query_codes)
    db = as_codes(db_codes, q.shape[1] * 8)
    if len(query_labels) != len(q) or len(db_labels) != len(db):
        raise ArtlensError("labels and codes differ in length")
    rel_fn = _relevance(query_labels, db_labels)

    def rank(rows, kk):
        return _topk_by_key(hamming_distances(q[rows], db), kk)

    return _map_from_rankings(rank, len(q), len(db), rel_fn, k, block)


def float_map_at_k(
    query_feats, db_feats, query_labels, db_labels, k: int = 1000, center: bool = False, block: int = 256
) -> float:
    """mAP@k of cosine-similarity ranking of float features (the upper bound for the hash codes).

    Same conventions as :func:`hashing_map_at_k`. ``center=True`` subtracts the database mean
    before the cosine (often better for ReLU/pooled CNN features).
    """
    qf = np.asarray(query_feats, dtype=np.float32)
    dbf = np.asarray(db_feats, dtype=np.float32)
    if qf.ndim != 2 or dbf.ndim != 2 or qf.shape[1] != dbf.shape[1]:
        raise ArtlensError(f"feature shapes do not match: {qf.shape} vs {dbf.shape}")
    if len(query_labels) != len(qf) or len(db_labels) != len(dbf):
        raise ArtlensError("labels and features differ in length")
    if center:
        mu = dbf.mean(axis=0)
        qf, dbf = qf - mu, dbf - mu
    qn, dn = l2_normalise(qf), l2_normalise(dbf)
    rel_fn = _relevance(query_labels, db_labels)

    def rank(rows, kk):
        sim = qn[rows] @ dn.T
        n = sim.shape[1]
        if kk < n:
            part = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(n), sim.shape).copy()
        s = np.take_along_axis(sim, part, axis=1)
        order = np.lexsort((part, -s), axis=1)
        return np.take_along_axis(part, order, axis=1)

    return _map_from_rankings(rank, len(qf), len(dbf), rel_fn, k, block)


def default_query_count(labels, share: float = 0.1, most: int = 1000) -> int:
    """How many queries to draw when none are asked for: ``share`` of the items, at most ``most``, at
    least one per class that has a member to spare, never more than the classes can spare (0 when
    every class has a single member)."""
    labels = np.asarray(labels)
    counts = np.unique(labels, return_counts=True)[1]
    spare = int(np.maximum(counts - 1, 0).sum())
    return min(most, max(int(round(share * len(labels))), int((counts > 1).sum())), spare)


def stratified_queries(labels, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..N-1`` into ``n_queries`` queries and the database, stratified by label.

    Each class gets queries in proportion to its size (largest-remainder rounding, at most all but
    one of its members); returns sorted ``(query_idx, db_idx)`` int64 arrays.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ArtlensError("stratified_queries needs one label per item (a 1-D array)")
    n = len(labels)
    if not 0 < n_queries < n:
        raise ArtlensError(f"n_queries must be between 1 and {n - 1}, got {n_queries}",
                           f"ask for between 1 and {n - 1} queries (--queries)")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    cap = np.maximum(counts - 1, 0)
    if n_queries > cap.sum():
        raise ArtlensError(
            f"too many queries for the class sizes: {n_queries} asked, but each class keeps one member in "
            f"the database, so at most {int(cap.sum())} of {n} can be queries",
            f"ask for at most {int(cap.sum())} queries (--queries), or use a label whose classes have "
            "several members each" if cap.sum() else "use a label whose classes have several members each")
    exact = n_queries * counts / n
    quota = np.minimum(np.floor(exact).astype(np.int64), cap)
    rest = n_queries - int(quota.sum())
    frac_order = np.lexsort((np.arange(len(classes)), -(exact - np.floor(exact))))
    while rest > 0:
        progressed = False
        for c in frac_order:
            if rest == 0:
                break
            if quota[c] < cap[c]:
                quota[c] += 1
                rest -= 1
                progressed = True
        if not progressed:
            raise ArtlensError("too many queries for the class sizes")
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        picked.append(rng.permutation(members)[: quota[c]])
    query_idx = np.sort(np.concatenate(picked)).astype(np.int64)
    mask = np.ones(n, dtype=bool)
    mask[query_idx] = False
    return query_idx, np.flatnonzero(mask).astype(np.int64)
