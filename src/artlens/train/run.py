"""Train a head on a collection: choose its inputs, gather cached features and labels, split,
train, and score the test split (``train_collection_head``, for the benchmarks); and the use case
behind ``artlens train``: make that head the collection's ``learned`` aspect and write its files
(``train_learned_aspect``)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from artlens.errors import ArtlensError
from artlens.features import create_extractor
from artlens.metrics import leave_self_out_map
from artlens.models import InputSpec, create_head
from artlens.models.inputs import FeatureSet, gather_features
from artlens.progress import QUIET, Reporter
from artlens.train.config import TrainConfig
from artlens.train.curves import plot_curves, write_metrics
from artlens.devices import cpu_threads
from artlens.train.loop import History, train_head
from artlens.train.privacy import check_private_loss
from artlens.train.split import GROUP_FEATURES, SPLIT_COLUMN, SPLITS, config_split
from artlens.vectors import l2_normalise

DEFAULT_FEATURES = ("content", "style", "text")


@dataclass
class TrainingRun:
    head: object
    history: History
    test: dict[str, float]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    indexed: int | None = None  # artworks indexed as the collection's `learned` aspect (None: not attached)
    files: list[str] = field(default_factory=list)  # head files written
    split: dict = field(default_factory=dict)  # how the split was made (split_record)
    pretrained: dict[str, float] = field(default_factory=dict)  # test mAP of each pretrained input, same split
    random_split: dict | None = None  # the same training on a random split, for comparison (or None)

    def summary(self) -> dict:
        attached = {} if self.indexed is None else {"indexed": self.indexed, "files": self.files}
        attached |= {} if self.random_split is None else {"random_split": self.random_split}
        return {"head": self.head.id, "label": self.head.config.label, "loss": self.head.info.get("loss"),
                "inputs": [s.extractor for s in self.head.config.inputs], "counts": self.counts,
                "best_epoch": self.history.best_epoch, "epochs_run": len(self.history.epochs),
                "stopped_early": self.history.stopped_early, "best_val": self.history.best,
                "test": self.test, "privacy": self.history.privacy, "notes": self.notes,
                "seconds": round(self.seconds, 2), "split": self.split, "pretrained": self.pretrained,
                **attached}


def resolve_inputs(collection, features: Sequence[str], config: TrainConfig) -> tuple[list[InputSpec], list[str]]:
    """Aspect names (content, style, text, ...) or extractor names -> input specs. Text is left out,
    with a note, when no artwork of the collection has any."""
    specs: dict[str, InputSpec] = {}
    notes: list[str] = []
    for name in features:
        name = name.strip()
        aspect = collection.config.aspects.get(name)
        extractor = create_extractor(aspect.extractor if aspect else name)
        optional = extractor.modality == "text"
        if optional and not collection.texts():
            notes.append(f"{name}: no artwork has text in {', '.join(collection.config.text_columns)}; left out")
            continue
        specs[extractor.name] = InputSpec(extractor.name, extractor.id, extractor.modality, extractor.dim,
                                          config.head.reduce_for(extractor.dim), optional)
    if not specs:
        raise ArtlensError("no input features left for the head", "pass --features content,style (and text)")
    if all(s.optional for s in specs.values()):  # text alone: artworks without text cannot be embedded
        specs = {k: dataclasses.replace(s, optional=False) for k, s in specs.items()}
    return list(specs.values()), notes


def labelled_features(collection, specs: Sequence[InputSpec], columns: Sequence[str]) -> tuple[FeatureSet, list[list[str]]]:
    """Features of the artworks labelled in the first column, with integer codes of every column."""
    labels = [collection.catalog.labels(c) for c in columns]
    features = gather_features(collection, specs, sorted(labels[0]), extract=False)
    for spec in specs:
        if spec.optional and not features.present[spec.extractor].any():
            raise ArtlensError(f"{spec.extractor} features are not extracted in {collection.root}",
                               "add --extract to compute them, or leave it out of --features")
    classes = [sorted(set(col.values())) for col in labels]
    codes = np.full((len(features), len(columns)), -1, dtype=np.int64)
    for j, (col, names) in enumerate(zip(labels, classes)):
        index = {c: k for k, c in enumerate(names)}
        codes[:, j] = [index.get(col.get(int(i)), -1) for i in features.ids]
    features.labels = codes
    return features, classes


def split_features(collection, features: FeatureSet, label: str, config: TrainConfig,
                   kind: str | None = None) -> dict[str, FeatureSet]:
    """The train / val / test parts of ``features`` by ``config``'s split (``kind`` overrides its kind)."""
    by_id = config_split(collection, label, config, kind)
    names = np.array([by_id.get(int(i), "train") for i in features.ids])
    parts = {name: features.subset(np.flatnonzero(names == name)) for name in SPLITS}
    for name in SPLITS:
        if len(parts[name]) == 0 and not (name == "test" and config.test_fraction == 0):
            raise ArtlensError(f"the {name} split of {label!r} is empty",
                               "label more artworks, or fix the collection's split column")
    if len(np.unique(parts["train"].labels[:, 0])) < 2:
        raise ArtlensError(f"the train split of {label!r} has fewer than two classes", "label more artworks")
    return parts


def split_record(collection, config: TrainConfig, kind: str | None = None) -> dict:
    """How the split was made, as stored with the head and shown in the summary."""
    kind = kind or config.split
    if SPLIT_COLUMN in collection.catalog.metadata_columns():
        return {"kind": "column", "by": SPLIT_COLUMN, "seed": config.seed}
    if kind == "random":
        return {"kind": "random", "by": "stratified by label", "seed": config.seed}
    by = config.group_by or f"k-means clusters of {' + '.join(GROUP_FEATURES)} features (~{config.group_size} each)"
    return {"kind": "grouped", "by": by, "seed": config.seed}


def pretrained_scores(data: FeatureSet) -> dict[str, float]:
    """Retrieval mAP within ``data`` of each input every artwork has (raw pretrained vectors, cosine):
    what the head is measured against on the same split."""
    if len(data) < 2:
        return {}
    codes = data.labels[:, 0]
    return {name: leave_self_out_map(l2_normalise(x), codes) for name, x in data.inputs.items()
            if name not in data.present}


def build_head(specs: Sequence[InputSpec], label: str, classes: Sequence[str], config: TrainConfig, kind: str = "fusion"):
    torch.manual_seed(config.seed)
    return create_head(kind, config.head_config(specs, label, classes))


def score_head(head, data: FeatureSet) -> dict[str, float]:
    """Retrieval mAP within ``data`` and top-1 / top-3 accuracy of the head's classifier."""
    emb = head.embed(data.inputs, data.present)
    codes = data.labels[:, 0]
    out = {"map": leave_self_out_map(emb, codes), "n": len(data)}
    if head.has_classifier:
        proba = head.predict_proba(emb)
        top = np.argsort(-proba, axis=1)[:, :3]
        out["top1"] = float(np.mean(top[:, 0] == codes))
        out["top3"] = float(np.mean((top == codes[:, None]).any(axis=1)))
    return out


def train_collection_head(collection, label: str, features: Sequence[str] = DEFAULT_FEATURES,
                          config: TrainConfig = TrainConfig(), reporter: Reporter = QUIET,
                          kind: str = "fusion", split: str | None = None) -> TrainingRun:
    """Train a head on ``label`` (``"style"``, or ``"style,genre"``: the first column names the classifier,
    all of them define triplet / supcon relevance) and score it on the test split, beside the pretrained
    inputs on the same split. ``split`` overrides ``config.split`` (grouped or random). Nothing is written."""
    start = time.perf_counter()
    columns = [c.strip() for c in label.split(",") if c.strip()]
    if not columns:
        raise ArtlensError("no label column given", "pass --label COLUMN, e.g. --label style")
    if config.private:
        check_private_loss(config.loss)
    specs, notes = resolve_inputs(collection, features, config)
    data, classes = labelled_features(collection, specs, columns)
    parts = split_features(collection, data, columns[0], config, split)
    how = split_record(collection, config, split)
    # under record-level DP the input transforms are fitted on the validation split, which the
    # guarantee does not cover (train.privacy), so that no exact statistic of a training artwork is kept
    fitted_on = parts["val"] if config.private else parts["train"]
    # a PCA cannot have more components than the artworks it is fitted on (tiny collections)
    specs = [dataclasses.replace(s, reduce_dims=min(s.reduce_dims, len(fitted_on) - 1)) if s.reduce_dims else s
             for s in specs]
    head = build_head(specs, columns[0], classes[0], config, kind)
    with cpu_threads(config.threads):
        head.fit_inputs(fitted_on.inputs, fitted_on.present, config.seed)
        history = train_head(head, parts["train"], parts["val"], config, reporter)
        test = score_head(head, parts["test"]) if len(parts["test"]) else {}
        pretrained = pretrained_scores(parts["test"])
    counts = {name: len(part) for name, part in parts.items()}
    head.split = {name: list(part.keys) for name, part in parts.items()}
    head.info = {"labels": columns, "loss": config.loss, "config": config.as_dict(), "counts": counts,
                 "best_epoch": history.best_epoch, "best_val": history.best, "test": test,
                 "trained_on": str(collection.root), "seconds": history.seconds, "notes": notes,
                 "privacy": history.privacy, "split": how, "pretrained": pretrained}
    head.weights_changed()
    return TrainingRun(head, history, test, counts, notes, time.perf_counter() - start, split=how, pretrained=pretrained)


def random_split_check(collection, label: str, features: Sequence[str], config: TrainConfig,
                       reporter: Reporter = QUIET) -> dict | None:
    """The same training on a random (stratified) split, for comparison with the grouped figure: its
    test scores and the pretrained inputs' on that split (None when the run already trains on a random
    split or the collection has a split column)."""
    if config.split == "random" or SPLIT_COLUMN in collection.catalog.metadata_columns() or config.test_fraction == 0:
        return None
    reporter.step("the same training on a random split, for comparison")
    run = train_collection_head(collection, label, features, config, reporter, split="random")
    return {"test": run.test, "pretrained": run.pretrained, "counts": run.counts, "best_epoch": run.history.best_epoch}


def train_learned_aspect(collection, label: str, features: Sequence[str] = DEFAULT_FEATURES,
                         config: TrainConfig = TrainConfig(), out: str | Path | None = None, extract: bool = False,
                         reporter: Reporter = QUIET, device: str | None = None,
                         compare_random: bool = True) -> TrainingRun:
    """Train a head (``train_collection_head``) and make it the collection's ``learned`` aspect: saved
    as its head file (and to ``out``), each with its per-epoch metrics (.metrics.json) and curves
    (.curves.png), and indexed. ``extract``: first compute the input features the collection lacks
    (on ``device``, default auto; the head trains on ``config.device``). ``compare_random``: also train
    on a random split (not kept) and report its figures beside the grouped ones (``random_split_check``)."""
    features = [f.strip() for f in features if f.strip()]
    if extract:
        specs, _ = resolve_inputs(collection, features, config)
        collection.extract([s.extractor for s in specs], reporter=reporter, device=device)
    run = train_collection_head(collection, label, features, config, reporter)
    if compare_random:
        run.random_split = random_split_check(collection, label, features, config, reporter)
        run.head.info["random_split"] = run.random_split
    extra = {"summary": run.summary(), "config": config.as_dict()}
    run.indexed = collection.attach_head(run.head, persist=True)
    targets = [Path(collection.head_file())] + ([Path(out)] if out else [])
    for target in targets:
        if target != targets[0]:
            run.head.save(target)
        write_metrics(run.history, target.with_suffix(".metrics.json"), extra)
        plot_curves(run.history, target.with_suffix(".curves.png"), f"{label} ({config.loss}) on {collection.root.name}")
    run.files = [str(t) for t in targets]
    return run
