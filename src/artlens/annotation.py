"""Annotation: predict the label columns of an artwork (artist, style, genre, medium, ...) with their
top-k classes and probabilities.

A column the collection's learned head was trained on is predicted by the head's classifier over the
learned embedding; any other column by a logistic-regression probe on the pretrained content and
style vectors, fitted on the collection's labelled artworks.

Every prediction also says how near the image is to the labelled artworks it was learned from: a
``weak`` one has no labelled artwork as near as almost every labelled artwork has another (see
:class:`Familiarity`), so its labels are guesses however confident the probabilities look.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
from PIL import Image

from artlens.collection import LEARNED_ASPECT, Collection
from artlens.errors import ArtlensError
from artlens.files import write_arrays
from artlens.metrics import topk_accuracy
from artlens.search import SearchEngine
from artlens.devices import cpu_threads
from artlens.train.split import SPLIT_COLUMN, collection_split

MAX_CLASSES = 200
PROBE_ASPECTS = ("content", "style")
PROBE_C = 1.0  # inverse regularisation of the probe (benchmarks/learned.py, wikiart_styles)
WEAK_PERCENTILE = 5.0  # a match is weak below this percentile of the labelled works' nearest-neighbour similarities
FAMILIARITY_SAMPLE = 2000  # labelled works whose nearest neighbour measures the threshold


class LabelScore(TypedDict):
    label: str
    probability: float


class ColumnPrediction(TypedDict):
    """The prediction of one column for one image."""

    method: str  # "head" or "probe"
    top: list[LabelScore]  # most probable first
    nearest: float  # similarity of the nearest labelled artwork (mean cosine over the model's aspects)
    threshold: float  # the collection's weak-match threshold for this column (see Familiarity)
    weak: bool  # nearest < threshold: the nearest labelled works are far, the labels are guesses


DEFAULT_CLASSES = 3  # predicted classes shown per column


def label_column_problem(column: str, values: dict[int, str]) -> str | None:
    """Why a metadata column is not a label column, or None when it is one: 2 to 200 classes, at
    least 3 artworks per class on average, not numbers, not long text, not the split column."""
    counts = Counter(values.values())
    if column == SPLIT_COLUMN:
        return "is the train/test split"
    if not counts:
        return "has no values"
    if len(counts) == 1:
        return f"has a single value ({next(iter(counts))!r}) for all {len(values)} artworks that have it"
    if len(counts) > MAX_CLASSES:
        return f"has {len(counts)} values (a label column has at most {MAX_CLASSES})"
    if len(values) < 3 * len(counts):
        return (f"has {len(counts)} values for {len(values)} artworks (a label column has about 3 artworks "
                f"per value or more)")
    if all(_is_number(v) for v in counts):
        return "holds numbers"
    if max(len(v) for v in counts) > 100:
        return "holds long text"
    return None


def label_columns(catalog) -> list[str]:
    """Metadata columns that look like labels (see :func:`label_column_problem`)."""
    return [c for c in catalog.metadata_columns() if label_column_problem(c, catalog.column(c)) is None]


def no_label_columns_error(catalog) -> ArtlensError:
    """The error of a collection without label columns, saying why each column is not one."""
    problems = [f"{column!r} {problem}" for column in catalog.metadata_columns()
                if (problem := label_column_problem(column, catalog.column(column))) is not None]
    why = "; ".join(problems) if problems else "it has no metadata"
    return ArtlensError(f"this collection has no label columns to predict: {why}",
                        "ingest it with a --labels CSV whose columns (artist, style, genre, ...) each have 2 to "
                        f"{MAX_CLASSES} values, with several artworks per value")


class Familiarity:
    """How near an image is to the labelled artworks a column was learned from.

    ``nearest`` is the similarity of the image's nearest labelled artwork (cosine, averaged over the
    aspects). The ``threshold`` is measured on the collection: the ``WEAK_PERCENTILE``-th percentile of
    the similarity of each labelled artwork (up to ``FAMILIARITY_SAMPLE`` of them) to its nearest
    other labelled artwork. Below it, an image is farther from every labelled work than almost every
    labelled work is from another.
    """

    def __init__(self, vectors: np.ndarray, n_aspects: int, seed: int = 0):
        # unit vectors per aspect, concatenated: a dot product over sqrt(n) scaled rows is the mean cosine
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32) / np.sqrt(max(1, n_aspects))
        self.n_aspects = n_aspects
        self.threshold = self._measure(seed)

    def _measure(self, seed: int) -> float:
        n = len(self.vectors)
        if n < 2:
            return -1.0  # nothing to compare with: no match is called weak
        rows = np.arange(n)
        if n > FAMILIARITY_SAMPLE:
            rows = np.sort(np.random.default_rng(seed).choice(n, FAMILIARITY_SAMPLE, replace=False))
        nearest = np.empty(len(rows), dtype=np.float32)
        for start in range(0, len(rows), 256):
            block = rows[start : start + 256]
            sims = self.vectors[block] @ self.vectors.T
            sims[np.arange(len(block)), block] = -np.inf  # leave the work itself out
            nearest[start : start + len(block)] = sims.max(axis=1)
        return float(np.percentile(nearest, WEAK_PERCENTILE))

    def nearest(self, query: np.ndarray) -> float:
        """Similarity of the nearest labelled artwork to a query (its aspects' vectors, concatenated)."""
        if not len(self.vectors):
            return -1.0
        return float((self.vectors @ (np.asarray(query, dtype=np.float32) / np.sqrt(self.n_aspects))).max())


@dataclass
class ColumnModel:
    """How one column is predicted: by the ``head`` classifier over the learned aspect, or a ``probe``
    on the concatenated pretrained ``aspects``."""

    column: str
    method: str
    classes: list[str]
    aspects: list[str]
    model: object  # the head, or a fitted LinearProbe
    n_train: int
    labelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # ids it learned from

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities over ``classes`` for vectors of ``aspects``, concatenated in that order."""
        return self.model.predict_proba(x)


class Annotator:
    """Predicts label columns for artworks of a collection or for new images."""

    def __init__(self, collection: Collection, head=None):
        self.collection = collection
        self.head = head if head is not None else collection.head()
        if head is not None:
            collection.attach_head(head)
        self.models: dict[str, ColumnModel] = {}
        self._familiarity: dict[tuple, Familiarity] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_collection(cls, collection: Collection, head=None) -> Annotator:
        """An annotator fitted on every label column of ``collection``; a collection without one is an
        error that says why each of its columns is not one."""
        columns = label_columns(collection.catalog)
        if not columns:
            raise no_label_columns_error(collection.catalog)
        annotator = cls(collection, head)
        annotator.fit(columns)
        return annotator

    def probe_aspects(self) -> list[str]:
        indexed = self.collection.indexed_aspects()
        aspects = [a for a in PROBE_ASPECTS if a in indexed]
        if not aspects:
            raise ArtlensError("no content or style index to annotate from", "run `artlens ingest DIR --collection PATH`")
        return aspects

    def fit(self, columns: Sequence[str], train_ids: dict[str, Sequence[int]] | None = None, seed: int = 0) -> None:
        """Prepare a model per column; a probe learns from ``train_ids[column]`` (all labelled artworks
        by default)."""

        for column in columns:
            labels = self.collection.catalog.labels(column)
            if self.head is not None and self.head.has_classifier and self.head.config.label == column:
                classes = list(self.head.config.classes)
                labelled = np.array(sorted(i for i, v in labels.items() if v in set(classes)), dtype=np.int64)
                self.models[column] = ColumnModel(column, "head", classes, [LEARNED_ASPECT], self.head,
                                                  len(self.head.split.get("train", [])), labelled)
                continue
            ids = sorted(labels if train_ids is None else set(train_ids[column]) & set(labels))
            aspects = self.probe_aspects()
            got, x = self.vectors(ids, aspects)
            y = np.array([labels[i] for i in got])
            if len(set(y)) < 2:
                raise ArtlensError(f"fewer than two classes of {column!r} to learn from", "label more artworks")
            # a probe on every labelled artwork is kept in the collection until its data changes
            cache = self.collection.root / "heads" / f"probe-{column}.npz" if train_ids is None else None
            fingerprint = self._fingerprint(aspects, got, y, seed)
            probe = LinearProbe.load(cache, fingerprint) if cache is not None and cache.exists() else None
            if probe is None:
                probe = fit_probe(x, y, seed)
                if cache is not None:
                    probe.save(cache, fingerprint)
            self.models[column] = ColumnModel(column, "probe", [str(c) for c in probe.classes_], aspects, probe, len(y),
                                              got)

    def _fingerprint(self, aspects: Sequence[str], ids: np.ndarray, y: np.ndarray, seed: int) -> str:
        digest = hashlib.sha1(json.dumps([PROBE_C, seed, [
            (a, self.collection.index(a).manifest.extractor_id, self.collection.index(a).manifest.built_at)
            for a in aspects]]).encode())
        digest.update(np.asarray(ids, dtype=np.int64).tobytes())
        digest.update("\n".join(map(str, y)).encode())
        return digest.hexdigest()

    def vectors(self, ids: Sequence[int], aspects: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors of the artworks that have every aspect, concatenated in ``aspects`` order."""
        per = {a: self.collection.index(a) for a in aspects}
        have = set(ids)
        for index in per.values():
            have &= set(index.ids().tolist())
        got = np.array(sorted(have), dtype=np.int64)
        return got, np.hstack([per[a].vectors(got) for a in aspects]) if len(got) else np.zeros((0, 0))

    def predict_ids(self, column: str, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids that could be predicted, probabilities over ``models[column].classes``)."""
        model = self.models[column]
        got, x = self.vectors(ids, model.aspects)
        return got, model.predict_proba(x)

    def familiarity(self, column: str) -> Familiarity:
        """How near images are to the artworks ``column`` learned from; measured once, then kept."""
        model = self.models[column]
        key = (tuple(model.aspects), hashlib.sha1(model.labelled.tobytes()).hexdigest())
        with self._lock:
            if key not in self._familiarity:
                _, x = self.vectors(model.labelled, model.aspects)
                self._familiarity[key] = Familiarity(x.reshape(len(x), -1), len(model.aspects))
            return self._familiarity[key]

    def annotate_image(self, image: Image.Image | bytes | str, k: int = DEFAULT_CLASSES) -> dict[str, ColumnPrediction]:
        """Top-``k`` classes with probabilities for every fitted column, for an image (decoded, a path
        or bytes), and whether the nearest labelled works are far (``weak``)."""
        needed = sorted({a for model in self.models.values() for a in model.aspects})
        vectors = SearchEngine(self.collection).image_vectors(image, needed)
        out: dict[str, ColumnPrediction] = {}
        for column, model in self.models.items():
            x = np.hstack([vectors[a] for a in model.aspects])
            proba = model.predict_proba(x[None, :])[0]
            order = np.argsort(-proba)[:k]
            familiarity = self.familiarity(column)
            nearest = familiarity.nearest(x)
            out[column] = ColumnPrediction(
                method=model.method,
                top=[LabelScore(label=model.classes[j], probability=round(float(proba[j]), 4)) for j in order],
                nearest=round(nearest, 4), threshold=round(familiarity.threshold, 4),
                weak=bool(nearest < familiarity.threshold))
        return out


def evaluate_annotation(collection, columns: Sequence[str], split: str = "test", head=None, seed: int = 0,
                        skipped: dict[str, str] | None = None) -> dict:
    """Top-1 / top-3 accuracy per column on a held-out split; probes learn from the other splits.
    With a ``skipped`` dict, a column that cannot be split or learned (a class of one artwork, say)
    is left out with its reason recorded there, and only a run that scores no column fails."""
    annotator = Annotator(collection, head)
    splits = {}
    for column in columns:
        try:
            splits[column] = collection_split(collection, column, annotator.head, seed)
            annotator.fit([column], {column: [i for i, s in splits[column].items() if s != split]}, seed)
        except ArtlensError as exc:
            if skipped is None:
                raise
            skipped[column] = exc.message
            splits.pop(column, None)
    if not splits:
        reasons = "; ".join(f"{c}: {r}" for c, r in (skipped or {}).items())
        raise ArtlensError(f"no label column can be scored ({reasons})",
                           "label more artworks per class, or pass --label COLUMN with a column whose classes "
                           "each have several artworks")
    result = {}
    for column in splits:
        model = annotator.models[column]
        labels = collection.catalog.column(column)
        test = [i for i, s in splits[column].items() if s == split and labels.get(i) in model.classes]
        got, proba = annotator.predict_ids(column, test)
        truth = np.array([model.classes.index(labels[int(i)]) for i in got])
        result[column] = {"method": model.method, "top1": topk_accuracy(proba, truth, 1),
                          "top3": topk_accuracy(proba, truth, 3), "n_test": len(got), "n_train": model.n_train,
                          "classes": len(model.classes)}
    return result


@dataclass
class LinearProbe:
    """A fitted multinomial logistic regression: ``softmax(x @ coef.T + intercept)`` over ``classes_``."""

    classes_: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path, fingerprint: str) -> None:
        write_arrays(path, classes=self.classes_.astype(str), coef=self.coef, intercept=self.intercept,
                     fingerprint=np.array(fingerprint))

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> "LinearProbe | None":
        """The probe saved at ``path`` if it was fitted on exactly the same data, else None."""
        try:
            data = np.load(path)
            if str(data["fingerprint"]) != fingerprint:
                return None
            return cls(data["classes"], data["coef"], data["intercept"])
        except (OSError, KeyError, ValueError):
            return None


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int = 0, c: float = PROBE_C) -> LinearProbe:
    """Multinomial logistic regression on L2-normalised aspect vectors (not standardised: scaling every
    dimension to unit variance lets the many weak ones drown the few that separate classes)."""
    # scikit-learn loads slowly: imported only when a probe is fitted
    from sklearn.linear_model import LogisticRegression

    with cpu_threads(1):
        model = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn's binary form: one row; as a softmax it is [-z/2, z/2]
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return LinearProbe(np.asarray(model.classes_), coef, intercept)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
