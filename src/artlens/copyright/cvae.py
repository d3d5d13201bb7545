"""The KOLAA paper's detector, as published: a convolutional VAE and two keys per work.

Model: 128x128 RGB -> five stride-2 convolutions (32..512 channels, 512 x 4 x 4 = 8192) -> dense 2048
-> mu and log-variance of a 64-d latent; the decoder mirrors it. Trained on the registry's works.

Keys: the first is one bit per latent dimension, set where the work's mu exceeds the registry's mean
mu; the second is mu rounded to four decimals times 1000, as integers. A query matches when exactly
one work's first key is within Hamming distance 12 of its own; with zero or several such works, the
second key decides: the best cosine (over the candidates, or over all works when there were none)
wins if it reaches 0.9. Both thresholds come from :class:`~artlens.copyright.config.CVAEConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artlens import settings
from artlens.copyright.config import CVAEConfig
from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.features import create_extractor
from artlens.features.base import ImageExtractor
from artlens.features.effnet import images_to_uint8
from artlens.files import save_torch, write_arrays, write_json
from artlens.progress import QUIET, Reporter
from artlens.vectors import l2_normalise

CVAE_FORMAT = 1


class ConvVAE(nn.Module):
    def __init__(self, image_size: int = 128, channels: tuple[int, ...] = (32, 64, 128, 256, 512),
                 hidden: int = 2048, latent: int = 64):
        super().__init__()
        if image_size % 32 or len(channels) != 5:
            raise ArtlensError("the CVAE needs five convolution widths and an image size divisible by 32",
                               "e.g. image_size=128, channels=(32, 64, 128, 256, 512)")
        self.side = image_size // 32
        flat = channels[-1] * self.side * self.side
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, hidden), nn.LeakyReLU(0.2, inplace=True))
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.expand = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, flat),
                                    nn.ReLU(inplace=True))
        layers = []
        widths = list(channels[::-1]) + [3]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
            if i < 4:
                layers += [nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*layers)
        self.channels = tuple(channels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h).clamp(-10.0, 10.0)  # keeps exp(logvar) finite

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.expand(z).view(len(z), self.channels[-1], self.side, self.side)
        return self.decoder(h)  # logits

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def to_input(images_uint8: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images_uint8)).permute(0, 3, 1, 2).float().div_(255.0)


def train_cvae(images_uint8: np.ndarray, config: CVAEConfig, reporter: Reporter = QUIET) -> ConvVAE:
    """Fit the VAE on the registry's works ((N, S, S, 3) uint8, S = ``config.image_size``)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = ConvVAE(config.image_size, config.channels, config.hidden, config.latent)
    data = to_input(images_uint8)
    with torch.enable_grad():  # the backbone loader switches autograd off process-wide
        model.train()
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        for epoch in range(config.epochs):
            order = torch.randperm(len(data), generator=gen)
            total = 0.0
            for start in range(0, len(data), config.batch_size):
                x = data[order[start : start + config.batch_size]]
                logits, mu, logvar = model(x)
                recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
                kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
                loss = recon + config.beta * kl
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimiser.step()
                total += loss.item() * len(x)
            if (epoch + 1) % max(1, config.epochs // 10) == 0:
                reporter.step(f"  cvae epoch {epoch + 1}/{config.epochs}: loss {total / len(data):.1f}")
    model.eval()
    return model


@torch.inference_mode()
def latent_means(model: ConvVAE, images_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    model.eval()
    out = [model.encode(to_input(images_uint8[i : i + batch_size]))[0].numpy()
           for i in range(0, len(images_uint8), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.to_mu.out_features), np.float32)


def first_key(mu: np.ndarray, registry_mean: np.ndarray) -> np.ndarray:
    """One bit per latent dimension, set where mu exceeds the registry mean; packed uint8."""
    return np.packbits(np.asarray(mu) > registry_mean[None, :], axis=1)


def second_key(mu: np.ndarray) -> np.ndarray:
    """mu rounded to four decimals, times 1000, as integers (the paper's second key)."""
    return (np.round(np.asarray(mu, np.float64), 4) * 1000).astype(np.int64)


@dataclass
class KeyMatch:
    work_id: int  # -1: no work
    score: float  # cosine of the second keys
    stage: str  # "hamming" (one first-key candidate) or "cosine"
    registered: bool
    candidates: int  # works within the Hamming radius


class CVAEKeyDetector:
    kind = "cvae"

    def __init__(self, model: ConvVAE, config: CVAEConfig, registry_mean: np.ndarray):
        if config.latent % 8:
            raise ArtlensError(f"the CVAE latent size must be a multiple of 8 (one key bit per dimension), "
                               f"got {config.latent}", "use latent = 64, as in the paper")
        self.model = model
        self.config = config
        self.registry_mean = np.asarray(registry_mean, np.float32)
        self.ids = np.zeros(0, np.int64)
        self._set_keys(np.zeros((0, config.latent // 8), np.uint8), np.zeros((0, config.latent), np.int64))

    @property
    def descriptor_id(self) -> str:
        c = self.config
        return f"cvae[{c.image_size}px,{'-'.join(map(str, c.channels))},{c.hidden},{c.latent}]"

    def __len__(self) -> int:
        return len(self.ids)

    def set_works(self, ids: np.ndarray, mu: np.ndarray, refit_mean: bool = False) -> None:
        """Index exactly these works from their latent means (the registry mean is kept unless asked)."""
        mu = np.asarray(mu, np.float32)
        if refit_mean and len(mu):
            self.registry_mean = mu.mean(0)
        self.ids = np.asarray(ids, np.int64)
        self._set_keys(first_key(mu, self.registry_mean), second_key(mu))

    def _set_keys(self, keys1: np.ndarray, keys2: np.ndarray) -> None:
        self.keys1 = np.asarray(keys1, np.uint8).reshape(len(self.ids), self.config.latent // 8)
        self.keys2 = np.asarray(keys2, np.int64)
        self._unit2 = l2_normalise(self.keys2, axis=1)
        self._index = faiss.IndexBinaryFlat(self.config.latent)  # exact Hamming scan; rows = positions in ids
        if len(self.ids):
            self._index.add(np.ascontiguousarray(self.keys1))
        self._row = {int(i): r for r, i in enumerate(self.ids)}

    def sync(self, ids: np.ndarray, mu_for) -> bool:
        """Index exactly ``ids``: known works keep their keys, new ones are keyed from
        ``mu_for(list of new ids)`` with the registry mean fixed at training. Returns whether anything changed."""
        ids = np.asarray(ids, np.int64)
        rows = {int(i): r for r, i in enumerate(self.ids)}
        new = [r for r, i in enumerate(ids.tolist()) if i not in rows]
        if not new and len(rows) == len(ids):
            return False
        keys1 = np.zeros((len(ids), self.config.latent // 8), np.uint8)
        keys2 = np.zeros((len(ids), self.config.latent), np.int64)
        kept = [r for r, i in enumerate(ids.tolist()) if i in rows]
        old = [rows[int(ids[r])] for r in kept]
        keys1[kept], keys2[kept] = self.keys1[old], self.keys2[old]
        if new:
            mu = mu_for([int(ids[r]) for r in new])
            keys1[new], keys2[new] = first_key(mu, self.registry_mean), second_key(mu)
        self.ids = ids
        self._set_keys(keys1, keys2)
        return True

    def describe(self, images_uint8: np.ndarray) -> np.ndarray:
        return latent_means(self.model, images_uint8)

    def match(self, mu: np.ndarray) -> list[KeyMatch]:
        """The paper's two-stage search for each query's latent mean."""
        mu = np.atleast_2d(np.asarray(mu, np.float32))
        if not len(self.ids):
            return [KeyMatch(-1, 0.0, "cosine", False, 0) for _ in mu]
        # FAISS keeps distances strictly below the radius it is given
        lims, _, positions = self._index.range_search(first_key(mu, self.registry_mean),
                                                      self.config.hamming_radius + 1)
        found = self.ids[positions]
        q2 = l2_normalise(second_key(mu), axis=1)
        out = []
        for i in range(len(mu)):
            candidates = found[lims[i] : lims[i + 1]]
            if len(candidates) == 1:
                work = int(candidates[0])
                score = float(q2[i] @ self._unit2[self._row[work]])
                out.append(KeyMatch(work, score, "hamming", True, 1))
                continue
            rows = np.array([self._row[int(c)] for c in candidates]) if len(candidates) else np.arange(len(self.ids))
            cos = self._unit2[rows] @ q2[i]
            best = int(np.argmax(cos))
            score = float(cos[best])
            out.append(KeyMatch(int(self.ids[rows[best]]), score, "cosine", score >= self.config.cosine_threshold,
                                len(candidates)))
        return out

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        payload = {"format": CVAE_FORMAT, "config": asdict(self.config), "state_dict": self.model.state_dict()}
        save_torch(payload, folder / "model.pt")
        write_arrays(folder / "keys.npz", ids=self.ids, keys2=self.keys2, registry_mean=self.registry_mean,
                     keys1=self.keys1)
        meta = {"descriptor_id": self.descriptor_id, "count": len(self.ids),
                "hamming_radius": self.config.hamming_radius, "cosine_threshold": self.config.cosine_threshold}
        write_json(meta, folder / "detector.json")

    @classmethod
    def load(cls, folder: str | Path, config: CVAEConfig) -> "CVAEKeyDetector":
        """Load, with the search thresholds of ``config`` (the architecture must match)."""
        folder = Path(folder)
        try:
            payload = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
            stored = np.load(folder / "keys.npz")
        except (OSError, ValueError, RuntimeError) as exc:
            raise ArtifactMismatchError(f"cannot read the CVAE detector in {folder}: {exc}",
                                        "retrain it: artlens registry train --registry PATH") from exc
        try:
            saved = settings.from_dict(CVAEConfig, payload["config"], f"the CVAE settings in {folder / 'model.pt'}")
        except ArtlensError as exc:
            raise ArtifactMismatchError(
                exc.message, "retrain it: artlens registry train --registry PATH --detectors cvae") from exc
        arch = ("image_size", "channels", "hidden", "latent")
        if payload.get("format") != CVAE_FORMAT or any(getattr(saved, a) != getattr(config, a) for a in arch):
            raise ArtifactMismatchError(
                f"the CVAE in {folder} has another architecture than the registry settings",
                "retrain it: artlens registry train --registry PATH --detectors cvae",
            )
        model = ConvVAE(saved.image_size, saved.channels, saved.hidden, saved.latent)
        model.load_state_dict(payload["state_dict"])
        model.eval()
        detector = cls(model, config, stored["registry_mean"])
        detector.ids = stored["ids"].astype(np.int64)
        detector._set_keys(stored["keys1"], stored["keys2"])
        return detector


class ThumbnailExtractor(ImageExtractor):
    """The CVAE's input: the (letterbox-cropped) image resized whole to a square, flattened uint8.
    Cached like any feature, so training and re-keying never decode the registry again."""

    aspect = "copy"
    backbone = None
    store_dtype = "uint8"

    def __init__(self, size: int):
        self.size = size
        self.name = thumbnail_name(size)
        self.dim = size * size * 3

    def from_taps(self, taps, images) -> np.ndarray:
        return images_to_uint8(list(images), self.size).reshape(len(images), -1)

    def unflatten(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors).astype(np.uint8).reshape(-1, self.size, self.size, 3)


def thumbnail_name(size: int) -> str:
    return f"thumb-{size}"


def thumbnail_extractor(size: int) -> ThumbnailExtractor:
    """The ``thumb-SIZE`` extractor (registered by :func:`artlens.copyright.extractors.register_extractors`)."""
    return create_extractor(thumbnail_name(size))
