"""The shared head as the federation sees it: its input specs and shape (decided by the server), the
arrays that travel each round (trainable weights, plus the packed style prototypes of ``fedstyle``)
and the fitted input transforms (sent once, kept by each institution).

Everything here is numpy/torch only; the Flower records are built in ``client_app``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from artlens.config import CollectionConfig
from artlens.errors import ArtlensError
from artlens.features import create_extractor
from artlens.models import HeadConfig, HeadShape, InputSpec, create_head

PROTO_SUM = "fedstyle.sum"  # (classes, dim): sum of an institution's embeddings per class / its n
PROTO_COUNT = "fedstyle.count"  # (classes,): artworks per class / its n
PROTO_KEYS = (PROTO_SUM, PROTO_COUNT)
MIN_CLASS_COUNT = 3  # a class an institution holds fewer times stays out of its per-class sums: with its sum and
# sum of outer products, two artworks of a class can be solved for exactly; three leave them undetermined


def input_specs(features: Sequence[str], shape: HeadShape, aspects: Mapping | None = None) -> list[InputSpec]:
    """Aspect names (content, style, text: resolved with ``aspects``, default the standard collection's)
    or extractor names -> input specs. The server decides them without seeing any data."""
    aspects = aspects if aspects is not None else CollectionConfig().aspects
    specs: dict[str, InputSpec] = {}
    for name in features:
        name = name.strip()
        aspect = aspects.get(name)
        extractor = create_extractor(aspect.extractor if aspect else name)
        specs[extractor.name] = InputSpec(extractor.name, extractor.id, extractor.modality, extractor.dim,
                                          shape.reduce_for(extractor.dim), extractor.modality == "text")
    if not any(not s.optional for s in specs.values()):
        raise ArtlensError("a head needs at least one image input", "pass --features content,style")
    return list(specs.values())


def build_head(config: HeadConfig, seed: int = 0):
    torch.manual_seed(seed)
    return create_head("fusion", config)


def fingerprint(config: HeadConfig) -> str:
    """Short digest of a head config: every institution must train exactly this shape."""
    return hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def config_to_json(config: HeadConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def config_from_json(text: str) -> HeadConfig:
    return HeadConfig.from_dict(json.loads(text))


# -- arrays that travel every round ---------------------------------------------------------------
def exchanged_keys(head, fedstyle: bool) -> list[str]:
    """Names of the trainable tensors sent each round, in a fixed order. Under fedstyle the classifier
    is not trained: its rows are the global style prototypes, sent as PROTO_KEYS instead."""
    keys = [name for name, _ in head.named_parameters()]
    if fedstyle:
        keys = [k for k in keys if not k.startswith("classifier.")]
    return keys


def head_arrays(head, fedstyle: bool, prototypes: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The round's payload: trainable weights (and fedstyle's packed prototype statistics)."""
    state = dict(head.named_parameters())
    out = {k: state[k].detach().cpu().numpy().astype(np.float32, copy=True) for k in exchanged_keys(head, fedstyle)}
    if fedstyle:
        n_classes, dim = len(head.config.classes), head.config.dim
        proto = prototypes or {}
        out[PROTO_SUM] = np.asarray(proto.get(PROTO_SUM, np.zeros((n_classes, dim))), dtype=np.float32)
        out[PROTO_COUNT] = np.asarray(proto.get(PROTO_COUNT, np.zeros(n_classes)), dtype=np.float32)
    return out


def load_head_arrays(head, arrays: Mapping[str, np.ndarray], fedstyle: bool, who: str = "this institution") -> None:
    """Copy received weights into ``head``; fedstyle's prototypes become its (cosine) classifier rows."""
    params = dict(head.named_parameters())
    expected = exchanged_keys(head, fedstyle) + (list(PROTO_KEYS) if fedstyle else [])
    missing = [k for k in expected if k not in arrays]
    if missing or len(arrays) != len(expected):
        raise ArtlensError(f"{who}: the received model does not fit this head (missing {missing[:3]}, "
                           f"{len(arrays)} arrays for {len(expected)})",
                           "run the same artlens version and head settings (--features, --hidden, --dim) everywhere")
    with torch.no_grad():
        for key in exchanged_keys(head, fedstyle):
            value = np.asarray(arrays[key])
            if tuple(value.shape) != tuple(params[key].shape):
                raise ArtlensError(f"{who}: array {key} has shape {value.shape}, this head expects "
                                   f"{tuple(params[key].shape)}",
                                   "run the same artlens version and head settings (--features, --hidden, --dim) "
                                   "everywhere")
            params[key].copy_(torch.from_numpy(value.astype(np.float32)))
        if fedstyle:
            head.classifier.weight.copy_(torch.from_numpy(anchors(arrays)[0]))
    head.weights_changed()


def anchors(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Global style prototypes (classes, dim), L2-normalised, and which classes have one."""
    sums = np.asarray(arrays[PROTO_SUM], dtype=np.float64)
    counts = np.asarray(arrays[PROTO_COUNT], dtype=np.float64)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    present = (counts > 0) & (norms[:, 0] > 1e-12)
    out = np.where(present[:, None], sums / np.maximum(norms, 1e-12), 0.0)
    return out.astype(np.float32), present


def shared_classes(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows whose class this institution may report per-class sums of: coded, and held at least
    ``MIN_CLASS_COUNT`` times here (the sum of a class held once would be that artwork's own vector)."""
    codes = np.asarray(codes)
    coded = codes >= 0
    counts = np.bincount(codes[coded], minlength=n_classes)
    return coded & (counts[np.where(coded, codes, 0)] >= MIN_CLASS_COUNT)


def prototype_statistics(embeddings: np.ndarray, codes: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Per-class sums of an institution's embeddings and counts, both divided by its size n: averaged
    with weights n over institutions they give the global sums / N and counts / N, so the same
    weighted mean (and SecAgg+'s masked sum) yields the global class means. A class the institution
    holds only once is left out (see ``shared_classes``)."""
    codes = np.asarray(codes)
    n = max(int((codes >= 0).sum()), 1)
    keep = shared_classes(codes, n_classes)
    sums = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, codes[keep], embeddings[keep])
    counts = np.bincount(codes[keep], minlength=n_classes).astype(np.float64)
    return {PROTO_SUM: (sums / n).astype(np.float32), PROTO_COUNT: (counts / n).astype(np.float32)}


# -- input transforms: fitted once by federated statistics, then kept by every institution ---------
def transform_arrays(head) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in head.state_dict().items() if k.startswith("transforms.")}


def load_transforms(head, arrays: Mapping[str, np.ndarray]) -> None:
    state = {k: v for k, v in head.state_dict().items() if k.startswith("transforms.")}
    if set(state) != set(arrays):
        raise ArtlensError("the input transforms received do not fit this head",
                           "run the same artlens version and head settings everywhere")
    with torch.no_grad():
        for key, tensor in state.items():
            value = torch.from_numpy(np.asarray(arrays[key], dtype=np.float32))
            if value.shape != tensor.shape:
                raise ArtlensError(f"input transform {key} has shape {tuple(value.shape)}, this head expects "
                                   f"{tuple(tensor.shape)}", "run the same artlens version and head settings everywhere")
            tensor.copy_(value)
    head.weights_changed()


def wire_keys(head, fedstyle: bool) -> list[str]:
    """The order of the round's arrays where Flower carries them as a plain list (SecAgg+)."""
    return exchanged_keys(head, fedstyle) + (list(PROTO_KEYS) if fedstyle else [])
