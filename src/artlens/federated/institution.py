"""One institution's own data: the labelled artworks of its collection (or of its partition), their
cached feature vectors and its train / validation split. Nothing here leaves the institution; the
client app turns it into weights and aggregate statistics only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artlens.collection import Collection
from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.federated.partition import read_keys
from artlens.models import InputSpec
from artlens.models.inputs import FeatureSet, check_extractors, gather_features
from artlens.train.config import TrainConfig
from artlens.train.split import config_split, stratified_split

MIN_EXAMPLES = 3  # below this an institution's sums (and sums of outer products) would give its artworks' vectors away


@dataclass
class InstitutionSource:
    """Where an institution keeps its data: its collection, and optionally the key file of its partition."""

    name: str
    collection: str
    keys_file: str = ""  # one content key per line; empty: every labelled artwork of the collection
    features: tuple[str, ...] = ()  # what this institution is set up for (empty: whatever the server asks)
    attach: bool = True  # make the federation's final head this collection's `learned` aspect
    listed: int = 0  # artworks its partition named before the held-out test ones were left out (0: unknown)


@dataclass
class InstitutionData:
    name: str
    train: FeatureSet
    val: FeatureSet | None
    labels: dict[str, list[str]]  # split -> label value of each row (kept here, never sent)
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels["train"]))

    def class_counts(self) -> list[int]:
        values = self.labels["train"]
        return [values.count(c) for c in self.classes]

    def coded(self, split: str, classes: Sequence[str]) -> FeatureSet | None:
        """The split's features with label codes of the federation's class list (-1: a class the
        federation does not know)."""
        data = self.train if split == "train" else self.val
        if data is None or len(data) == 0:
            return None
        index = {c: i for i, c in enumerate(classes)}
        data.labels = np.asarray([[index.get(v, -1)] for v in self.labels[split]], dtype=np.int64)
        return data


def load_institution(source: InstitutionSource, specs: Sequence[InputSpec], label: str, seed: int = 0,
                     training: TrainConfig | None = None) -> InstitutionData:
    """Read an institution's labelled artworks with every required input and split them as a central run
    with ``training`` would (default: ``TrainConfig(seed=seed)``: the grouped split); errors name the
    institution and what to do, so the federation can go on without it."""
    training = training or TrainConfig(seed=seed)
    who = f"institution {source.name!r}"
    if not Path(source.collection, "collection.toml").exists():
        raise ArtlensError(f"{who}: no artlens collection at {source.collection}",
                           "start its client with --collection pointing at its collection folder")
    try:
        check_extractors(specs)
    except ArtifactMismatchError as exc:
        raise ArtlensError(f"{who} computes features differently from the server: {exc.message}",
                           "run the same artlens version at every institution, or restart the server with "
                           "--features matching this institution's extractors") from exc
    wanted = [s.extractor for s in specs]
    if source.features and set(source.features) != set(wanted):
        raise ArtlensError(f"{who} is set up for features {','.join(source.features)} but the server trains a head "
                           f"on {','.join(wanted)}",
                           f"restart this client with --features {','.join(wanted)} (or the server with "
                           f"--features {','.join(source.features)})")
    collection = Collection.open(source.collection)
    try:
        if label not in collection.catalog.metadata_columns():
            raise ArtlensError(f"{who} has no {label!r} labels", f"ingest its artworks with a labels CSV that has a "
                               f"{label!r} column (artlens ingest DIR --labels CSV)")
        values = collection.catalog.column(label)
        md5s = collection.catalog.md5s()
        ids = sorted(i for i in values if i in md5s)
        if source.keys_file:
            mine = set(read_keys(source.keys_file))
            ids = [i for i in ids if md5s[i] in mine]
        features = _gather(collection, specs, ids, who) if ids else None
        if features is None or len(features) < MIN_EXAMPLES:
            n = 0 if features is None else len(features)
            held = (f"{source.listed} artwork(s) in its partition, {n} left for training after holding out the "
                    f"test split and unlabelled ones, with {', '.join(wanted)} features" if source.listed > n else
                    f"{n} labelled artwork(s) with {', '.join(wanted)} features")
            raise ArtlensError(f"{who} has {held}; at least {MIN_EXAMPLES} are needed",
                               "label and ingest more of its artworks (artlens ingest DIR --labels CSV), "
                               "or leave it out of the federation; the others go on without it")
        names, notes = _split(collection, label, features, values, training)
        train_rows = np.flatnonzero(names == "train")
        val_rows = np.flatnonzero(names == "val")
        if len(train_rows) < MIN_EXAMPLES:
            raise ArtlensError(f"{who} has only {len(train_rows)} training artwork(s) after holding out its "
                               "validation and test artworks", "label more of its artworks")
        ids_all = features.ids
        return InstitutionData(
            source.name, features.subset(train_rows), features.subset(val_rows) if len(val_rows) else None,
            {"train": [values[int(ids_all[r])] for r in train_rows], "val": [values[int(ids_all[r])] for r in val_rows]},
            notes)
    finally:
        collection.close()


def _gather(collection, specs, ids, who) -> FeatureSet:
    try:
        return gather_features(collection, specs, ids, extract=False)
    except ArtlensError as exc:
        raise ArtlensError(f"{who}: {exc.message}", exc.hint) from exc


def _split(collection, label, features: FeatureSet, values, training: TrainConfig) -> tuple[np.ndarray, list[str]]:
    """The collection's train/val/test split (the same as a central run's, grouped by default), or, where
    a class is too small for it, a per-class split that keeps small classes in training."""
    seed = training.seed
    try:
        by_id = config_split(collection, label, training, fall_back=True)
        return np.array([by_id.get(int(i), "train") for i in features.ids]), []
    except ArtlensError:
        pass
    labels = [values[int(i)] for i in features.ids]
    counts = {c: labels.count(c) for c in set(labels)}
    names = np.array(["train"] * len(labels), dtype=object)
    big = [r for r, c in enumerate(labels) if counts[c] >= 3]
    if big:
        names[big] = stratified_split([features.keys[r] for r in big], [labels[r] for r in big], seed=seed)
    small = sorted(c for c, n in counts.items() if n < 3)
    notes = [f"classes with fewer than 3 artworks train without validation: {', '.join(small)}"] if small else []
    return names, notes
