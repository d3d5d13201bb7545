"""Hamming search: exact linear scan and multi-index radius search against brute force."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.hashing import (
    HammingIndex,
    MultiIndexHammingIndex,
    hamming_distances,
    load_index,
)


@pytest.fixture(autouse=True)
def _single_thread_faiss():
    # tiny searches: OpenMP start-up and barriers cost more than they save, a lot on a busy machine
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _brute_topk(q, db, ids, k):
    d = hamming_distances(q, db)
    out_d, out_i = [], []
    for row in d:
        order = np.lexsort((ids, row))[:k]
        out_d.append(row[order])
        out_i.append(ids[order])
    return np.array(out_d), np.array(out_i)


def _brute_radius(q, db, ids, radius):
    d = hamming_distances(q, db)
    res = []
    for row in d:
        hit = np.flatnonzero(row <= radius)
        order = np.lexsort((ids[hit], row[hit]))
        res.append((row[hit][order], ids[hit][order]))
    return res


def _noisy_queries(db, n, flips, rng):
    bits = np.unpackbits(db[rng.integers(0, len(db), n)], axis=1)
    for row in bits:
        row[rng.choice(bits.shape[1], flips, replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def test_hamming_index_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, (3000, 1), dtype=np.uint8)  # 8-bit codes: ties everywhere
    ids = rng.permutation(10_000)[:3000].astype(np.int64)  # shuffled, non-contiguous ids
    q = rng.integers(0, 256, (25, 1), dtype=np.uint8)
    index = HammingIndex(8)
    index.add(db[:1000], ids[:1000])
    index.add(db[1000:], ids[1000:])  # interleaving ids force a re-sort
    d, i = index.search(q, 200)
    bd, bi = _brute_topk(q, db, ids, 200)
    assert d.dtype == np.int32 and i.dtype == np.int64
    assert np.array_equal(d, bd) and np.array_equal(i, bi)


def test_hamming_index_64bit_default_ids_and_padding(tmp_path):
    rng = np.random.default_rng(1)
    db = rng.integers(0, 256, (500, 8), dtype=np.uint8)
    q = np.concatenate([db[:5], rng.integers(0, 256, (5, 8), dtype=np.uint8)])
    index = HammingIndex(64)
    index.add(db)
    d, i = index.search(q, 10)
    bd, bi = _brute_topk(q, db, np.arange(500), 10)
    assert np.array_equal(d, bd) and np.array_equal(i, bi)
    assert np.array_equal(i[:5, 0], np.arange(5)) and np.all(d[:5, 0] == 0)
    d, i = index.search(q[:2], 600)
    assert np.all(i[:, 500:] == -1) and np.all(d[:, 500:] == -1)
    index.save(tmp_path / "flat.npz")
    again = load_index(tmp_path / "flat.npz")
    assert isinstance(again, HammingIndex)
    assert np.array_equal(again.search(q, 10)[1], index.search(q, 10)[1])
    with pytest.raises(ArtifactMismatchError):
        MultiIndexHammingIndex.load(tmp_path / "flat.npz")
    with pytest.raises(ArtlensError, match="bits"):
        index.search(np.zeros((1, 4), np.uint8), 3)
    with pytest.raises(ArtlensError, match="duplicate"):
        index.add(db[:2], [3, 1])


@pytest.mark.parametrize("auto_scan", [False, True])
@pytest.mark.parametrize("backend", ["numpy", "faiss"])
@pytest.mark.parametrize("bits,groups", [(64, 2), (64, 4), (64, 8), (32, 4), (64, 3), (24, 5)])
def test_multi_index_exact_within_radius(backend, bits, groups, auto_scan):
    rng = np.random.default_rng(bits * 10 + groups)
    db = rng.integers(0, 256, (2000, bits // 8), dtype=np.uint8)
    db[1000:1010] = db[0]  # duplicates: ties at distance 0
    ids = rng.permutation(5000)[:2000].astype(np.int64)
    q = np.concatenate([_noisy_queries(db, 15, 2, rng), _noisy_queries(db, 10, 5, rng),
                        rng.integers(0, 256, (5, bits // 8), dtype=np.uint8), db[:1]])
    index = MultiIndexHammingIndex(bits, groups, backend=backend, auto_scan=auto_scan)
    index.add(db, ids)
    for radius in (0, 1, 2, 3, 4, 6, 8, 11):
        if not auto_scan and index.n_probes(radius) > 50_000:
            continue  # forced table probing at a radius where it would enumerate too many substrings
        lims, d, i = index.range_search(q, radius)
        brute = _brute_radius(q, db, ids, radius)
        for row, (bd, bi) in enumerate(brute):
            assert np.array_equal(i[lims[row]:lims[row + 1]], bi), (radius, row)
            assert np.array_equal(d[lims[row]:lims[row + 1]], bd)
        # top-k within radius
        k = 4
        kd, ki = index.search(q, k, radius)
        for row, (bd, bi) in enumerate(brute):
            m = min(k, len(bi))
            assert np.array_equal(ki[row, :m], bi[:m]) and np.all(ki[row, m:] == -1)
            assert np.array_equal(kd[row, :m], bd[:m]) and np.all(kd[row, m:] == -1)


def test_multi_index_binary_search_tables_and_incremental_add(tmp_path):
    rng = np.random.default_rng(7)
    db = rng.integers(0, 256, (1500, 8), dtype=np.uint8)
    q = _noisy_queries(db, 20, 3, rng)
    index = MultiIndexHammingIndex(64, 4, direct_bits=8, auto_scan=False)  # 16-bit substrings -> sorted keys + searchsorted
    index.add(db[:700])
    index.search(q, 5, 4)  # builds tables, later add must invalidate them
    index.add(db[700:])
    lims, d, i = index.range_search(q, 7)
    for row, (bd, bi) in enumerate(_brute_radius(q, db, np.arange(1500), 7)):
        assert np.array_equal(i[lims[row]:lims[row + 1]], bi)
    index.save(tmp_path / "mih.npz")
    again = load_index(tmp_path / "mih.npz")
    assert isinstance(again, MultiIndexHammingIndex) and again.groups == 4
    assert np.array_equal(again.range_search(q, 7)[2], i)


def test_multi_index_rejects_bad_config():
    with pytest.raises(ArtlensError, match="at least 2 groups"):
        MultiIndexHammingIndex(64, 1)
    with pytest.raises(ArtlensError):
        MultiIndexHammingIndex(64, 4, backend="annoy")
    with pytest.raises(ArtlensError):
        MultiIndexHammingIndex(64, 4).range_search(np.zeros((1, 8), np.uint8), -1)


def test_recommended_groups():
    assert MultiIndexHammingIndex.recommended_groups(1_000_000, 64) == 3
    assert MultiIndexHammingIndex.recommended_groups(100_000, 64) == 4
    assert MultiIndexHammingIndex.recommended_groups(10**9, 64) >= 2  # substrings stay <= 32 bits
