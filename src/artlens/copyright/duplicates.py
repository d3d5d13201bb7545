"""Near-duplicate review: which works of one collection are copies of each other (edits, re-scans,
crops), beyond the byte-identical files the catalog already merges into one work.

Descriptor: the pooled EfficientNet-Lite0 taps the robust detector reads (``copy-taps``, cached in the
collection's feature cache like any feature: computed once, on first review), power-normalised
(square root), standardised and PCA-whitened on the collection itself, then L2-normalised. A
registry's robust head is trained on that registry's own works and edited views; a plain collection
has no such head, and whitening on the collection is what makes its scores comparable from one
collection to another: unrelated works score near 0, copies near 1, and look-alikes (a painter's
series) in between, with the variance of the common "painting-like" directions divided out.

Search: every descriptor gets a ``bits``-bit ITQ code (``artlens.hashing``); each work's ``shortlist``
nearest codes by Hamming distance (an exact FAISS binary scan) are re-scored with the float cosine,
so a review costs O(N * shortlist) float work after an O(N^2) popcount scan. Pairs at or above the
threshold are joined into groups (union-find: connected components).

Threshold: :data:`DuplicatesConfig.threshold` is calibrated by ``benchmarks/duplicates.py`` on seeded
edited copies (``copyright.edits``, every family) planted among real paintings; see
docs/copyright.md for its precision and recall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from artlens.collection import Collection
from artlens.copyright.extractors import register_extractors
from artlens.copyright.general import load_general
from artlens.copyright.taps import COPY_TAPS
from artlens.errors import ArtlensError, CollectionError
from artlens.hashing import HammingIndex, ITQHasher
from artlens.progress import QUIET, Reporter
from artlens.vectors import l2_normalise


def check_threshold(threshold: float, flag: str = "--threshold") -> float:
    """A cosine threshold in (0, 1], else an ArtlensError naming ``flag``."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ArtlensError(f"bad {flag} {threshold!r}", f"give a number in (0, 1], e.g. {flag} 0.5") from None
    if not 0.0 < value <= 1.0:
        raise ArtlensError(f"{flag} {threshold} is outside (0, 1]",
                           f"give a cosine in (0, 1]; the default, {DuplicatesConfig.threshold}, is calibrated "
                           "for precision >= 0.95 on edited copies (docs/copyright.md)")
    return value


DESCRIPTORS = ("whitened", "general")


@dataclass(frozen=True)
class DuplicatesConfig:
    """Settings of a near-duplicate review; the CLI maps its flags onto these."""

    # calibrated by benchmarks/duplicates.py (300 planted edited copies among 1,700 real paintings): the
    # lowest cosine that keeps pair precision >= 0.95 there (0.96, recall 0.41; docs/copyright.md)
    threshold: float = 0.6
    floor: float = 0.3  # pairs kept for re-grouping at another threshold (the web page's slider starts here)
    descriptor: str = "whitened"  # whitened: the collection's own whitened taps; general: the general copy head
    dims: int = 768  # whitened descriptor dimensions (256: recall at 95 % precision 0.29, 768: 0.47, benchmark at 2,000 works)
    bits: int = 128  # ITQ code bits of the Hamming shortlist
    shortlist: int = 32  # nearest codes per work re-scored with the float cosine
    fit_works: int = 20_000  # works sampled to fit the whitening and the hasher
    seed: int = 0

    def __post_init__(self):
        check_threshold(self.threshold)
        check_threshold(self.floor, "floor")
        if self.descriptor not in DESCRIPTORS:
            raise ArtlensError(f"unknown duplicate descriptor {self.descriptor!r}", f"choose from: {', '.join(DESCRIPTORS)}")
        if self.dims < 8 or self.bits < 8 or self.bits % 8 or self.shortlist < 1:
            raise ArtlensError("bad duplicate-review settings",
                               "dims and bits at least 8 (bits a multiple of 8), shortlist at least 1")


@dataclass
class DuplicateGroup:
    """Works that are copies of each other: ``ids`` and ``paths`` in id order, ``scores[i]`` the best
    cosine of work ``i`` to another work of the group, ``pairs`` the links found (a, b, cosine)."""

    ids: list[int]
    paths: list[str]
    scores: list[float]
    pairs: list[tuple[int, int, float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"ids": self.ids, "paths": self.paths, "scores": [round(s, 6) for s in self.scores],
                "pairs": [[a, b, round(s, 6)] for a, b, s in self.pairs]}


@dataclass
class DuplicatePairs:
    """Every candidate pair at or above ``floor`` (rows into ``ids``, ``a < b``), grouped at any
    threshold >= floor without searching again."""

    ids: np.ndarray
    paths: list[str]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    floor: float

    def __len__(self) -> int:
        return len(self.score)

    def groups(self, threshold: float) -> list[DuplicateGroup]:
        """Connected components of the pairs at or above ``threshold``, largest group first (then by
        first id)."""
        threshold = check_threshold(threshold)
        if threshold < self.floor:
            raise ArtlensError(f"threshold {threshold} is below the {self.floor} these pairs were kept down to",
                               f"review again with a floor at or below {threshold}")
        keep = self.score >= threshold
        a, b, s = self.a[keep], self.b[keep], self.score[keep]
        parent = np.arange(len(self.ids))

        def root(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for x, y in zip(a.tolist(), b.tolist()):
            rx, ry = root(x), root(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
        members: dict[int, list[int]] = {}
        for row in sorted(set(a.tolist()) | set(b.tolist())):
            members.setdefault(root(row), []).append(row)
        best = np.zeros(len(self.ids), np.float32)
        np.maximum.at(best, a, s)
        np.maximum.at(best, b, s)
        links: dict[int, list[tuple[int, int, float]]] = {}
        for x, y, score in zip(a.tolist(), b.tolist(), s.tolist()):
            links.setdefault(root(x), []).append((int(self.ids[x]), int(self.ids[y]), float(score)))
        out = []
        for r, rows in members.items():
            rows = sorted(rows, key=lambda row: self.ids[row])
            out.append(DuplicateGroup([int(self.ids[row]) for row in rows], [self.paths[row] for row in rows],
                                      [float(best[row]) for row in rows], sorted(links[r], key=lambda p: -p[2])))
        return sorted(out, key=lambda g: (-len(g.ids), g.ids[0]))


class WhitenedTaps:
    """Square-rooted, standardised, PCA-whitened pooled taps, fitted on a collection's works
    (``root=False``: any vectors, e.g. the general head's descriptors, standardised and whitened)."""

    def __init__(self, mean: np.ndarray, inv_std: np.ndarray, projection: np.ndarray, root: bool = True):
        self.mean, self.inv_std, self.projection, self.root = mean, inv_std, projection, root

    @classmethod
    def fit(cls, taps: np.ndarray, dims: int, seed: int = 0, max_works: int = 20_000, root: bool = True
            ) -> "WhitenedTaps":
        x = _rooted(taps) if root else np.asarray(taps, np.float32)
        if len(x) > max_works:
            x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_works, replace=False))]
        mean = x.mean(0)
        std = x.std(0)
        inv_std = 1.0 / np.maximum(std, 0.1 * float(std.mean()) + 1e-6)  # dead channels stay quiet
        z = (x - mean) * inv_std
        dims = int(min(dims, z.shape[1], max(1, len(z) - 1)))
        if len(z) < z.shape[1]:  # fewer works than taps: the SVD of the works is far cheaper
            _, singular, rows = np.linalg.svd(z.astype(np.float64), full_matrices=False)
            eigenvalues, vectors = singular ** 2 / len(z), rows.T
        else:
            eigenvalues, vectors = np.linalg.eigh((z.T @ z / len(z)).astype(np.float64))
        top = np.argsort(eigenvalues)[::-1][:dims]
        # Fitted on the very works it compares, full whitening of n works in ~n dimensions makes them
        # all orthogonal: with fewer than two works per dimension the projection only centres and
        # rotates, and above that the whitening is shrunk by (dims / n)^2 of the mean variance.
        variance = np.maximum(eigenvalues[top], 0)
        if len(z) < 2 * dims:
            projection = vectors[:, top]
        else:
            projection = vectors[:, top] / np.sqrt(variance + (dims / len(z)) ** 2 * float(variance.mean()) + 1e-6)
        return cls(mean.astype(np.float32), inv_std.astype(np.float32), projection.astype(np.float32), root)

    def describe(self, taps: np.ndarray) -> np.ndarray:
        x = _rooted(taps) if self.root else np.asarray(taps, np.float32)
        return l2_normalise(((x - self.mean) * self.inv_std) @ self.projection, axis=1)


def _rooted(taps: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(np.asarray(taps, np.float32), 0, None))


def copy_taps(collection: Collection, compute: bool = True, reporter: Reporter = QUIET
              ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(ids, paths, pooled taps) of every work; the taps are computed once and cached when missing
    (``compute``), else missing taps are an error."""
    register_extractors()
    if not len(collection.catalog):
        raise CollectionError(f"the collection {collection.root} holds no works",
                              f"add images first: artlens ingest DIR --collection {collection.root}")
    if compute:
        collection.ensure_features([COPY_TAPS], reporter=reporter, reason="the duplicate review reads")
    ids, taps = collection.raw_vectors(COPY_TAPS)
    missing = len(collection.catalog) - len(ids)
    if missing and not compute:
        raise CollectionError(f"{missing} works of {collection.root} have no {COPY_TAPS} features yet",
                              f"compute them once: artlens duplicates --collection {collection.root}")
    if len(ids) < 2:
        raise CollectionError(f"the collection {collection.root} has {len(ids)} readable work(s); "
                              "a duplicate review needs at least two", "add more images with `artlens ingest`")
    paths = {i: p for i, _, p in collection.catalog.iter_artworks()}
    return ids, [paths[int(i)] for i in ids], taps


def describe_works(taps: np.ndarray, config: DuplicatesConfig) -> np.ndarray:
    """Unit copy descriptors of the works: whitened taps (whitening fitted on these works), or the
    general copy head's descriptors (``artlens registry general-head`` builds it), whitened on these
    works too (the head alone scores unrelated paintings 0.6-0.8: whitening divides out the
    directions every painting shares)."""
    if config.descriptor == "general":
        head, _ = load_general()
        described = head.encode(taps)
        return WhitenedTaps.fit(described, described.shape[1], config.seed, config.fit_works, root=False).describe(described)
    return WhitenedTaps.fit(taps, config.dims, config.seed, config.fit_works).describe(taps)


def candidate_pairs(descriptors: np.ndarray, config: DuplicatesConfig, floor: float | None = None,
                    reporter: Reporter = QUIET) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, cosine) of the pairs (rows, a < b) at or above ``floor`` among each work's Hamming
    shortlist; a pair found from both ends is kept once."""
    floor = config.floor if floor is None else floor
    x = np.ascontiguousarray(descriptors, np.float32)
    n = len(x)
    rng = np.random.default_rng(config.seed)
    sample = x if n <= config.fit_works else x[np.sort(rng.choice(n, config.fit_works, replace=False))]
    bits = min(config.bits, 8 * (x.shape[1] // 8))
    hasher = ITQHasher(bits).fit(sample, seed=config.seed)
    index = HammingIndex(hasher.bits)
    codes = hasher.encode(x)
    index.add(codes, np.arange(n, dtype=np.int64))
    k = min(config.shortlist + 1, n)
    found_a, found_b, found_s = [], [], []
    batch = 2048
    for start in reporter.bar(range(0, n, batch), total=(n + batch - 1) // batch, desc="duplicate shortlist",
                              unit="batch"):
        rows = np.arange(start, min(n, start + batch))
        _, near = index.search(codes[rows], k)
        cos = np.einsum("qd,qkd->qk", x[rows], x[np.clip(near, 0, None)])
        keep = (near >= 0) & (near != rows[:, None]) & (cos >= floor)
        q, j = np.nonzero(keep)
        a, b = rows[q], near[q, j]
        found_a.append(np.minimum(a, b))
        found_b.append(np.maximum(a, b))
        found_s.append(cos[q, j])
    a, b, s = (np.concatenate(v) if v else np.zeros(0) for v in (found_a, found_b, found_s))
    unique = np.unique(a.astype(np.int64) * n + b.astype(np.int64), return_index=True)[1]
    return a[unique].astype(np.int64), b[unique].astype(np.int64), s[unique].astype(np.float32)


def duplicate_pairs(collection: Collection, config: DuplicatesConfig = DuplicatesConfig(), compute: bool = True,
                    reporter: Reporter = QUIET) -> DuplicatePairs:
    """The candidate pairs of a collection down to ``config.floor`` (or the threshold, if lower)."""
    ids, paths, taps = copy_taps(collection, compute, reporter)
    reporter.step(f"  describing {len(ids)} works")
    floor = min(config.floor, config.threshold)
    a, b, s = candidate_pairs(describe_works(taps, config), config, floor, reporter)
    return DuplicatePairs(ids, paths, a, b, s, floor)


def find_duplicates(collection: Collection, config: DuplicatesConfig = DuplicatesConfig(), compute: bool = True,
                    reporter: Reporter = QUIET) -> list[DuplicateGroup]:
    """Groups of works that are copies of each other at ``config.threshold``, largest first."""
    return duplicate_pairs(collection, config, compute, reporter).groups(config.threshold)

