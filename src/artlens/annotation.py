"""Annotation: predict the label columns of an artwork (artist, style, genre, medium, ...) with their
top-k classes and probabilities.

A column the collection's learned head was trained on is predicted by the head's classifier over the
learned embedding; any other column by a logistic-regression probe on the pretrained content and
style vectors, fitted on the collection's labelled artworks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artlens.collection import LEARNED_ASPECT
from artlens.errors import ArtlensError
from artlens.train.split import SPLIT_COLUMN

MAX_CLASSES = 200
PROBE_ASPECTS = ("content", "style")
PROBE_C = 1.0  # inverse regularisation of the probe (benchmarks/learned.py, wikiart_styles)


def label_columns(catalog) -> list[str]:
    """Metadata columns that look like labels: 2 to 200 classes, at least 3 artworks per class on
    average, not numbers, not long text, not the split column."""
    columns = []
    for column in catalog.metadata_columns():
        values = catalog.column(column)
        counts = Counter(values.values())
        if column == SPLIT_COLUMN or not 2 <= len(counts) <= MAX_CLASSES or len(values) < 3 * len(counts):
            continue
        if all(_is_number(v) for v in counts) or max(len(v) for v in counts) > 100:
            continue
        columns.append(column)
    return columns


@dataclass
class ColumnModel:
    """How one column is predicted: by the ``head`` classifier over the learned aspect, or a ``probe``
    on the concatenated pretrained ``aspects``."""

    column: str
    method: str
    classes: list[str]
    aspects: list[str]
    model: object  # the head, or a fitted sklearn pipeline
    n_train: int

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities over ``classes`` for vectors of ``aspects``, concatenated in that order."""
        return self.model.predict_proba(x)


class Annotator:
    """Predicts label columns for artworks of a collection or for new images."""

    def __init__(self, collection, head=None):
        self.collection = collection
        self.head = head if head is not None else collection.head()
        if head is not None:
            collection.attach_head(head)
        self.models: dict[str, ColumnModel] = {}

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
                self.models[column] = ColumnModel(column, "head", list(self.head.config.classes), [LEARNED_ASPECT],
                                                  self.head, len(self.head.split.get("train", [])))
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
            self.models[column] = ColumnModel(column, "probe", [str(c) for c in probe.classes_], aspects, probe, len(y))

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

    def annotate_image(self, image, k: int = 3) -> dict[str, dict]:
        """Top-``k`` classes with probabilities for every fitted column, for an image path or bytes."""
        from artlens.search import SearchEngine

        needed = sorted({a for model in self.models.values() for a in model.aspects})
        vectors = SearchEngine(self.collection).image_vectors(image, needed)
        out = {}
        for column, model in self.models.items():
            proba = model.predict_proba(np.hstack([vectors[a] for a in model.aspects])[None, :])[0]
            order = np.argsort(-proba)[:k]
            out[column] = {"method": model.method,
                           "top": [{"label": model.classes[j], "probability": round(float(proba[j]), 4)} for j in order]}
        return out


def evaluate_annotation(collection, columns: Sequence[str], split: str = "test", head=None, seed: int = 0,
                        skipped: dict[str, str] | None = None) -> dict:
    """Top-1 / top-3 accuracy per column on a held-out split; probes learn from the other splits.
    With a ``skipped`` dict, a column that cannot be split or learned (a class of one artwork, say)
    is left out with its reason recorded there, and only a run that scores no column fails."""
    from artlens.metrics import topk_accuracy
    from artlens.train.split import collection_split

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
        np.savez(tmp, classes=self.classes_.astype(str), coef=self.coef, intercept=self.intercept,
                 fingerprint=np.array(fingerprint))
        tmp.replace(path)

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
    from sklearn.linear_model import LogisticRegression

    from artlens.train.loop import cpu_threads

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
