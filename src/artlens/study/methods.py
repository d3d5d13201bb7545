"""The machine side of a study: for every method, the pair of a question's artworks it finds most alike.

Methods are the Ukiyo-e paper's style matrices (``gram``, ``cosine``, ``gramcos`` of one backbone
layer, compared by Euclidean distance between the matrices as the extractors give them), every
aspect the collection has indexed (``content``, ``style``, ``colour``, ``text``, ``learned``:
Euclidean distance between the stored, L2-normalised vectors, the same order as cosine similarity;
an aspect whose features are cached but not indexed is compared on its raw, L2-normalised vectors),
and ``mix``: the collection's default weighted mix of aspect cosine scores, as search ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from artlens.features import create_extractor
from artlens.features.extract import extract_images
from artlens.progress import QUIET, Reporter
from artlens.vectors import l2_normalise

STYLE_MATRICES = {"gram": "Gram", "cosine": "Cosine", "gramcos": "Gram·Cosine"}
MIX = "mix"
TIE_TOLERANCE = 1e-6  # distances closer than this (relative) are a tie


@dataclass
class MethodVectors:
    """Vectors of the study's artworks per method ({method: {artwork id: vector}}) and the aspect
    vectors and weights behind ``mix`` and weight fitting."""

    vectors: dict[str, dict[int, np.ndarray]]
    aspects: dict[str, dict[int, np.ndarray]]
    weights: dict[str, float]
    notes: list[str]


def study_vectors(collection, study, layer: str = "block4", extract: bool = True,
                  reporter: Reporter = QUIET) -> MethodVectors:
    """Gather every method's vectors for the artworks of ``study``; style matrices missing from the
    feature cache are computed for those artworks only (``extract``, with progress on ``reporter``)."""
    ids = sorted({a for q in study.questions for a in q.artworks})
    paths = {i: path for i, _, path in collection.catalog.iter_artworks()}
    md5s = collection.catalog.md5s()
    vectors: dict[str, dict[int, np.ndarray]] = {}
    notes: list[str] = []
    names = [f"{kind}-{layer}" for kind in STYLE_MATRICES]
    if extract:
        items = [(md5s[i], paths[i]) for i in ids if i in md5s and i in paths]
        cfg = collection.config
        extract_images(items, names, collection.cache, cfg.batch_size, cfg.max_pixels, cfg.crop_letterbox, reporter)
    for kind, name in zip(STYLE_MATRICES, names):
        got, raw = collection.raw_vectors(name, ids)
        if len(got) == 0:
            notes.append(f"{kind}: no {create_extractor(name).id} features (run without --no-extract)")
            continue
        vectors[kind] = dict(zip(got.tolist(), raw))
    aspects: dict[str, dict[int, np.ndarray]] = {}
    indexed = collection.indexed_aspects()
    for aspect in indexed:
        index = collection.index(aspect)
        present = sorted(set(ids) & set(index.ids().tolist()))
        if present:
            aspects[aspect] = dict(zip(present, index.vectors(present)))
    for aspect, spec in collection.config.aspects.items():
        if aspect in indexed:
            continue
        got, raw = collection.raw_vectors(spec.extractor, ids)  # cached but never indexed: raw, L2-normalised
        if len(got):
            aspects[aspect] = dict(zip(got.tolist(), l2_normalise(raw)))
            notes.append(f"{aspect}: no index; compared on raw {spec.extractor} vectors")
    vectors.update(aspects)
    weights = {a: float(w) for a, w in collection.config.weights.items() if w > 0 and a in aspects}
    if weights:
        vectors[MIX] = {}  # scored from the aspects by ``distance_matrix``
    return MethodVectors(vectors, aspects, weights, notes)


def distance_matrix(method: str, artworks: Sequence[int], mv: MethodVectors) -> np.ndarray | None:
    """(n, n) distances between a question's artworks by ``method``; None when one lacks vectors."""
    if method == MIX:
        sim = mixed_similarity(artworks, mv.aspects, mv.weights)
        return None if sim is None else -sim
    table = mv.vectors.get(method, {})
    if any(a not in table for a in artworks):
        return None
    x = np.stack([table[a] for a in artworks]).astype(np.float64)
    sq = (x * x).sum(axis=1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))


def aspect_similarities(artworks: Sequence[int], aspects: Mapping[str, Mapping[int, np.ndarray]],
                        names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Cosine similarity matrices of the question's artworks for each aspect in ``names``."""
    out = {}
    for name in names:
        table = aspects.get(name, {})
        if any(a not in table for a in artworks):
            return None
        x = np.stack([table[a] for a in artworks]).astype(np.float64)
        out[name] = x @ x.T
    return out


def mixed_similarity(artworks: Sequence[int], aspects, weights: Mapping[str, float]) -> np.ndarray | None:
    sims = aspect_similarities(artworks, aspects, [a for a, w in weights.items() if w > 0])
    if sims is None or not sims:
        return None
    return sum(weights[a] * s for a, s in sims.items())


def closest_pairs(distances: np.ndarray, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Indices of the pairs at the smallest distance (several when they tie)."""
    d = np.array([distances[i, j] for i, j in pairs])
    best = d.min()
    return [k for k, v in enumerate(d) if v - best <= TIE_TOLERANCE * max(1.0, abs(best))]
