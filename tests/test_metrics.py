import numpy as np
import pytest

from artlens import metrics as m


def test_average_precision_hand_computed():
    # relevant at ranks 1, 3, 6 of 3 relevant: (1/1 + 2/3 + 3/6) / 3
    rel = [1, 0, 1, 0, 0, 1]
    assert m.average_precision(rel) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    # 5 relevant in the collection, only 3 retrieved: the missing two count as precision 0
    assert m.average_precision(rel, n_relevant=5) == pytest.approx((1 + 2 / 3 + 0.5) / 5)
    assert m.average_precision([0, 0, 0]) == 0.0


def test_precision_recall_rr():
    rel = [0, 1, 1, 0]
    assert m.precision_at_k(rel, 2) == 0.5
    assert m.precision_at_k(rel, 10) == pytest.approx(0.2)  # short lists count missing as non-relevant
    assert m.recall_at_k(rel, 2, n_relevant=4) == 0.25
    assert m.reciprocal_rank(rel) == 0.5
    assert m.reciprocal_rank([0, 0]) == 0.0
    with pytest.raises(ValueError):
        m.precision_at_k(rel, 0)


def test_ndcg_hand_computed():
    rel = [0, 1, 1]
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3)
    assert m.ndcg_at_k(rel, 3) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k([1, 1, 0], 3) == pytest.approx(1.0)
    # with 3 relevant in total, the ideal list at k=2 is two hits
    assert m.ndcg_at_k([1, 0], 2, n_relevant=3) == pytest.approx(1 / (1 + 1 / np.log2(3)))


def test_topk_accuracy():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert m.topk_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    assert m.topk_accuracy(scores, labels, 2) == pytest.approx(2 / 3)
    assert m.topk_accuracy(scores, labels, 3) == 1.0


def test_cross_entropy():
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]])
    assert m.cross_entropy(proba[:2], [0, 0]) == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2)
    assert m.cross_entropy(proba[2:], [0]) == pytest.approx(-np.log(1e-12))  # a zero probability is clipped


def test_batch_metrics_match_single_query_functions():
    rng = np.random.default_rng(0)
    rel = rng.random((20, 80)) < 0.2
    totals = rel.sum(axis=1) + rng.integers(0, 3, size=20)
    batch = m.batch_retrieval_metrics(rel, totals, ks=(10, 60))
    single = m.retrieval_summary(rel, totals, ks=(10, 60))
    for key in ("map", "p@10", "p@60", "ap@60", "ndcg@10", "ndcg@60"):
        assert batch[key].mean() == pytest.approx(single[key]), key
    assert single["n_queries"] == 20
