"""Settings of a copyright registry's detectors, stored as ``copyright/config.toml`` in the registry.

Every option has its one default here; the CLI maps its flags onto these dataclasses with
:func:`artlens.settings.with_changes`, and :mod:`artlens.settings` reads and writes the TOML.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from artlens import settings
from artlens.errors import ArtlensError, CollectionError

DETECTORS = ("robust", "cvae")
HEADS = ("general", "registry")
CVAE_WARNING = ("the paper's CVAE detector accepts look-alike distractors (hundreds of false positives "
                "on 1,000 distractors in docs/RESULTS.md); it is a comparison, check with robust")


def check_threshold(threshold: float | None) -> None:
    """A cosine operating threshold must lie in (0, 1]; None (not given) passes."""
    if threshold is not None and not 0.0 < float(threshold) <= 1.0:
        raise CollectionError(f"threshold {threshold} is outside (0, 1]",
                              "give a cosine threshold above 0 and at most 1, e.g. --threshold 0.8")


@dataclass(frozen=True)
class RobustConfig:
    """The edit-invariant descriptor: a projection head on pooled EfficientNet-Lite0 taps, trained
    contrastively on edited views (SSCD's recipe on cached features). ``head = "general"``: the head
    artlens builds once per machine (from its own demo pictures, ``copyright.general``), the registry only
    encodes and calibrates; ``"registry"``: a head trained on the registry's works (starting from the
    general head where the shapes match)."""

    head: str = "registry"  # "general" is fast but, built from demo pictures, weaker (docs/copyright.md)
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
    calibrate: bool = True  # False: ``threshold`` is the operating threshold as given (``--threshold``)
    margin: float = 0.02  # added above the highest score of a calibration distractor
    calibration_views: int = 2  # general head: edited views of each sampled work that play copies
    duplicate_score: float = 0.98  # general head: a sampled work scoring this close to another is a duplicate
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
    detectors: tuple[str, ...] = ("robust",)  # trained when the registry is built; the first one checks by default
    robust: RobustConfig = field(default_factory=RobustConfig)
    cvae: CVAEConfig = field(default_factory=CVAEConfig)
    alternatives: int = 5  # works from the free collection suggested with every verdict

    def __post_init__(self):
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown or not self.detectors:
            raise CollectionError(f"unknown detectors {sorted(unknown)}", f"choose from: {', '.join(DETECTORS)}")
        if self.robust.head not in HEADS:
            raise CollectionError(f"unknown robust head {self.robust.head!r}", f"choose from: {', '.join(HEADS)}")
        check_threshold(self.robust.threshold)

    @classmethod
    def from_dict(cls, data: dict, where: str = "copyright/config.toml") -> "CopyrightConfig":
        """Settings as :func:`artlens.settings.to_dict` writes them; unknown keys and bad values are errors."""
        try:
            return settings.from_dict(cls, data, where)
        except CollectionError:
            raise
        except ArtlensError as exc:
            raise CollectionError(f"bad copyright settings: {exc.message}",
                                  exc.hint or "fix or delete copyright/config.toml") from exc

    def save(self, path: str | Path) -> None:
        settings.save_toml(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "CopyrightConfig":
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CollectionError(f"cannot read copyright settings {path}: {exc}", "fix or delete the file") from exc
        return cls.from_dict(data, str(path))
