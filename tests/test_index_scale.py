"""IVF-PQ indexes (kind "ivfpq"): built in batches, chosen by size, persisted, described, and
searched through a collection with filters. Tiny data: the speed and recall targets at 10M are
benchmarks/index_scale.py's."""

import json

import numpy as np
import pytest
from conftest import make_folder

from artlens.cli import main
from artlens.collection import Collection
from artlens.config import AspectConfig, CollectionConfig, IndexConfig
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.index import AspectIndex, IVFPQIndex, choose_kind, ivfpq_params
from artlens.search.engine import SearchEngine

PQ = IndexConfig(kind="ivfpq", pq_add_batch=300)


def _clustered(n=2000, d=32, clusters=20, seed=0):
    """Easy clustered data: tight clusters far apart, with ids that are not row numbers."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)) * 3
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + 0.6 * rng.standard_normal((n, d))
    return np.arange(n, dtype=np.int64) * 7 + 11, x.astype(np.float32)


def _overlap(a, b):
    return float(np.mean([len(set(r) & set(s)) / len(r) for r, s in zip(a.tolist(), b.tolist())]))


def test_built_in_batches_it_finds_the_flat_neighbours():
    ids, raw = _clustered()
    reads = []

    def chunks():  # the build reads batches, twice (sample, then add); never the whole array
        for start in range(0, len(ids), 250):
            reads.append(len(ids[start : start + 250]))
            yield ids[start : start + 250], raw[start : start + 250]

    pq = IVFPQIndex.build_chunks("content", "x", "x/v1", chunks, len(ids), raw.shape[1], None, PQ)
    flat = AspectIndex.build("content", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat"))
    assert max(reads) == 250 and sum(reads) == 2 * len(ids)
    assert isinstance(pq, IVFPQIndex) and len(pq) == len(ids) and pq.manifest.kind == "ivfpq"
    assert sorted(pq.ids().tolist()) == ids.tolist()
    queries = flat.project(raw[:100] + 0.05)
    _, expected = flat.search(queries, 10)
    _, got = pq.search(queries, 10)
    assert _overlap(got, expected) >= 0.95
    # every list probed and a re-ranking deeper than the lists: what a flat scan finds
    pq.search_config = IndexConfig(kind="ivfpq", pq_nprobe=10_000, pq_rerank=len(ids))
    scores, got = pq.search(queries, 10)
    assert _overlap(got, expected) >= 0.99
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    # stored vectors are the flat index's, as float16
    np.testing.assert_allclose(pq.vectors(ids[[3, 0, 1999]]), flat.vectors(ids[[3, 0, 1999]]), atol=2e-3)
    # the same index from the array (one call, batches inside)
    again = AspectIndex.build("content", "x", "x/v1", ids, raw, None, PQ)
    assert isinstance(again, IVFPQIndex) and again.search(queries, 10)[1].tolist() == pq.search(queries, 10)[1].tolist()


def test_auto_switches_to_ivfpq_above_the_threshold():
    config = IndexConfig(approx_threshold=300, pq_threshold=600, pq_add_batch=128)
    assert [choose_kind(config, n) for n in (299, 300, 599, 600)] == ["flat", "ivf", "ivf", "ivfpq"]
    assert choose_kind(IndexConfig(), 999_999) == "ivf" and choose_kind(IndexConfig(), 1_000_000) == "ivfpq"
    ids, raw = _clustered(n=700)
    assert type(AspectIndex.build("c", "x", "x/v1", ids[:200], raw[:200], None, config)) is AspectIndex
    big = AspectIndex.build("c", "x", "x/v1", ids, raw, None, config)
    assert isinstance(big, IVFPQIndex) and big.manifest.kind == "ivfpq"
    with pytest.raises(CollectionError, match="use flat, ivf, hnsw, ivfpq or auto"):
        choose_kind(IndexConfig(kind="annoy"), 10)


def test_parameters_follow_the_size_and_the_settings():
    p = ivfpq_params(IndexConfig(), 10_000_000, 256)
    assert p == {"nlist": 1024, "m": 32, "nbits": 8, "train_size": 65_536}
    small = ivfpq_params(IndexConfig(), 30, 19)  # a tiny collection: one list, codes trainable on 30 points
    assert small["nlist"] == 1 and small["m"] == 1 and 2 ** small["nbits"] <= 30
    assert ivfpq_params(IndexConfig(pq_nlist=64, pq_m=8, pq_nbits=6), 100_000, 64)["nlist"] == 64
    with pytest.raises(CollectionError, match="does not divide"):
        ivfpq_params(IndexConfig(pq_m=7), 1000, 64)


def test_persisted_reloaded_updated_and_described(tmp_path):
    ids, raw = _clustered(n=1500, d=48)
    index = AspectIndex.build("style", "g", "g/v1", ids[:1200], raw[:1200], 16, PQ)
    assert index.manifest.dim == 16 and index.components is not None
    q = index.project(raw[1300:1320])
    before = index.search(q, 5)
    index.save(tmp_path / "style")
    files = sorted(p.name for p in (tmp_path / "style").iterdir())
    assert files == ["ids.npy", "index.faiss", "manifest.json", "transform.npz", "vectors.npy"]
    manifest = json.loads((tmp_path / "style" / "manifest.json").read_text())
    assert manifest["kind"] == "ivfpq" and manifest["count"] == 1200
    assert set(manifest["params"]) == {"nlist", "m", "nbits", "train_size", "rows"} and manifest["params"]["rows"] == 1200

    loaded = AspectIndex.load(tmp_path / "style", "g/v1")
    assert isinstance(loaded, IVFPQIndex) and len(loaded) == 1200
    np.testing.assert_array_equal(loaded.search(q, 5)[1], before[1])
    info = loaded.describe()
    assert info["kind"] == "ivfpq" and info["vectors"] == 1200 and info["dim"] == 16
    assert info["bytes_on_disk"] == sum(p.stat().st_size for p in (tmp_path / "style").iterdir())
    # in memory: the codes (m bytes) and row numbers, not the float vectors kept on disk
    assert 0 < info["memory_bytes"] < info["bytes_on_disk"]

    loaded.remove(ids[:100])
    loaded.add(ids[1200:], raw[1200:])
    assert len(loaded) == 1400 and ids[0] not in loaded.ids() and ids[1499] in loaded.ids()
    _, got = loaded.search(q, 5)
    assert set(got.ravel().tolist()) <= set(ids[100:].tolist())
    with pytest.raises(CollectionError, match="not in the style index"):
        loaded.vectors(ids[:2])
    loaded.save(tmp_path / "style")
    again = AspectIndex.load(tmp_path / "style")
    assert len(again) == 1400 and again.manifest.count == 1400 and again.manifest.params["rows"] == 1500
    np.testing.assert_allclose(again.vectors(ids[1400:1405]), loaded.vectors(ids[1400:1405]), atol=0)
    # the first version, still open, kept serving what it held meanwhile
    assert len(index) == 1200 and index.search(q, 5)[1].tolist() == before[1].tolist()

    np.save(tmp_path / "style" / "ids.npy", np.arange(3))  # a damaged folder: one-line error
    with pytest.raises(ArtifactMismatchError, match="inconsistent"):
        AspectIndex.load(tmp_path / "style")


def test_filters_small_and_large():
    ids, raw = _clustered(n=1200)
    index = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="ivfpq", pq_exact_below=50))
    flat = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat"))
    q = index.project(raw[:5])
    for allowed in (ids[::40], ids[::3]):  # 30 (searched exactly) and 400 (through the index)
        _, got = index.search(q, 10, allowed_ids=allowed)
        _, expected = flat.search(q, 10, allowed_ids=allowed)
        assert set(got.ravel().tolist()) <= set(allowed.tolist()) and (got >= 0).all()
        assert _overlap(got, expected) >= 0.9
    _, got = index.search(q, 10, allowed_ids=[])
    assert (got == -1).all()


@pytest.fixture(scope="module")
def pq_collection(tmp_path_factory):
    """A collection ingested from images with kind = "ivfpq" (one cheap aspect)."""
    root = tmp_path_factory.mktemp("pq")
    folder, labels = make_folder(root / "src", per_kind=6)
    config = CollectionConfig(aspects={"colour": AspectConfig("colour-hist")}, weights={"colour": 1.0},
                              index=IndexConfig(kind="ivfpq"))
    coll = Collection.open(root / "c", create=True, config=config)
    summary = coll.ingest(folder, labels)
    assert summary["indexes"] == {"colour": 18}
    return coll


def test_a_collection_with_ivfpq_searches_with_filters(pq_collection):
    coll = Collection.open(pq_collection.root)
    assert isinstance(coll.index("colour"), IVFPQIndex)
    engine = SearchEngine(coll)
    query = next(i for i in coll.catalog.ids() if coll.catalog.get_many([i])[i].metadata["style"] == "rings")
    result = engine.search(artwork_id=query, k=5, filters={"style": ["dots"]})
    assert len(result.hits) == 5 and {h.metadata["style"] for h in result.hits} == {"dots"}
    unfiltered = engine.search(artwork_id=query, k=5)
    assert len(unfiltered.hits) == 5 and query not in [h.id for h in unfiltered.hits]
    assert unfiltered.hits[0].metadata["style"] == "rings"


def test_stats_shows_kind_and_size(pq_collection, capsys):
    assert main(["stats", "-c", str(pq_collection.root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["indexes"]["colour"]
    folder = pq_collection.root / "index" / "colour"
    assert info["kind"] == "ivfpq" and info["vectors"] == 18 and info["dim"] == 512 and info["count"] == 18
    assert info["bytes_on_disk"] == sum(p.stat().st_size for p in folder.iterdir()) and info["memory_bytes"] > 0
    assert main(["stats", "-c", str(pq_collection.root)]) == 0
    out = capsys.readouterr().out
    assert "ivfpq" in out and "kB" in out and "memory" in out


# -- built from chunks of the feature cache, appended in place ---------------------------------------
def _same_results(a, b, queries, k=10, atol=1e-6):
    scores_a, ids_a = a.search(queries, k)
    scores_b, ids_b = b.search(queries, k)
    assert ids_a.tolist() == ids_b.tolist()
    np.testing.assert_allclose(scores_a, scores_b, atol=atol)


@pytest.mark.parametrize("kind, pca", [("ivf", 16), ("ivfpq", 16), ("ivfpq", None)])
def test_a_build_in_tiny_chunks_gives_the_one_piece_results(kind, pca):
    rng = np.random.default_rng(3)
    ids = rng.permutation(50_000)[:3000].astype(np.int64)
    raw = rng.standard_normal((3000, 48)).astype(np.float32)
    one = AspectIndex.build("c", "x", "x/v1", ids, raw, pca, IndexConfig(kind=kind))  # one batch of 65,536
    reads = []

    def chunks():
        for start in range(0, len(ids), 37):
            reads.append(min(37, len(ids) - start))
            yield ids[start : start + 37], raw[start : start + 37]

    chunked = AspectIndex.build_chunks("c", "x", "x/v1", chunks, len(ids), 48, pca, IndexConfig(kind=kind))
    assert chunked.manifest.kind == one.manifest.kind == kind and len(chunked) == len(one) == 3000
    assert max(reads) == 37 and sum(reads) == 2 * len(ids)  # a sample pass, then an add pass
    queries = one.project(raw[:40] + 0.1 * rng.standard_normal((40, 48)).astype(np.float32))
    _same_results(one, chunked, queries)
    if one.codes is not None:  # ivf's binary codes of fast search: fitted on the same sample
        assert one.search_fast(queries, 10)[1].tolist() == chunked.search_fast(queries, 10)[1].tolist()


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_a_collection_indexes_its_cache_in_batches(kind, tmp_path, monkeypatch):
    from feature_collections import make_feature_collection

    config = CollectionConfig(aspects={"colour": AspectConfig("colour-hist", pca_dims=24)}, weights={"colour": 1.0},
                              index=IndexConfig(kind=kind, pq_add_batch=50))
    Collection.open(tmp_path / "c", create=True, config=config).close()
    coll = make_feature_collection(tmp_path / "c", per_class=300, extractors=("colour-hist",))
    ids, raw = coll.raw_vectors("colour-hist")
    one_piece = AspectIndex.build("colour", "colour-hist", "colour-hist/v1", ids, raw, 24, IndexConfig(kind=kind))
    asked = []
    get = coll.cache.get
    monkeypatch.setattr(coll.cache, "get", lambda extractor_id, keys: asked.append(len(keys)) or get(extractor_id, keys))
    monkeypatch.setattr(coll, "raw_vectors", lambda *a, **k: pytest.fail("read every vector in one piece"))
    assert coll.update_indexes(rebuild=True) == {"colour": 1200}
    assert asked and max(asked) == 50  # the cache is read a batch at a time
    built = Collection.open(tmp_path / "c").index("colour")
    assert built.manifest.kind == kind
    # the same neighbours; scores within float16 rounding (batches of another size round the PCA differently)
    _same_results(one_piece, built, one_piece.project(raw[::60]), atol=1e-4)


def test_adding_to_an_ivfpq_index_appends_to_its_vector_file(tmp_path):
    ids, raw = _clustered(n=1700, d=32)
    first = AspectIndex.build("c", "x", "x/v1", ids[:1000], raw[:1000], None, PQ)
    first.save(tmp_path / "c")
    vectors = tmp_path / "c" / "vectors.npy"
    inode, size = vectors.stat().st_ino, vectors.stat().st_size
    q = first.project(raw[::50])
    before = first.search(q, 10)

    cut_short = AspectIndex.load(tmp_path / "c")  # an add that is never saved: cut short before its commit
    cut_short.add(ids[1000:1300], raw[1000:1300])
    assert vectors.stat().st_ino == inode and vectors.stat().st_size == size + 300 * 32 * 2  # appended, not copied
    old = AspectIndex.load(tmp_path / "c")  # the saved version still reads whole: its own 1,000 rows
    assert len(old) == 1000 and old.store.array.shape == (1000, 32)
    assert old.search(q, 10)[1].tolist() == before[1].tolist()

    # the file holds rows after this version's (the cut-short add's, or another copy's): copied, not touched
    index = AspectIndex.load(tmp_path / "c")
    index.add(ids[1000:1200], raw[1000:1200])
    index.add(ids[1200:1600], raw[1200:1600])
    assert vectors.stat().st_size == size + 300 * 32 * 2
    index.save(tmp_path / "c")
    inode = vectors.stat().st_ino
    # the newest version of the file grows it in place, and the new version shares it
    grown = AspectIndex.load(tmp_path / "c")
    grown.add(ids[1600:], raw[1600:])
    assert vectors.stat().st_ino == inode
    grown.save(tmp_path / "c")
    assert vectors.stat().st_ino == inode
    again = AspectIndex.load(tmp_path / "c")
    assert len(again) == 1700 and again.manifest.params["rows"] == 1700
    np.testing.assert_allclose(again.vectors(ids[[0, 999, 1000, 1699]]), first.project(raw[[0, 999, 1000, 1699]]),
                               atol=2e-3)
    flat = AspectIndex.build("c", "x", "x/v1", ids, raw, None, IndexConfig(kind="flat"))
    assert _overlap(again.search(q, 10)[1], flat.search(q, 10)[1]) >= 0.95
    assert len(first) == 1000 and first.search(q, 10)[1].tolist() == before[1].tolist()  # still open: unchanged

    # a copy elsewhere shares the file (a hard link); each grows it only while it is the newest
    again.save(tmp_path / "copy")
    assert (tmp_path / "copy" / "vectors.npy").stat().st_ino == inode
    mine, theirs = AspectIndex.load(tmp_path / "c"), AspectIndex.load(tmp_path / "copy")
    mine.add([90_001], raw[:1] + 1)
    theirs.add([90_002], raw[:1] - 1)
    mine.save(tmp_path / "c")
    theirs.save(tmp_path / "copy")
    assert (tmp_path / "copy" / "vectors.npy").stat().st_ino != inode
    for folder, added, sign in (("c", 90_001, 1), ("copy", 90_002, -1)):
        loaded = AspectIndex.load(tmp_path / folder)
        assert len(loaded) == 1701 and added in loaded.ids()
        np.testing.assert_allclose(loaded.vectors([added]), first.project(raw[:1] + sign), atol=2e-3)


def test_a_collection_update_grows_the_ivfpq_file_and_the_last_generation_still_reads(tmp_path):
    from feature_collections import make_feature_collection

    from artlens.storage import retired_path

    config = CollectionConfig(aspects={"colour": AspectConfig("colour-hist")}, weights={"colour": 1.0},
                              index=IndexConfig(kind="ivfpq", pq_add_batch=64))
    Collection.open(tmp_path / "c", create=True, config=config).close()
    coll = make_feature_collection(tmp_path / "c", per_class=100, extractors=("colour-hist",))
    assert coll.update_indexes() == {"colour": 400}
    live = tmp_path / "c" / "index" / "colour"
    inode, generation = (live / "vectors.npy").stat().st_ino, coll.generation
    q = coll.index("colour").project(coll.raw_vectors("colour-hist")[1][:20])
    before = coll.index("colour").search(q, 5)
    coll.close()
    coll = make_feature_collection(tmp_path / "c", classes=("pointillism",), per_class=150, seed=1,
                                   extractors=("colour-hist",))
    assert coll.update_indexes() == {"colour": 550}
    assert (live / "vectors.npy").stat().st_ino == inode  # grown in place, shared with the version it replaced
    assert len(Collection.open(tmp_path / "c").index("colour")) == 550
    previous = AspectIndex.load(retired_path(tmp_path / "c", "index/colour", generation + 1))
    assert len(previous) == 400 and previous.search(q, 5)[1].tolist() == before[1].tolist()
