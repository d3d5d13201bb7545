"""Hashing evaluation: mAP@k of Hamming ranking, float bound, stratified query split."""

from __future__ import annotations

import numpy as np
import pytest

from artlens.errors import ArtlensError
from artlens.hashing import (
    default_query_count,
    float_map_at_k,
    hashing_map_at_k,
    pack_bits,
    stratified_queries,
)


def _codes(values):
    return np.array(values, dtype=np.uint8)[:, None]  # 8-bit codes, one byte each


def test_hashing_map_hand_computed():
    # query 0 = 00000000; distances to the database: [1, 0, 2, 1, 8]
    db = _codes([0b00000001, 0b00000000, 0b00000011, 0b10000000, 0b11111111])
    db_labels = np.array([0, 1, 0, 1, 0])
    q = _codes([0b00000000])
    # ranking by (distance, id): ids 1, 0, 3, 2, 4 -> relevance 0, 1, 0, 1, 1
    # AP@5 = (1/2 + 2/4 + 3/5) / 3 ; AP@3 = (1/2) / 1 (normalised by relevant retrieved)
    assert hashing_map_at_k(q, db, np.array([0]), db_labels, k=5) == pytest.approx((0.5 + 0.5 + 0.6) / 3)
    assert hashing_map_at_k(q, db, np.array([0]), db_labels, k=3) == pytest.approx(0.5)
    # second query of class 1 at 11111111: distances [7, 8, 6, 7, 0] -> ids 4, 2, 0, 3, 1 -> 0 0 0 1 1
    q2 = _codes([0b00000000, 0b11111111])
    expected = ((0.5 + 0.5 + 0.6) / 3 + (1 / 4 + 2 / 5) / 2) / 2
    assert hashing_map_at_k(q2, db, np.array([0, 1]), db_labels, k=5) == pytest.approx(expected)
    # k beyond the database is clipped; a query with nothing relevant in the top k scores 0
    assert hashing_map_at_k(q, db, np.array([0]), db_labels, k=50) == pytest.approx((0.5 + 0.5 + 0.6) / 3)
    assert hashing_map_at_k(q, db, np.array([1]), db_labels, k=1) == pytest.approx(1.0)
    assert hashing_map_at_k(q, db, np.array([0]), db_labels, k=1) == 0.0


def test_hashing_map_perfect_and_ties_by_position():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    bits = np.zeros((200, 16), bool)
    bits[np.arange(200), labels * 4] = True
    codes = pack_bits(bits)
    assert hashing_map_at_k(codes[:20], codes[20:], labels[:20], labels[20:], k=50) == pytest.approx(1.0)
    # all codes equal: ranking is database order, so the score is that of the label sequence
    same = np.zeros((5, 1), np.uint8)
    db_labels = np.array([1, 0, 0, 1, 1])
    assert hashing_map_at_k(same[:1], same, np.array([0]), db_labels, k=5) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_float_map_and_multilabel():
    feats = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32)
    labels = np.array([0, 0, 1, 1])
    assert float_map_at_k(feats[:1], feats[1:], labels[:1], labels[1:], k=3) == pytest.approx(1.0)
    assert float_map_at_k(feats[2:3], feats[[0, 1, 3]], labels[2:3], labels[[0, 1, 3]], k=3) == pytest.approx(1 / 3)
    multi = np.array([[1, 1, 0]])
    db_multi = np.array([[0, 1, 0], [0, 0, 1]])
    codes = _codes([0b0, 0b1])
    assert hashing_map_at_k(_codes([0]), codes, multi, db_multi, k=2) == pytest.approx(1.0)


def test_stratified_queries():
    labels = np.repeat(np.arange(10), [100] * 9 + [50])
    q, db = stratified_queries(labels, 95, seed=0)
    assert len(q) == 95 and len(db) == len(labels) - 95
    assert np.array_equal(np.sort(np.concatenate([q, db])), np.arange(len(labels)))
    counts = np.bincount(labels[q], minlength=10)
    assert counts.max() - counts[:9].min() <= 1 and counts[9] in (4, 5)
    assert np.array_equal(stratified_queries(labels, 95, seed=0)[0], q)
    assert not np.array_equal(stratified_queries(labels, 95, seed=1)[0], q)
    with pytest.raises(ArtlensError, match="between 1 and 949") as bad:
        stratified_queries(labels, 0)
    assert "--queries" in bad.value.hint
    with pytest.raises(ArtlensError, match="too many queries for the class sizes") as bad:
        stratified_queries(np.array([0, 1, 2, 3, 3]), 2)
    assert "at most 1" in bad.value.hint


def test_default_query_count_fits_small_collections():
    assert default_query_count(np.repeat(np.arange(10), 2000)) == 1000  # 10 % capped at 1000
    assert default_query_count(np.repeat(np.arange(5), 60)) == 30  # 10 % of 300
    assert default_query_count(np.repeat(np.arange(8), 3)) == 8  # at least one per class
    assert default_query_count(np.array([0, 1, 2, 3, 3])) == 1  # only what the classes can spare
    assert default_query_count(np.arange(6)) == 0  # every class a singleton
