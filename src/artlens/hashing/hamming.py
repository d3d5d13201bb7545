"""Hamming-space search over packed binary codes: :class:`HammingIndex`, an exact linear scan
(FAISS ``IndexBinaryFlat``); results are ordered by distance, ties by id ascending. The shared base
keeps codes and ids and saves them; :mod:`artlens.hashing.multi_index` builds on it."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from artlens.errors import ArtifactMismatchError, ArtlensError

from .base import FORMAT_VERSION, load_npz, save_npz_atomic
from .codes import as_codes, check_bits

_INDEX_KINDS: dict[str, type] = {}


def _register(cls):
    _INDEX_KINDS[cls.kind] = cls
    return cls


def load_index(path):
    """Load a :class:`HammingIndex` or :class:`MultiIndexHammingIndex` saved with ``save``."""
    arrays, cfg = load_npz(path, "Hamming index")
    kind = cfg.get("kind")
    if kind not in _INDEX_KINDS:
        raise ArtifactMismatchError(f"{path} holds an unknown index kind {kind!r}", "rebuild the index")
    return _INDEX_KINDS[kind]._from_saved(path, arrays, cfg)


def _popcount_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise popcount of a 2-D unsigned array, int32."""
    return np.bitwise_count(x).sum(axis=1, dtype=np.int32)


def _as_words(codes: np.ndarray) -> np.ndarray:
    """View packed codes as 64-bit words where the width allows (faster XOR/popcount)."""
    if codes.shape[1] % 8 == 0:
        return codes.view(np.uint64)
    return codes


class _BaseIndex:
    kind = "base"

    def __init__(self, bits: int):
        self.bits = check_bits(bits)
        self._codes = np.zeros((0, self.bits // 8), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids.copy()

    @property
    def codes(self) -> np.ndarray:
        return self._codes.copy()

    def _new_ids(self, n: int, ids) -> np.ndarray:
        if ids is None:
            start = int(self._ids.max()) + 1 if len(self._ids) else 0
            return np.arange(start, start + n, dtype=np.int64)
        ids = np.asarray(ids)
        if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
            raise ArtlensError(f"ids must be {n} integers, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        if len(ids) and ids.min() < 0:
            raise ArtlensError("ids must be non-negative (-1 marks a missing result)")
        return ids

    def _merge(self, codes, ids) -> bool:
        """Append; returns True if the stored order had to be re-sorted by id."""
        codes = as_codes(codes, self.bits)
        ids = self._new_ids(len(codes), ids)
        if len(codes) == 0:
            return False
        appended = len(self._ids) == 0 or ids[0] > self._ids[-1]
        appended = appended and bool(np.all(np.diff(ids) > 0))
        all_ids = np.concatenate([self._ids, ids])
        all_codes = np.concatenate([self._codes, codes])
        if not appended:
            order = np.argsort(all_ids, kind="stable")
            all_ids, all_codes = all_ids[order], all_codes[order]
            if np.any(np.diff(all_ids) == 0):
                raise ArtlensError("duplicate ids in the index", "give every code a unique id")
        self._ids, self._codes = all_ids, np.ascontiguousarray(all_codes)
        return not appended

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "bits": self.bits, "version": FORMAT_VERSION}

    def save(self, path) -> None:
        """Codes, ids and config in one ``.npz`` file, written atomically."""
        save_npz_atomic(path, {"codes": self._codes, "ids": self._ids}, self._config())

    @classmethod
    def load(cls, path):
        arrays, cfg = load_npz(path, "Hamming index")
        if cfg.get("kind") != cls.kind:
            raise ArtifactMismatchError(
                f"{path} holds a {cfg.get('kind')!r} index, not {cls.kind!r}", "use load_index()"
            )
        return cls._from_saved(path, arrays, cfg)

    @classmethod
    def _from_saved(cls, path, arrays, cfg):
        if cfg.get("version", 0) > FORMAT_VERSION:
            raise ArtifactMismatchError(f"{path} was written by a newer artlens", "upgrade artlens")
        obj = cls._empty_from_config(cfg)
        if len(arrays["ids"]):
            obj.add(arrays["codes"], arrays["ids"])
        return obj

    @classmethod
    def _empty_from_config(cls, cfg):
        return cls(cfg["bits"])


@_register
class HammingIndex(_BaseIndex):
    """Exact Hamming ranking by linear scan (FAISS ``IndexBinaryFlat``).

    Codes are kept sorted by id, so FAISS's preference for the lower storage position among equal
    distances is the id order; rows are re-sorted by (distance, id) after the scan as well.
    """

    kind = "flat"

    def __init__(self, bits: int):
        super().__init__(bits)
        self._faiss = faiss.IndexBinaryFlat(self.bits)

    def add(self, codes, ids=None) -> None:
        """Add packed codes ``(N, bits//8)``; ``ids`` default to consecutive integers."""
        start = len(self._ids)
        if self._merge(codes, ids):
            self._faiss.reset()
            self._faiss.add(self._codes)
        else:
            self._faiss.add(self._codes[start:])

    def remove(self, ids) -> int:
        """Drop the codes of ``ids`` (unknown ids are ignored); returns how many were removed."""
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        removed = int((~keep).sum())
        if removed:
            self._ids, self._codes = self._ids[keep], np.ascontiguousarray(self._codes[keep])
            self._faiss.reset()
            self._faiss.add(self._codes)
        return removed

    def codes_of(self, ids) -> np.ndarray:
        """Packed codes of the given ids, in that order."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self._ids, ids)
        if len(ids) and (pos.max() >= len(self._ids) or np.any(self._ids[np.minimum(pos, len(self._ids) - 1)] != ids)):
            raise ArtlensError("some ids are not in the Hamming index")
        return self._codes[pos]

    def search(self, query_codes, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` by Hamming distance: ``(distances int32 (Q,k), ids int64 (Q,k))``.

        Where the index holds fewer than ``k`` codes the rows are padded with distance -1, id -1.
        """
        q = as_codes(query_codes, self.bits)
        if k <= 0:
            raise ArtlensError("k must be positive")
        nq, n = len(q), len(self._ids)
        dist = np.full((nq, k), -1, dtype=np.int32)
        ids = np.full((nq, k), -1, dtype=np.int64)
        kk = min(k, n)
        if nq == 0 or kk == 0:
            return dist, ids
        d, pos = self._faiss.search(q, kk)
        order = np.lexsort((pos, d), axis=1)  # positions are in id order
        d = np.take_along_axis(d, order, axis=1)
        pos = np.take_along_axis(pos, order, axis=1)
        dist[:, :kk] = d
        ids[:, :kk] = self._ids[pos]
        return dist, ids

    def range_search(self, query_codes, radius: int):
        """All codes within ``radius``: ``(lims, distances, ids)`` in FAISS's CSR layout, rows sorted."""
        q = as_codes(query_codes, self.bits)
        lims, d, pos = self._faiss.range_search(q, int(radius) + 1)  # FAISS keeps distance < radius
        return _sort_ranges(lims, d.astype(np.int32), self._ids[pos])


def _sort_ranges(lims, dist, ids):
    lims = np.asarray(lims).astype(np.int64)
    if len(ids):
        row = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
        order = np.lexsort((ids, dist, row))
        dist, ids = dist[order], ids[order]
    return lims, dist, ids


