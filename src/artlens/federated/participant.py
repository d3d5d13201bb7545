"""An institution's side of the protocol, free of Flower: each method takes the server's arrays and
settings and returns only model weights and aggregate statistics (sums, counts, mean metrics) over
the institution's own artworks. ``client_app`` wraps these methods in Flower message handlers.

Replies never hold an image, a path, a content key, a per-artwork vector or a per-artwork label; the
message-inspection test checks this for every message type.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.federated.config import FederatedConfig
from artlens.federated.head import (
    anchors,
    build_head,
    config_from_json,
    fingerprint,
    head_arrays,
    load_head_arrays,
    load_transforms,
)
from artlens.federated.institution import (
    InstitutionData,
    InstitutionSource,
    load_institution,
)
from artlens.federated.local import (
    VirtualStyles,
    evaluate_locally,
    local_prototypes,
    train_locally,
    virtual_prototypes,
)
from artlens.federated.transforms import local_statistics, local_style_statistics
from artlens.models import FusionHead
from artlens.train.objectives import Prepared

_DATA: dict[tuple, InstitutionData] = {}  # per process: a simulated institution reads its data once
_PREPARED: dict[tuple, Prepared] = {}  # its inputs through the run's fixed transforms, computed once per run


@dataclass
class Settings:
    """What the server decided (head shape, classes, federation settings), as an institution keeps it."""

    head_json: str
    federation: FederatedConfig

    def to_record(self) -> dict[str, str]:
        return {"head": self.head_json, "federation": json.dumps(self.federation.to_run_config(), sort_keys=True)}

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> "Settings":
        if "head" not in record or "federation" not in record:
            raise ArtlensError("the server sent no head settings", "run the same artlens version everywhere")
        return cls(str(record["head"]), FederatedConfig.from_run_config(json.loads(str(record["federation"]))))

    @property
    def head_config(self):
        return config_from_json(self.head_json)


class Participant:
    """One institution answering the server. ``transforms``: the fitted input transforms it keeps."""

    def __init__(self, source: InstitutionSource, settings: Settings, transforms: Mapping[str, np.ndarray] | None = None,
                 styles: Mapping[str, np.ndarray] | None = None):
        torch.set_num_threads(1)  # several institutions share a machine in a simulation
        self.source = source
        self.settings = settings
        self.config = settings.federation
        self.transforms = transforms
        self.styles = styles  # fedstyle: the federation's per-style input moments (virtual styles)
        self.who = f"institution {source.name!r}"

    # -- data -----------------------------------------------------------------------------------
    def _data_key(self) -> tuple:
        head_config = self.settings.head_config
        return (self.source.name, self.source.collection, self.source.keys_file, self.source.features,
                tuple(head_config.inputs), head_config.label, self.config.training)

    def data(self) -> InstitutionData:
        key = self._data_key()
        if key not in _DATA:
            head_config = self.settings.head_config
            _DATA[key] = load_institution(self.source, head_config.inputs, head_config.label,
                                          training=self.config.training)
        return _DATA[key]

    def prepared(self, head, split: str) -> Prepared | None:
        """A split with the head's fixed input transforms applied, kept for the run's later rounds."""
        digest = hashlib.sha1()
        for name in sorted(self.transforms or {}):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.transforms[name]).tobytes())
        key = (self._data_key(), split, tuple(head.config.classes), digest.hexdigest())
        if key not in _PREPARED:
            data = self.data().coded(split, head.config.classes)
            if data is None:
                return None
            if len(_PREPARED) > 64:
                _PREPARED.clear()
            _PREPARED[key] = Prepared(head, data)
        return _PREPARED[key]

    def head(self, with_transforms: bool = True):
        head = build_head(self.settings.head_config, self.config.training.seed)
        if with_transforms:
            if not self.transforms:
                raise ArtlensError(f"{self.who} has not received the input transforms of this run",
                                   "restart its client so that it joins the next run from the start")
            load_transforms(head, self.transforms)
        return head

    @property
    def salt(self) -> int:
        return zlib.crc32(self.source.name.encode())

    @property
    def fedstyle(self) -> bool:
        return self.config.strategy == "fedstyle"

    def check_fingerprint(self, value: str | None) -> None:
        mine = fingerprint(self.settings.head_config)
        if value and value != mine:
            raise ArtlensError(f"{self.who} holds head settings {mine}, the server trains {value}",
                               "restart this client so that it joins the current run from the start")

    # -- protocol -------------------------------------------------------------------------------
    def describe(self) -> tuple[dict, dict]:
        """Which classes this institution holds and how many artworks: (config values, metrics)."""
        data = self.data()
        info = {"institution": self.source.name, "classes": data.classes, "class-counts": data.class_counts()}
        if data.notes:
            info["notes"] = list(data.notes)
        return info, {"num-examples": len(data.train), "num-val": 0 if data.val is None else len(data.val)}

    def statistics(self, stage: str, arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
        head = self.head(with_transforms=False)
        if stage in ("moments", "styles"):
            load_transforms(head, arrays)
        data = self.data().coded("train", head.config.classes)
        if stage == "styles":
            return local_style_statistics(head, data)
        return local_statistics(head, data, stage, arrays)

    def prototypes(self, arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
        """The packed per-class statistics of the initial model (fedstyle's first anchors)."""
        head = self.head()
        load_head_arrays(head, arrays, self.fedstyle, self.who)
        data = self.prepared(head, "train")
        return self._prototypes(head, data, 0), {"num-examples": len(data)}

    def _prototypes(self, head, data: Prepared, server_round: int) -> dict[str, np.ndarray]:
        """fedstyle's per-style statistics: of this institution's artworks, or, under record-level DP
        (whose accountant covers the weights only), of virtual artworks of the federation's styles."""
        if self.config.training.private:
            if not self.styles:
                raise ArtlensError(f"{self.who} has no style statistics for record-level DP's virtual prototypes",
                                   "run fedstyle with virtual styles (--virtual-styles) under --dp-records")
            return virtual_prototypes(head, VirtualStyles(head, self.styles), self.salt + server_round)
        return local_prototypes(head, data)

    def train(self, arrays: Mapping[str, np.ndarray], server_round: int) -> tuple[dict, dict]:
        head = self.head()
        load_head_arrays(head, arrays, self.fedstyle, self.who)
        data = self.prepared(head, "train")
        anchor, present = anchors(arrays) if self.fedstyle else (None, None)
        virtual = VirtualStyles(head, self.styles) if self.fedstyle and self.styles and self.config.virtual_styles else None
        stats = train_locally(head, data, self.config, server_round, self.salt, anchor, present, virtual)
        out = head_arrays(head, self.fedstyle, self._prototypes(head, data, server_round) if self.fedstyle else None)
        metrics = {"num-examples": len(data), "unit-weight": 1, "train-loss": float(stats.get("loss", 0.0)),
                   "train-acc": float(stats.get("acc", 0.0))}
        if "epsilon" in stats:
            metrics["record-epsilon"] = float(stats["epsilon"])
        return out, metrics

    def evaluate(self, arrays: Mapping[str, np.ndarray]) -> dict:
        """Loss, accuracy and mAP of the global head on this institution's validation artworks (its
        training artworks when it has none)."""
        head = self.head()
        load_head_arrays(head, arrays, self.fedstyle, self.who)
        data = self.data()
        split = "val" if data.val is not None and len(data.val) >= 2 else "train"
        coded = self.prepared(head, split)
        anchor, present = anchors(arrays) if self.fedstyle else (None, None)
        scores = evaluate_locally(head, coded, self.config, anchor, present)
        return {"num-examples": len(coded), "unit-weight": 1, "val-loss": float(scores.get("loss", 0.0)),
                "val-acc": float(scores.get("acc", 0.0)), "val-map": float(scores.get("map", 0.0))}

    def keep_result(self, state: Mapping[str, np.ndarray], head_json: str, info_json: str) -> dict:
        """The federation's final head: saved into this institution's collection as its `learned`
        aspect (like a centrally trained head), unless it asked not to be."""
        head = FusionHead(config_from_json(head_json))
        head.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        head.info = json.loads(info_json)
        head.eval()
        if not self.source.attach:
            return {"indexed": 0}
        collection = Collection.open(self.source.collection)
        try:
            return {"indexed": int(collection.attach_head(head, persist=True))}
        finally:
            collection.close()

