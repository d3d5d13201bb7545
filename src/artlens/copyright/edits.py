"""Seeded edited copies of images: what people do to a protected work before they publish it.

Twelve single transforms (``EDITS``) and ``combo`` (two of them, applied in the order an editor would:
geometry, then colour, then overlays and framing, then resampling, then JPEG). Every edit draws its
parameters from the ``numpy`` generator it is given, so ``edited(image, name, rng_for(seed, i))`` is
the same image on every machine and in any order of calls.

The set is harder than the usual eight transforms: crops down to 50 % area at any aspect ratio,
rotation with or without the corners filled, JPEG down to quality 10, 4x downscaling, colour shifts,
greyscale, text / logo / tiled watermarks, patterned frames that letterbox cropping cannot remove,
screenshots with interface clutter, blur or noise, perspective warps, and any two of these.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from artlens.errors import ArtlensError

Rng = np.random.Generator

# The order in which an editor applies two edits (a combo is sorted by it).
EDITS: tuple[str, ...] = (
    "crop", "rotate", "flip", "perspective", "colour", "greyscale", "overlay", "border", "screenshot",
    "downscale", "blur_noise", "jpeg",
)
COMBO = "combo"
FAMILIES: tuple[str, ...] = EDITS + (COMBO,)
# Harder edits than the generator's own (``FAMILIES``): the general copy head is trained on them too,
# and the held-out-family benchmark tests on them. Not drawn by ``random_edit`` unless asked for.
STRONG_EDITS: tuple[str, ...] = (
    "tight_crop", "rotate_strong", "perspective_strong", "picture_in_picture", "pixelate", "jpeg_low",
    "hue_shift",
)
ALL_FAMILIES: tuple[str, ...] = FAMILIES + STRONG_EDITS

_WORDS = ("SALE", "new", "art", "poster", "print", "museum", "gallery", "@artlover", "original", "2024",
          "limited", "edition", "wall", "decor", "sample", "preview", "copyright", "canvas", "oil", "classic")


def rng_for(seed: int, *keys: int) -> Rng:
    """A generator determined by ``seed`` and the integer ``keys`` only (order-independent draws)."""
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


def _colour(rng: Rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, int(size)))


# -- geometry -------------------------------------------------------------------------------------
def crop(image: Image.Image, rng: Rng) -> Image.Image:
    """Keep 50-90 % of the area, aspect ratio changed by up to 4:3 either way, anywhere in the image."""
    w, h = image.size
    area = rng.uniform(0.5, 0.9) * w * h
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw = int(round(min(w, math.sqrt(area * ratio))))
    ch = int(round(min(h, area / max(cw, 1))))
    cw, ch = max(cw, 8), max(ch, 8)
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - ch + 1))
    return image.crop((x, y, x + cw, y + ch))


def rotate(image: Image.Image, rng: Rng) -> Image.Image:
    """3-15 degrees either way; half the time the canvas grows (corners filled), else corners are lost."""
    angle = float(rng.uniform(3, 15) * rng.choice([-1, 1]))
    fill = [(0, 0, 0), (255, 255, 255), _colour(rng)][int(rng.integers(0, 3))]
    expand = bool(rng.random() < 0.5)
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=expand, fillcolor=fill)


def flip(image: Image.Image, rng: Rng) -> Image.Image:
    return ImageOps.mirror(image)


def perspective(image: Image.Image, rng: Rng) -> Image.Image:
    """Each corner moved inwards by up to 15 % of the side, as when a print is photographed at an angle."""
    w, h = image.size
    jitter = rng.uniform(0, 0.15, size=(4, 2)) * np.array([w, h])
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    dst = src + np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * jitter
    coeffs = _perspective_coefficients(dst, src)  # output pixel (in dst frame) -> input pixel
    return image.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR,
                           fillcolor=(0, 0, 0))


def _perspective_coefficients(out_pts: np.ndarray, in_pts: np.ndarray) -> tuple[float, ...]:
    rows = []
    for (x, y), (u, v) in zip(out_pts, in_pts):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return tuple(np.linalg.solve(np.array(rows), in_pts.reshape(-1)).tolist())


# -- colour ---------------------------------------------------------------------------------------
def colour(image: Image.Image, rng: Rng) -> Image.Image:
    """Brightness and contrast 0.6-1.5x, saturation 0.2-2x."""
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.6, 1.5)))
    image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.6, 1.5)))
    return ImageEnhance.Color(image).enhance(float(rng.uniform(0.2, 2.0)))


def greyscale(image: Image.Image, rng: Rng) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


# -- overlays and framing -------------------------------------------------------------------------
def overlay(image: Image.Image, rng: Rng) -> Image.Image:
    """Large text, a logo, or a tiled semi-transparent watermark."""
    kind = ("text", "logo", "watermark")[int(rng.integers(0, 3))]
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = base.size
    if kind == "text":
        size = int(h * rng.uniform(0.08, 0.2))
        text = " ".join(str(rng.choice(_WORDS)) for _ in range(int(rng.integers(1, 4))))
        font = _font(size)
        for line in range(int(rng.integers(1, 3))):
            x = int(rng.uniform(0, 0.4) * w)
            y = int(rng.uniform(0, 0.85) * h)
            draw.text((x, y + line * size), text, font=font, fill=(*_colour(rng), 255),
                      stroke_width=max(1, size // 15), stroke_fill=(*_colour(rng), 255))
    elif kind == "logo":
        side = int(min(w, h) * rng.uniform(0.15, 0.3))
        x, y = int(rng.integers(0, max(1, w - side))), int(rng.integers(0, max(1, h - side)))
        alpha = int(rng.uniform(0.6, 1.0) * 255)
        draw.ellipse([x, y, x + side, y + side], fill=(*_colour(rng), alpha))
        inner = side // 4
        draw.rectangle([x + inner, y + inner, x + side - inner, y + side - inner], fill=(*_colour(rng), alpha))
        draw.text((x + inner, y + side // 2 - side // 8), str(rng.choice(_WORDS))[:4], font=_font(side // 4),
                  fill=(*_colour(rng), 255))
    else:
        size = max(1, int(h * rng.uniform(0.05, 0.1)))
        text, font = str(rng.choice(_WORDS)), _font(size)
        alpha = int(rng.uniform(0.25, 0.5) * 255)
        fill = (255, 255, 255, alpha) if rng.random() < 0.5 else (0, 0, 0, alpha)
        for y in range(0, h, 2 * size):
            for x in range(-(y % (4 * size)), w, 5 * size):
                draw.text((x, y), text, font=font, fill=fill)
    return Image.alpha_composite(base, layer).convert("RGB")


def border(image: Image.Image, rng: Rng) -> Image.Image:
    """A frame 5-20 % of the shorter side wide: textured wood, a two-tone moulding, or a flat mat."""
    w, h = image.size
    t = max(2, int(min(w, h) * rng.uniform(0.05, 0.2)))
    kind = ("textured", "moulding", "flat")[int(rng.integers(0, 3))]
    W, H = w + 2 * t, h + 2 * t
    if kind == "textured":
        tone = np.array(_colour(rng), dtype=np.float32)
        grain = rng.normal(0, 25, size=(H, 1, 1)) + rng.normal(0, 12, size=(H, W, 1))
        frame = Image.fromarray(np.clip(tone + grain, 0, 255).astype(np.uint8))
    else:
        frame = Image.new("RGB", (W, H), _colour(rng))
        if kind == "moulding":
            ImageDraw.Draw(frame).rectangle([t // 2, t // 2, W - t // 2, H - t // 2], outline=_colour(rng),
                                            width=max(1, t // 4))
    frame.paste(image, (t, t))
    return frame


def screenshot(image: Image.Image, rng: Rng) -> Image.Image:
    """The image shown at 40-75 % of a page's width, with a title bar, a side bar and text lines."""
    w, h = image.size
    share = rng.uniform(0.4, 0.75)
    W = int(w / share)
    H = int(max(h * 1.2, W * rng.uniform(0.55, 0.8)))
    dark = rng.random() < 0.3
    page = Image.new("RGB", (W, H), (30, 30, 34) if dark else (246, 246, 246))
    draw = ImageDraw.Draw(page)
    bar = max(2, int(H * rng.uniform(0.04, 0.08)))
    draw.rectangle([0, 0, W, bar], fill=_colour(rng))
    x0 = int(rng.uniform(0.02, 1 - share - 0.02) * W) if share < 0.96 else 0
    y0 = bar + int(rng.uniform(0.02, 0.08) * H)
    y0 = min(y0, max(bar, H - h))
    ink = (200, 200, 200) if dark else (60, 60, 60)
    font = _font(max(8, bar // 2))
    side_x = x0 + w + int(0.03 * W)
    for i, y in enumerate(range(y0, H - bar, bar)):
        if side_x < W - 20 and side_x <= W - int(0.03 * W):
            draw.rectangle([side_x, y, W - int(0.03 * W), y + bar // 3], fill=ink if i % 3 else _colour(rng))
    draw.text((x0, min(H - bar, y0 + h + bar // 3)), " ".join(str(rng.choice(_WORDS)) for _ in range(4)),
              font=font, fill=ink)
    page.paste(image, (x0, y0))
    return page


# -- resampling and compression -------------------------------------------------------------------
def downscale(image: Image.Image, rng: Rng) -> Image.Image:
    """Four times smaller on each side, with a random resampling filter."""
    w, h = image.size
    method = (Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)[int(rng.integers(0, 3))]
    return image.resize((max(8, w // 4), max(8, h // 4)), method)


def blur_noise(image: Image.Image, rng: Rng) -> Image.Image:
    """Gaussian blur (radius 1-3 px at 500 px), Gaussian noise (sigma 8-25) or both."""
    kind = int(rng.integers(0, 3))
    scale = max(image.size) / 500
    if kind in (0, 2):
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 3)) * scale))
    if kind in (1, 2):
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels + rng.normal(0, rng.uniform(8, 25), size=pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image


def jpeg(image: Image.Image, rng: Rng) -> Image.Image:
    """Re-encoded as JPEG at quality 10-50."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(10, 51)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


# -- stronger edits (``STRONG_EDITS``) -------------------------------------------------------------
def tight_crop(image: Image.Image, rng: Rng) -> Image.Image:
    """Keep 15-45 % of the area, then resized to 150-250 px on the longer side."""
    w, h = image.size
    area = rng.uniform(0.15, 0.45) * w * h
    ratio = math.exp(rng.uniform(math.log(2 / 3), math.log(3 / 2)))
    cw = max(8, int(round(min(w, math.sqrt(area * ratio)))))
    ch = max(8, int(round(min(h, area / cw))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = image.crop((x, y, x + cw, y + ch))
    side = int(rng.integers(150, 251))
    scale = side / max(out.size)
    return out.resize((max(8, int(cw * scale)), max(8, int(ch * scale))), Image.Resampling.BILINEAR)


def rotate_strong(image: Image.Image, rng: Rng) -> Image.Image:
    """15-45 degrees either way, canvas grown (corners filled)."""
    angle = float(rng.uniform(15, 45) * rng.choice([-1, 1]))
    fill = [(0, 0, 0), (255, 255, 255), _colour(rng)][int(rng.integers(0, 3))]
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=fill)


def perspective_strong(image: Image.Image, rng: Rng) -> Image.Image:
    """Each corner moved inwards by 15-30 % of the side: a print photographed at a steep angle."""
    w, h = image.size
    jitter = rng.uniform(0.15, 0.3, size=(4, 2)) * np.array([w, h])
    jitter[rng.integers(0, 4)] *= 0.3  # one corner stays nearly put, as in a real photograph
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    dst = src + np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * jitter
    fill = [(0, 0, 0), (255, 255, 255), _colour(rng)][int(rng.integers(0, 3))]
    return image.transform((w, h), Image.Transform.PERSPECTIVE, _perspective_coefficients(dst, src),
                           Image.Resampling.BILINEAR, fillcolor=fill)


def picture_in_picture(image: Image.Image, rng: Rng) -> Image.Image:
    """The work shown small (25-50 % of the width) inside a larger picture of noise, gradients and shapes."""
    w, h = image.size
    share = rng.uniform(0.25, 0.5)
    W = int(w / share)
    H = max(int(W * rng.uniform(0.6, 1.0)), int(h * 1.1))
    cells = rng.integers(0, 256, size=(int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3)).astype(np.uint8)
    page = Image.fromarray(cells).resize((W, H), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(page)
    for _ in range(int(rng.integers(2, 8))):
        x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
        box = [x0, y0, x0 + int(rng.integers(W // 10, W // 3)), y0 + int(rng.integers(H // 10, H // 3))]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=_colour(rng))
    small = image.resize((max(8, int(share * W)), max(8, int(share * W * h / w))), Image.Resampling.BILINEAR)
    x0 = int(rng.integers(0, max(1, W - small.size[0])))
    y0 = int(rng.integers(0, max(1, H - small.size[1])))
    page.paste(small, (x0, y0))
    return page


def pixelate(image: Image.Image, rng: Rng) -> Image.Image:
    """Blocks of 1/24-1/12 of the longer side (nearest-neighbour down and up)."""
    w, h = image.size
    block = max(2, int(max(w, h) / rng.uniform(12, 24)))
    small = image.resize((max(2, w // block), max(2, h // block)), Image.Resampling.BILINEAR)
    return small.resize((w, h), Image.Resampling.NEAREST)


def jpeg_low(image: Image.Image, rng: Rng) -> Image.Image:
    """Halved, then JPEG at quality 3-10."""
    w, h = image.size
    image = image.resize((max(8, w // 2), max(8, h // 2)), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(3, 11)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def hue_shift(image: Image.Image, rng: Rng) -> Image.Image:
    """Hue rotated by 60-300 degrees, or the channels swapped, or inverted."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        hsv = np.asarray(image.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(43, 213))) % 256
        return Image.fromarray(hsv, "HSV").convert("RGB")
    if kind == 1:
        order = [(1, 2, 0), (2, 0, 1), (2, 1, 0), (0, 2, 1), (1, 0, 2)][int(rng.integers(0, 5))]
        return Image.fromarray(np.asarray(image)[..., list(order)])
    return ImageOps.invert(image)


_EDIT_FUNCTIONS: dict[str, Callable[[Image.Image, Rng], Image.Image]] = {
    "crop": crop, "rotate": rotate, "flip": flip, "perspective": perspective, "colour": colour,
    "greyscale": greyscale, "overlay": overlay, "border": border, "screenshot": screenshot,
    "downscale": downscale, "blur_noise": blur_noise, "jpeg": jpeg,
    "tight_crop": tight_crop, "rotate_strong": rotate_strong, "perspective_strong": perspective_strong,
    "picture_in_picture": picture_in_picture, "pixelate": pixelate, "jpeg_low": jpeg_low, "hue_shift": hue_shift,
}


def edited(image: Image.Image, family: str, rng: Rng) -> tuple[Image.Image, str]:
    """``image`` after one edit ``family`` (or ``combo``: two distinct edits); returns (image, what was done).

    The description is the edit name, or ``"a+b"`` for a combination.
    """
    if family == COMBO:
        first, second = sorted(rng.choice(len(EDITS), size=2, replace=False).tolist())
        names = [EDITS[first], EDITS[second]]
    elif family in _EDIT_FUNCTIONS:
        names = [family]
    else:
        raise ArtlensError(f"unknown edit {family!r}", f"choose one of: {', '.join(ALL_FAMILIES)}")
    out = image.convert("RGB")
    for name in names:
        out = _EDIT_FUNCTIONS[name](out, rng)
    return out, "+".join(names)


def random_edit(image: Image.Image, rng: Rng, families: Sequence[str] = FAMILIES) -> tuple[Image.Image, str]:
    """An edit of a family drawn uniformly from ``families``."""
    return edited(image, str(families[int(rng.integers(0, len(families)))]), rng)


def edit_plan(n_items: int, per_item: int, seed: int, families: Sequence[str] = FAMILIES) -> list[tuple[int, str]]:
    """(item index, family) pairs: ``per_item`` edits of each item, families balanced over all pairs
    (a seeded shuffle of a round-robin)."""
    if per_item < 1:
        return []
    rng = np.random.default_rng(seed)
    slots = np.resize(np.arange(len(families)), n_items * per_item)
    rng.shuffle(slots)
    plan = []
    for item in range(n_items):
        mine = slots[item * per_item : (item + 1) * per_item]
        plan += [(item, str(families[f])) for f in mine]
    return plan
