"""The search engine: query vectors per aspect, candidates from each aspect's index, and a weighted
mix of cosine scores in which every hit keeps its per-aspect scores (why it is similar)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from artlens.collection import LEARNED_ASPECT, Collection
from artlens.errors import ArtlensError, CollectionError
from artlens.features import ImageExtractor, TextExtractor, create_extractor
from artlens.features.extract import encode_images, prepare_image
from artlens.search.filters import resolve_filters

DEFAULT_K = 10  # results of a search unless asked for more


@dataclass
class Hit:
    id: int
    score: float
    aspects: dict[str, float]
    path: str
    metadata: dict[str, str]

    def as_dict(self) -> dict:
        return {"id": self.id, "score": round(self.score, 6), "aspects": {k: round(v, 6) for k, v in self.aspects.items()},
                "path": self.path, "metadata": self.metadata}


@dataclass
class SearchResult:
    query: dict
    weights: dict[str, float]
    hits: list[Hit] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"query": self.query, "weights": self.weights, "results": [h.as_dict() for h in self.hits]}


class SearchEngine:
    """Answers queries over one collection. ``candidates`` is how many neighbours each weighted
    aspect contributes before the mixed re-ranking (at least 10 x k)."""

    def __init__(self, collection: Collection, candidates: int = 200):
        self.collection = collection
        self.candidates = candidates
        self._id_sets: dict[str, set[int]] = {}

    # -- query vectors --------------------------------------------------------------------------
    @property
    def aspects(self) -> list[str]:
        return self.collection.indexed_aspects()

    def _ids(self, aspect: str) -> set[int]:
        if aspect not in self._id_sets:
            self._id_sets[aspect] = set(self.collection.index(aspect).ids().tolist())
        return self._id_sets[aspect]

    def image_vectors(self, image: Image.Image | bytes | str, aspects: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Projected query vectors of every image aspect (or of ``aspects``) for an image (path, bytes or decoded)."""
        if not isinstance(image, Image.Image):
            image = prepare_image(image, self.collection.config.max_pixels, self.collection.config.crop_letterbox)
        wanted = set(aspects) if aspects is not None else set(self.aspects)
        aspects = [a for a in self._extractor_aspects()
                   if a in wanted and isinstance(self.collection.extractor(a), ImageExtractor)]
        extractors = [self.collection.extractor(a) for a in aspects]
        head = self.collection.head() if LEARNED_ASPECT in self.aspects and LEARNED_ASPECT in wanted else None
        if head is not None and not any(s.modality == "image" for s in head.config.inputs):
            head = None  # a text-only head cannot embed an image
        head_extractors = [create_extractor(s.extractor) for s in head.config.inputs] if head else []
        needed = {ex.name: ex for ex in extractors + head_extractors if isinstance(ex, ImageExtractor)}
        raw = encode_images([image], list(needed.values()))
        out = {a: self.collection.index(a).project(raw[ex.name])[0] for a, ex in zip(aspects, extractors)}
        if head is not None:  # an image query has no text: the head's text input is marked missing
            inputs = {s.extractor: raw[s.extractor] if s.extractor in raw else np.zeros((1, s.raw_dim), np.float32)
                      for s in head.config.inputs}
            present = {s.extractor: np.array([s.extractor in raw]) for s in head.config.inputs if s.optional}
            out[LEARNED_ASPECT] = self.collection.index(LEARNED_ASPECT).project(head.embed(inputs, present))[0]
        return out

    def _extractor_aspects(self) -> list[str]:
        """Indexed aspects fed by one extractor (all but the learned one, which a head feeds)."""
        return [a for a in self.aspects if a in self.collection.config.aspects]

    def text_vectors(self, text: str) -> dict[str, np.ndarray]:
        aspects = [a for a in self._extractor_aspects() if isinstance(self.collection.extractor(a), TextExtractor)]
        if not aspects:
            raise CollectionError(
                "this collection has no text index, so it cannot be searched by text",
                "ingest it with a --labels CSV that has title or description columns",
            )
        out = {}
        for aspect in aspects:
            raw = self.collection.extractor(aspect).encode_texts([text])
            out[aspect] = self.collection.index(aspect).project(raw)[0]
        return out

    def artwork_vectors(self, artwork_ids: Sequence[int]) -> dict[str, np.ndarray]:
        """Stored vectors of artworks; several ids give their mean per aspect (recommendation)."""
        out = {}
        for aspect in self.aspects:
            present = [i for i in artwork_ids if i in self._ids(aspect)]
            if present:
                out[aspect] = self.collection.index(aspect).vectors(present).mean(axis=0)
        if not out:
            raise CollectionError(
                f"artwork id(s) {list(artwork_ids)} not in this collection",
                "use an id shown by `artlens search` or `artlens stats`",
            )
        return out

    # -- ranking --------------------------------------------------------------------------------
    def resolve_weights(self, vectors: Mapping[str, np.ndarray], weights: Mapping[str, float] | None,
                        aspect: str | None, text_query: bool = False) -> dict[str, float]:
        if aspect is not None:
            if aspect not in vectors and aspect not in self.aspects and self._known(aspect):
                raise self._not_indexed(aspect)
            if aspect not in vectors:
                raise ArtlensError(
                    f"aspect {aspect!r} cannot answer this query",
                    f"aspects available for it: {', '.join(vectors) or 'none'}",
                )
            return {aspect: 1.0}
        if weights:
            unknown = {a for a in weights if a not in vectors and not self._known(a)}
            if unknown:
                raise ArtlensError(f"unknown aspect(s) in weights: {sorted(unknown)}",
                                   f"aspects of this collection: {', '.join(self.aspects)}")
            chosen = {a: float(w) for a, w in weights.items() if a in vectors and w > 0}
        elif text_query:
            chosen = {a: 1.0 for a in vectors}
        else:
            chosen = {a: w for a, w in self.collection.config.weights.items() if a in vectors and w > 0}
            if not chosen:
                chosen = {a: 1.0 for a in vectors}
        if not chosen and weights:
            wanted = [a for a, w in weights.items() if w > 0]
            if not_indexed := [a for a in wanted if a not in self.aspects]:
                raise self._not_indexed(not_indexed[0])
            if wanted:
                raise ArtlensError(f"aspect(s) {', '.join(wanted)} cannot answer this query",
                                   f"aspects available for it: {', '.join(vectors) or 'none'}")
        if not chosen:
            raise ArtlensError("all aspect weights are zero for this query", "give at least one positive weight")
        if not all(math.isfinite(w) for w in chosen.values()):
            raise ArtlensError("aspect weights must be finite numbers", "e.g. content=0.5,style=0.5")
        # Scaled by the largest first, so that huge weights (1e308 each) cannot overflow the sum.
        top = max(chosen.values())
        chosen = {a: w / top for a, w in chosen.items()}
        total = sum(chosen.values())
        return {a: w / total for a, w in chosen.items()}

    def resolve_filters(self, filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """Filter values as stored (matched ignoring case; a decade stands for its years). A value that
        matches nothing is an error listing the column's values (see :func:`resolve_filters`)."""
        return resolve_filters(self.collection.catalog, filters, strict=True)

    def _known(self, aspect: str) -> bool:
        return aspect in self.collection.config.aspects or aspect == LEARNED_ASPECT

    def _not_indexed(self, aspect: str) -> ArtlensError:
        """The error for an aspect this collection has no index of, saying how to get one."""
        if aspect == LEARNED_ASPECT:
            how = "train a head: artlens train --collection PATH --label COLUMN (or pass --head FILE)"
        elif aspect == "text":
            how = ("ingest with a --labels CSV that has title or description columns: "
                   "artlens ingest DIR --labels CSV --collection PATH")
        else:
            how = "build it with `artlens ingest DIR --collection PATH`"
        indexed = ", ".join(self.aspects) or "none"
        return CollectionError(f"aspect {aspect!r} has no index in this collection (indexed: {indexed})", how)

    def rank(self, vectors: Mapping[str, np.ndarray], weights: Mapping[str, float], k: int,
             allowed_ids: Sequence[int] | None = None, exclude: set[int] | None = None,
             fast: bool = False) -> list[tuple[int, float, dict]]:
        """Mixed-score top-k: (id, score, per-aspect scores) best first. ``fast`` gathers each aspect's
        candidates through its binary shortlist (Hamming ranking, then exact cosine re-ranking), and,
        when the collection has a trained head (the ``learned`` aspect), through the learned codes too:
        the head's neighbourhoods are the label-aware ones, so they bring candidates the others miss."""
        exclude = exclude or set()
        n_cand = max(self.candidates, 10 * k) + len(exclude)
        candidates: set[int] = set()
        shortlisted = list(weights)
        if fast and LEARNED_ASPECT in vectors and LEARNED_ASPECT in self.aspects and LEARNED_ASPECT not in shortlisted:
            shortlisted.append(LEARNED_ASPECT)
        for aspect in shortlisted:
            if fast:
                _, ids = self.collection.fast_index(aspect).search_fast(vectors[aspect][None, :], n_cand, allowed_ids)
            else:
                _, ids = self.collection.index(aspect).search(vectors[aspect][None, :], n_cand, allowed_ids)
            candidates.update(int(i) for i in ids[0] if i >= 0)
        candidates -= exclude
        if not candidates:
            return []
        cand = np.array(sorted(candidates), dtype=np.int64)
        per_aspect: dict[str, np.ndarray] = {}
        for aspect, q in vectors.items():
            have = np.array([i in self._ids(aspect) for i in cand])
            scores = np.full(len(cand), np.nan, dtype=np.float32)
            if have.any():
                scores[have] = self.collection.index(aspect).vectors(cand[have]) @ q
            per_aspect[aspect] = scores
        mixed = np.zeros(len(cand))
        mass = np.zeros(len(cand))
        for aspect, w in weights.items():
            s = per_aspect[aspect]
            ok = ~np.isnan(s)
            mixed[ok] += w * s[ok]
            mass[ok] += w
        mixed = np.where(mass > 0, mixed / np.maximum(mass, 1e-12), -np.inf)
        order = np.lexsort((cand, -mixed))[:k]
        return [
            (int(cand[j]), float(mixed[j]),
             {a: float(s[j]) for a, s in per_aspect.items() if not np.isnan(s[j])})
            for j in order if np.isfinite(mixed[j])
        ]

    def search(
        self,
        image=None,
        text: str | None = None,
        artwork_id: int | None = None,
        liked: Sequence[int] | None = None,
        k: int = DEFAULT_K,
        aspect: str | None = None,
        weights: Mapping[str, float] | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        fast: bool = False,
    ) -> SearchResult:
        """One query by exactly one of image, text, artwork id or liked ids. ``fast``: candidates from
        binary codes re-ranked by exact cosine (see :meth:`rank`)."""
        given = [x is not None for x in (image, text, artwork_id, liked)]
        if sum(given) != 1:
            raise ArtlensError("give exactly one query", "use one of --image FILE, --text \"...\", or --id ID")
        if k < 1:
            raise ArtlensError(f"k must be at least 1, got {k}", "pass -k 10 for ten results")
        exclude: set[int] = set()
        if image is not None:
            vectors, query = self.image_vectors(image), {"image": image if isinstance(image, str) else "upload"}
        elif text is not None:
            if not text.strip():
                raise ArtlensError("the text query is empty", "give some words, e.g. --text \"stormy sea at night\"")
            vectors, query = self.text_vectors(text), {"text": text}
        elif artwork_id is not None:
            vectors, query, exclude = self.artwork_vectors([artwork_id]), {"id": artwork_id}, {int(artwork_id)}
        else:
            vectors, query, exclude = self.artwork_vectors(list(liked)), {"liked": list(liked)}, set(map(int, liked))
        chosen = self.resolve_weights(vectors, weights, aspect, text_query=text is not None)
        allowed = None
        if filters:
            allowed = self.collection.catalog.filter_ids(self.resolve_filters(filters))
            if not allowed:
                return SearchResult(query, chosen)
        ranked = self.rank(vectors, chosen, k, allowed, exclude, fast=fast)
        arts = self.collection.catalog.get_many([r[0] for r in ranked])
        hits = [Hit(i, s, a, arts[i].path, arts[i].metadata) for i, s, a in ranked if i in arts]
        return SearchResult(query, chosen, hits)
