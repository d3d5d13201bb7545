"""The general copy head: a projection head trained by artlens on its own procedurally drawn demo
pictures and their edits, built once per machine (``artlens registry general-head``, or
:func:`build_general`) into the user cache (``~/.cache/artlens/copyright/general_head-v1.pt``, or under
``$ARTLENS_CACHE``). It is never stored in the package: it is made from code and a seed.

A registry made with it only encodes its works and calibrates a threshold (minutes for thousands of
works, seconds to add a hundred); nothing is trained per registry unless asked (``registry train``
fine-tunes a head on the registry's own works, starting from this one when it is there). The demo
pictures carry no licence, so the weights carry none either.

Training recipe (``GeneralHeadConfig``): ``pictures`` demo pictures (seeded), each seen as its original
and ``views`` seeded edits, half from each of the two edit groups ``GROUP_A`` / ``GROUP_B`` (all of
``edits.ALL_FAMILIES``: the generator's own families and the stronger ones), then the SSCD-style
training of :func:`artlens.copyright.robust.train_head`. Held-out pictures calibrate the head's own
threshold, which small registries (too few works to calibrate) start from.

The file is versioned: its format and the ``copy-taps`` id are in it, its fingerprint and recipe in the
JSON record beside it; a missing, foreign or older file is a one-line error naming the command that
builds it. ``benchmarks/copyright_general.py --train`` builds it too (and the two held-out-family
heads of the generalisation benchmark, on one group each).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from artlens import settings
from artlens.catalog.ingest import scan_folder
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
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.features import create_extractor
from artlens.features.extract import encode_images
from artlens.files import save_torch, user_cache, write_arrays, write_json
from artlens.imaging import crop_letterbox, load_image
from artlens.progress import QUIET, Reporter

GENERAL_FORMAT = 1
BUILD_COMMAND = "artlens registry general-head"
BACKBONE_IMAGES_PER_CORE_S = 6.5  # EfficientNet-Lite0 at 224 px, measured (13 images/s on 2 cores)

# Two halves of edits.ALL_FAMILIES, each with geometry, colour, overlay/framing and resampling edits,
# so that a head trained on one half meets edit families it never saw in the other.
GROUP_A: tuple[str, ...] = ("crop", "rotate", "colour", "overlay", "downscale", "jpeg", "tight_crop",
                            "perspective_strong", "hue_shift", "combo")
GROUP_B: tuple[str, ...] = ("flip", "perspective", "greyscale", "border", "screenshot", "blur_noise",
                            "rotate_strong", "picture_in_picture", "pixelate", "jpeg_low")


@dataclass(frozen=True)
class GeneralHeadConfig:
    pictures: int = 600  # pictures for training (and calibration): demo pictures drawn, or a sample of ``images``
    images: str = ""  # a folder of unregistered images to train on instead (their licence is the user's affair)
    size: int = 256
    views: int = 4  # edited views per picture, half from each group
    calibration_pictures: int = 120  # held out of training, as unregistered look-alikes for the threshold
    seed: int = 0
    head: RobustConfig = field(default_factory=lambda: RobustConfig(epochs=200, views_per_work=4))


def general_head_path() -> Path:
    """Where the general head is built and looked for (the format is in the name: a newer artlens
    that changes it looks for a new file and never reads an old one)."""
    return user_cache() / "copyright" / f"general_head-v{GENERAL_FORMAT}.pt"


def build_estimate_s(config: "GeneralHeadConfig") -> float:
    """Rough seconds to build the head on this machine's CPUs: the backbone pass over every picture
    and view dominates (training the head on cached features takes a fraction of it)."""
    images = config.pictures * (1 + config.views)
    return 1.3 * images / (BACKBONE_IMAGES_PER_CORE_S * max(1, min(os.cpu_count() or 1, 16)))


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


def folder_pictures(config: GeneralHeadConfig) -> list[Path]:
    """A seeded sample of ``config.pictures`` image files under ``config.images``."""
    folder = Path(config.images).expanduser()
    found = scan_folder(folder.resolve())[0] if folder.is_dir() else []
    if len(found) < 8:
        raise CollectionError(f"{folder} holds {len(found)} image files; the general head needs at least 8",
                              "give --images a folder of (unregistered) pictures, or leave it out to use demo pictures")
    order = np.random.default_rng(config.seed).permutation(len(found))[: config.pictures]
    return [found[i] for i in np.sort(order)]


def training_pictures(config: GeneralHeadConfig, folder: Path, reporter: Reporter = QUIET) -> list[Path]:
    """The demo pictures drawn into ``folder``, or the sample of ``config.images``."""
    return folder_pictures(config) if config.images else demo_pictures(config, folder, reporter)


def training_taps(paths: list[Path], config: GeneralHeadConfig, reporter: Reporter = QUIET,
                  batch: int = 16, device: str = "cpu") -> np.ndarray:
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
        vectors = encode_images(images, [extractor], device)[COPY_TAPS]
        out[start : start + len(images) // (1 + config.views)] = vectors.reshape(-1, 1 + config.views, extractor.dim)
        bar.update(len(images) // (1 + config.views))
    bar.close()
    return out


def train_general(taps: np.ndarray, config: GeneralHeadConfig, group: str = "all",
                  reporter: Reporter = QUIET, device: str = "cpu") -> tuple[ProjectionHead, dict]:
    """A head trained on the pictures after the first ``calibration_pictures`` (views of ``group``), and
    its calibration on those held out (as unregistered look-alikes and, edited, as copies)."""
    slots = view_slots(group, config.views)
    held = np.arange(min(config.calibration_pictures, len(taps) // 2))
    kept = np.arange(len(held), len(taps))
    views = taps[:, [0, *slots]]
    head = train_head(views[kept], config.head, reporter=reporter, device=device)
    # registered copies: one held-back edit of each of the training works is not available (all views
    # trained on), so the held-out pictures play both parts: half registered, half not
    registered, unregistered = held[: len(held) // 2], held[len(held) // 2 :]
    scores = calibration_scores(head, views[registered], views[registered, 1 + len(slots) // 2],
                                views[unregistered])
    calibration = threshold_from_scores(CalibrationScores.pooled([scores]), config.head)
    return head, {"group": group, "calibration": asdict(calibration)}


def save_general(head: ProjectionHead, info: dict, config: GeneralHeadConfig, path: Path | None = None) -> None:
    """Write the head (default: :func:`general_head_path`) in half precision; ``head`` is rounded the
    same way first, so its fingerprint is that of the head :func:`load_general` reads back."""
    path = Path(path) if path is not None else general_head_path()
    with torch.no_grad():
        for tensor in head.state_dict().values():
            tensor.copy_(tensor.half().float())
    payload = {"format": GENERAL_FORMAT, "taps_id": create_extractor(COPY_TAPS).id, "config": head.config,
               "state_dict": {k: v.half() for k, v in head.state_dict().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json({"format": GENERAL_FORMAT, "fingerprint": head.fingerprint(), "taps_id": payload["taps_id"],
                "threshold": info["calibration"]["threshold"], "recipe": settings.to_dict(config), **info},
               path.with_suffix(".json"))
    save_torch(payload, path)  # the weights last: a head file always has its record


def load_general(path: Path | None = None) -> tuple[ProjectionHead, dict]:
    """The general head (default: the one built into the user cache) and its record (threshold,
    recipe); a one-line error naming the build command when it is missing or made for other features."""
    register_extractors()
    path = Path(path) if path is not None else general_head_path()
    expected = create_extractor(COPY_TAPS).id
    build = f"build it once (about {build_estimate_s(GeneralHeadConfig()) / 60:.0f} min here): {BUILD_COMMAND}"
    if not path.is_file():
        raise ArtifactMismatchError(f"no general copy head at {path}: it is built on each machine, not shipped", build)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError, RuntimeError) as exc:
        raise ArtifactMismatchError(f"cannot read the general copy head {path}: {exc}", f"re{build}") from exc
    if payload.get("format") != GENERAL_FORMAT or payload.get("taps_id") != expected:
        raise ArtifactMismatchError(
            f"the general copy head {path} is for {payload.get('taps_id')!r} (format {payload.get('format')}), "
            f"this artlens computes {expected!r}", f"re{build}")
    head = ProjectionHead(**payload["config"])
    head.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    head.eval()
    if head.fingerprint() != meta.get("fingerprint"):
        raise ArtifactMismatchError(f"the general copy head {path} does not match its record {path.with_suffix('.json')}",
                                    f"re{build}")
    return head, meta


def build_general(config: GeneralHeadConfig = GeneralHeadConfig(), out: Path | None = None,
                  cache: Path | None = None, reporter: Reporter = QUIET, device: str = "cpu") -> dict:
    """Draw the pictures, compute their views (cached in ``cache``, default the user cache, as
    ``general-taps-*.npy``), train and calibrate the head and write it to ``out`` (default
    :func:`general_head_path`); returns its record with the time of each stage. ``device``: where
    the backbone and the training run (a resolved torch device name)."""
    out = Path(out) if out is not None else general_head_path()
    cache = Path(cache) if cache is not None else user_cache() / "copyright"
    source = "demo" if not config.images else hashlib.sha1(
        "\n".join(str(p) for p in folder_pictures(config)).encode()).hexdigest()[:10]
    taps_file = cache / f"general-taps-{source}-{config.pictures}-{config.views}-{config.size}-{config.seed}.npz"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if taps_file.exists():
        taps = np.load(taps_file)["taps"]
    else:
        reporter.step(f"building the general copy head: {config.pictures} {'demo ' if not config.images else ''}"
                      f"pictures x {1 + config.views} views, about {build_estimate_s(config) / 60:.1f} min on "
                      f"{os.cpu_count()} CPU cores")
        with tempfile.TemporaryDirectory() as tmp:
            paths = training_pictures(config, Path(tmp) / "demo", reporter)
            timings["draw_s"] = round(time.perf_counter() - started, 2)
            taps = training_taps(paths, config, reporter, device=device)
        write_arrays(taps_file, taps=taps)
    timings["views_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    head, info = train_general(taps, config, "all", reporter, device=device)
    timings["train_s"] = round(time.perf_counter() - started, 2)
    save_general(head, {**info, "timings": timings}, config, out)
    return {"path": str(out), "fingerprint": head.fingerprint(), **info, "timings": timings}
