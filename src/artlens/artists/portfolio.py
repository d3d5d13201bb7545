"""An institution's portfolio as the artist features see it: the artist of each labelled artwork and
its unit embedding in one space (a head's learned space, or the pretrained aspect mix as a baseline),
all from the collection's cached features. The vectors never leave the institution; only profiles
built from them are published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from artlens.artists.search import embed_text_inputs
from artlens.config import IndexConfig
from artlens.errors import ArtlensError
from artlens.features import ImageExtractor
from artlens.index import AspectIndex
from artlens.models.inputs import embed_features, gather_features
from artlens.vectors import l2_normalise


@dataclass
class ArtistSpace:
    """Unit embeddings of the labelled artworks of a collection in one space, with their artists."""

    ids: np.ndarray
    vectors: np.ndarray
    artists: list[str]
    name: str
    queryable: np.ndarray | None = None  # rows that may query (all by default)
    query_vectors: np.ndarray | None = None  # how each row queries, when not as it is profiled (fewer inputs)

    def queries(self, rows: np.ndarray) -> np.ndarray:
        return (self.vectors if self.query_vectors is None else self.query_vectors)[rows]


def artist_labels(collection, column: str) -> dict[int, str]:
    """{artwork id: artist} of a metadata column; a clear error for an unknown or empty column."""
    columns = collection.catalog.metadata_columns()
    if column not in columns:
        raise ArtlensError(f"artist column {column!r} not found in this collection",
                           f"columns available: {', '.join(columns) or 'none (ingest with --labels CSV)'}")
    labels = {i: v.strip() for i, v in collection.catalog.column(column).items() if v and v.strip()}
    if not labels:
        raise ArtlensError(f"no artwork has a value in column {column!r}", "choose the column that names the artist")
    return labels


QUERY_INPUTS = ("image+text", "image", "text")


def learned_space(collection, head, labels: dict[int, str], query_ids: Sequence[int] | None = None,
                  queries: str = "image+text") -> ArtistSpace:
    """The head's embeddings of the labelled artworks (its extractors' cached features). The query
    artworks may be embedded from fewer inputs than the others: ``image`` (a customer's picture: no
    text) or ``text`` (their description alone, as ``artists search --text`` embeds it); artworks
    without text then cannot query (``queryable``)."""
    if queries not in QUERY_INPUTS:
        raise ArtlensError(f"unknown query inputs {queries!r}", f"use one of: {', '.join(QUERY_INPUTS)}")
    features = gather_features(collection, head.config.inputs, sorted(labels))
    rows = (np.ones(len(features.ids), dtype=bool) if query_ids is None
            else np.isin(features.ids, np.asarray(list(query_ids), dtype=np.int64)))
    text_inputs = [s.extractor for s in head.config.inputs if s.modality == "text"]
    if queries != "image+text" and not text_inputs:
        raise ArtlensError(f"the head has no text input, so {queries} queries are the same as image+text"
                           if queries == "image" else "the head has no text input, so it cannot embed text queries",
                           "evaluate with the default queries, or use a head trained with text")
    vectors = l2_normalise(embed_features(head, features))
    query_vectors, queryable = vectors, None
    if queries == "image":
        present = {n: m & ~rows for n, m in features.present.items()}
        query_vectors = vectors.copy()
        if rows.any():
            subset = features.subset(np.flatnonzero(rows))
            query_vectors[rows] = l2_normalise(head.embed(subset.inputs, {n: m[rows] for n, m in present.items()}))
    elif queries == "text":
        queryable = np.all([features.present.get(n, np.ones(len(rows), bool)) for n in text_inputs], axis=0)
        chosen = np.flatnonzero(rows & queryable)
        query_vectors = vectors.copy()
        if len(chosen):
            query_vectors[chosen] = l2_normalise(
                embed_text_inputs(head, {n: features.inputs[n][chosen] for n in text_inputs}))
    return ArtistSpace(features.ids, vectors, [labels[int(i)] for i in features.ids], "learned", queryable,
                       query_vectors)


def pretrained_space(collection, labels: dict[int, str], seed: int = 0) -> ArtistSpace:
    """The collection's default mix of image aspects as one unit vector per artwork: per aspect the
    cached vectors, L2-normalised and PCA-reduced as its index does, scaled by sqrt(weight)."""
    weights = {a: w for a, w in collection.config.weights.items()
               if w > 0 and a in collection.config.aspects and isinstance(collection.extractor(a), ImageExtractor)}
    if not weights:
        weights = {a: 1.0 for a in collection.config.aspects if isinstance(collection.extractor(a), ImageExtractor)}
    ids = np.asarray(sorted(labels), dtype=np.int64)
    parts = []
    total = sum(weights.values())
    for aspect, weight in weights.items():
        spec = collection.config.aspects[aspect]
        got, raw = collection.raw_vectors(spec.extractor, ids.tolist())
        if len(got) == 0:
            continue
        index = AspectIndex.build(aspect, spec.extractor, collection.extractor(aspect).id, got, raw, spec.pca_dims,
                                  IndexConfig(kind="flat", hash_bits=0), seed)
        ids = ids[np.isin(ids, got)]
        parts.append((aspect, np.sqrt(weight / total), index))
    if not parts:
        raise ArtlensError("no pretrained features are cached for the labelled artworks",
                           "run `artlens ingest DIR --collection PATH` first")
    vectors = np.concatenate([scale * index.vectors(ids) for _, scale, index in parts], axis=1)
    return ArtistSpace(ids, l2_normalise(vectors), [labels[int(i)] for i in ids],
                       "pretrained: " + ", ".join(f"{a} {s * s:.2f}" for a, s, _ in parts))
