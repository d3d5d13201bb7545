"""Who paints what: twelve fictional artists (a main and a second style, a palette, working years)
and the seeded plan of pictures, balanced across styles and subjects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artlens.demo.palettes import PALETTES, Palette

DEMO_STYLES: tuple[str, ...] = ("dot", "grid", "wave", "wash", "stroke", "concentric")


DEMO_SUBJECTS: tuple[str, ...] = ("landscape", "portrait", "still-life")


_FIRST = ("Elise", "Tomas", "Margit", "Henri", "Ada", "Felix", "Ines", "Oskar", "Lucia", "Anton",
          "Nora", "Pavel", "Clara", "Emil", "Sofia", "Viktor", "Mira", "Jules", "Greta", "Leon",
          "Amara", "Ivo", "Hana", "Rafael")


_LAST = ("Marchand", "Halvorsen", "Castellan", "Weisz", "Duvane", "Okoro", "Lindqvist", "Moravec",
         "Vasquez", "Brandtner", "Kerrigan", "Novakova", "Ferreira", "Albrecht", "Sato", "Ostrova",
         "Belloni", "Achterberg", "Quennell", "Rask", "Tamura", "Verhoeven", "Saldana", "Iversen")


@dataclass(frozen=True)
class Artist:
    name: str
    style: str
    second_style: str
    palette: Palette
    start: int
    end: int


def make_artists(rng: np.random.Generator) -> list[Artist]:
    """Twelve fictional artists: two per main style, each style also someone's second."""
    first = list(rng.permutation(len(_FIRST)))
    last = list(rng.permutation(len(_LAST)))
    pals = list(rng.permutation(len(PALETTES)))
    artists = []
    k_styles = len(DEMO_STYLES)
    for k in range(2 * k_styles):
        main = k % k_styles
        second = (main + 1 + 2 * (k // k_styles)) % k_styles
        start = int(rng.integers(1850, 1981))
        end = min(2020, start + int(rng.integers(15, 46)))
        artists.append(Artist(
            name=f"{_FIRST[first[k]]} {_LAST[last[k]]}",
            style=DEMO_STYLES[main],
            second_style=DEMO_STYLES[second],
            palette=PALETTES[pals[k % len(pals)]],
            start=start,
            end=end,
        ))
    return artists


@dataclass(frozen=True)
class Spec:
    index: int  # 1-based
    style: str
    subject: str
    artist: Artist
    year: int


def plan_pictures(n: int, seed: int) -> list[Spec]:
    """Balanced (style, subject) slots, shuffled, each given an artist and a year."""
    rng = np.random.default_rng([seed, 0xA27])
    artists = make_artists(rng)
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
        specs.append(Spec(idx + 1, style, subject, artist, year))
    return specs

