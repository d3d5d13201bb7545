"""Crop letterbox padding: the uniform bands that datasets add around non-square paintings (black
bars on WikiArt 224x224 squares, white 500x500 backgrounds on Louvre scrapes), so that features see
the painting, not its aspect ratio. Padding that fits a picture into a frame is centred, so bands come
in pairs on opposite sides; a uniform band on one side only (a white sky, a dark floor or shadow in a
photo) is content and stays."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artlens.imaging.decode import our_pixel_limit

# A row/column is padding when 98% of its pixels are within NOISE_FACTOR * tolerance of the
# padding colour and 90% within tolerance: JPEG ringing puts a few percent of the pixels of the
# 8x8 blocks next to a painting's edge 15-30 levels off black, and a strict 98%-within-tolerance
# rule stops up to a block short of the edge (measured on the WikiArt 224x224 letterboxes).
_PAD_SHARE = 0.98
_PAD_SHARE_NEAR = 0.90
_NOISE_FACTOR = 3
_CHUNK = 16  # rows/columns tested per numpy call while walking inwards
_NEUTRAL_SLACK = 3  # near-black/near-white: every channel within 3*tolerance of 0 / 255
# Opposite bands are a pair (padding that centres the picture) when both are there and the narrower is
# at least a quarter of the wider, less a few pixels: centred bars differ by a pixel or two, but a line
# drawn in a white background can stop one side's scan early (seen on Louvre scrapes: 13 vs 4 pixels).
# On CIFAR-10 photos 3/4 of the bands found are one-sided (bright skies, dark floors and shadows).
_PAIR_RATIO = 0.25
_PAIR_SLACK = 2


def _padding_mask(lines: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """lines: (k, n, c) uint8 (any strides). True for each line that is (nearly) all ``colour``."""
    dev = None
    for ch in range(lines.shape[2]):
        d = np.abs(lines[:, :, ch].astype(np.int16) - int(colour[ch]))
        dev = d if dev is None else np.maximum(dev, d, out=dev)
    n = lines.shape[1]
    near = np.count_nonzero(dev <= tolerance, axis=1) >= _PAD_SHARE_NEAR * n
    fair = np.count_nonzero(dev <= _NOISE_FACTOR * tolerance, axis=1) >= _PAD_SHARE * n
    return near & fair


def _scan(strip_at, limit: int, colour: np.ndarray, tolerance: int) -> int:
    """Number of leading padding lines; ``strip_at(i, j)`` returns lines i..j-1 as (k, n, c)."""
    i = 0
    step = _CHUNK
    while i < limit:
        j = min(limit, i + step)
        ok = _padding_mask(strip_at(i, j), colour, tolerance)
        if not ok.all():
            return i + int(np.argmin(ok))
        i = j
        step *= 2
    return limit


def _corner_colour(a: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    return np.median(a[rows, cols].reshape(-1, a.shape[2]), axis=0)


def crop_letterbox(img: Image.Image, tolerance: int = 12, min_keep: float = 0.5) -> Image.Image:
    """Crop uniform padding bands (see :func:`letterbox_box` for the rules) from the four sides.

    Returns ``img`` itself when there is nothing to crop, including for images of one uniform
    colour; otherwise a cropped copy.
    """
    box = letterbox_box(img, tolerance=tolerance, min_keep=min_keep)
    if box == (0, 0, img.size[0], img.size[1]):
        return img
    with our_pixel_limit():
        return img.crop(box)


def letterbox_box(img: Image.Image, tolerance: int = 12, min_keep: float = 0.5) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box that :func:`crop_letterbox` keeps: the image minus
    uniform padding bands (letterbox/pillarbox bars, mats) from the four sides.

    The padding colour of a side is taken from its two corners (3x3 medians), which must agree
    within ``tolerance``. Near-black and near-white padding is cropped on any side; any other
    uniform colour only when all four corners agree (a mat around the painting), so that a flat
    sky or wall touching one edge of a painting is not mistaken for padding. A row/column is
    padding when at least 98% of its pixels are within ``tolerance`` (max channel difference) of
    that colour, which tolerates JPEG noise. Sides are walked inwards until the first row/column
    that is not padding. Opposite bands are kept only as a pair (both present, the narrower at
    least a quarter of the wider less 2 pixels): padding that fits a picture into a frame is centred, while
    a band on one side alone is the picture's own sky, wall or shadow.

    At most ``1 - min_keep`` of the width and of the height is removed (when the bands found are
    larger, both sides are shrunk in proportion). The full box when there is nothing to crop,
    including for images of one uniform colour. Works on any mode (non-RGB/L images are
    compared in RGB); about 0.1-0.5 ms for a 500x500 RGB image.
    """
    if not 0.0 < min_keep <= 1.0:
        raise ValueError("min_keep must be in (0, 1]")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    w, h = img.size
    full = (0, 0, w, h)
    if w < 8 or h < 8 or min_keep >= 1.0:
        return full
    ref = img if img.mode in ("RGB", "L") else img.convert("RGB")
    a = np.asarray(ref)
    if a.ndim == 2:
        a = a[:, :, None]

    k = 3
    tl = _corner_colour(a, slice(0, k), slice(0, k))
    tr = _corner_colour(a, slice(0, k), slice(w - k, w))
    bl = _corner_colour(a, slice(h - k, h), slice(0, k))
    br = _corner_colour(a, slice(h - k, h), slice(w - k, w))

    def agree(c1: np.ndarray, c2: np.ndarray) -> bool:
        return float(np.abs(c1 - c2).max()) <= tolerance

    all_four = (
        agree(tl, tr)
        and agree(tl, bl)
        and agree(tl, br)
        and agree(tr, bl)
        and agree(tr, br)
        and agree(bl, br)
    )
    slack = _NEUTRAL_SLACK * tolerance

    def side_colour(c1: np.ndarray, c2: np.ndarray) -> np.ndarray | None:
        if not agree(c1, c2):
            return None
        c = (c1 + c2) / 2.0
        neutral = bool(c.max() <= slack) or bool(c.min() >= 255 - slack)
        if not (neutral or all_four):
            return None
        return np.rint(c).astype(np.int16)

    max_h = int(h * (1.0 - min_keep))
    max_w = int(w * (1.0 - min_keep))

    top = bottom = left = right = 0
    c = side_colour(tl, tr)
    if c is not None:
        top = _scan(lambda i, j: a[i:j], h, c, tolerance)
        if top >= h:
            return full  # the whole image is one colour: nothing to tell apart
        top = min(top, max_h)
    c = side_colour(bl, br)
    if c is not None:
        bottom = _scan(lambda i, j: a[h - j : h - i][::-1], max_h, c, tolerance)
    c = side_colour(tl, bl)
    if c is not None:
        left = _scan(lambda i, j: a[:, i:j].transpose(1, 0, 2), max_w, c, tolerance)
    c = side_colour(tr, br)
    if c is not None:
        right = _scan(lambda i, j: a[:, w - j : w - i][:, ::-1].transpose(1, 0, 2), max_w, c, tolerance)

    top, bottom = _fit(*_paired(top, bottom), max_h)
    left, right = _fit(*_paired(left, right), max_w)
    return (left, top, w - right, h - bottom)


def _paired(a: int, b: int) -> tuple[int, int]:
    """Two opposite band widths if they are a centred pair, else (0, 0)."""
    if min(a, b) > 0 and min(a, b) >= _PAIR_RATIO * max(a, b) - _PAIR_SLACK:
        return a, b
    return 0, 0


def _fit(a: int, b: int, budget: int) -> tuple[int, int]:
    """Shrink two band widths in proportion so that they sum to at most ``budget``."""
    if a + b <= budget:
        return a, b
    a2 = (a * budget) // (a + b)
    return a2, budget - a2
