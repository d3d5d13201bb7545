import json

import numpy as np
import pytest

from artlens.config import IndexConfig
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.index import AspectIndex


def _data(n=200, d=32, seed=0):
    rng = np.random.default_rng(seed)
    return np.arange(100, 100 + n, dtype=np.int64), rng.normal(size=(n, d)).astype(np.float32)


def test_flat_search_is_exact_cosine(tmp_path):
    ids, raw = _data()
    index = AspectIndex.build("content", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat"))
    q = raw[5]
    scores, got = index.search(index.project(q), 5)
    normed = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    expected = ids[np.argsort(-(normed @ normed[5]))[:5]]
    assert got[0].tolist() == expected.tolist()
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_filter_restricts_results():
    ids, raw = _data()
    index = AspectIndex.build("content", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat"))
    allowed = ids[::7]
    _, got = index.search(index.project(raw[0]), 10, allowed_ids=allowed)
    assert set(got[0][got[0] >= 0].tolist()) <= set(allowed.tolist())


def test_pca_save_load_roundtrip_and_incremental(tmp_path):
    ids, raw = _data(d=64)
    index = AspectIndex.build("style", "gram", "gram/v1", ids[:150], raw[:150], 16, IndexConfig(kind="flat"))
    assert index.manifest.dim == 16 and index.manifest.raw_dim == 64
    index.add(ids[150:], raw[150:])
    index.remove([ids[0]])
    index.save(tmp_path / "style")
    loaded = AspectIndex.load(tmp_path / "style", "gram/v1")
    assert len(loaded) == 199 and ids[0] not in loaded.ids()
    np.testing.assert_allclose(loaded.vectors([ids[10]]), index.vectors([ids[10]]), atol=1e-6)
    manifest = json.loads((tmp_path / "style" / "manifest.json").read_text())
    assert manifest["extractor_id"] == "gram/v1" and manifest["count"] == 199
    with pytest.raises(ArtifactMismatchError, match="rebuild"):
        AspectIndex.load(tmp_path / "style", "gram/v2")
    with pytest.raises(ArtifactMismatchError):
        loaded.project(np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(CollectionError):
        AspectIndex.load(tmp_path / "missing")


def test_save_replaces_atomically(tmp_path):
    ids, raw = _data()
    AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat")).save(tmp_path / "c")
    AspectIndex.build("c", "x", "x/v1", ids[:10], raw[:10], None, IndexConfig(kind="flat")).save(tmp_path / "c")
    assert len(AspectIndex.load(tmp_path / "c")) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temporary folders left behind


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall(kind):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(20, 32))
    raw = (centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 32))).astype(np.float32)
    ids = np.arange(3000, dtype=np.int64)
    approx = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind=kind))
    exact = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat"))
    q = exact.project(raw[:50])
    _, a = approx.search(q, 10)
    _, e = exact.search(q, 10)
    recall = np.mean([len(set(a[i]) & set(e[i])) / 10 for i in range(50)])
    assert recall >= 0.9


def _clustered(n=3000, d=32, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, d))
    raw = (centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    return np.arange(100, 100 + n, dtype=np.int64), raw


def test_fast_search_shortlist_then_exact_rerank(tmp_path):
    ids, raw = _clustered()
    index = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat", hash_bits=32))
    assert index.codes is not None and len(index.codes) == len(ids) and index.manifest.hash_bits == 32
    q = index.project(raw[:50])
    exact_s, exact = index.search(q, 10)
    fast_s, fast = index.search_fast(q, 10, shortlist=300)
    recall = np.mean([len(set(fast[i]) & set(exact[i])) / 10 for i in range(50)])
    assert recall >= 0.9
    # scores are exact cosines, best first; each query finds itself first
    np.testing.assert_allclose(fast_s[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(fast_s, axis=1) <= 1e-6)
    np.testing.assert_array_equal(fast[:, 0], ids[:50])
    # a shortlist as large as the collection is the exact search
    full_s, full = index.search_fast(q, 10, shortlist=len(ids))
    np.testing.assert_array_equal(full, exact)
    # filters: only allowed ids come back, whether fewer or more than the shortlist
    allowed = ids[::7]
    for shortlist in (50, 5000):
        _, hits = index.search_fast(q[:5], 10, allowed_ids=allowed, shortlist=shortlist)
        assert set(hits.ravel()) <= set(allowed.tolist())
    # codes are saved with the index, follow additions and removals
    index.save(tmp_path / "c")
    loaded = AspectIndex.load(tmp_path / "c")
    np.testing.assert_array_equal(loaded.codes.codes, index.codes.codes)
    extra = np.arange(10_000, 10_010, dtype=np.int64)
    loaded.add(extra, raw[:10])
    loaded.remove(ids[:5])
    assert len(loaded.codes) == len(ids) + 10 - 5
    _, hits = loaded.search_fast(loaded.project(raw[5:6]), 2)
    assert set(hits[0]) == {ids[5], 10_005}


def test_index_without_codes_gets_them_on_demand():
    ids, raw = _clustered(500)
    index = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat", hash_bits=0))
    assert index.codes is None
    q = index.project(raw[:3])
    np.testing.assert_array_equal(index.search_fast(q, 5)[1], index.search(q, 5)[1])  # falls back to exact
    assert index.add_codes(64) and index.codes.bits == 32 and len(index.codes) == 500  # no more bits than dimensions


def test_ivf_keeps_vectors_readable_and_refuses_removal(tmp_path):
    ids, raw = _clustered(2000)
    index = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="ivf", ivf_nlist=16))
    np.testing.assert_allclose(index.vectors(ids[:3]), index.project(raw[:3]), atol=1e-6)
    index.save(tmp_path / "c")
    loaded = AspectIndex.load(tmp_path / "c")
    loaded.add(np.array([99_999]), raw[:1])
    np.testing.assert_allclose(loaded.vectors([99_999, ids[1]]), index.project(raw[[0, 1]]), atol=1e-6)
    with pytest.raises(CollectionError, match="reindex"):
        loaded.remove([ids[0]])
