"""The robust detector's fast mode: ITQ codes of the descriptors, a Hamming shortlist, float re-ranking
(synthetic descriptors, no backbone)."""

import json

import numpy as np
import pytest

from artlens.copyright.code_shortlist import META_FILE, CodeShortlist
from artlens.copyright.robust import ProjectionHead, RobustDetector


def _detector(n=400, dim=32, seed=0) -> tuple[RobustDetector, np.ndarray]:
    """A detector whose head is the identity on ``dim``-d inputs, with ``n`` clustered works."""
    rng = np.random.default_rng(seed)
    head = ProjectionHead(dim, 8, dim)
    taps = (rng.normal(size=(20, 1, dim)) + 0.6 * rng.normal(size=(20, n // 20, dim))).reshape(n, dim)
    detector = RobustDetector(head, "copy-taps/v1", 0.8, code_bits=32)
    detector.ids = np.arange(n, dtype=np.int64) * 3 + 7  # ids are not row numbers
    vectors = taps / np.linalg.norm(taps, axis=1, keepdims=True)
    detector.vectors = vectors.astype(np.float32)
    return detector, rng


def _queries(detector, rng, n=60, noise=0.08):
    rows = rng.integers(0, len(detector), n)
    q = detector.vectors[rows] + noise * rng.normal(size=(n, detector.vectors.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), detector.ids[rows]


def test_fast_search_re_ranks_a_hamming_shortlist_with_float_scores():
    detector, rng = _detector()
    queries, truth = _queries(detector, rng)
    exact_scores, exact_ids = detector.search(queries, 3)
    fast_scores, fast_ids = detector.search(queries, 3, fast=True, shortlist=60)
    assert detector.codes.bits == 32 and len(detector.codes) == len(detector)
    assert (fast_ids[:, 0] == truth).mean() >= 0.95
    agree = fast_ids[:, 0] == exact_ids[:, 0]
    assert agree.mean() >= 0.95
    # re-ranked with the float descriptor: where the same work wins, it wins with the same score
    assert np.allclose(fast_scores[agree, 0], exact_scores[agree, 0], atol=1e-5)
    assert np.all(np.diff(fast_scores, axis=1) <= 1e-6)
    # a shortlist of every work is the exact search
    full_scores, full_ids = detector.search(queries, 3, fast=True, shortlist=len(detector) - 1)
    assert (full_ids[:, 0] == exact_ids[:, 0]).all()
    # a shortlist of one is the Hamming nearest work: worse, but still a valid answer
    _, one_ids = detector.search(queries, 1, fast=True, shortlist=1)
    assert np.isin(one_ids, detector.ids).all()


def test_codes_are_saved_versioned_and_rebuilt_when_the_works_change(tmp_path):
    detector, rng = _detector(n=200)
    taps = detector.vectors.copy()
    detector.set_works(detector.ids, taps)  # as training does: descriptors and codes
    detector.save(tmp_path / "robust")
    meta = json.loads((tmp_path / "robust" / META_FILE).read_text())
    assert meta["descriptor_id"] == detector.descriptor_id and meta["count"] == 200 and meta["bits"] == 32
    loaded = RobustDetector.load(tmp_path / "robust", "copy-taps/v1", code_bits=32)
    assert loaded._codes is not None  # read from disk, not rebuilt
    assert np.array_equal(loaded.codes.index.codes, detector.codes.index.codes)
    hasher = loaded.codes.hasher
    # works added and removed: same hasher, codes of exactly the new set
    new_ids = np.r_[loaded.ids[50:], [10_000, 10_001]]
    assert loaded.sync(new_ids, lambda new: taps[: len(new)])
    assert loaded.codes.hasher is hasher and len(loaded.codes) == len(new_ids)
    queries, _ = _queries(loaded, rng)
    assert np.isin(loaded.search(queries, 1, fast=True, shortlist=20)[1], new_ids).all()
    # codes written for other works or by another head are not used
    loaded.save(tmp_path / "robust")
    meta = json.loads((tmp_path / "robust" / META_FILE).read_text())
    (tmp_path / "robust" / META_FILE).write_text(json.dumps({**meta, "descriptor_id": "robust[x]/000"}))
    again = RobustDetector.load(tmp_path / "robust", "copy-taps/v1", code_bits=32)
    assert again._codes is None and again.codes is not None and again.codes.descriptor_id == again.descriptor_id


def test_shortlist_needs_two_works():
    with pytest.raises(Exception, match="at least two"):
        CodeShortlist.build(np.ones((1, 8), np.float32), np.array([1]), "d", 8)
