"""Annotation accuracy for a collection whose features are cached but not indexed: the label the
report's cross-entropy head was trained on is predicted by its classifier, every other column by
the annotation probe (``artlens.annotation.fit_probe``) on content + style vectors projected as an
aspect index would project them (PCA fitted on the collection, L2-normalised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artlens.annotation import fit_probe
from artlens.metrics import topk_accuracy
from artlens.reports.retrieval import indexed_vectors
from artlens.train.split import collection_split

PROBE_INPUTS = ("content", "style")


def evaluate_annotation_unindexed(collection, columns: Sequence[str], trained=None, seed: int = 0) -> dict:
    """{column: {method, top1, top3, n_test, n_train, classes}} on each column's held-out test split."""
    result = {}
    extractors = [collection.config.aspects[a] for a in PROBE_INPUTS if a in collection.config.aspects]
    vectors = None  # ids, concatenated vectors of every artwork: computed once, for the first probe
    for column in columns:
        labels = collection.catalog.column(column)
        if trained is not None and trained.head.config.label == column:
            classes = list(trained.head.config.classes)
            proba = trained.head.predict_proba(trained.vectors)
            truth = np.array([classes.index(labels[int(i)]) for i in trained.ids])
            result[column] = {"method": "head", "top1": topk_accuracy(proba, truth, 1),
                              "top3": topk_accuracy(proba, truth, 3), "n_test": len(truth),
                              "n_train": trained.scores["n_train"], "classes": len(classes)}
            continue
        if vectors is None:
            every = sorted(collection.catalog.md5s())
            blocks = [indexed_vectors(collection, a.extractor, every, a.pca_dims) for a in extractors]
            common = np.array(sorted(set.intersection(*(set(ids.tolist()) for ids, _ in blocks))), dtype=np.int64)
            vectors = common, np.hstack([v[np.searchsorted(ids, common)] for ids, v in blocks])
        split = collection_split(collection, column, seed=seed)
        parts = {}
        for part, wanted in (("train", [i for i, s in split.items() if s != "test"]),
                             ("test", [i for i, s in split.items() if s == "test"])):
            keep = np.array(sorted(set(wanted) & set(vectors[0].tolist())), dtype=np.int64)
            parts[part] = (keep.tolist(), vectors[1][np.searchsorted(vectors[0], keep)])
        y_train = np.array([labels[i] for i in parts["train"][0]])
        probe = fit_probe(parts["train"][1], y_train, seed)
        classes = [str(c) for c in probe.classes_]
        test_ids = [i for i in parts["test"][0] if labels[i] in classes]
        rows = np.searchsorted(parts["test"][0], test_ids)
        proba = probe.predict_proba(parts["test"][1][rows])
        truth = np.array([classes.index(labels[i]) for i in test_ids])
        result[column] = {"method": "probe", "top1": topk_accuracy(proba, truth, 1),
                          "top3": topk_accuracy(proba, truth, 3), "n_test": len(truth), "n_train": len(y_train),
                          "classes": len(classes)}
    return result
