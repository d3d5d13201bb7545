"""Ranking artists by how well their published profiles match a customer's references.

References (images, texts) are embedded by the head the profiles were made with. Each reference is
scored against each artist's prototypes by a soft maximum of the similarities weighted by the works
behind each prototype (the log-likelihood of a mixture of the prototypes, temperature 0.1; the hard
maximum lets a prototype of a few stray works win, and on the val splits it lost 2-4 points top-1
to one mean prototype, which the soft maximum matched or beat). An artist's score is the mean of
those per-reference scores: the mean, rather than the best single match, asks an artist to fit
every reference (a commission wants one consistent style), while each reference may be answered by
a different prototype (an artist with several manners). Each result names the prototype that
matched each reference best and its similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from artlens.artists.profiles import ProfileSet
from artlens.config import CollectionConfig
from artlens.errors import ArtlensError
from artlens.features import ImageExtractor, create_extractor
from artlens.features.extract import encode_images, prepare_image

DEFAULT_TEMPERATURE = 0.1  # of the soft maximum over an artist's prototypes (0: the best one); chosen on val splits


def combine_prototypes(sims: np.ndarray, counts: np.ndarray, temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """One score per row from the similarities (rows, k) to an artist's k prototypes: the best one
    (temperature 0), else a soft maximum weighted by the works behind each prototype,
    t * log(sum_j (n_j / n) exp(s_j / t)) (the log-likelihood of a mixture of the prototypes)."""
    sims = np.asarray(sims, dtype=np.float64)
    if temperature <= 0 or sims.shape[-1] == 1:
        return sims.max(axis=-1)
    w = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    top = sims.max(axis=-1, keepdims=True)
    return (top + temperature * np.log(np.sum(w * np.exp((sims - top) / temperature), axis=-1, keepdims=True)))[..., 0]


DEFAULT_ARTISTS = 5  # artists shown for a search


@dataclass
class ReferenceMatch:
    reference: int  # position of the reference in the query
    prototype: int  # index of the artist's prototype it matched best
    similarity: float
    prototype_works: int  # works behind that prototype

    def as_dict(self) -> dict:
        return {"reference": self.reference, "prototype": self.prototype, "similarity": round(self.similarity, 6),
                "prototype_works": self.prototype_works}


@dataclass
class ArtistMatch:
    artist: str
    score: float
    works: int
    matches: list[ReferenceMatch] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"artist": self.artist, "score": round(self.score, 6), "works": self.works,
                "matches": [m.as_dict() for m in self.matches]}


@dataclass
class ArtistSearchResult:
    references: list[dict]
    head: str
    results: list[ArtistMatch]

    def as_dict(self) -> dict:
        return {"references": self.references, "head": self.head, "results": [r.as_dict() for r in self.results]}


def score_profiles(queries: np.ndarray, profiles: ProfileSet, temperature: float = DEFAULT_TEMPERATURE
                   ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Artist names, their scores (mean over references of :func:`combine_prototypes`), and per
    reference the best prototype and its similarity: (names, scores (A,), best (A, R), sims (A, R))."""
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    names = profiles.names()
    best = np.zeros((len(names), len(q)), dtype=np.int64)
    sims = np.zeros((len(names), len(q)), dtype=np.float32)
    scores = np.zeros(len(names))
    for a, name in enumerate(names):
        profile = profiles.profiles[name]
        s = profile.prototypes @ q.T  # (k, R)
        best[a] = np.argmax(s, axis=0)
        sims[a] = s[best[a], np.arange(len(q))]
        scores[a] = combine_prototypes(s.T, profile.counts, temperature).mean()
    return names, scores, best, sims


def embed_text_inputs(head, raw: dict[str, np.ndarray]) -> np.ndarray:
    """Head embeddings from text vectors alone (by text extractor name), every image input at its
    training mean (zero after the head's standardisation): "an average picture described so"."""
    import torch

    n = len(next(iter(raw.values())))
    transformed, present = {}, {}
    for spec in head.config.inputs:
        if spec.extractor in raw:
            transformed[spec.extractor] = head.transforms[spec.extractor.replace(".", "_")](
                torch.from_numpy(np.asarray(raw[spec.extractor], dtype=np.float32)))
            if spec.optional:
                present[spec.extractor] = torch.ones(n, dtype=torch.bool)
        else:
            transformed[spec.extractor] = torch.zeros(n, spec.dim)
    was_training = head.training
    head.eval()
    with torch.no_grad():
        out = head.embed_transformed(transformed, present).numpy()
    head.train(was_training)
    return out


class ArtistSearch:
    """Searches one profile set with the head it was published with."""

    def __init__(self, profiles: ProfileSet, head, config: CollectionConfig | None = None,
                 temperature: float = DEFAULT_TEMPERATURE):
        if len(profiles) == 0:
            raise ArtlensError("the profile file holds no artists", "publish profiles of a labelled collection")
        profiles.require_head(head.id, "the given head")
        self.profiles = profiles
        self.head = head
        self.config = config or CollectionConfig()
        self.temperature = temperature

    @property
    def has_text(self) -> bool:
        return any(s.modality == "text" for s in self.head.config.inputs)

    # -- embedding references -------------------------------------------------------------------
    def embed_images(self, images: Sequence) -> np.ndarray:
        """Head embeddings of images (paths, bytes or decoded PIL images), extracted as uploads are in
        search: the head's image extractors, no text (its text input marked missing)."""
        from PIL import Image


        decoded = [im if isinstance(im, Image.Image) else
                   prepare_image(im, self.config.max_pixels, self.config.crop_letterbox) for im in images]
        extractors = [e for e in (create_extractor(s.extractor) for s in self.head.config.inputs)
                      if isinstance(e, ImageExtractor)]
        raw = encode_images(decoded, extractors)
        n = len(decoded)
        inputs = {s.extractor: raw[s.extractor] if s.extractor in raw else np.zeros((n, s.raw_dim), np.float32)
                  for s in self.head.config.inputs}
        present = {s.extractor: np.full(n, s.extractor in raw) for s in self.head.config.inputs if s.optional}
        return self.head.embed(inputs, present)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Head embeddings of texts through its text encoder (see :func:`embed_text_inputs`)."""
        if not self.has_text:
            raise ArtlensError(
                "the profiles' head has no text input, so it cannot place a text in its style space",
                "search with --like FILE, or publish profiles with a head trained with text "
                "(artlens train --features content,style,text)")
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            raise ArtlensError("the text reference is empty", "give some words, e.g. --text \"misty river at dawn\"")
        raw = {s.extractor: create_extractor(s.extractor).encode_texts(texts)
               for s in self.head.config.inputs if s.modality == "text"}
        return embed_text_inputs(self.head, raw)

    # -- ranking --------------------------------------------------------------------------------
    def search_vectors(self, queries: np.ndarray, references: list[dict], k: int = DEFAULT_ARTISTS) -> ArtistSearchResult:
        if k < 1:
            raise ArtlensError(f"k must be at least 1, got {k}", "pass -k 5 for five artists")
        names, scores, best, sims = score_profiles(queries, self.profiles, self.temperature)
        order = np.lexsort((np.array(names), -scores))[:k]
        results = []
        for a in order:
            profile = self.profiles.profiles[names[a]]
            matches = [ReferenceMatch(r, int(best[a, r]), float(sims[a, r]), int(profile.counts[best[a, r]]))
                       for r in range(len(references))]
            results.append(ArtistMatch(names[a], float(scores[a]), profile.works, matches))
        return ArtistSearchResult(references, self.profiles.head_id, results)

    def search(self, images: Sequence | None = None, texts: Sequence[str] | None = None, k: int = DEFAULT_ARTISTS,
               labels: Sequence[str] | None = None) -> ArtistSearchResult:
        """Artists ranked for image and/or text references; ``labels`` names the image references in
        the answer (file names on the command line, "upload 1" in the API)."""
        images, texts = list(images or []), [t for t in (texts or []) if t is not None]
        if not images and not texts:
            raise ArtlensError("give at least one reference", "use --like FILE (repeatable) or --text \"...\"")
        parts, references = [], []
        if images:
            parts.append(self.embed_images(images))
            names = list(labels) if labels else [f"image {i + 1}" for i in range(len(images))]
            references += [{"kind": "image", "name": n} for n in names]
        if texts:
            parts.append(self.embed_texts(texts))
            references += [{"kind": "text", "text": t} for t in texts if t.strip()]
        return self.search_vectors(np.concatenate(parts), references, k)
