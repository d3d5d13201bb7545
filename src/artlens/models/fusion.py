"""The fusion head (AICRS "L-MFEA"; DeepArt's joint embedding): the cached vectors of several
extractors -> per-input PCA and standardisation -> fully connected layers -> an L2-normalised
embedding, with a small classifier on top.

An input that may be missing (text: not every artwork has a description) enters as zeros plus a
"present" flag, so the same head embeds artworks with and without it. A head file holds its weights,
its config, the ids of the extractors it was trained on and its train/val/test split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from artlens import settings
from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.files import save_torch
from artlens.vectors import l2_normalise

HEAD_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """One input of a head: which extractor feeds it and how it is reduced before the layers."""

    extractor: str  # name, e.g. "gram-block4"
    extractor_id: str  # versioned id the vectors must come from, e.g. "gram-block4/v1"
    modality: str  # "image" or "text"
    raw_dim: int
    reduce_dims: int | None = None  # PCA fitted on the training split; None keeps raw_dim
    optional: bool = False  # may be missing for some artworks: zeros + a presence flag

    @property
    def dim(self) -> int:
        return min(self.reduce_dims, self.raw_dim) if self.reduce_dims else self.raw_dim


@dataclass(frozen=True)
class HeadShape:
    """The shape of a head to train, with its one default each: central and federated training share it."""

    hidden: tuple[int, ...] = (512,)  # fully connected layers (AICRS L-MFEA: 512 -> 256)
    dim: int = 256  # the embedding
    dropout: float = 0.5
    reduce_dims: int = 256  # PCA of inputs wider than reduce_above (style Gram matrices)
    reduce_above: int = 2048

    def reduce_for(self, raw_dim: int) -> int | None:
        """PCA dimensions of an input ``raw_dim`` wide (None: kept as it is)."""
        return self.reduce_dims if raw_dim > self.reduce_above else None

    def config(self, inputs, label: str = "", classes=(), classifier: str = "linear") -> "HeadConfig":
        """The config of a head of this shape over ``inputs`` predicting ``classes`` of ``label``."""
        return HeadConfig(inputs=tuple(inputs), hidden=tuple(self.hidden), dim=self.dim, dropout=self.dropout,
                          label=label, classes=tuple(classes), classifier=classifier)


@dataclass(frozen=True)
class HeadConfig:
    """A head as built and saved (its file holds this); the defaults of its shape live in ``HeadShape``."""

    inputs: tuple[InputSpec, ...]
    hidden: tuple[int, ...]
    dim: int
    dropout: float
    label: str = ""  # the label column the classifier predicts
    classes: tuple[str, ...] = ()
    classifier: str = "linear"  # "linear" (cross-entropy) or "cosine" (proxies, normalised softmax)
    classifier_scale: float = 16.0  # logit scale of the cosine classifier

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HeadConfig":
        return settings.from_dict(cls, d, "head config")


class InputTransform(nn.Module):
    """L2 normalisation, an optional PCA and per-dimension standardisation, all fitted on training
    vectors and stored as buffers (so the head carries them to any collection)."""

    def __init__(self, raw_dim: int, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(raw_dim))
        self.register_buffer("components", torch.eye(dim, raw_dim) if dim < raw_dim else torch.zeros(0, raw_dim))
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def fit(self, raw: np.ndarray, seed: int = 0, max_samples: int = 3000) -> None:
        """Fit on training vectors; the PCA on at most ``max_samples`` of them (wide Gram matrices make
        a full fit the slowest step of training, and a few thousand vectors pin the top components)."""
        x = l2_normalise(raw, axis=1)
        if self.components.shape[0]:
            from sklearn.decomposition import PCA

            k = self.components.shape[0]
            if len(x) <= k:
                raise ArtlensError(f"cannot reduce {x.shape[1]}-d features to {k} with {len(x)} training vectors",
                                   "label more artworks, or reduce to fewer dimensions")
            rng = np.random.default_rng(seed)
            sample = x if len(x) <= max_samples else x[np.sort(rng.choice(len(x), max_samples, replace=False))]
            pca = PCA(n_components=k, svd_solver="randomized", iterated_power=3, random_state=seed).fit(sample)
            self.mean.copy_(torch.from_numpy(pca.mean_.astype(np.float32)))
            self.components.copy_(torch.from_numpy(pca.components_.astype(np.float32)))
        y = self(torch.from_numpy(x).to(self.mean.device), standardise=False).cpu().numpy()
        self.shift.copy_(torch.from_numpy(y.mean(axis=0)))
        self.scale.copy_(torch.from_numpy(np.maximum(y.std(axis=0), 1e-6)))

    def forward(self, x: torch.Tensor, standardise: bool = True) -> torch.Tensor:
        x = nn.functional.normalize(x, dim=1)
        if self.components.shape[0]:
            x = (x - self.mean) @ self.components.T
        return (x - self.shift) / self.scale if standardise else x


class FusionHead(nn.Module):
    """Concatenated inputs -> FC (+ReLU, dropout) layers -> L2-normalised embedding; ``logits`` classifies it."""

    kind = "fusion"

    def __init__(self, config: HeadConfig):
        super().__init__()
        if not config.inputs:
            raise ArtlensError("a head needs at least one input feature", "pass --features content,style")
        self.config = config
        self.transforms = nn.ModuleDict({_key(s.extractor): InputTransform(s.raw_dim, s.dim) for s in config.inputs})
        width = sum(s.dim + (1 if s.optional else 0) for s in config.inputs)
        layers: list[nn.Module] = [nn.Dropout(config.dropout)] if config.dropout else []
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, config.dim))
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(config.dim, max(len(config.classes), 1), bias=config.classifier == "linear")
        self.split: dict[str, list[str]] = {}  # split name -> content keys (MD5s) of its artworks
        self.info: dict = {}  # how it was trained: loss, epochs, metrics, seconds
        self._id: str | None = None

    # -- embedding ------------------------------------------------------------------------------
    def transform(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The fixed part: each input's fitted PCA and standardisation (training computes it once)."""
        return {s.extractor: self.transforms[_key(s.extractor)](inputs[s.extractor]) for s in self.config.inputs}

    def fuse(self, transformed: dict[str, torch.Tensor], present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Concatenated transformed inputs; a missing optional input is zeros with its flag at 0."""
        parts = []
        for spec in self.config.inputs:
            x = transformed[spec.extractor]
            if spec.optional:
                flag = present[spec.extractor].float()[:, None] if present and spec.extractor in present \
                    else torch.ones(len(x), 1, device=x.device)
                parts += [x * flag, flag]
            else:
                parts.append(x)
        return torch.cat(parts, dim=1)

    def embed_transformed(self, transformed: dict[str, torch.Tensor],
                          present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return nn.functional.normalize(self.layers(self.fuse(transformed, present)), dim=1)

    def forward(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Raw input vectors by extractor name (and presence masks of optional inputs) -> embeddings."""
        return self.embed_transformed(self.transform(inputs), present)

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        if self.config.classifier == "cosine":
            return self.config.classifier_scale * embedding @ nn.functional.normalize(self.classifier.weight, dim=1).T
        return self.classifier(embedding)

    @property
    def device(self) -> torch.device:
        """Where the head's weights are (training may move it to a GPU; it comes back to the CPU)."""
        return self.classifier.weight.device

    @property
    def has_classifier(self) -> bool:
        return len(self.config.classes) >= 2

    @torch.no_grad()
    def embed(self, inputs: dict[str, np.ndarray], present: dict[str, np.ndarray] | None = None,
              batch_size: int = 4096) -> np.ndarray:
        """Embeddings (n, dim) of numpy input vectors, in eval mode."""
        was_training = self.training
        self.eval()
        n = len(next(iter(inputs.values())))
        out = np.zeros((n, self.config.dim), dtype=np.float32)
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            x = {k: torch.from_numpy(np.ascontiguousarray(v[sl], dtype=np.float32)).to(self.device)
                 for k, v in inputs.items()}
            p = {k: torch.from_numpy(np.asarray(v[sl])).to(self.device) for k, v in (present or {}).items()}
            out[sl] = self(x, p).cpu().numpy()
        self.train(was_training)
        return out

    @torch.no_grad()
    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes) of embeddings from :meth:`embed`."""
        if not self.has_classifier:
            raise ArtlensError("this head has no classifier", "train it with --label COLUMN")
        return torch.softmax(self.logits(torch.from_numpy(embeddings).to(self.device)), dim=1).cpu().numpy()

    def fit_inputs(self, inputs: dict[str, np.ndarray], present: dict[str, np.ndarray] | None = None,
                   seed: int = 0) -> None:
        """Fit each input's PCA and standardisation on training vectors (present ones only)."""
        for spec in self.config.inputs:
            x = inputs[spec.extractor]
            if present is not None and spec.extractor in present:
                x = x[np.asarray(present[spec.extractor], dtype=bool)]
            if len(x) == 0:
                raise ArtlensError(f"no training artwork has {spec.extractor} features",
                                   f"leave {spec.extractor} out of --features, or extract it first")
            self.transforms[_key(spec.extractor)].fit(x, seed)
        self.weights_changed()

    # -- identity and files ---------------------------------------------------------------------
    @property
    def extractor_ids(self) -> dict[str, str]:
        return {s.extractor: s.extractor_id for s in self.config.inputs}

    @property
    def id(self) -> str:
        """Changes whenever the weights or config change (the learned index records it)."""
        if self._id is None:
            digest = hashlib.sha1(json.dumps(self.config.to_dict(), sort_keys=True).encode())
            for name, tensor in sorted(self.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._id = f"{self.kind}-{digest.hexdigest()[:12]}"
        return self._id

    def weights_changed(self) -> None:
        """Call after changing the weights in place (training does), so ``id`` is recomputed."""
        self._id = None

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._id = None
        return super().load_state_dict(state_dict, strict, assign)

    def payload(self) -> dict:
        return {"schema_version": HEAD_SCHEMA_VERSION, "kind": self.kind, "id": self.id,
                "config": self.config.to_dict(), "state_dict": cpu_state(self),
                "extractors": self.extractor_ids, "split": self.split, "info": self.info}

    def save(self, path: str | Path) -> Path:
        """Write the head atomically (a temporary file renamed into place)."""
        return save_torch(self.payload(), path)

    @classmethod
    def from_payload(cls, payload: dict) -> "FusionHead":
        head = cls(HeadConfig.from_dict(payload["config"]))
        head.load_state_dict(payload["state_dict"])
        head.split = {k: list(v) for k, v in payload.get("split", {}).items()}
        head.info = dict(payload.get("info", {}))
        head.eval()
        return head


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict as CPU tensors: a head file loads anywhere, whatever device trained it."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


NOT_A_HEAD_HINT = ("pass a head written by `artlens train` (COLLECTION/heads/learned.pt, or its --out FILE) "
                   "or by `artlens federate` (head.pt in the run folder)")


def read_head_payload(path: str | Path) -> dict:
    """The contents of a head file, with clear errors for a missing, foreign or outdated file."""
    path = Path(path)
    if not path.is_file():
        raise ArtlensError(f"no head file at {path}",
                           "train one with `artlens train --collection PATH --label COLUMN [--out FILE]`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not a head
        import zipfile

        what = (f"a PyTorch file it cannot read: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}"
                if zipfile.is_zipfile(path) else "not a PyTorch file at all")
        raise ArtlensError(f"{path} is not an artlens head file ({what})", NOT_A_HEAD_HINT) from exc
    if not isinstance(payload, dict) or "schema_version" not in payload:
        raise ArtlensError(f"{path} is not an artlens head file (a PyTorch file without a head in it)", NOT_A_HEAD_HINT)
    if payload["schema_version"] != HEAD_SCHEMA_VERSION:
        raise ArtifactMismatchError(
            f"head {path} has schema version {payload['schema_version']}, this artlens reads {HEAD_SCHEMA_VERSION}",
            "retrain it with `artlens train`")
    return payload


def _key(extractor: str) -> str:
    return extractor.replace(".", "_")  # ModuleDict keys cannot hold dots
