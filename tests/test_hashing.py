"""Hashing heads: code packing, fit/encode, determinism, save/load and mismatch errors."""

from __future__ import annotations

import numpy as np
import pytest

from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.hashing import (
    HammingIndex,
    ITQHasher,
    LSHHasher,
    TBHHasher,
    create_hasher,
    hamming_distances,
    hashing_map_at_k,
    list_hashers,
    load_hasher,
    pack_bits,
    unpack_bits,
)

TINY_TBH = dict(hidden=32, cont_dim=16, epochs=3, batch_size=64)


def _clustered(n=600, d=48, classes=6, seed=0, noise=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, d)) * 2.0
    labels = rng.integers(0, classes, n)
    x = centres[labels] + noise * rng.standard_normal((n, d))
    # a few dominant nuisance directions that random projections waste bits on
    x[:, :4] += 0.5 * rng.standard_normal((n, 4))
    return x.astype(np.float32), labels


def _make(name, bits):
    return create_hasher(name, bits, **(TINY_TBH if name.startswith("tbh") else {}))


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(1)
    bits = rng.random((37, 24)) > 0.5
    codes = pack_bits(bits)
    assert codes.dtype == np.uint8 and codes.shape == (37, 3)
    assert np.array_equal(unpack_bits(codes), bits)
    assert np.array_equal(codes, np.packbits(bits, axis=1))  # np.packbits order
    with pytest.raises(ArtlensError):
        pack_bits(np.zeros((2, 12), bool))


def test_hamming_distances_brute_force():
    rng = np.random.default_rng(2)
    for nbytes in (1, 3, 8):
        q = rng.integers(0, 256, (5, nbytes), dtype=np.uint8)
        db = rng.integers(0, 256, (40, nbytes), dtype=np.uint8)
        expected = (unpack_bits(q)[:, None, :] != unpack_bits(db)[None, :, :]).sum(-1)
        got = hamming_distances(q, db)
        assert got.dtype == np.int32
        assert np.array_equal(got, expected)


def test_registry():
    assert list_hashers() == ["itq", "lsh", "supervised", "tbh", "tbh-sim"]
    with pytest.raises(ArtlensError, match="unknown hasher"):
        create_hasher("nope", 16)
    with pytest.raises(ArtlensError):
        create_hasher("lsh", 12)


@pytest.mark.parametrize("name", ["lsh", "itq", "tbh", "tbh-sim"])
def test_fit_encode_shapes_and_determinism(name):
    x, _ = _clustered(n=256, d=40)
    a = _make(name, 16).fit(x, seed=3)
    b = _make(name, 16).fit(x, seed=3)
    codes = a.encode(x)
    assert codes.shape == (256, 2) and codes.dtype == np.uint8
    assert np.array_equal(codes, b.encode(x))
    assert np.array_equal(a.encode(x[:5]), codes[:5])
    assert a.encode(x[:0]).shape == (0, 2)
    # not a constant code
    assert len(np.unique(codes, axis=0)) > 1


def test_tbh_seed_changes_codes_and_history():
    x, _ = _clustered(n=256, d=40)
    a = create_hasher("tbh-sim", 16, **TINY_TBH).fit(x, seed=0)
    c = create_hasher("tbh-sim", 16, **TINY_TBH).fit(x, seed=1)
    assert not np.array_equal(a.encode(x), c.encode(x))
    assert len(a.history) == TINY_TBH["epochs"] and "sim" in a.history[0]
    assert "sim" not in create_hasher("tbh", 16, **TINY_TBH).fit(x).history[0]


def test_itq_beats_lsh_on_clustered_data():
    x, y = _clustered(n=800, d=64, classes=8, seed=5, noise=1.2)
    q, db = np.arange(100), np.arange(100, 800)
    scores = {}
    for name in ("lsh", "itq"):
        h = create_hasher(name, 16).fit(x[db], seed=0)
        scores[name] = hashing_map_at_k(h.encode(x[q]), h.encode(x[db]), y[q], y[db], k=100)
    assert scores["itq"] > scores["lsh"] + 0.05, scores


def test_itq_rejects_too_many_bits():
    with pytest.raises(ArtlensError, match="bits <= feature dimension"):
        ITQHasher(64).fit(np.random.default_rng(0).random((100, 32), dtype=np.float32))


@pytest.mark.parametrize("name", ["lsh", "itq", "tbh-sim"])
def test_save_load_roundtrip(tmp_path, name):
    x, _ = _clustered(n=200, d=32)
    h = _make(name, 16)
    h.feature_id = "unit-test-features"
    h.fit(x, seed=0)
    path = tmp_path / "head.npz"
    h.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["head.npz"]  # no temporary file left behind
    loaded = load_hasher(path)
    assert type(loaded) is type(h)
    assert (loaded.name, loaded.bits, loaded.input_dim, loaded.feature_id) == (name, 16, 32, "unit-test-features")
    assert loaded.config() == h.config()
    assert np.array_equal(loaded.encode(x), h.encode(x))
    assert np.array_equal(type(h).load(path, feature_id="unit-test-features", bits=16).encode(x), h.encode(x))


def test_load_mismatch_errors(tmp_path):
    x, _ = _clustered(n=120, d=32)
    path = tmp_path / "lsh.npz"
    LSHHasher(16, feature_id="effnet-pool").fit(x).save(path)
    with pytest.raises(ArtifactMismatchError, match="holds a 'lsh' hasher"):
        ITQHasher.load(path)
    with pytest.raises(ArtifactMismatchError, match="feature_id"):
        load_hasher(path, feature_id="clip")
    with pytest.raises(ArtifactMismatchError, match="bits"):
        load_hasher(path, bits=32)
    with pytest.raises(ArtifactMismatchError, match="32"):
        load_hasher(path).encode(np.zeros((3, 31), np.float32))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(ArtifactMismatchError):
        load_hasher(bad)
    # an index file is not a hasher file
    idx = HammingIndex(16)
    idx.add(np.zeros((2, 2), np.uint8))
    idx.save(tmp_path / "index.npz")
    with pytest.raises(ArtlensError):
        load_hasher(tmp_path / "index.npz")
    with pytest.raises(ArtlensError, match="does not exist"):
        load_hasher(tmp_path / "missing.npz")


def test_unfitted_and_bad_input():
    h = TBHHasher(16, **TINY_TBH)
    with pytest.raises(ArtlensError, match="not fitted"):
        h.encode(np.zeros((2, 4), np.float32))
    with pytest.raises(ArtlensError, match="NaN"):
        LSHHasher(16).fit(np.full((4, 4), np.nan, np.float32))
