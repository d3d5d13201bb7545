"""DeepArt's two-stage triplet sampling.

Stage 1 (fast, by label relevance): an anchor's positive is a relevant artwork, its negative one
that is not. With several label columns, relevant means more than half of the labels are shared;
with one column, the same label. Stage 2 (hard): a share of the negatives comes from the anchor's
most similar non-relevant artworks by the pretrained features, the ones the pretrained space confuses.
"""

from __future__ import annotations

import numpy as np


def relevance(labels_a: np.ndarray, labels_b: np.ndarray) -> np.ndarray:
    """(n, m) bool: rows of ``labels_a`` (n, c) relevant to rows of ``labels_b`` (m, c); -1 never matches."""
    a = np.asarray(labels_a)[:, None, :]
    b = np.asarray(labels_b)[None, :, :]
    shared = ((a == b) & (a >= 0)).sum(axis=2)
    return shared * 2 > np.asarray(labels_a).shape[1]


class TwoStageTripletSampler:
    """Draws one (anchor, positive, negative) triplet per anchor and call.

    ``labels``: (n, c) integer codes; ``pretrained``: (n, d) L2-normalised pretrained vectors used to
    find hard negatives; ``hard_pool``: how many of the most similar non-relevant items count as hard;
    ``hard_fraction``: share of negatives drawn from that pool (the rest uniformly from stage 1).
    """

    def __init__(self, labels: np.ndarray, pretrained: np.ndarray, hard_pool: int = 50,
                 hard_fraction: float = 0.5, block: int = 1024, tries: int = 64):
        self.labels = np.asarray(labels).reshape(len(labels), -1)
        self.hard_fraction = hard_fraction
        self.tries = tries
        n = len(self.labels)
        first = self.labels[:, 0]
        self._members = {c: np.flatnonzero(first == c) for c in np.unique(first[first >= 0])}
        self.single = self.labels.shape[1] == 1
        pool = max(1, min(hard_pool, n - 1))
        self.hard = np.full((n, pool), -1, dtype=np.int64)
        pretrained = np.asarray(pretrained, dtype=np.float32)
        for start in range(0, n, block):
            rows = np.arange(start, min(start + block, n))
            sims = pretrained[rows] @ pretrained.T
            sims[relevance(self.labels[rows], self.labels)] = -np.inf
            sims[np.arange(len(rows)), rows] = -np.inf
            top = np.argpartition(-sims, pool - 1, axis=1)[:, :pool]
            top[~np.isfinite(np.take_along_axis(sims, top, axis=1))] = -1
            self.hard[rows] = top
        self.anchors = np.array([i for i in range(n) if self._has_positive(i)], dtype=np.int64)

    def _has_positive(self, i: int) -> bool:
        if self.labels[i, 0] < 0:
            return False
        return len(self._members.get(self.labels[i, 0], ())) > 1 or not self.single

    def _positive(self, i: int, rng: np.random.Generator) -> int:
        members = self._members[self.labels[i, 0]]
        if self.single:
            while True:
                j = int(members[rng.integers(len(members))])
                if j != i:
                    return j
        candidates = rng.integers(len(self.labels), size=self.tries)
        ok = relevance(self.labels[i : i + 1], self.labels[candidates])[0] & (candidates != i)
        if ok.any():
            return int(candidates[np.argmax(ok)])
        others = members[members != i]
        return int(others[rng.integers(len(others))]) if len(others) else i

    def _negative(self, i: int, rng: np.random.Generator) -> int:
        hard = self.hard[i][self.hard[i] >= 0]
        if len(hard) and rng.random() < self.hard_fraction:
            return int(hard[rng.integers(len(hard))])
        candidates = rng.integers(len(self.labels), size=self.tries)
        ok = ~relevance(self.labels[i : i + 1], self.labels[candidates])[0] & (candidates != i)
        if ok.any():
            return int(candidates[np.argmax(ok)])
        return int(hard[0]) if len(hard) else -1

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One triplet per anchor that has a positive, anchors in a random order."""
        anchors = rng.permutation(self.anchors)
        pos = np.array([self._positive(int(i), rng) for i in anchors], dtype=np.int64)
        neg = np.array([self._negative(int(i), rng) for i in anchors], dtype=np.int64)
        keep = (neg >= 0) & (pos != anchors)
        return anchors[keep], pos[keep], neg[keep]
