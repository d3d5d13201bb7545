"""Evaluation on a held-out split the server may hold: in a simulation, the test split of the
partitioned collection (never dealt to any institution); in a deployment, an optional public
evaluation collection. Scores are those of a central run: retrieval mAP (relevant = same label),
accuracy (the head's classifier; fedstyle's is its global prototypes) and the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.metrics import leave_self_out_map
from artlens.models.inputs import FeatureSet, gather_features
from artlens.train.config import TrainConfig
from artlens.train.split import SPLITS, config_split


@dataclass
class HeldOut:
    """A labelled evaluation set: features and label values (coded when the classes are known)."""

    features: FeatureSet
    values: list[str]
    source: str

    @classmethod
    def from_collection(cls, path: str, specs, label: str, split: str = "test", seed: int = 0,
                        training: TrainConfig | None = None) -> "HeldOut":
        """The ``split`` of ``path``'s labelled artworks: the split a central run with ``training`` (default:
        ``TrainConfig(seed=seed)``, the grouped split of ``artlens train``) holds out."""
        training = training or TrainConfig(seed=seed)
        collection = Collection.open(path)
        try:
            values = collection.catalog.column(label)
            if split == "all":
                ids = sorted(values)
            elif split in SPLITS:
                ids = sorted(i for i, s in config_split(collection, label, training, fall_back=True).items() if s == split)
            else:
                raise ArtlensError(f"unknown evaluation split {split!r}", "use test, val or all")
            if len(ids) < 2:
                raise ArtlensError(f"the {split} split of {path} has {len(ids)} labelled artwork(s)",
                                   "evaluate on a collection with more labelled artworks")
            features = gather_features(collection, specs, ids)
            return cls(features, [values[int(i)] for i in features.ids], f"{path} ({split})")
        finally:
            collection.close()

    def coded(self, classes: Sequence[str]) -> FeatureSet:
        """The rows whose label is one of ``classes``, coded by it."""
        index = {c: i for i, c in enumerate(classes)}
        keep = np.flatnonzero([v in index for v in self.values])
        data = self.features.subset(keep)
        data.labels = np.asarray([[index[self.values[r]]] for r in keep], dtype=np.int64)
        return data

    def score(self, head) -> dict[str, float]:
        data = self.coded(head.config.classes)
        emb = head.embed(data.inputs, data.present)
        codes = data.labels[:, 0]
        out = {"test-map": leave_self_out_map(emb, codes), "test-n": float(len(data))}
        if head.has_classifier:
            with torch.no_grad():
                logits = head.logits(torch.from_numpy(emb))
                target = torch.from_numpy(codes)
                out["test-loss"] = float(F.cross_entropy(logits, target))
                out["test-acc"] = float((logits.argmax(dim=1) == target).float().mean())
        return out
