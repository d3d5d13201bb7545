"""Leave-self-out retrieval evaluation of a collection (``artlens eval retrieval``): every labelled
artwork queries all the others; relevant means same label. Scores mix the indexed aspects exactly as
search does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from artlens.errors import ArtlensError
from artlens.metrics import evaluate_vectors


def evaluate_collection(
    collection,
    label: str,
    aspect: str | None = None,
    weights: Mapping[str, float] | None = None,
    ids: Sequence[int] | None = None,
    ks=(10, 60),
) -> dict:
    """Leave-self-out retrieval over the collection (or over ``ids`` only, e.g. a test split)."""
    labels = collection.catalog.labels(label)
    if aspect is not None:
        chosen = {aspect: 1.0}
    elif weights:
        chosen = {a: w for a, w in weights.items() if w > 0}
    else:
        chosen = {a: w for a, w in collection.config.weights.items() if w > 0}
    indexed = collection.indexed_aspects()
    missing = [a for a in chosen if a not in indexed]
    if missing:
        raise ArtlensError(f"aspect(s) {missing} have no index in this collection",
                           f"indexed aspects: {', '.join(indexed) or 'none (run artlens ingest)'}")
    total = sum(chosen.values())
    chosen = {a: w / total for a, w in chosen.items()}
    universe = set(labels)
    if ids is not None:
        universe &= set(int(i) for i in ids)
    per_aspect = {}
    for a in chosen:
        a_ids, a_vecs = collection.index(a).all_vectors()
        per_aspect[a] = dict(zip(a_ids.tolist(), range(len(a_ids)))), a_vecs
        universe &= set(per_aspect[a][0])
    order = sorted(universe)
    if len(order) < 2:
        raise ArtlensError("fewer than two labelled, indexed artworks to evaluate", "ingest more labelled images")
    vectors = {a: vecs[[pos[i] for i in order]] for a, (pos, vecs) in per_aspect.items()}
    result = evaluate_vectors(vectors, chosen, [labels[i] for i in order], ks)
    result["weights"] = chosen
    result["label"] = label
    return result
