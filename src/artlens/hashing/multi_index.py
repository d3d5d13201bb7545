"""Exact radius search with multi-index hashing (Norouzi, Punjani & Fleet; Algorithm 1 of the KOLAA
paper): the codes are cut into ``groups`` disjoint substrings, each with its own table; by the
pigeonhole principle any code within Hamming distance ``r`` of the query matches it on at least one
substring within ``floor(r / groups)`` bits, so probing every table with all substrings that close
finds every such code, and the candidates are verified with the full Hamming distance.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import faiss
import numpy as np

from artlens.errors import ArtlensError

from .codes import as_codes
from .hamming import (
    _as_words,
    _BaseIndex,
    _popcount_rows,
    _register,
    _sort_ranges,
)


def _padded(codes: np.ndarray) -> np.ndarray:
    """A copy of ``codes`` followed by 8 spare bytes: FAISS's multi-hash reads substrings as
    unaligned 64-bit words, which may run past the last code."""
    n, width = codes.shape
    buf = np.zeros(n * width + 8, dtype=np.uint8)
    out = buf[: n * width].reshape(n, width)
    out[:] = codes
    return out


def _split_widths(bits: int, groups: int) -> list[int]:
    base, extra = divmod(bits, groups)
    return [base + (1 if g < extra else 0) for g in range(groups)]


def _substring(codes: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits ``[start, start + width)`` of packed codes (packbits order) as ``uint64`` integers."""
    b0, b1 = start // 8, (start + width - 1) // 8
    acc = np.zeros(len(codes), dtype=np.uint64)
    for j in range(b0, b1 + 1):
        acc = (acc << np.uint64(8)) | codes[:, j].astype(np.uint64)
    shift = (b1 - b0 + 1) * 8 - (start - 8 * b0) - width
    return (acc >> np.uint64(shift)) & np.uint64((1 << width) - 1)


def _flip_masks(width: int, radius: int) -> np.ndarray:
    """All ``width``-bit masks with at most ``radius`` bits set (0 first), ``uint64``."""
    masks = [0]
    for r in range(1, min(radius, width) + 1):
        for pos in combinations(range(width), r):
            m = 0
            for p in pos:
                m |= 1 << p
            masks.append(m)
    return np.asarray(masks, dtype=np.uint64)


@_register
class MultiIndexHammingIndex(_BaseIndex):
    """Exact radius search with multi-index hashing over ``groups`` substrings.

    ``backend="numpy"`` (default): per group a table of ids sorted by substring value, addressed
    directly (substrings up to ``direct_bits`` bits) or by binary search; all probes of a query
    are gathered in one vectorised step and verified with 64-bit XOR + popcount.
    ``backend="faiss"``: FAISS ``IndexBinaryMultiHash`` with ``groups`` substrings of
    ``bits // groups`` bits; exact too when probed with ``nflip = radius // groups`` and filtered
    to the radius (its k-NN search is not used: ties at the k-th distance are not broken by id).
    Where probing would cost more than scanning (large radius, few groups), both backends fall back
    to an exact FAISS linear scan (see :meth:`_use_scan`).
    Substrings must be at most 32 bits wide (``groups >= bits / 32``).
    """

    kind = "mih"

    def __init__(
        self, bits: int, groups: int, backend: str = "numpy", direct_bits: int = 24, auto_scan: bool = True
    ):
        super().__init__(bits)
        groups = int(groups)
        if not 1 <= groups <= self.bits:
            raise ArtlensError(f"groups must be between 1 and {self.bits}, got {groups}")
        self.groups = groups
        self.widths = _split_widths(self.bits, groups)
        if max(self.widths) > 32:
            raise ArtlensError(
                f"{self.bits} bits in {groups} groups gives {max(self.widths)}-bit substrings (max 32)",
                f"use at least {-(-self.bits // 32)} groups",
            )
        if backend not in ("numpy", "faiss"):
            raise ArtlensError(f"unknown backend {backend!r}", "use 'numpy' or 'faiss'")
        self.backend = backend
        self.direct_bits = int(direct_bits)
        self.auto_scan = bool(auto_scan)
        self._starts = np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(int).tolist()
        self._mask_cache: dict[tuple[int, int], np.ndarray] = {}
        self._faiss = None
        self._tables_dirty = True

    @staticmethod
    def recommended_groups(n: int, bits: int) -> int:
        """Norouzi et al.'s rule of thumb, ``bits / log2(n)`` substrings (at most 32 bits each)."""
        return int(max(-(-bits // 32), 1, round(bits / np.log2(max(n, 2)))))

    # -- building ----------------------------------------------------------------------------
    def add(self, codes, ids=None) -> None:
        """Add packed codes; tables are (re)built lazily on the next search."""
        self._merge(codes, ids)
        self._tables_dirty = True

    def _build(self) -> None:
        self._faiss = None
        self._flat = faiss.IndexBinaryFlat(self.bits)
        self._flat.add(self._codes)
        if self.backend == "faiss":
            # equal b-bit substrings; the bits % groups trailing bits are not hashed, which keeps
            # the pigeonhole argument (distance on a subset of bits <= full distance)
            idx = faiss.IndexBinaryMultiHash(self.bits, self.groups, self.bits // self.groups)
            idx.add(_padded(self._codes))
            self._faiss = idx
        else:
            postings, offsets, keys, base = [], [], [], 0
            n = len(self._codes)
            for start, width in zip(self._starts, self.widths):
                sub = _substring(self._codes, start, width)
                order = np.argsort(sub, kind="stable")
                postings.append(order.astype(np.int64))
                if width <= self.direct_bits:
                    counts = np.bincount(sub.astype(np.int64), minlength=1 << width)
                    off = np.zeros((1 << width) + 1, dtype=np.int64)
                    np.cumsum(counts, out=off[1:])
                    offsets.append(off + base)
                    keys.append(None)
                else:
                    offsets.append(None)
                    keys.append(sub[order])
                base += n
            self._postings = np.concatenate(postings) if postings else np.zeros(0, np.int64)
            self._offsets, self._keys = offsets, keys
        self._words = _as_words(self._codes)
        self._tables_dirty = False

    def _masks(self, width: int, r: int) -> np.ndarray:
        key = (width, r)
        if key not in self._mask_cache:
            self._mask_cache[key] = _flip_masks(width, r)
        return self._mask_cache[key]

    # -- searching ---------------------------------------------------------------------------
    def _candidates(self, q: np.ndarray, sub_radius: int) -> np.ndarray:
        """Storage positions of every code matching ``q`` within ``sub_radius`` on some substring."""
        starts, ends = [], []
        n = len(self._codes)
        for g, (start, width) in enumerate(zip(self._starts, self.widths)):
            probes = _substring(q[None, :], start, width)[0] ^ self._masks(width, sub_radius)
            if self._offsets[g] is not None:
                off = self._offsets[g]
                p = probes.astype(np.int64)
                starts.append(off[p])
                ends.append(off[p + 1])
            else:
                keys = self._keys[g]
                starts.append(np.searchsorted(keys, probes, side="left") + g * n)
                ends.append(np.searchsorted(keys, probes, side="right") + g * n)
        s = np.concatenate(starts)
        e = np.concatenate(ends)
        lengths = e - s
        keep = lengths > 0
        s, lengths = s[keep], lengths[keep]
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        # positions s[i] .. s[i] + lengths[i] - 1, concatenated, without a Python loop
        steps = np.ones(total, dtype=np.int64)
        heads = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        steps[0] = s[0]
        steps[heads[1:]] = s[1:] - (s[:-1] + lengths[:-1] - 1)
        return np.unique(self._postings[np.cumsum(steps)])

    def n_probes(self, radius: int) -> int:
        """Table look-ups per query at ``radius`` (all groups)."""
        r = int(radius) // self.groups
        return sum(sum(comb(w, i) for i in range(min(r, w) + 1)) for w in self._probe_widths())

    def expected_candidates(self, radius: int) -> float:
        """Candidates per query at ``radius`` if substrings were uniformly distributed."""
        r = int(radius) // self.groups
        n = len(self._ids)
        return float(sum(sum(comb(w, i) for i in range(min(r, w) + 1)) * n / 2.0**w for w in self._probe_widths()))

    def _probe_widths(self) -> list[int]:
        if self.backend == "faiss":
            return [self.bits // self.groups] * self.groups
        return self.widths

    def _use_scan(self, radius: int) -> bool:
        """Whether a linear scan is cheaper than probing the tables at ``radius`` (both are exact).

        Rough costs measured on a 2-core x86 box (benchmarks/hashing_speed.py): ~0.4-0.6 ns per code
        for the FAISS scan; ~50 ns per probe and ~90 ns per candidate for the numpy tables, ~1 us
        per candidate for FAISS's multi-hash (an ``unordered_set`` insert each).
        """
        if not self.auto_scan:
            return False
        per_candidate = 1500.0 if self.backend == "faiss" else 180.0
        cost_tables = 100.0 * self.n_probes(radius) + per_candidate * self.expected_candidates(radius)
        return cost_tables > len(self._ids)

    def _search_one_numpy(self, q: np.ndarray, radius: int):
        cand = self._candidates(q, radius // self.groups)
        if len(cand) == 0:
            return np.zeros(0, np.int32), np.zeros(0, np.int64)
        qw = _as_words(q[None, :])
        dist = _popcount_rows(self._words[cand] ^ qw)
        keep = dist <= radius
        return dist[keep], cand[keep]

    def _search_faiss(self, q: np.ndarray, radius: int):
        self._faiss.nflip = radius // self.groups
        lims, d, pos = self._faiss.range_search(_padded(q), radius + 1)
        return lims, d.astype(np.int32), pos

    def range_search(self, query_codes, radius: int):
        """All codes within ``radius`` (inclusive): ``(lims, distances, ids)``, CSR, rows sorted by
        (distance, id)."""
        q = as_codes(query_codes, self.bits)
        radius = self._check_radius(radius)
        if self._tables_dirty:
            self._build()
        if len(self._ids) == 0:
            return np.zeros(len(q) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
        if self._use_scan(radius):
            lims, d, pos = self._flat.range_search(q, radius + 1)  # FAISS keeps distance < radius
            return _sort_ranges(lims, d.astype(np.int32), self._ids[pos])
        if self.backend == "faiss":
            lims, d, pos = self._search_faiss(q, radius)
            return _sort_ranges(lims, d, self._ids[pos])
        dists, poss = [], []
        for row in q:
            d, p = self._search_one_numpy(row, radius)
            dists.append(d)
            poss.append(p)
        lims = np.zeros(len(q) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in poss], out=lims[1:])
        d = np.concatenate(dists) if dists else np.zeros(0, np.int32)
        p = np.concatenate(poss) if poss else np.zeros(0, np.int64)
        return _sort_ranges(lims, d, self._ids[p])

    def search(self, query_codes, k: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes among those within ``radius`` (exact), ties by id.

        Returns ``(distances int32 (Q,k), ids int64 (Q,k))``; rows with fewer than ``k`` codes
        within the radius are padded with distance -1, id -1.
        """
        if k <= 0:
            raise ArtlensError("k must be positive")
        lims, d, ids = self.range_search(query_codes, radius)
        nq = len(lims) - 1
        dist = np.full((nq, k), -1, dtype=np.int32)
        out = np.full((nq, k), -1, dtype=np.int64)
        for i in range(nq):
            a, b = lims[i], min(lims[i + 1], lims[i] + k)
            dist[i, : b - a] = d[a:b]
            out[i, : b - a] = ids[a:b]
        return dist, out

    def _check_radius(self, radius) -> int:
        radius = int(radius)
        if radius < 0:
            raise ArtlensError("radius must be non-negative")
        return radius

    def _config(self):
        return super()._config() | {
            "groups": self.groups,
            "backend": self.backend,
            "direct_bits": self.direct_bits,
            "auto_scan": self.auto_scan,
        }

    @classmethod
    def _empty_from_config(cls, cfg):
        return cls(
            cfg["bits"],
            cfg["groups"],
            backend=cfg.get("backend", "numpy"),
            direct_bits=cfg.get("direct_bits", 24),
            auto_scan=cfg.get("auto_scan", True),
        )
