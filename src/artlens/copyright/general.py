"""The general copy head: a projection head trained once, by artlens, on its own procedurally drawn
demo pictures and their edits, and shipped in the package (``copyright/data/general_head.pt``).

A registry made with it only encodes its works and calibrates a threshold (minutes for thousands of
works, seconds to add a hundred); nothing is trained per registry unless asked (``registry train``
fine-tunes a head on the registry's own works, starting from this one). The demo pictures carry no
licence, so the shipped weights carry none either.

Training recipe (``GeneralHeadConfig``): ``pictures`` demo pictures (seeded), each seen as its original
and ``views`` seeded edits, half from each of the two edit groups ``GROUP_A`` / ``GROUP_B`` (all of
``edits.ALL_FAMILIES``: the generator's own families and the stronger ones), then the SSCD-style
training of :func:`artlens.copyright.robust.train_head`. Held-out pictures calibrate the head's own
threshold, which small registries (too few works to calibrate) start from.

``benchmarks/copyright_general.py --train`` regenerates the shipped file reproducibly (and trains the
two held-out-family heads of the generalisation benchmark, on one group each).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from artlens import settings
from artlens.copyright.config import RobustConfig
from artlens.copyright.edits import edited, rng_for
from artlens.copyright.extractors import register_extractors
from artlens.copyright.robust import (
    CalibrationScores,
    ProjectionHead,
    calibration_scores,
    threshold_from_scores,
    train_head,
)
from artlens.copyright.taps import COPY_TAPS
from artlens.demo import generate_demo_collection
from artlens.errors import ArtifactMismatchError
from artlens.features import create_extractor
from artlens.features.extract import encode_images
from artlens.files import save_torch, write_json
from artlens.imaging import crop_letterbox, load_image
from artlens.progress import QUIET, Reporter

GENERAL_FORMAT = 1
DATA = Path(__file__).resolve().parent / "data"
GENERAL_HEAD = DATA / "general_head.pt"

# Two halves of edits.ALL_FAMILIES, each with geometry, colour, overlay/framing and resampling edits,
# so that a head trained on one half meets edit families it never saw in the other.
GROUP_A: tuple[str, ...] = ("crop", "rotate", "colour", "overlay", "downscale", "jpeg", "tight_crop",
                            "perspective_strong", "hue_shift", "combo")
GROUP_B: tuple[str, ...] = ("flip", "perspective", "greyscale", "border", "screenshot", "blur_noise",
                            "rotate_strong", "picture_in_picture", "pixelate", "jpeg_low")


@dataclass(frozen=True)
class GeneralHeadConfig:
    pictures: int = 600  # demo pictures drawn for training (and calibration)
    size: int = 256
    views: int = 4  # edited views per picture, half from each group
    calibration_pictures: int = 120  # held out of training, as unregistered look-alikes for the threshold
    seed: int = 0
    head: RobustConfig = field(default_factory=lambda: RobustConfig(epochs=200, views_per_work=4))


def training_families(views: int) -> list[tuple[str, ...]]:
    """The family pool of each view slot: the first half of the slots draw from ``GROUP_A``, the
    second from ``GROUP_B``."""
    half = views // 2
    return [GROUP_A] * half + [GROUP_B] * (views - half)


def view_slots(group: str, views: int) -> list[int]:
    """Which view slots (1-based, 0 is the original) a head trained on ``group`` ("all", "a", "b") sees."""
    half = views // 2
    return {"all": list(range(1, views + 1)), "a": list(range(1, half + 1)),
            "b": list(range(half + 1, views + 1))}[group]


def demo_pictures(config: GeneralHeadConfig, folder: Path, reporter: Reporter = QUIET) -> list[Path]:
    """The training pictures, drawn (seeded) into ``folder``."""
    labels = generate_demo_collection(folder, n=config.pictures, seed=config.seed, size=config.size,
                                      reporter=reporter)
    return sorted((labels.parent / "images").glob("*.jpg"))


def training_taps(paths: list[Path], config: GeneralHeadConfig, reporter: Reporter = QUIET,
                  batch: int = 16) -> np.ndarray:
    """(pictures, 1 + views, taps) float16: each picture's original and its seeded edits."""
    register_extractors()
    extractor = create_extractor(COPY_TAPS)
    pools = training_families(config.views)
    out = np.zeros((len(paths), 1 + config.views, extractor.dim), np.float16)
    bar = reporter.bar(total=len(paths), desc="general head: edited views", unit="picture")
    for start in range(0, len(paths), batch):
        images = []
        for i in range(start, min(start + batch, len(paths))):
            picture = crop_letterbox(load_image(paths[i]))
            images.append(picture)
            for k, pool in enumerate(pools, start=1):
                rng = rng_for(config.seed, i, k, 0x6E4)
                image, _ = edited(picture, str(pool[int(rng.integers(0, len(pool)))]), rng)
                images.append(crop_letterbox(image))
        vectors = encode_images(images, [extractor])[COPY_TAPS]
        out[start : start + len(images) // (1 + config.views)] = vectors.reshape(-1, 1 + config.views, extractor.dim)
        bar.update(len(images) // (1 + config.views))
    bar.close()
    return out


def train_general(taps: np.ndarray, config: GeneralHeadConfig, group: str = "all",
                  reporter: Reporter = QUIET) -> tuple[ProjectionHead, dict]:
    """A head trained on the pictures after the first ``calibration_pictures`` (views of ``group``), and
    its calibration on those held out (as unregistered look-alikes and, edited, as copies)."""
    slots = view_slots(group, config.views)
    held = np.arange(min(config.calibration_pictures, len(taps) // 2))
    kept = np.arange(len(held), len(taps))
    views = taps[:, [0, *slots]]
    head = train_head(views[kept], config.head, reporter=reporter)
    # registered copies: one held-back edit of each of the training works is not available (all views
    # trained on), so the held-out pictures play both parts: half registered, half not
    registered, unregistered = held[: len(held) // 2], held[len(held) // 2 :]
    scores = calibration_scores(head, views[registered], views[registered, 1 + len(slots) // 2],
                                views[unregistered])
    calibration = threshold_from_scores(CalibrationScores.pooled([scores]), config.head)
    return head, {"group": group, "calibration": asdict(calibration)}


def save_general(head: ProjectionHead, info: dict, config: GeneralHeadConfig, path: Path = GENERAL_HEAD) -> None:
    """Write the head in half precision (half the package size); ``head`` is rounded the same way first,
    so its fingerprint is that of the head :func:`load_general` reads back."""
    with torch.no_grad():
        for tensor in head.state_dict().values():
            tensor.copy_(tensor.half().float())
    payload = {"format": GENERAL_FORMAT, "taps_id": create_extractor(COPY_TAPS).id, "config": head.config,
               "state_dict": {k: v.half() for k, v in head.state_dict().items()}}
    save_torch(payload, path)
    write_json({"format": GENERAL_FORMAT, "fingerprint": head.fingerprint(), "taps_id": payload["taps_id"],
                "threshold": info["calibration"]["threshold"], "recipe": settings.to_dict(config), **info},
               path.with_suffix(".json"))


def load_general(path: Path = GENERAL_HEAD) -> tuple[ProjectionHead, dict]:
    """The shipped general head and its record (threshold, recipe); a clear error when it is missing or
    made for other features."""
    register_extractors()
    expected = create_extractor(COPY_TAPS).id
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError, RuntimeError) as exc:
        raise ArtifactMismatchError(f"cannot read the general copy head {path}: {exc}",
                                    "reinstall artlens, or regenerate it: python benchmarks/copyright_general.py "
                                    "--train") from exc
    if payload.get("format") != GENERAL_FORMAT or payload.get("taps_id") != expected:
        raise ArtifactMismatchError(
            f"the general copy head {path} is for {payload.get('taps_id')!r} (format {payload.get('format')}), "
            f"this artlens computes {expected!r}", "regenerate it: python benchmarks/copyright_general.py --train")
    head = ProjectionHead(**payload["config"])
    head.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    head.eval()
    if head.fingerprint() != meta.get("fingerprint"):
        raise ArtifactMismatchError(f"the general copy head {path} does not match its record {path.with_suffix('.json')}",
                                    "reinstall artlens, or regenerate it: python benchmarks/copyright_general.py --train")
    return head, meta


def build_general(config: GeneralHeadConfig = GeneralHeadConfig(), out: Path = GENERAL_HEAD,
                  cache: Path | None = None, reporter: Reporter = QUIET) -> dict:
    """Draw the pictures, compute their views (cached in ``cache`` as ``general-taps.npy`` when given),
    train and calibrate the head and write it to ``out``; returns its record."""
    with tempfile.TemporaryDirectory() as tmp:
        taps_file = Path(cache) / f"general-taps-{config.pictures}-{config.views}-{config.seed}.npy" if cache else None
        if taps_file is not None and taps_file.exists():
            taps = np.load(taps_file)
        else:
            taps = training_taps(demo_pictures(config, Path(tmp) / "demo", reporter), config, reporter)
            if taps_file is not None:
                taps_file.parent.mkdir(parents=True, exist_ok=True)
                np.save(taps_file, taps)
    head, info = train_general(taps, config, "all", reporter)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_general(head, info, config, out)
    return info
