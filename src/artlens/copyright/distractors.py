"""Generated distractors: pictures no one registers but that carry no content to tell them apart
(flat fields, noise, gradients, stripes and checks), so a loose threshold matches them to something.

Whatever the registry's size, the robust detector's threshold is raised above their floor: the best
score they reach against the registered works, plus ``margin``. A registry under
``min_calibration_works`` works is not calibrated and would keep the fixed default, which such images
can exceed; the floor holds for it too.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from artlens.copyright.robust import RobustDetector
from artlens.copyright.taps import COPY_TAPS
from artlens.features import create_extractor
from artlens.features.extract import encode_images
from artlens.imaging import crop_letterbox


def distractor_images(seed: int = 0, size: int = 224) -> list[Image.Image]:
    """Pictures that no one registers but that carry no content to tell them apart, so a loose
    threshold matches them to something: flat fields, uniform and Gaussian noise (colour and grey),
    smooth gradients, stripes and checks."""
    rng = np.random.default_rng(seed)
    flat = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 30, 30), (30, 160, 60), (40, 60, 200), (235, 220, 180)]
    images = [Image.new("RGB", (size, size), c) for c in flat]
    for _ in range(3):
        images.append(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))
        grey = np.clip(rng.normal(128, 40, (size, size)), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)))
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    for a, b in (((0, 0, 0), (255, 255, 255)), ((20, 40, 160), (250, 200, 80))):
        mix = ramp[None, :, None] / 255
        images.append(Image.fromarray((np.array(a) * (1 - mix) + np.array(b) * mix).repeat(size, 0).astype(np.uint8)))
    y, x = np.mgrid[:size, :size]
    for pattern in ((x // 16) % 2, ((x // 28) + (y // 28)) % 2):
        images.append(Image.fromarray((np.repeat(pattern[:, :, None], 3, axis=2) * 255).astype(np.uint8)))
    return images


def distractor_taps(seed: int = 0) -> np.ndarray:
    """The descriptor inputs of :func:`distractor_images`, prepared as uploads are (letterbox crop);
    computed once per process (every registry change raises its threshold above them)."""
    return _distractor_taps(seed, create_extractor(COPY_TAPS).id).copy()


@functools.lru_cache(maxsize=4)
def _distractor_taps(seed: int, taps_id: str) -> np.ndarray:
    images = [crop_letterbox(image) for image in distractor_images(seed)]
    return encode_images(images, [create_extractor(COPY_TAPS)])[COPY_TAPS]


def distractor_floor(detector: RobustDetector, taps: np.ndarray, margin: float) -> float:
    """The lowest threshold no distractor reaches: the best distractor's score to a registered
    work, plus ``margin``."""
    if not len(detector) or not len(taps):
        return -1.0
    scores, _ = detector.search(detector.describe(taps), 1)
    return float(scores[:, 0].max()) + margin


def raise_to_floor(detector: RobustDetector, taps: np.ndarray, margin: float) -> float:
    """Raise ``detector``'s threshold to the distractors' floor (never above 1); returns the floor."""
    floor = distractor_floor(detector, taps, margin)
    detector.threshold = float(min(max(detector.threshold, floor), 1.0))
    detector.info["distractor_floor"] = floor
    return floor
