"""Settings of a copyright registry's detectors, stored as ``copyright/config.toml`` in the registry.

Every option has its one default here; the CLI maps its flags onto these dataclasses.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from artlens.errors import CollectionError

DETECTORS = ("robust", "cvae")


@dataclass(frozen=True)
class RobustConfig:
    """The edit-invariant descriptor: a projection head on pooled EfficientNet-Lite0 taps, trained
    contrastively on edited views of the registry's works (SSCD's recipe on cached features)."""

    views: int = 12  # edited views per work computed (once) for training; one more is kept for calibration
    dim: int = 256
    hidden: int = 1024
    dropout: float = 0.1
    epochs: int = 160
    batch_works: int = 256
    views_per_work: int = 3  # per work in a batch: the original and edited views
    lr: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1  # 0.05 gave less recall at 99 % precision on held-out edits (docs/copyright.md)
    koleo_weight: float = 0.1  # spreads descriptors over the sphere (SSCD's entropy regulariser)
    target_precision: float = 0.99  # calibration target for the operating threshold
    holdout: float = 0.1  # share of works left out of training, as unregistered queries for calibration
    min_calibration_works: int = 50  # fewer works: the default threshold is kept
    calibration_works: int = 100  # held-out works wanted: small registries repeat the split (a head per fold)
    threshold: float = 0.6  # operating cosine threshold; replaced by calibration on large enough registries
    margin: float = 0.02  # added above the highest score of a calibration distractor
    code_bits: int = 64  # ITQ codes of the descriptors, for the fast (Hamming shortlist) mode
    shortlist: int = 100  # works re-ranked with the float descriptor in the fast mode
    seed: int = 0


@dataclass(frozen=True)
class CVAEConfig:
    """The KOLAA paper's convolutional VAE and its two keys."""

    image_size: int = 128
    channels: tuple[int, ...] = (32, 64, 128, 256, 512)  # five stride-2 convolutions: 512 x 4 x 4 = 8192
    hidden: int = 2048
    latent: int = 64
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-4
    grad_clip: float = 100.0  # the summed reconstruction loss gives large gradients early on
    beta: float = 1.0  # weight of the KL term
    hamming_radius: int = 12
    cosine_threshold: float = 0.9
    seed: int = 0


@dataclass(frozen=True)
class CopyrightConfig:
    detectors: tuple[str, ...] = DETECTORS  # trained when the registry is built; the first one checks by default
    robust: RobustConfig = field(default_factory=RobustConfig)
    cvae: CVAEConfig = field(default_factory=CVAEConfig)
    alternatives: int = 5  # works from the free collection suggested with every verdict

    def replace(self, **changes) -> "CopyrightConfig":
        """A copy with top-level fields or ``robust__field`` / ``cvae__field`` changed."""
        top = {k: v for k, v in changes.items() if "__" not in k}
        for part in ("robust", "cvae"):
            sub = {k.split("__", 1)[1]: v for k, v in changes.items() if k.startswith(part + "__")}
            if sub:
                top[part] = dataclasses.replace(getattr(self, part), **sub)
        return dataclasses.replace(self, **top)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["detectors"] = list(self.detectors)
        d["cvae"]["channels"] = list(self.cvae.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CopyrightConfig":
        try:
            d = dict(d)
            if "robust" in d:
                d["robust"] = RobustConfig(**d["robust"])
            if "cvae" in d:
                cvae = dict(d["cvae"])
                if "channels" in cvae:
                    cvae["channels"] = tuple(cvae["channels"])
                d["cvae"] = CVAEConfig(**cvae)
            if "detectors" in d:
                d["detectors"] = tuple(d["detectors"])
            config = cls(**d)
        except TypeError as exc:
            raise CollectionError(f"bad copyright settings: {exc}", "fix or delete copyright/config.toml") from exc
        unknown = set(config.detectors) - set(DETECTORS)
        if unknown or not config.detectors:
            raise CollectionError(f"unknown detectors {sorted(unknown)}", f"choose from: {', '.join(DETECTORS)}")
        return config

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(tomli_w.dumps(self.to_dict()).encode())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "CopyrightConfig":
        try:
            return cls.from_dict(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CollectionError(f"cannot read copyright settings {path}: {exc}", "fix or delete the file") from exc
