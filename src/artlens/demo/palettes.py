"""The fictional artists' palettes (six colour roles each, with colour and mood words) and colour
helpers: lightness, mixing, a per-picture jitter, contrast picks and everyday colour names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artlens.demo.canvas import F32, choice


def hex_colour(code: str) -> np.ndarray:
    code = code.lstrip("#")
    return np.array([int(code[i : i + 2], 16) / 255.0 for i in (0, 2, 4)], dtype=F32)


@dataclass(frozen=True)
class Palette:
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
        return {r: hex_colour(getattr(self, r)) for r in roles}


PALETTES: tuple[Palette, ...] = (
    Palette("azure", "#eaf2f6", "#5b9bd5", "#2e6f95", "#8fb9a8", "#16324f", "#f2c14e",
             ("blue", "azure", "teal", "white"), ("calm", "serene", "cool", "airy")),
    Palette("ochre", "#f3e3c3", "#d6b77a", "#a0522d", "#b5803a", "#3b2a1a", "#d94f30",
             ("ochre", "sienna", "umber", "brown"), ("earthy", "warm", "rustic", "sunlit")),
    Palette("crimson", "#f0d9b5", "#8c2433", "#c0282f", "#5a1f1f", "#140c0c", "#e8a822",
             ("crimson", "red", "gold", "black"), ("dramatic", "intense", "passionate", "dark")),
    Palette("pastel", "#fdf6f0", "#b8d8ea", "#d7b5e0", "#bfe3c0", "#7d6b91", "#f5a3b7",
             ("pink", "lilac", "mint", "pastel"), ("soft", "gentle", "dreamy", "tender")),
    Palette("primary", "#f4f1e6", "#2151a8", "#f2cf1d", "#c8252c", "#151515", "#c8252c",
             ("red", "yellow", "blue", "white"), ("bold", "vivid", "modern", "energetic")),
    Palette("sunset", "#ffd9a8", "#f08a4b", "#c2456f", "#6b2f78", "#2a1340", "#ffd23f",
             ("orange", "magenta", "purple", "gold"), ("warm", "glowing", "fiery", "romantic")),
    Palette("forest", "#e4ecd0", "#9cc5a1", "#49a078", "#2f6b3a", "#1c2a18", "#c77d3a",
             ("green", "olive", "moss", "amber"), ("fresh", "verdant", "peaceful", "natural")),
    Palette("slate", "#e6e6e3", "#a9b4bd", "#7d858c", "#8c8377", "#2b2f33", "#b8574a",
             ("grey", "slate", "silver", "rust"), ("muted", "melancholy", "quiet", "overcast")),
    Palette("violet", "#fff5c2", "#f3d34a", "#8a5cc2", "#5a3d8a", "#24163d", "#f28c28",
             ("yellow", "violet", "purple", "lemon"), ("lively", "contrasting", "joyful", "bright")),
    Palette("nocturne", "#c9d6ea", "#223760", "#3b5b93", "#14213a", "#070b14", "#f4d35e",
             ("navy", "midnight blue", "blue", "gold"), ("nocturnal", "mysterious", "still", "cold")),
    Palette("riviera", "#f6e7d7", "#4fb0c6", "#e07a5f", "#d9a066", "#3d405b", "#81b29a",
             ("turquoise", "terracotta", "sand", "coral"), ("sunny", "mediterranean", "relaxed", "warm")),
    Palette("sepia", "#efe2cc", "#c8a98a", "#9c7a5b", "#7a5a3f", "#33251a", "#5a3d2b",
             ("sepia", "brown", "cream", "tan"), ("nostalgic", "vintage", "subdued", "wistful")),
)


def lum(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a + (b - a) * F32(t)).astype(F32)


def jitter_palette(pal: Palette, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The artist's palette with a small per-picture shift in brightness and tint."""
    cols = pal.colours()
    tint = (1.0 + rng.normal(0, 0.035, 3)).astype(F32)
    gain = F32(1.0 + rng.normal(0, 0.04))
    return {k: np.clip(v * tint * gain, 0, 1).astype(F32) for k, v in cols.items()}


def contrast_pick(rng, cols, target, roles, min_diff=0.22):
    """A random role colour from roles, unless it is too close in lightness to target."""
    role = choice(rng, roles)
    if abs(lum(cols[role]) - lum(target)) < min_diff:
        role = max(roles, key=lambda r: abs(lum(cols[r]) - lum(target)))
    return role


_COLOUR_NAMES = (
    ("white", "#f2f0ea"), ("black", "#151515"), ("grey", "#808080"), ("red", "#c0282f"),
    ("crimson", "#8c1c2b"), ("orange", "#f08a30"), ("yellow", "#f2cf1d"), ("gold", "#d9a826"),
    ("green", "#3f9a4f"), ("olive", "#7c8a3a"), ("blue", "#2f5fb0"), ("navy", "#1b2a4a"),
    ("sky blue", "#8fc0e8"), ("turquoise", "#40b0b8"), ("violet", "#7d4fb5"), ("purple", "#5a2d6e"),
    ("pink", "#f2a3b7"), ("brown", "#6b4a2f"), ("ochre", "#c99a4a"), ("cream", "#efe2c4"),
)


def colour_word(c: np.ndarray) -> str:
    """The nearest everyday colour name for an rgb colour."""
    best = min(_COLOUR_NAMES, key=lambda kv: float(((hex_colour(kv[1]) - c) ** 2).sum()))
    return best[0]

