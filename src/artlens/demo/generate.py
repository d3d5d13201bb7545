"""A seeded, procedurally drawn demo art collection (numpy + Pillow only, no downloads).

Every picture is a *subject layout* (which colour regions go where: a landscape, a
portrait, a still life) rendered with a *style technique* (dots, a Mondrian-like grid,
wave bands, watercolour washes, brush strokes, concentric rings) in the palette of a
fictional artist.  Titles, dates and descriptions are generated alongside, so both image
search ("more like this") and text search ("blue wave landscape") have something to find.

All drawing is vectorised numpy on pixel grids; many primitives (dots, strokes) are
splatted with a jittered-cell scheme so that a picture takes a few milliseconds.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from artlens.errors import CollectionError

__all__ = ["DEMO_STYLES", "DEMO_SUBJECTS", "generate_demo_collection"]

DEMO_STYLES: tuple[str, ...] = ("dot", "grid", "wave", "wash", "stroke", "concentric")
DEMO_SUBJECTS: tuple[str, ...] = ("landscape", "portrait", "still-life")

#: Bump when the drawing changes, so an existing collection made by an older generator
#: is not mistaken for the current one.
GENERATOR_VERSION = 1

LABEL_COLUMNS = ("path", "title", "artist", "style", "subject", "date", "description")
_MANIFEST = "demo.json"
_LABELS = "labels.csv"
_JPEG_QUALITY = 90

F32 = np.float32


# --------------------------------------------------------------------------- palettes


def _hex(code: str) -> np.ndarray:
    code = code.lstrip("#")
    return np.array([int(code[i : i + 2], 16) / 255.0 for i in (0, 2, 4)], dtype=F32)


@dataclass(frozen=True)
class _Palette:
    name: str
    light: str
    sky: str
    mid: str
    ground: str
    dark: str
    accent: str
    words: tuple[str, ...]  # colour words, dominant first
    mood: tuple[str, ...]

    def colours(self) -> dict[str, np.ndarray]:
        roles = ("light", "sky", "mid", "ground", "dark", "accent")
        return {r: _hex(getattr(self, r)) for r in roles}


_PALETTES: tuple[_Palette, ...] = (
    _Palette("azure", "#eaf2f6", "#5b9bd5", "#2e6f95", "#8fb9a8", "#16324f", "#f2c14e",
             ("blue", "azure", "teal", "white"), ("calm", "serene", "cool", "airy")),
    _Palette("ochre", "#f3e3c3", "#d6b77a", "#a0522d", "#b5803a", "#3b2a1a", "#d94f30",
             ("ochre", "sienna", "umber", "brown"), ("earthy", "warm", "rustic", "sunlit")),
    _Palette("crimson", "#f0d9b5", "#8c2433", "#c0282f", "#5a1f1f", "#140c0c", "#e8a822",
             ("crimson", "red", "gold", "black"), ("dramatic", "intense", "passionate", "dark")),
    _Palette("pastel", "#fdf6f0", "#b8d8ea", "#d7b5e0", "#bfe3c0", "#7d6b91", "#f5a3b7",
             ("pink", "lilac", "mint", "pastel"), ("soft", "gentle", "dreamy", "tender")),
    _Palette("primary", "#f4f1e6", "#2151a8", "#f2cf1d", "#c8252c", "#151515", "#c8252c",
             ("red", "yellow", "blue", "white"), ("bold", "vivid", "modern", "energetic")),
    _Palette("sunset", "#ffd9a8", "#f08a4b", "#c2456f", "#6b2f78", "#2a1340", "#ffd23f",
             ("orange", "magenta", "purple", "gold"), ("warm", "glowing", "fiery", "romantic")),
    _Palette("forest", "#e4ecd0", "#9cc5a1", "#49a078", "#2f6b3a", "#1c2a18", "#c77d3a",
             ("green", "olive", "moss", "amber"), ("fresh", "verdant", "peaceful", "natural")),
    _Palette("slate", "#e6e6e3", "#a9b4bd", "#7d858c", "#8c8377", "#2b2f33", "#b8574a",
             ("grey", "slate", "silver", "rust"), ("muted", "melancholy", "quiet", "overcast")),
    _Palette("violet", "#fff5c2", "#f3d34a", "#8a5cc2", "#5a3d8a", "#24163d", "#f28c28",
             ("yellow", "violet", "purple", "lemon"), ("lively", "contrasting", "joyful", "bright")),
    _Palette("nocturne", "#c9d6ea", "#223760", "#3b5b93", "#14213a", "#070b14", "#f4d35e",
             ("navy", "midnight blue", "blue", "gold"), ("nocturnal", "mysterious", "still", "cold")),
    _Palette("riviera", "#f6e7d7", "#4fb0c6", "#e07a5f", "#d9a066", "#3d405b", "#81b29a",
             ("turquoise", "terracotta", "sand", "coral"), ("sunny", "mediterranean", "relaxed", "warm")),
    _Palette("sepia", "#efe2cc", "#c8a98a", "#9c7a5b", "#7a5a3f", "#33251a", "#5a3d2b",
             ("sepia", "brown", "cream", "tan"), ("nostalgic", "vintage", "subdued", "wistful")),
)


def _lum(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a + (b - a) * F32(t)).astype(F32)


def _jitter_palette(pal: _Palette, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The artist's palette with a small per-picture shift in brightness and tint."""
    cols = pal.colours()
    tint = (1.0 + rng.normal(0, 0.035, 3)).astype(F32)
    gain = F32(1.0 + rng.normal(0, 0.04))
    return {k: np.clip(v * tint * gain, 0, 1).astype(F32) for k, v in cols.items()}


# --------------------------------------------------------------------------- artists

_FIRST = ("Elise", "Tomas", "Margit", "Henri", "Ada", "Felix", "Ines", "Oskar", "Lucia", "Anton",
          "Nora", "Pavel", "Clara", "Emil", "Sofia", "Viktor", "Mira", "Jules", "Greta", "Leon",
          "Amara", "Ivo", "Hana", "Rafael")
_LAST = ("Marchand", "Halvorsen", "Castellan", "Weisz", "Duvane", "Okoro", "Lindqvist", "Moravec",
         "Vasquez", "Brandtner", "Kerrigan", "Novakova", "Ferreira", "Albrecht", "Sato", "Ostrova",
         "Belloni", "Achterberg", "Quennell", "Rask", "Tamura", "Verhoeven", "Saldana", "Iversen")


@dataclass(frozen=True)
class _Artist:
    name: str
    style: str
    second_style: str
    palette: _Palette
    start: int
    end: int


def _make_artists(rng: np.random.Generator) -> list[_Artist]:
    """Twelve fictional artists: two per main style, each style also someone's second."""
    first = list(rng.permutation(len(_FIRST)))
    last = list(rng.permutation(len(_LAST)))
    pals = list(rng.permutation(len(_PALETTES)))
    artists = []
    k_styles = len(DEMO_STYLES)
    for k in range(2 * k_styles):
        main = k % k_styles
        second = (main + 1 + 2 * (k // k_styles)) % k_styles
        start = int(rng.integers(1850, 1981))
        end = min(2020, start + int(rng.integers(15, 46)))
        artists.append(_Artist(
            name=f"{_FIRST[first[k]]} {_LAST[last[k]]}",
            style=DEMO_STYLES[main],
            second_style=DEMO_STYLES[second],
            palette=_PALETTES[pals[k % len(pals)]],
            start=start,
            end=end,
        ))
    return artists


@dataclass(frozen=True)
class _Spec:
    index: int  # 1-based
    style: str
    subject: str
    artist: _Artist
    year: int


def _plan(n: int, seed: int) -> list[_Spec]:
    """Balanced (style, subject) slots, shuffled, each given an artist and a year."""
    rng = np.random.default_rng([seed, 0xA27])
    artists = _make_artists(rng)
    ns, nj = len(DEMO_STYLES), len(DEMO_SUBJECTS)
    slots = []
    for i in range(n):
        s = i % ns
        j = (s + i // ns) % nj  # every prefix is balanced on both margins (within one)
        slots.append((DEMO_STYLES[s], DEMO_SUBJECTS[j]))
    order = rng.permutation(n)
    specs = []
    for idx, o in enumerate(order):
        style, subject = slots[int(o)]
        main = [a for a in artists if a.style == style]
        second = [a for a in artists if a.second_style == style]
        pool = second if (second and rng.random() < 0.2) else main
        artist = pool[int(rng.integers(len(pool)))]
        year = int(rng.integers(artist.start, artist.end + 1))
        specs.append(_Spec(idx + 1, style, subject, artist, year))
    return specs


# --------------------------------------------------------------------------- drawing helpers


@dataclass
class _Scene:
    ref: np.ndarray  # (S, S, 3) float32 in [0, 1]: the subject's colour layout
    focal: list[tuple[float, float, float]]  # (x, y, r) in [0, 1] units: centres of interest
    phrase: str  # description fragment: "A landscape of ..."
    title: str
    colours: dict[str, np.ndarray] = field(default_factory=dict)


_GRID_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _uv(S: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: u as (1, S) (x), v as (S, 1) (y)."""
    if S not in _GRID_CACHE:
        t = ((np.arange(S, dtype=F32) + F32(0.5)) / F32(S)).astype(F32)
        _GRID_CACHE[S] = (t[None, :], t[:, None])
    return _GRID_CACHE[S]


def _noise(rng: np.random.Generator, S: int, cells: int) -> np.ndarray:
    """Smooth value noise in about [0, 1], (S, S) float32."""
    small = rng.random((cells + 1, cells + 1)).astype(F32)
    img = Image.fromarray(small).resize((S, S), Image.BICUBIC)
    return np.asarray(img, dtype=F32)


def _blur(arr: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an (S, S, 3) float image in [0, 1] (via Pillow, 8-bit)."""
    if radius <= 0:
        return arr
    img = Image.fromarray(_to_u8(arr)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(img, dtype=F32) * F32(1 / 255)


def _to_u8(arr: np.ndarray) -> np.ndarray:
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _paint(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    """In place: img = img * (1 - alpha) + colour * alpha (colour: rgb or an image)."""
    a = alpha[..., None] if alpha.ndim == 2 else alpha
    img += a * (np.asarray(colour, dtype=F32) - img)


def _ellipse(u, v, cx, cy, rx, ry, S) -> np.ndarray:
    """Anti-aliased ellipse coverage (S, S)."""
    d = np.sqrt(((u - F32(cx)) / F32(rx)) ** 2 + ((v - F32(cy)) / F32(ry)) ** 2)
    return np.clip((1.0 - d) * F32(min(rx, ry) * S) + 0.5, 0.0, 1.0).astype(F32)


def _below(v, edge, S) -> np.ndarray:
    """Anti-aliased coverage of pixels below (larger v than) an edge (broadcastable)."""
    return np.clip((v - edge) * F32(S) + 0.5, 0.0, 1.0).astype(F32)


def _rect(u, v, x0, y0, x1, y1, S) -> np.ndarray:
    ax = np.clip(np.minimum(u - F32(x0), F32(x1) - u) * F32(S) + 0.5, 0, 1)
    ay = np.clip(np.minimum(v - F32(y0), F32(y1) - v) * F32(S) + 0.5, 0, 1)
    return (ax * ay).astype(F32)


def _sphere_shade(u, v, cx, cy, rx, ry, strength=0.45) -> np.ndarray:
    """Lambert-ish shading factor for a ball lit from the upper left."""
    nx = (u - F32(cx)) / F32(rx)
    ny = (v - F32(cy)) / F32(ry)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    lam = np.clip(-0.5 * nx - 0.55 * ny + 0.67 * nz, 0.0, 1.0)
    spec = np.clip(lam - 0.9, 0, 1) * 4.0
    return (1.0 - F32(strength) + F32(strength) * 1.25 * lam + spec).astype(F32)


def _win(S: int, x0: float, y0: float, x1: float, y1: float):
    """Slices and local (u, v) of the pixel window covering [x0, x1] x [y0, y1] (unit coords)."""
    ix0, ix1 = max(0, int(x0 * S) - 2), min(S, int(math.ceil(x1 * S)) + 2)
    iy0, iy1 = max(0, int(y0 * S) - 2), min(S, int(math.ceil(y1 * S)) + 2)
    u, v = _uv(S)
    return (slice(iy0, iy1), slice(ix0, max(ix0, ix1))), u[:, ix0:ix1], v[iy0:iy1, :]


def _draw_ellipse(img, cx, cy, rx, ry, colour, alpha=1.0, shade=0.0) -> None:
    """Paint an anti-aliased ellipse into img (S, S, 3), only touching its bounding box.
    shade > 0 lights it like a ball from the upper left."""
    S = img.shape[0]
    sl, u, v = _win(S, cx - rx, cy - ry, cx + rx, cy + ry)
    a = _ellipse(u, v, cx, cy, rx, ry, S)
    if alpha != 1.0:
        a = a * F32(alpha)
    col = np.asarray(colour, dtype=F32)
    if shade:
        col = col * _sphere_shade(u, v, cx, cy, rx * 1.15, ry * 1.15, shade)[..., None]
    _paint(img[sl], a, col)


def _draw_rect(img, x0, y0, x1, y1, colour, alpha=1.0) -> None:
    S = img.shape[0]
    sl, u, v = _win(S, x0, y0, x1, y1)
    a = _rect(u, v, x0, y0, x1, y1, S)
    if callable(colour):
        colour = colour(u, v)
    _paint(img[sl], a * F32(alpha) if alpha != 1.0 else a, colour)


def _an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _choice(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _contrast_pick(rng, cols, target, roles, min_diff=0.22):
    """A random role colour from roles, unless it is too close in lightness to target."""
    role = _choice(rng, roles)
    if abs(_lum(cols[role]) - _lum(target)) < min_diff:
        role = max(roles, key=lambda r: abs(_lum(cols[r]) - _lum(target)))
    return role


# --------------------------------------------------------------------------- subjects

_TOWNS = ("Vellmoor", "Saint-Aubrac", "Kessendorf", "Marenne", "Ostavik", "Lorvan", "Castelbrun",
          "Hollin", "Brenmouth", "Aldsey")


def _landscape(rng: np.random.Generator, cols: dict[str, np.ndarray], S: int) -> _Scene:
    u, v = _uv(S)
    h = float(rng.uniform(0.40, 0.60))
    time = _choice(rng, ("morning", "noon", "evening", "dusk", "dawn", "winter", "summer", "autumn"))
    low_sun = time in ("evening", "dusk", "dawn", "morning")
    water = rng.random() < 0.45
    mountains = rng.random() < 0.5
    has_sun = rng.random() < 0.7
    trees = (not water) and rng.random() < 0.55

    sky_top = _mix(cols["sky"], cols["dark"], 0.35) if time == "dusk" else cols["sky"]
    glow = _mix(cols["light"], cols["accent"], 0.35 if low_sun else 0.05)
    t = np.clip(v / F32(h), 0, 1) ** 1.4
    img = np.broadcast_to(sky_top + (glow - sky_top) * t[..., None], (S, S, 3)).astype(F32)

    # clouds: soft horizontal streaks
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(0.05, 0.95), rng.uniform(0.06, h * 0.7)
            a = _ellipse(u, v, cx, cy, rng.uniform(0.12, 0.25), rng.uniform(0.025, 0.05), S)
            _paint(img, a * 0.55, _mix(cols["light"], sky_top, 0.15))

    focal = []
    sun_x, sun_y, sun_r = 0.5, h * 0.5, 0.0
    if has_sun:
        sun_r = float(rng.uniform(0.05, 0.09))
        sun_x = float(rng.uniform(0.18, 0.82))
        sun_y = float(h - rng.uniform(0.08, 0.16)) if low_sun else float(rng.uniform(0.1, 0.22))
        d = np.sqrt((u - F32(sun_x)) ** 2 + (v - F32(sun_y)) ** 2)
        _paint(img, np.exp(-np.maximum(d - sun_r, 0) * 9.0).astype(F32) * 0.45, glow)
        _paint(img, _ellipse(u, v, sun_x, sun_y, sun_r, sun_r, S),
               _mix(cols["accent"], cols["light"], 0.15 if low_sun else 0.7))
        focal.append((sun_x, sun_y, sun_r * 2.5))

    if mountains:
        ph = rng.uniform(0, 2 * np.pi, 3)
        ridge = (h - 0.04 - rng.uniform(0.08, 0.18) * (
            0.55 * np.abs(np.sin(u * 5.0 + ph[0])) + 0.3 * np.abs(np.sin(u * 11.0 + ph[1]))
            + 0.15 * np.abs(np.sin(u * 23.0 + ph[2])))).astype(F32)
        mcol = _mix(_mix(cols["mid"], cols["dark"], 0.25), sky_top, 0.35)
        a = _below(v, ridge, S)
        shade = (1.0 - 0.25 * np.clip((v - ridge) / 0.12, 0, 1))[..., None]
        _paint(img, a, mcol * shade)

    if water:
        wcol = _mix(_mix(cols["sky"], cols["dark"], 0.3), cols["mid"], 0.2)
        _paint(img, _below(v, F32(h), S), wcol)
        streak = _noise(rng, S, 6)
        streak = np.asarray(Image.fromarray(streak).resize((S, S // 8 + 1)).resize(
            (S, S), Image.BILINEAR), dtype=F32)
        wm = _below(v, F32(h), S)
        img *= (1.0 + (streak[..., None] - 0.5) * 0.25 * wm[..., None])
        if has_sun:
            refl = np.exp(-((u - F32(sun_x)) / F32(sun_r * 0.9)) ** 2) * wm * (streak > 0.45)
            _paint(img, refl.astype(F32) * 0.6, _mix(cols["accent"], cols["light"], 0.4))
        shore = (h + rng.uniform(0.12, 0.22) + 0.03 * np.sin(u * rng.uniform(3, 7) + rng.uniform(0, 6))).astype(F32)
    else:
        shore = (h + 0.025 * np.sin(u * rng.uniform(3, 6) + rng.uniform(0, 6))).astype(F32)

    # ground in two bands: far fields and a darker foreground hill
    gcol = _mix(cols["ground"], cols["light"], 0.6) if time == "winter" else cols["ground"]  # snow
    tg = np.clip((v - shore) / F32(1.0 - h), 0, 1)
    _paint(img, _below(v, shore, S), gcol * (1.0 - 0.25 * tg)[..., None])
    near = (shore + rng.uniform(0.12, 0.22) + 0.05 * np.sin(u * rng.uniform(2, 5) + rng.uniform(0, 6))).astype(F32)
    _paint(img, _below(v, near, S), _mix(gcol, cols["dark"], 0.3))

    if trees:
        for _ in range(int(rng.integers(1, 5))):
            tx = float(rng.uniform(0.08, 0.92))
            base = float(shore[0, min(S - 1, int(tx * S))] + rng.uniform(0.0, 0.08))
            th = float(rng.uniform(0.1, 0.2))
            _paint(img, _rect(u, v, tx - 0.008, base - th * 0.6, tx + 0.008, base, S), cols["dark"])
            _paint(img, _ellipse(u, v, tx, base - th * 0.7, th * 0.33, th * 0.45, S),
                   _mix(gcol, cols["dark"], 0.55))

    img *= (0.94 + 0.12 * _noise(rng, S, 8))[..., None]
    np.clip(img, 0, 1, out=img)
    if not focal:
        focal.append((float(rng.uniform(0.2, 0.8)), h, 0.15))

    # words
    if water:
        place = _choice(rng, ("Harbour", "Bay", "Lake", "Coast", "River", "Estuary", "Lagoon"))
    elif mountains:
        place = _choice(rng, ("Mountains", "Peaks", "Valley", "Pass", "Ridge"))
    else:
        place = _choice(rng, ("Hills", "Meadow", "Fields", "Plain", "Orchard", "Countryside"))
    Time = time.capitalize()
    adj = _choice(rng, ("Quiet", "Distant", "Silent", "Wide", "Late", "Lonely", "Golden", "Still",
                        "Blue", "Windy", "Old", "Bright", "Empty", "Far"))
    when = {"morning": "in the morning", "evening": "in the evening", "noon": "at noon", "dusk": "at dusk",
            "dawn": "at dawn"}.get(time, f"in {time}")
    title = _choice(rng, (
        f"{Time} {place}", f"{place} {when.replace(time, Time)}",
        f"View of the {place}", f"The {adj} {place}", f"{place} near {_choice(rng, _TOWNS)}",
        f"{Time} over the {place}",
    ))
    bits = [f"the {place.lower()}" if place.endswith("s") or place == "Countryside" else f"{_an(place)} {place.lower()}"]
    bits.append(when)
    extra = []
    if has_sun:
        extra.append("a low sun on the horizon" if low_sun else "a bright sun high in the sky")
    if mountains:
        extra.append("distant mountains")
    if water:
        extra.append("still water")
    if trees:
        extra.append("a few trees")
    if time == "winter":
        extra.append("snow on the ground")
    phrase = "A landscape of " + " ".join(bits) + " under a wide sky"
    if extra:
        phrase += ", with " + (", ".join(extra[:-1]) + " and " + extra[-1] if len(extra) > 1 else extra[0])
    return _Scene(img, focal, phrase, title, cols)


_SITTERS = (
    # (noun, long hair, old, article)
    ("young woman", True, False, "a"),
    ("young man", False, False, "a"),
    ("old man", False, True, "an"),
    ("old woman", True, True, "an"),
    ("girl", True, False, "a"),
    ("boy", False, False, "a"),
)
_PROFESSIONS = ("Sailor", "Seamstress", "Violinist", "Botanist", "Ferryman", "Schoolteacher",
                "Clockmaker", "Dancer", "Poet", "Fisherman", "Actress", "Gardener", "Cellist",
                "Baker", "Harbour Master", "Widow", "Astronomer", "Singer", "Lacemaker", "Pilot")
_NAMES = ("Madame Lenoir", "Mr. H.", "Anna K.", "the Artist's Mother", "Doctor Vey", "Marguerite",
          "the Painter Rask", "a Friend", "Signora Belli", "Jonas", "Elena", "Monsieur Dufay",
          "the Artist's Son", "Lotte", "Professor Imre", "Miss Hartley", "Tomasz", "Aunt Vera")


def _portrait(rng: np.random.Generator, cols: dict[str, np.ndarray], S: int) -> _Scene:
    u, v = _uv(S)
    noun, long_hair, old, art = _choice(rng, _SITTERS)
    hat = rng.random() < 0.2
    skin = _mix(_mix(cols["light"], cols["ground"], 0.3), cols["accent"], 0.08)
    bg = cols[_contrast_pick(rng, cols, skin, ("sky", "mid", "dark", "ground"))]
    vign = np.sqrt((u - 0.5) ** 2 + (v - 0.45) ** 2)  # background: soft vignette
    img = np.broadcast_to(bg, (S, S, 3)) * (1.08 - 0.45 * vign)[..., None]
    img = (img * (0.93 + 0.14 * _noise(rng, S, 5))[..., None]).astype(F32)

    cx = float(0.5 + rng.normal(0, 0.025))
    cy = float(0.40 + rng.normal(0, 0.015))
    rx = float(rng.uniform(0.13, 0.16))
    ry = float(rx * rng.uniform(1.25, 1.4))
    hair = _mix(cols["light"], cols["mid"], 0.25) if old else _mix(cols["dark"], cols["ground"], 0.2)
    cloth_role = _contrast_pick(rng, cols, bg, ("accent", "dark", "mid", "sky"), 0.15)
    cloth = cols[cloth_role]

    if long_hair:  # hair falling behind the head, down to the shoulders
        _draw_ellipse(img, cx, cy + 0.08, rx * 1.4, ry * 1.25, hair * 0.9)
    torso_top = cy + ry + 0.06
    trx = float(rng.uniform(0.36, 0.44))
    folds = rng.random() < 0.5

    sl, uu, vv = _win(S, cx - trx, torso_top, cx + trx, 1.0)
    fold = (0.9 + 0.1 * np.sin((uu - F32(cx)) * 40.0)) if folds else F32(1.0)
    side = 1.0 - 0.35 * np.clip((uu - F32(cx)) * 2.5, 0, 1)  # lit from the left
    _paint(img[sl], _ellipse(uu, vv, cx, 1.08, trx, 1.08 - torso_top, S), cloth * (fold * side)[..., None])
    _draw_rect(img, cx - 0.05, cy + ry * 0.6, cx + 0.05, torso_top + 0.03, skin * 0.8)  # neck
    _draw_ellipse(img, cx, torso_top + 0.015, 0.09, 0.035, _mix(cloth, cols["light"], 0.45), 0.8)
    _draw_ellipse(img, cx, cy, rx, ry, skin, shade=0.35)
    # hair cap over the top of the head, down to the hairline
    sl, uu, vv = _win(S, cx - rx * 1.1, cy - ry * 1.2, cx + rx * 1.1, cy)
    cap = _ellipse(uu, vv, cx, cy - ry * 0.2, rx * 1.08, ry * 0.92, S) * _below(-vv, F32(-(cy - ry * 0.35)), S)
    _paint(img[sl], cap, hair)
    ey = cy - ry * 0.05  # face: eyes, nose shadow, mouth
    for sx in (-1, 1):
        _draw_ellipse(img, cx + sx * rx * 0.38, ey, rx * 0.16, ry * 0.06, cols["dark"])
    _draw_ellipse(img, cx, cy + ry * 0.18, rx * 0.08, ry * 0.15, skin * 0.7, 0.35)
    _draw_ellipse(img, cx, cy + ry * 0.5, rx * 0.3, ry * 0.06, _mix(cols["accent"], cols["dark"], 0.35))
    if hat:
        hcol = _mix(cols["dark"], cloth, 0.3)
        _draw_ellipse(img, cx, cy - ry * 0.72, rx * 1.7, ry * 0.18, hcol)
        _draw_rect(img, cx - rx * 0.85, cy - ry * 1.45, cx + rx * 0.85, cy - ry * 0.72, hcol)
        _draw_rect(img, cx - rx * 0.85, cy - ry * 0.9, cx + rx * 0.85, cy - ry * 0.78, cols["accent"])
    np.clip(img, 0, 1, out=img)

    cword = _colour_word(cloth)
    who = noun.split()[-1]
    Who = {"man": "Man", "boy": "Boy", "woman": "Woman", "girl": "Girl"}[who]
    Noun = noun.title()
    options = [f"Portrait of {art} {Noun}", f"Portrait of {art} {Noun}", f"Head of {art} {Noun}",
               f"{Who} in {cword.title()}", f"Portrait of {_choice(rng, _NAMES)}",
               f"Study of {art} {Noun}", "Self-Portrait" if who in ("man", "woman") else f"{Who} at a Window"]
    if who in ("man", "woman"):
        options += [f"The {_choice(rng, _PROFESSIONS)}", f"The {_choice(rng, _PROFESSIONS)}"]
    if hat:
        options += [f"{Who} with a Hat"] * 3
    title = _choice(rng, options)
    phrase = f"A head-and-shoulders portrait of {art} {noun}"
    phrase += " wearing a hat" if hat else (" with long hair" if long_hair else "")
    phrase += f", a centred figure in {cword} clothes against a plain background"
    return _Scene(img, [(cx, cy, max(rx, ry) * 1.2), (cx, 0.95, 0.2)], phrase, title, cols)


_COLOUR_NAMES = (
    ("white", "#f2f0ea"), ("black", "#151515"), ("grey", "#808080"), ("red", "#c0282f"),
    ("crimson", "#8c1c2b"), ("orange", "#f08a30"), ("yellow", "#f2cf1d"), ("gold", "#d9a826"),
    ("green", "#3f9a4f"), ("olive", "#7c8a3a"), ("blue", "#2f5fb0"), ("navy", "#1b2a4a"),
    ("sky blue", "#8fc0e8"), ("turquoise", "#40b0b8"), ("violet", "#7d4fb5"), ("purple", "#5a2d6e"),
    ("pink", "#f2a3b7"), ("brown", "#6b4a2f"), ("ochre", "#c99a4a"), ("cream", "#efe2c4"),
)


def _colour_word(c: np.ndarray) -> str:
    """The nearest everyday colour name for an rgb colour."""
    best = min(_COLOUR_NAMES, key=lambda kv: float(((_hex(kv[1]) - c) ** 2).sum()))
    return best[0]


_FRUITS = (
    # (name plural, shape): shape "round", "pear", "oval", "small"
    ("Pears", "pear"), ("Apples", "round"), ("Oranges", "round"), ("Lemons", "oval"),
    ("Plums", "small"), ("Peaches", "round"), ("Quinces", "pear"), ("Grapes", "small"),
)


def _still_life(rng: np.random.Generator, cols: dict[str, np.ndarray], S: int) -> _Scene:
    u, v = _uv(S)
    t = float(rng.uniform(0.56, 0.66))  # back edge of the table top
    f = float(min(0.93, t + rng.uniform(0.18, 0.25)))  # front edge
    wall_role = _choice(rng, ("sky", "mid", "light", "dark"))
    wall = cols[wall_role]
    table = cols["ground"]
    if abs(_lum(table) - _lum(wall)) < 0.12:
        table = _mix(table, cols["dark"], 0.45)
    img = np.broadcast_to(wall, (S, S, 3)).astype(F32) * (1.05 - 0.25 * v)[..., None]
    img *= (0.94 + 0.12 * _noise(rng, S, 4))[..., None]
    if rng.random() < 0.4:  # a hanging drape on one side
        side = rng.random() < 0.5
        x0, x1 = (0.0, rng.uniform(0.18, 0.3)) if side else (rng.uniform(0.7, 0.82), 1.0)
        folds = (0.8 + 0.2 * np.sin(u * 55.0 + rng.uniform(0, 6)))[..., None]
        dcol = _mix(cols["accent"], cols["dark"], 0.3) if wall_role != "dark" else cols["mid"]
        _paint(img, _rect(u, v, x0, -0.1, x1, t + 0.02, S), dcol * folds)
    cloth = rng.random() < 0.35
    top = _mix(cols["light"], table, 0.25) if cloth else table
    _paint(img, _below(v, F32(t), S), top * (0.85 + 0.2 * (v - F32(t)) / F32(f - t))[..., None])
    _paint(img, _below(v, F32(f), S), _mix(top, cols["dark"], 0.45 if not cloth else 0.25))
    if cloth:
        folds = (0.85 + 0.15 * np.sin(u * 35.0))[..., None]
        img *= np.where(v > f, folds, 1.0).astype(F32)

    objects = []  # (base_y, kind, params)
    vase = rng.random() < 0.7
    flowers = vase and rng.random() < 0.45
    vx = float(rng.uniform(0.3, 0.7))
    if vase:
        objects.append((t + 0.05, "vase", vx))
    fruit_name, shape = _choice(rng, _FRUITS)
    n_fruit = int(rng.integers(2, 6))
    for _ in range(n_fruit):
        fx = float(rng.uniform(0.15, 0.85))
        if vase and abs(fx - vx) < 0.1:
            fx = vx + (0.16 if fx >= vx else -0.16)
        objects.append((float(rng.uniform(t + 0.07, f - 0.03)), "fruit", fx))
    objects.sort(key=lambda o: o[0])

    vcol = cols[_contrast_pick(rng, cols, wall, ("accent", "sky", "dark", "mid"), 0.2)]
    fruit_col = cols[_contrast_pick(rng, cols, table, ("accent", "mid", "sky", "light"), 0.15)]
    focal = []
    for base, kind, x in objects:
        if kind == "vase":
            rx, ry = float(rng.uniform(0.08, 0.12)), float(rng.uniform(0.1, 0.14))
            cyb = base - ry
            _draw_ellipse(img, x + 0.03, base, rx * 1.2, 0.025, cols["dark"], 0.45)  # shadow
            neck_top = cyb - ry - float(rng.uniform(0.06, 0.12))
            _draw_rect(img, x - rx * 0.35, neck_top, x + rx * 0.35, cyb, lambda uu, vv: vcol * (
                0.9 - 0.3 * np.clip((uu - F32(x)) / F32(rx * 0.35), 0, 1))[..., None])
            _draw_ellipse(img, x, neck_top, rx * 0.5, 0.015, _mix(vcol, cols["light"], 0.3))
            _draw_ellipse(img, x, cyb, rx, ry, vcol, shade=0.5)
            focal.append((x, cyb, ry * 1.5))
            if flowers:
                for _ in range(int(rng.integers(5, 10))):
                    px = x + float(rng.normal(0, 0.07))
                    py = neck_top - abs(float(rng.normal(0.06, 0.05)))
                    pr = float(rng.uniform(0.025, 0.045))
                    _draw_ellipse(img, px, py, pr, pr, cols[_choice(rng, ("accent", "light", "mid", "sky"))],
                                  shade=0.3)
                    _draw_ellipse(img, px, py, pr * 0.3, pr * 0.3, cols["dark"] * 0.8 + 0.1)
                focal.append((x, neck_top - 0.07, 0.12))
        else:
            r = float(rng.uniform(0.045, 0.07)) * (0.6 if shape == "small" else 1.0)
            rx, ry = {"oval": (r * 1.3, r * 0.85), "pear": (r * 0.85, r * 1.25)}.get(shape, (r, r))
            cy = base - ry
            fc = fruit_col * F32(1.0 + rng.normal(0, 0.06))
            _draw_ellipse(img, x + 0.02, base, rx * 1.2, 0.018, cols["dark"], 0.4)
            if shape == "pear":  # a smaller ball on top
                _draw_ellipse(img, x, cy - ry * 0.75, rx * 0.6, ry * 0.55, fc, shade=0.45)
            _draw_ellipse(img, x, cy, rx, ry, fc, shade=0.45)
            focal.append((x, cy, ry * 1.6))
    np.clip(img, 0, 1, out=img)

    vessel = _choice(rng, ("Vase", "Jug", "Bottle", "Pitcher"))
    fl = fruit_name.lower()
    if flowers:
        title = _choice(rng, ("Vase of Flowers", f"Flowers and {fruit_name}", "Bouquet on a Table",
                              f"Still Life with Flowers and {fruit_name}",
                              f"Flowers in a {_colour_word(vcol).title()} {vessel}",
                              f"{_choice(rng, ('Spring', 'Summer', 'Autumn', 'Wild', 'Garden'))} Flowers"))
        phrase = f"A still life of flowers in a vase beside {fl} on a table"
    elif vase:
        title = _choice(rng, (f"Still Life with {fruit_name} and a {vessel}", f"Still Life with {fruit_name}",
                              f"The {vessel} and the {fruit_name}", f"Table with {fruit_name}",
                              f"{_colour_word(vcol).title()} {vessel} with {fruit_name}",
                              f"Still Life with a {_colour_word(vcol).title()} {vessel}"))
        phrase = f"A still life of a {vessel.lower()} and {fl} on a table"
    else:
        title = _choice(rng, (f"Still Life with {fruit_name}", f"{fruit_name} on a Table",
                              f"Bowl of {fruit_name}", f"Kitchen Table with {fruit_name}",
                              f"{_choice(rng, ('Three', 'Some', 'Ripe', 'Fallen'))} {fruit_name}",
                              f"Still Life with {_colour_word(fruit_col).title()} {fruit_name}"))
        phrase = f"A still life of {fl} arranged on a table"
    phrase += ", a tablecloth in front" if cloth else ", a plain wall behind"
    return _Scene(img, focal or [(0.5, t, 0.2)], phrase, title, cols)


_SUBJECT_FUNCS = {"landscape": _landscape, "portrait": _portrait, "still-life": _still_life}


# --------------------------------------------------------------------------- styles


def _palette_array(cols: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([cols[k] for k in sorted(cols)]).astype(F32)


def _nearest(img: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour for every pixel (shape img.shape[:-1])."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]  # plain array ops: no BLAS threads
    best = np.full(img.shape[:-1], np.inf, dtype=F32)
    idx = np.zeros(img.shape[:-1], dtype=np.int64)
    for k, (pr, pg, pb) in enumerate(pal):
        d = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2
        closer = d < best
        best = np.where(closer, d, best)
        idx[closer] = k
    return idx


def _snap(img: np.ndarray, cols: dict[str, np.ndarray], amount: float) -> np.ndarray:
    """Pull colours toward the nearest palette colour by `amount` (0..1)."""
    pal = _palette_array(cols)
    near = pal[_nearest(img, pal)]
    return (img + (near - img) * F32(amount)).astype(F32)


def _splat(canvas, ref, rng, cell, kind, size, value_sd=0.0, tint_sd=0.0, angle=None, tex=0.0,
           jitter=1.0):
    """Draw one layer of dots or strokes, one per jittered cell of `cell` pixels, in place.

    Each primitive reaches at most one cell from its centre, so a pixel only needs the 3x3
    neighbouring cells: pixels are viewed as (G, c, G, c) blocks and every candidate is a
    broadcast of (G, G) per-cell arrays, so a whole layer is a few dozen array operations.
    The topmost primitive over a pixel wins (random painting order, packed with the
    candidate number into one integer key so that a running maximum finds it).
    kind "dot": size = (min, max) radius in cells; kind "stroke": size = (half-length,
    half-width) in cells, angle = an (A, A) direction field sampled at the stroke centres.
    """
    S = canvas.shape[0]
    c = int(cell)
    G = -(-S // c)
    Gp = G + 2
    jx = (0.5 + (rng.random((Gp, Gp), dtype=F32) - 0.5) * F32(jitter)).astype(F32)
    jy = (0.5 + (rng.random((Gp, Gp), dtype=F32) - 0.5) * F32(jitter)).astype(F32)
    keys = (rng.permutation(Gp * Gp).astype(np.int32) * 16).reshape(Gp, Gp)
    idx = np.arange(Gp, dtype=F32)
    cxa = ((idx[None, :] - 1 + jx) * c).astype(np.int64).clip(0, S - 1)
    cya = ((idx[:, None] - 1 + jy) * c).astype(np.int64).clip(0, S - 1)
    col = ref[cya, cxa]  # (Gp, Gp, 3)
    if value_sd or tint_sd:
        gain = 1.0 + rng.normal(0, value_sd or 1e-9, (Gp, Gp, 1)) + rng.normal(0, tint_sd or 1e-9, (Gp, Gp, 3))
        col = (col * gain).astype(F32)
    if kind == "dot":
        rad = rng.uniform(size[0], size[1], (Gp, Gp)).astype(F32) * c
        r2 = (rad * rad).astype(F32)
    else:
        hl = (F32(size[0] * c) * rng.uniform(0.8, 1.0, (Gp, Gp))).astype(F32)
        hw = (F32(size[1] * c) * rng.uniform(0.8, 1.2, (Gp, Gp))).astype(F32)
        A = angle.shape[0]
        th = angle[cya * A // S, cxa * A // S]
        # unit vectors scaled so that a = along / half-length, b = across / half-width
        ax, ay = (np.cos(th) / hl).astype(F32), (np.sin(th) / hl).astype(F32)
        bx, by = (-np.sin(th) / hw).astype(F32), (np.cos(th) / hw).astype(F32)

    # pixel (gy * c + ly, gx * c + lx) lives at [ly, lx, gy, gx]: long inner loops over cells
    lc = np.arange(c, dtype=F32) + F32(0.5)
    lx, ly = lc[None, :, None, None], lc[:, None, None, None]
    offs = [(oy, ox) for oy in (-1, 0, 1) for ox in (-1, 0, 1)]
    best = np.full((c, c, G, G), -1, dtype=np.int32)
    minus1 = np.int32(-1)
    for k, (oy, ox) in enumerate(offs):
        sl = (slice(1 + oy, 1 + oy + G), slice(1 + ox, 1 + ox + G))
        dx = lx - (ox + jx[sl]) * c  # (1, c, G, G)
        dy = ly - (oy + jy[sl]) * c  # (c, 1, G, G)
        if kind == "dot":
            inside = (dx * dx + dy * dy) < r2[sl]
        else:
            a = dx * ax[sl] + dy * ay[sl]
            b = dx * bx[sl] + dy * by[sl]
            a *= a
            a *= a
            b *= b
            inside = (a + b) < 1.0  # a^4 + b^2 < 1: a flat stroke with rounded ends
        np.maximum(best, np.where(inside, keys[sl] + k, minus1), out=best)

    covered = best >= 0
    which = best & 15
    which[~covered] = 4  # the pixel's own cell; masked out below anyway
    oyk = np.array([o[0] for o in offs], dtype=np.int64)
    oxk = np.array([o[1] for o in offs], dtype=np.int64)
    cell_y = np.arange(G)[:, None]
    cell_x = np.arange(G)[None, :]
    gy = cell_y + 1 + oyk[which]  # (c, c, G, G): the winning primitive's cell
    gx = cell_x + 1 + oxk[which]
    flat = gy * Gp + gx
    pcol = col.reshape(-1, 3)[flat]  # (c, c, G, G, 3)
    # pixel position relative to its primitive's centre
    dx = lx + (cell_x + 1 - gx) * c - jx.reshape(-1)[flat] * c
    dy = ly + (cell_y + 1 - gy) * c - jy.reshape(-1)[flat] * c
    if kind == "dot":
        q = (dx * dx + dy * dy) / r2.reshape(-1)[flat]
        pcol *= (1.06 - 0.18 * q)[..., None].astype(F32)
    else:
        a = dx * ax.reshape(-1)[flat] + dy * ay.reshape(-1)[flat]
        b = dx * bx.reshape(-1)[flat] + dy * by.reshape(-1)[flat]
        streak = 1.0 + F32(tex) * np.sin(b * F32(2.6 * np.pi) + which)  # bristle lines
        pcol *= (streak * (1.0 - 0.12 * np.abs(a)))[..., None].astype(F32)
    covered = covered.transpose(2, 0, 3, 1).reshape(G * c, G * c)[:S, :S]
    pcol = pcol.transpose(2, 0, 3, 1, 4).reshape(G * c, G * c, 3)[:S, :S]
    np.copyto(canvas, pcol, where=covered[..., None])
    return canvas


def _style_dot(sc: _Scene, rng, S):
    """Pointillism: round dots of broken colour over a pale ground."""
    ref = sc.ref
    base = _blur(ref, S / 40)
    canvas = (1.0 - (1.0 - base) * F32(0.8)).astype(F32)
    vivid = np.clip(ref + (ref - ref.mean(axis=2, keepdims=True)) * 0.4, 0, 1).astype(F32)
    c1 = max(2, round(S / 36))
    _splat(canvas, vivid, rng, c1, "dot", (0.36, 0.46), 0.1, 0.12, jitter=0.6)
    offset = c1 // 2  # a second, offset lattice fills the gaps between the first dots
    layer = canvas[offset:, offset:].copy()
    _splat(layer, vivid[offset:, offset:], rng, c1, "dot", (0.3, 0.4), 0.1, 0.14, jitter=0.6)
    canvas[offset:, offset:] = layer
    return canvas


def _flow_angle(ref, rng, S):
    """Stroke directions: follow contours where the picture has edges, else a smooth field."""
    A = max(8, S // 4)  # directions vary slowly: a quarter-resolution field is plenty
    small = np.asarray(Image.fromarray(_to_u8(ref)).resize((A, A), Image.BILINEAR)
                       .filter(ImageFilter.GaussianBlur(A / 40)), dtype=F32) * F32(1 / 255)
    lum = 0.299 * small[..., 0] + 0.587 * small[..., 1] + 0.114 * small[..., 2]
    gy, gx = np.gradient(lum)
    mag = np.sqrt(gx * gx + gy * gy) * F32(A)
    w = np.clip(mag / 1.5, 0, 1)
    base = float(rng.uniform(-0.6, 0.6)) + (np.pi / 2 if rng.random() < 0.25 else 0.0)
    field_ = base + 1.2 * (_noise(rng, A, 3) - 0.5)
    contour = np.arctan2(gy, gx) + np.pi / 2
    vx = w * np.cos(2 * contour) + (1 - w) * np.cos(2 * field_)
    vy = w * np.sin(2 * contour) + (1 - w) * np.sin(2 * field_)
    return (0.5 * np.arctan2(vy, vx)).astype(F32)


def _style_stroke(sc: _Scene, rng, S):
    """Impasto-like: short, textured brush strokes that follow the picture's contours."""
    ref = sc.ref
    canvas = _blur(ref, S / 40) * F32(0.8)
    ang = _flow_angle(ref, rng, S)
    c1 = max(2, round(S / 22))
    c2 = max(2, round(S / 34))
    _splat(canvas, ref, rng, c1, "stroke", (0.98, 0.3), 0.12, 0.04, ang, 0.1)
    _splat(canvas, ref, rng, c2, "stroke", (0.98, 0.32), 0.12, 0.04, ang, 0.1)
    return np.clip(canvas, 0, 1)


def _style_grid(sc: _Scene, rng, S):
    """Mondrian-like: recursively split the canvas where the subject's colour regions change,
    fill each block with a flat palette colour, separate blocks by heavy dark lines."""
    cols = sc.colours
    pal = dict(cols)
    pal["white"] = np.array([0.96, 0.95, 0.92], dtype=F32)
    palarr = _palette_array(pal)
    # Split on a small, palette-quantised copy (gradients such as skies do not eat the block
    # budget, and the summed-area tables stay tiny); block edges land on a 1/32 grid.
    W = min(S, 64)
    small = np.asarray(Image.fromarray(_to_u8(sc.ref)).resize((W, W), Image.BOX), dtype=F32) * F32(1 / 255)
    quant = (0.75 * palarr[_nearest(small, palarr)] + 0.25 * small).astype(np.float64)
    sat = np.zeros((W + 1, W + 1, 3))
    sat[1:, 1:] = quant.cumsum(0).cumsum(1)
    sq = np.zeros((W + 1, W + 1))
    sq[1:, 1:] = (quant * quant).sum(2).cumsum(0).cumsum(1)

    def sse(x0, y0, x1, y1):  # vectorised over any one of the coordinates
        area = (x1 - x0) * (y1 - y0)
        s = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
        q = sq[y1, x1] - sq[y0, x1] - sq[y1, x0] + sq[y0, x0]
        return q - (s * s).sum(-1) / np.maximum(area, 1)

    step = max(1, W // 32)
    min_side = max(2, W // 16)
    target = int(rng.integers(40, 64))
    leaves = []
    heap = [(-float(sse(0, 0, W, W)), 0, (0, 0, W, W))]
    counter = 1
    while heap and len(heap) + len(leaves) < target:
        _, _, (x0, y0, x1, y1) = heapq.heappop(heap)
        best = None
        px = np.arange(((x0 + min_side) // step) * step, x1 - min_side + 1, step)
        px = px[px >= x0 + min_side]
        if px.size:
            e = sse(x0, y0, px, y1) + sse(px, y0, x1, y1)
            i = int(np.argmin(e))
            best = (float(e[i]), (x0, y0, int(px[i]), y1), (int(px[i]), y0, x1, y1))
        py = np.arange(((y0 + min_side) // step) * step, y1 - min_side + 1, step)
        py = py[py >= y0 + min_side]
        if py.size:
            e = sse(x0, y0, x1, py) + sse(x0, py, x1, y1)
            i = int(np.argmin(e))
            if best is None or float(e[i]) < best[0]:
                best = (float(e[i]), (x0, y0, x1, int(py[i])), (x0, int(py[i]), x1, y1))
        if best is None:
            leaves.append((x0, y0, x1, y1))
            continue
        for r in best[1:]:
            heapq.heappush(heap, (-float(sse(*r)), counter, r))
            counter += 1
    leaves += [r for _, _, r in heap]
    leaves.sort()

    line = _mix(cols["dark"], np.zeros(3, dtype=F32), 0.6)
    lw = max(1, round(S / 100))
    canvas = np.empty((S, S, 3), dtype=F32)
    canvas[:] = line
    for (x0, y0, x1, y1) in leaves:
        mean = small[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        x0, y0, x1, y1 = (round(t * S / W) for t in (x0, y0, x1, y1))
        near = palarr[int(np.argmin(((palarr - mean) ** 2).sum(1)))]
        colour = near * 0.8 + mean * 0.2
        if rng.random() < 0.06:
            colour = cols["accent"]
        canvas[y0 + lw : y1 - lw, x0 + lw : x1 - lw] = colour
    canvas *= (0.97 + 0.06 * _noise(rng, S, 12))[..., None]
    return canvas


def _sample(ref, xs, ys):
    S = ref.shape[0]
    xi = np.clip((xs * S).astype(np.int64), 0, S - 1)
    yi = np.clip((ys * S).astype(np.int64), 0, S - 1)
    return ref[yi, xi]


def _style_wave(sc: _Scene, rng, S):
    """Sinusoidal ribbons: the picture is resampled along wavy bands, one colour per band
    position, each band shaded like a ribbon and edged with a dark seam."""
    u, v = _uv(S)
    ang = float(rng.uniform(-0.3, 0.3))
    n_bands = float(rng.uniform(16, 26))
    ca, sa = F32(math.cos(ang)), F32(math.sin(ang))
    p = v * ca + u * sa  # across the bands
    q = u * ca - v * sa  # along the bands
    amp1, amp2 = rng.uniform(0.5, 1.4), rng.uniform(0.1, 0.5)
    f1, f2 = rng.uniform(1.0, 2.5), rng.uniform(3.0, 6.0)
    disp = (amp1 * np.sin(2 * np.pi * (q * f1 + rng.random()))
            + amp2 * np.sin(2 * np.pi * (q * f2 + rng.random()))).astype(F32)
    phi = p * F32(n_bands) + disp
    k = np.floor(phi)
    fr = phi - k
    pc = (k + 0.5 - disp) / F32(n_bands)
    dp = pc - p
    col = _sample(sc.ref, u + dp * sa, v + dp * ca)
    col = _snap(col, sc.colours, 0.3)
    shade = 0.8 + 0.3 * np.sin(np.pi * fr)  # each band rounded like a ribbon
    band_px = F32(S / n_bands)
    line = np.clip(np.minimum(fr, 1 - fr) * band_px / F32(0.8), 0, 1)  # a thin dark seam
    out = col * (shade * (0.55 + 0.45 * line))[..., None]
    return np.clip(out, 0, 1).astype(F32)


def _style_concentric(sc: _Scene, rng, S):
    """Circular forms: rings around the subject's centres of interest (and a few random
    ones); every ring piece inside one colour region takes that region's mean colour."""
    u, v = _uv(S)
    centres = list(sc.focal)
    for _ in range(int(rng.integers(2, 5))):
        centres.append((float(rng.uniform(0, 1)), float(rng.uniform(0, 1)), float(rng.uniform(0.0, 0.1))))
    K = len(centres)
    dist = np.empty((K, S, S), dtype=F32)
    for i, (x, y, r) in enumerate(centres):
        dist[i] = np.sqrt((u - F32(x)) ** 2 + (v - F32(y)) ** 2)
    boost = np.array([r for _, _, r in centres], dtype=F32)[:, None, None]
    own = np.argmin(dist - boost, axis=0)
    d = np.take_along_axis(dist, own[None], 0)[0]
    w = F32(1.0 / rng.uniform(26, 36))
    ring = np.floor(d / w).astype(np.int64)
    fr = d / w - ring
    region = _nearest(sc.ref, _palette_array(sc.colours))  # keep the subject's shapes
    label = (own * 1000 + ring) * 16 + region
    _, inv = np.unique(label, return_inverse=True)
    inv = inv.reshape(-1)
    cnt = np.bincount(inv).astype(F32)
    flat = sc.ref.reshape(-1, 3)
    means = np.stack([np.bincount(inv, weights=flat[:, ch]) for ch in range(3)], 1).astype(F32) / cnt[:, None]
    means = _snap(means[None], sc.colours, 0.35)[0]
    col = means[inv].reshape(S, S, 3)
    parity = np.where(ring % 2 == 0, F32(1.06), F32(0.88))
    line = np.clip(np.minimum(fr, 1 - fr) * w * F32(S) / 1.2, 0, 1)
    out = col * (parity * (0.6 + 0.4 * line))[..., None]
    return np.clip(out, 0, 1).astype(F32)


def _style_wash(sc: _Scene, rng, S):
    """Watercolour: wobbly, blurred, transparent washes with darkened pools at their edges,
    a few blooms, pigment granulation and an irregular unpainted paper margin."""
    u, v = _uv(S)
    amp = F32(0.03)
    xs = u + amp * (_noise(rng, S, 5) - 0.5) * 2
    ys = v + amp * (_noise(rng, S, 5) - 0.5) * 2
    base = _sample(sc.ref, xs, ys)
    base = _snap(base, sc.colours, 0.3)
    a = _blur(base, S / 100)
    b = _blur(base, S / 25)
    edge = np.clip(np.abs(a - b).sum(2) * 2.5, 0, 1)
    out = a * (1.0 - 0.45 * edge)[..., None]
    out = 1.0 - (1.0 - out) * F32(0.86)  # transparent pigment over paper
    paper = np.array([0.97, 0.95, 0.9], dtype=F32)
    for _ in range(int(rng.integers(3, 7))):  # blooms
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.06, 0.16)
        sl, uu, vv = _win(S, cx - r * 1.3, cy - r * 1.3, cx + r * 1.3, cy + r * 1.3)
        dd = np.sqrt((uu - F32(cx)) ** 2 + (vv - F32(cy)) ** 2) / F32(r)
        bloom = np.clip(1.0 - dd, 0, 1) ** 0.5 * 0.25 + np.exp(-((dd - 1.0) / 0.08) ** 2) * 0.12
        _paint(out[sl], bloom.astype(F32), _choice(rng, list(sc.colours.values())) * 0.9)
    gran = rng.random((S // 2, S // 2), dtype=F32)
    gran = np.asarray(Image.fromarray(gran).resize((S, S), Image.BILINEAR), dtype=F32)
    out *= (0.96 + 0.08 * gran)[..., None]
    m = np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) + 0.025 * (_noise(rng, S, 10) - 0.5)
    border = np.clip((m - 0.03) / 0.025, 0, 1).astype(F32)
    _paint(out, 1.0 - border, paper)
    return np.clip(out, 0, 1).astype(F32)


_STYLE_FUNCS = {
    "dot": _style_dot, "grid": _style_grid, "wave": _style_wave,
    "wash": _style_wash, "stroke": _style_stroke, "concentric": _style_concentric,
}

_STYLE_PHRASES = {
    "dot": ("painted in a pointillist technique of countless small dots of {c}",
            "rendered in dotted pointillism, thousands of tiny dots of {c}"),
    "grid": ("abstracted into a geometric grid of flat {c} blocks divided by black lines",
             "constructed from rectangular colour blocks and heavy black grid lines in {c}"),
    "wave": ("rendered in undulating wave bands of {c}",
             "built from rhythmic sinusoidal, wavy stripes of {c}"),
    "wash": ("painted in soft watercolour washes of {c} with blurred, bleeding edges",
             "a loose watercolour wash in {c}, soft and diffuse"),
    "stroke": ("painted with energetic directional brush strokes of {c}",
               "worked in thick, visible brushstrokes of {c}"),
    "concentric": ("composed of concentric rings and circles of {c}",
                   "broken into radiating concentric circles in {c}"),
}


def _describe(spec: _Spec, scene: _Scene, rng: np.random.Generator) -> str:
    words = spec.artist.palette.words
    k = int(rng.integers(2, 4))
    picked = [words[0]] + [w for w in rng.permutation(words[1:])[: k - 1]]
    cwords = ", ".join(picked[:-1]) + " and " + picked[-1]
    style = _choice(rng, _STYLE_PHRASES[spec.style]).format(c=cwords)
    mood = [str(m) for m in rng.permutation(spec.artist.palette.mood)[:2]]
    return f"{scene.phrase}, {style}. {_an(mood[0]).capitalize()} {mood[0]}, {mood[1]} mood."


def _draw(spec: _Spec, seed: int, size: int) -> tuple[np.ndarray, str, str]:
    """One picture: (uint8 image, title, description)."""
    rng = np.random.default_rng([seed, spec.index, 0x5EED])
    cols = _jitter_palette(spec.artist.palette, rng)
    scene = _SUBJECT_FUNCS[spec.subject](rng, cols, size)
    img = _STYLE_FUNCS[spec.style](scene, rng, size)
    return _to_u8(img), scene.title, _describe(spec, scene, rng)


# --------------------------------------------------------------------------- collection

_ROMAN = ("", " II", " III", " IV", " V", " VI", " VII", " VIII", " IX", " X")


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _is_complete(out: Path, n: int, seed: int, size: int) -> bool:
    try:
        meta = json.loads((out / _MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    want = {"n": n, "seed": seed, "size": size, "generator_version": GENERATOR_VERSION, "complete": True}
    if any(meta.get(k) != v for k, v in want.items()):
        return False
    try:
        with open(out / _LABELS, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return False
    return len(rows) == n and all((out / r["path"]).is_file() for r in rows)


def generate_demo_collection(out_dir: str | Path, n: int = 360, seed: int = 0, size: int = 256,
                             progress: bool = False) -> Path:
    """Draws n pictures into out_dir/images/*.jpg (JPEG quality 90, size x size RGB) and writes
    out_dir/labels.csv with columns: path (relative to out_dir, e.g. images/0001.jpg), title, artist,
    style, subject, date (year as a string), description. Same seed -> byte-identical files.
    Balanced across styles and subjects. Returns the labels.csv path. Idempotent: if out_dir already
    holds a complete collection made with the same (n, seed, size) (record them in out_dir/demo.json),
    return at once."""
    n, seed, size = int(n), int(seed), int(size)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    out = Path(out_dir)
    labels = out / _LABELS
    if _is_complete(out, n, seed, size):
        return labels

    manifest = out / _MANIFEST
    ours = manifest.is_file()  # a (possibly interrupted) earlier demo collection lives here
    if labels.exists() and not ours:
        raise CollectionError(
            f"{out} already holds a {_LABELS} that the demo generator did not write",
            hint="choose an empty or new folder for the demo collection")
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    meta = {"n": n, "seed": seed, "size": size, "generator_version": GENERATOR_VERSION,
            "styles": list(DEMO_STYLES), "subjects": list(DEMO_SUBJECTS), "complete": False}
    _write_json(manifest, meta)

    width = max(4, len(str(n)))
    specs = _plan(n, seed)
    seen: dict[str, int] = {}
    rows = []
    for i, spec in enumerate(specs):
        arr, title, desc = _draw(spec, seed, size)
        rel = f"images/{spec.index:0{width}d}.jpg"
        Image.fromarray(arr, "RGB").save(out / rel, "JPEG", quality=_JPEG_QUALITY)
        k = seen.get(title, 0)
        seen[title] = k + 1
        if k:
            title += _ROMAN[k] if k < len(_ROMAN) else f" ({k + 1})"
        rows.append({"path": rel, "title": title, "artist": spec.artist.name, "style": spec.style,
                     "subject": spec.subject, "date": str(spec.year), "description": desc})
        if progress and ((i + 1) % 20 == 0 or i + 1 == n):
            print(f"\rartlens demo: drawing pictures {i + 1}/{n}", end="" if i + 1 < n else "\n",
                  file=sys.stderr, flush=True)

    if ours:  # drop pictures an earlier, larger demo run left behind
        keep = {Path(r["path"]).name for r in rows}
        for p in images.iterdir():
            if re.fullmatch(r"\d{4,}\.jpg", p.name) and p.name not in keep:
                p.unlink()

    tmp = labels.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, labels)
    meta["complete"] = True
    _write_json(manifest, meta)  # last: its "complete" marks the collection as finished
    return labels
