"""The DeepArt-layout retrieval table of the evaluation report: pretrained colour, content and style
(Gram / Cosine / Gram·Cosine) vectors and learned embeddings, leave-self-out within the held-out test
split, with P@k, AP@k and nDCG@k at the report's cut-off and the P@k curve of every row."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from artlens.config import IndexConfig
from artlens.features import create_extractor
from artlens.index import AspectIndex
from artlens.metrics import evaluate_vectors

CURVE_KS = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
# exact vectors only: no approximate structure (nor binary codes, where indexes fit them) is needed here
_EXACT = IndexConfig(kind="flat")
if "hash_bits" in {f.name for f in dataclasses.fields(IndexConfig)}:
    _EXACT = dataclasses.replace(_EXACT, hash_bits=0)


def pretrained_rows(layer: str, content: str = "effnet-lite0") -> list[tuple[str, str, int | None]]:
    """(row name, extractor, PCA dims) of the pretrained aspects, in the DeepArt table's order."""
    return [("colour histogram", "colour-hist", None),
            (f"content ({content})", content, 256),
            (f"style: Gram {layer}", f"gram-{layer}", 256),
            (f"style: Cosine {layer}", f"cosine-{layer}", 256),
            (f"style: Gram·Cosine {layer}", f"gramcos-{layer}", 256)]


def indexed_vectors(collection, extractor: str, ids: Sequence[int], pca: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids of ``ids`` that have the features, vectors as an aspect index stores them): the PCA is fitted
    on the whole collection, as the collection's own index would be (it never sees a label)."""
    ex = create_extractor(extractor)
    got, raw = collection.raw_vectors(extractor)
    if len(got) == 0:
        return got, np.zeros((0, 0), dtype=np.float32)
    pca = pca if pca and ex.dim > pca and len(got) > pca else None
    index = AspectIndex.build("report", extractor, ex.id, got, raw, pca, _EXACT)
    keep = np.array(sorted(set(int(i) for i in ids) & set(got.tolist())), dtype=np.int64)
    return keep, index.vectors(keep)


def retrieval_row(name: str, ids: np.ndarray, vectors: np.ndarray, labels: dict[int, str], k: int,
                  ks: Sequence[int] = CURVE_KS) -> dict:
    """Leave-self-out metrics of one set of vectors: P@k, AP@k, nDCG@k, mAP and the P@k curve."""
    cut = tuple(sorted(set(ks) | {k}))
    r = evaluate_vectors({"x": vectors}, {"x": 1.0}, [labels[int(i)] for i in ids], ks=cut)
    return {"method": name, f"p@{k}": r[f"p@{k}"], f"ap@{k}": r[f"ap@{k}"], f"ndcg@{k}": r[f"ndcg@{k}"],
            "map": r["map"], "n_queries": r["n_queries"], "curve": {str(c): r[f"p@{c}"] for c in cut}}
