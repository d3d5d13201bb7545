"""The fast mode of the robust detector: a shortlist of registered works by the Hamming distance of
compact binary codes of their descriptors, re-ranked with the float descriptors.

Every registered descriptor also gets a ``bits``-bit ITQ code (``artlens.hashing``). A fast check ranks
all codes by Hamming distance to the query's code (an exact FAISS binary scan: ~1 ns per code), keeps
the ``shortlist`` nearest works, scores only those with the float cosine and applies the detector's
usual threshold. A verdict differs from the exact search only when the true best work falls out of the
shortlist; ``benchmarks/copyright_scale.py`` measures how often.

The hasher is fitted once per descriptor head (its ``feature_id`` is the detector's descriptor id, so a
retrained head refits it) and kept when works are added or removed; the codes are re-encoded from the
descriptors whenever the indexed works change, and saved with the detector.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.files import write_json
from artlens.hashing import HammingIndex, ITQHasher, load_hasher

SHORTLIST_FORMAT = 1
HASHER_FILE, CODES_FILE, META_FILE = "hasher.npz", "codes.npz", "codes.json"


class CodeShortlist:
    """ITQ codes of the registered works' descriptors (rows of the detector's index), searched by
    Hamming distance for the works worth scoring with the float descriptor."""

    def __init__(self, hasher: ITQHasher, index: HammingIndex, ids_digest: str):
        self.hasher = hasher
        self.index = index
        self.ids_digest = ids_digest

    @property
    def bits(self) -> int:
        return self.hasher.bits

    @property
    def descriptor_id(self) -> str | None:
        return self.hasher.feature_id

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, descriptor_id: str, bits: int, seed: int = 0,
              hasher: ITQHasher | None = None) -> "CodeShortlist":
        """Codes of ``vectors`` (one row per id); fits an ITQ hasher unless a fitted ``hasher`` of the same
        descriptor is given."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        if hasher is None or hasher.feature_id != descriptor_id or hasher.bits != bits:
            if len(vectors) < 2:
                raise ArtlensError("binary codes need at least two registered works", "register more works")
            bits = min(bits, 8 * (vectors.shape[1] // 8))
            hasher = ITQHasher(bits, feature_id=descriptor_id).fit(vectors, seed=seed)
        index = HammingIndex(hasher.bits)
        if len(vectors):
            index.add(hasher.encode(vectors), np.arange(len(vectors), dtype=np.int64))
        return cls(hasher, index, ids_digest(ids))

    def rows(self, descriptors: np.ndarray, n: int) -> np.ndarray:
        """(Q, min(n, works)) rows of the ``n`` works nearest in Hamming distance (ties by row)."""
        n = max(1, min(int(n), len(self.index)))
        _, rows = self.index.search(self.hasher.encode(np.ascontiguousarray(descriptors, np.float32)), n)
        return rows

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.hasher.save(folder / HASHER_FILE)
        self.index.save(folder / CODES_FILE)
        meta = {"format": SHORTLIST_FORMAT, "method": self.hasher.name, "bits": self.bits,
                "descriptor_id": self.descriptor_id, "ids_digest": self.ids_digest, "count": len(self)}
        write_json(meta, folder / META_FILE)

    @classmethod
    def load(cls, folder: str | Path, descriptor_id: str, ids: np.ndarray) -> "CodeShortlist | None":
        """The stored codes if they were made by this descriptor for exactly these works; None when there
        are none. A stale hasher or codes raise ArtifactMismatchError (the caller rebuilds them)."""
        folder = Path(folder)
        if not (folder / META_FILE).exists():
            return None
        try:
            meta = json.loads((folder / META_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactMismatchError(f"cannot read {folder / META_FILE}: {exc}", "retrain the registry") from exc
        if meta.get("format") != SHORTLIST_FORMAT or meta.get("descriptor_id") != descriptor_id:
            raise ArtifactMismatchError(
                f"the binary codes in {folder} belong to descriptor {meta.get('descriptor_id')!r} "
                f"(format {meta.get('format')}), not {descriptor_id!r}", "they are rebuilt from the descriptors")
        hasher = load_hasher(folder / HASHER_FILE, feature_id=descriptor_id)
        index = HammingIndex.load(folder / CODES_FILE)
        if meta.get("ids_digest") != ids_digest(ids) or len(index) != len(ids):
            raise ArtifactMismatchError(f"the binary codes in {folder} are not those of the indexed works",
                                        "they are rebuilt from the descriptors")
        return cls(hasher, index, meta["ids_digest"])


def ids_digest(ids: np.ndarray) -> str:
    """A short fingerprint of the indexed work ids, in order."""
    return hashlib.sha1(np.ascontiguousarray(ids, np.int64).tobytes()).hexdigest()[:16]
