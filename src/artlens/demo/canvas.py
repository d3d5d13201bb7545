"""Drawing primitives of the demo pictures: pixel grids, value noise, blur, anti-aliased ellipses and
rectangles painted in place, and the :class:`Scene` a subject layout hands to a style technique.

All drawing is vectorised numpy on float32 (S, S, 3) images in [0, 1]."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

F32 = np.float32


@dataclass
class Scene:
    """A subject's layout, ready for a style technique to render."""

    ref: np.ndarray  # (S, S, 3) float32 in [0, 1]: the subject's colour layout
    focal: list[tuple[float, float, float]]  # (x, y, r) in [0, 1] units: centres of interest
    phrase: str  # description fragment: "A landscape of ..."
    title: str
    colours: dict[str, np.ndarray] = field(default_factory=dict)


_GRID_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def uv(S: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: u as (1, S) (x), v as (S, 1) (y)."""
    if S not in _GRID_CACHE:
        t = ((np.arange(S, dtype=F32) + F32(0.5)) / F32(S)).astype(F32)
        _GRID_CACHE[S] = (t[None, :], t[:, None])
    return _GRID_CACHE[S]


def noise(rng: np.random.Generator, S: int, cells: int) -> np.ndarray:
    """Smooth value noise in about [0, 1], (S, S) float32."""
    small = rng.random((cells + 1, cells + 1)).astype(F32)
    img = Image.fromarray(small).resize((S, S), Image.BICUBIC)
    return np.asarray(img, dtype=F32)


def blur(arr: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an (S, S, 3) float image in [0, 1] (via Pillow, 8-bit)."""
    if radius <= 0:
        return arr
    img = Image.fromarray(to_u8(arr)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(img, dtype=F32) * F32(1 / 255)


def to_u8(arr: np.ndarray) -> np.ndarray:
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def paint(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    """In place: img = img * (1 - alpha) + colour * alpha (colour: rgb or an image)."""
    a = alpha[..., None] if alpha.ndim == 2 else alpha
    img += a * (np.asarray(colour, dtype=F32) - img)


def ellipse(u, v, cx, cy, rx, ry, S) -> np.ndarray:
    """Anti-aliased ellipse coverage (S, S)."""
    d = np.sqrt(((u - F32(cx)) / F32(rx)) ** 2 + ((v - F32(cy)) / F32(ry)) ** 2)
    return np.clip((1.0 - d) * F32(min(rx, ry) * S) + 0.5, 0.0, 1.0).astype(F32)


def below(v, edge, S) -> np.ndarray:
    """Anti-aliased coverage of pixels below (larger v than) an edge (broadcastable)."""
    return np.clip((v - edge) * F32(S) + 0.5, 0.0, 1.0).astype(F32)


def rect(u, v, x0, y0, x1, y1, S) -> np.ndarray:
    ax = np.clip(np.minimum(u - F32(x0), F32(x1) - u) * F32(S) + 0.5, 0, 1)
    ay = np.clip(np.minimum(v - F32(y0), F32(y1) - v) * F32(S) + 0.5, 0, 1)
    return (ax * ay).astype(F32)


def sphere_shade(u, v, cx, cy, rx, ry, strength=0.45) -> np.ndarray:
    """Lambert-ish shading factor for a ball lit from the upper left."""
    nx = (u - F32(cx)) / F32(rx)
    ny = (v - F32(cy)) / F32(ry)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    lam = np.clip(-0.5 * nx - 0.55 * ny + 0.67 * nz, 0.0, 1.0)
    spec = np.clip(lam - 0.9, 0, 1) * 4.0
    return (1.0 - F32(strength) + F32(strength) * 1.25 * lam + spec).astype(F32)


def window(S: int, x0: float, y0: float, x1: float, y1: float):
    """Slices and local (u, v) of the pixel window covering [x0, x1] x [y0, y1] (unit coords)."""
    ix0, ix1 = max(0, int(x0 * S) - 2), min(S, int(math.ceil(x1 * S)) + 2)
    iy0, iy1 = max(0, int(y0 * S) - 2), min(S, int(math.ceil(y1 * S)) + 2)
    u, v = uv(S)
    return (slice(iy0, iy1), slice(ix0, max(ix0, ix1))), u[:, ix0:ix1], v[iy0:iy1, :]


def draw_ellipse(img, cx, cy, rx, ry, colour, alpha=1.0, shade=0.0) -> None:
    """Paint an anti-aliased ellipse into img (S, S, 3), only touching its bounding box.
    shade > 0 lights it like a ball from the upper left."""
    S = img.shape[0]
    sl, u, v = window(S, cx - rx, cy - ry, cx + rx, cy + ry)
    a = ellipse(u, v, cx, cy, rx, ry, S)
    if alpha != 1.0:
        a = a * F32(alpha)
    col = np.asarray(colour, dtype=F32)
    if shade:
        col = col * sphere_shade(u, v, cx, cy, rx * 1.15, ry * 1.15, shade)[..., None]
    paint(img[sl], a, col)


def draw_rect(img, x0, y0, x1, y1, colour, alpha=1.0) -> None:
    S = img.shape[0]
    sl, u, v = window(S, x0, y0, x1, y1)
    a = rect(u, v, x0, y0, x1, y1, S)
    if callable(colour):
        colour = colour(u, v)
    paint(img[sl], a * F32(alpha) if alpha != 1.0 else a, colour)


def choice(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]

