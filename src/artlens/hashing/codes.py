"""Binary code helpers: packing, unpacking and Hamming distances.

Codes are stored packed, ``np.packbits`` order (first bit is the most significant bit of byte 0),
as ``uint8`` arrays of shape ``(N, bits // 8)``.
"""

from __future__ import annotations

import numpy as np

from artlens.errors import ArtlensError

#: popcount of every byte value
POPCOUNT8 = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.uint8)


def check_bits(bits: int) -> int:
    """Validate a code length: a positive multiple of 8."""
    if not isinstance(bits, (int, np.integer)) or bits <= 0 or bits % 8:
        raise ArtlensError(
            f"code length must be a positive multiple of 8, got {bits!r}",
            "use 16, 32, 64 or 128 bits",
        )
    return int(bits)


def pack_bits(bits_array) -> np.ndarray:
    """Pack a boolean (or 0/1) array ``(N, bits)`` into ``uint8`` codes ``(N, bits // 8)``."""
    arr = np.asarray(bits_array)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (N, bits) array, got shape {arr.shape}")
    check_bits(arr.shape[1])
    return np.packbits(arr.astype(bool), axis=1)


def unpack_bits(codes, bits: int | None = None) -> np.ndarray:
    """Unpack ``uint8`` codes ``(N, bytes)`` into a boolean array ``(N, bits)``."""
    codes = as_codes(codes)
    out = np.unpackbits(codes, axis=1).astype(bool)
    if bits is not None:
        out = out[:, :bits]
    return out


def as_codes(codes, bits: int | None = None) -> np.ndarray:
    """Return ``codes`` as a C-contiguous 2-D ``uint8`` array, checking the width against ``bits``."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2 or codes.dtype != np.uint8:
        raise ArtlensError(
            f"expected packed uint8 codes of shape (N, bytes), got {codes.dtype} {codes.shape}",
            "encode features with a hasher or pack booleans with pack_bits()",
        )
    if bits is not None and codes.shape[1] * 8 != bits:
        raise ArtlensError(
            f"codes have {codes.shape[1] * 8} bits, expected {bits}",
            "query with codes from the hasher that built the index",
        )
    return np.ascontiguousarray(codes)


def hamming_distances(query_codes, db_codes, chunk: int = 1 << 24) -> np.ndarray:
    """All pairwise Hamming distances, ``int32`` ``(Q, N)``, by byte lookup-table popcount.

    Uses 64-bit XOR and a 16-bit popcount table where the code width allows; memory use is bounded
    by processing the database in chunks of about ``chunk`` query x code pairs.
    """
    q = as_codes(query_codes)
    db = as_codes(db_codes)
    if q.shape[1] != db.shape[1]:
        raise ArtlensError(
            f"query codes have {q.shape[1] * 8} bits, database codes {db.shape[1] * 8}",
            "use codes from the same hasher",
        )
    nq, nb = len(q), len(db)
    out = np.empty((nq, nb), dtype=np.int32)
    if nq == 0 or nb == 0:
        return out
    nbytes = q.shape[1]
    if nbytes % 2 == 0:
        qw, dw, lut = q.view(np.uint16), db.view(np.uint16), _POPCOUNT16
    else:
        qw, dw, lut = q, db, POPCOUNT8
    step = max(1, chunk // max(1, nq * qw.shape[1]))
    for s in range(0, nb, step):
        x = qw[:, None, :] ^ dw[None, s : s + step, :]
        out[:, s : s + step] = lut[x].sum(axis=2, dtype=np.int32)
    return out


_POPCOUNT16 = (POPCOUNT8[np.arange(1 << 16) & 0xFF] + POPCOUNT8[np.arange(1 << 16) >> 8]).astype(
    np.uint8
)
