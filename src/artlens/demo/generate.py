"""The demo collection writer: a seeded, procedurally drawn art collection (numpy + Pillow only, no
downloads) as ``images/*.jpg`` and a ``labels.csv`` that ``artlens ingest`` reads.

Every picture is a *subject layout* (:mod:`artlens.demo.subjects`: which colour regions go where in
a landscape, a portrait, a still life) rendered with a *style technique* (:mod:`artlens.demo.styles`:
dots, a Mondrian-like grid, wave bands, watercolour washes, brush strokes, concentric rings) in the
palette (:mod:`artlens.demo.palettes`) of a fictional artist (:mod:`artlens.demo.plan`). Titles,
dates and descriptions are generated alongside, so both image search ("more like this") and text
search ("blue wave landscape") have something to find.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from artlens.demo.canvas import Scene, choice, to_u8
from artlens.demo.palettes import jitter_palette
from artlens.demo.plan import DEMO_STYLES, DEMO_SUBJECTS, Spec, plan_pictures
from artlens.demo.styles import STYLE_PHRASES, STYLE_TECHNIQUES
from artlens.demo.subjects import SUBJECT_LAYOUTS, article
from artlens.errors import ArtlensError, CollectionError
from artlens.files import atomic_path, write_text
from artlens.progress import QUIET, Reporter

__all__ = ["DEMO_STYLES", "DEMO_SUBJECTS", "DemoSettingsError", "check_demo_settings", "generate_demo_collection"]

#: Bump when the drawing changes, so an existing collection made by an older generator
#: is not mistaken for the current one.
GENERATOR_VERSION = 1

LABEL_COLUMNS = ("path", "title", "artist", "style", "subject", "date", "description")
_MANIFEST = "demo.json"
_LABELS = "labels.csv"
_JPEG_QUALITY = 90


class DemoSettingsError(ArtlensError, ValueError):
    """A demo size or picture count that cannot be drawn (a ValueError too, for callers that catch one)."""


DEMO_PICTURES = 360  # pictures the demo draws unless told otherwise


def _describe(spec: Spec, scene: Scene, rng: np.random.Generator) -> str:
    words = spec.artist.palette.words
    k = int(rng.integers(2, 4))
    picked = [words[0]] + [w for w in rng.permutation(words[1:])[: k - 1]]
    cwords = ", ".join(picked[:-1]) + " and " + picked[-1]
    style = choice(rng, STYLE_PHRASES[spec.style]).format(c=cwords)
    mood = [str(m) for m in rng.permutation(spec.artist.palette.mood)[:2]]
    return f"{scene.phrase}, {style}. {article(mood[0]).capitalize()} {mood[0]}, {mood[1]} mood."


def _draw(spec: Spec, seed: int, size: int) -> tuple[np.ndarray, str, str]:
    """One picture: (uint8 image, title, description)."""
    rng = np.random.default_rng([seed, spec.index, 0x5EED])
    cols = jitter_palette(spec.artist.palette, rng)
    scene = SUBJECT_LAYOUTS[spec.subject](rng, cols, size)
    img = STYLE_TECHNIQUES[spec.style](scene, rng, size)
    return to_u8(img), scene.title, _describe(spec, scene, rng)


_ROMAN = ("", " II", " III", " IV", " V", " VI", " VII", " VIII", " IX", " X")


def _write_json(path: Path, obj: dict) -> None:
    write_text(json.dumps(obj, indent=2) + "\n", path)


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


def check_demo_settings(n: int, size: int = 256) -> None:
    """Refuse a picture count or size that cannot be drawn, before anything is written."""
    if n < 1:
        raise DemoSettingsError(f"the demo needs at least one picture, got n = {n}",
                                "draw a few dozen or more, e.g. `artlens demo --n 360` (the default)")
    if size < 32:
        raise DemoSettingsError(f"demo pictures need at least 32 pixels a side, got size = {size}",
                                "use size=256 (the default) or any size from 32")


def generate_demo_collection(out_dir: str | Path, n: int = DEMO_PICTURES, seed: int = 0, size: int = 256,
                             reporter: Reporter = QUIET) -> Path:
    """Draws n pictures into out_dir/images/*.jpg (JPEG quality 90, size x size RGB) and writes
    out_dir/labels.csv with columns: path (relative to out_dir, e.g. images/0001.jpg), title, artist,
    style, subject, date (year as a string), description. Same seed -> byte-identical files.
    Balanced across styles and subjects. Returns the labels.csv path. Idempotent: if out_dir already
    holds a complete collection made with the same (n, seed, size) (record them in out_dir/demo.json),
    return at once."""
    n, seed, size = int(n), int(seed), int(size)
    check_demo_settings(n, size)
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
    specs = plan_pictures(n, seed)
    seen: dict[str, int] = {}
    rows = []
    for spec in reporter.bar(specs, desc="artlens demo: drawing pictures", unit="picture"):
        arr, title, desc = _draw(spec, seed, size)
        rel = f"images/{spec.index:0{width}d}.jpg"
        Image.fromarray(arr, "RGB").save(out / rel, "JPEG", quality=_JPEG_QUALITY)
        k = seen.get(title, 0)
        seen[title] = k + 1
        if k:
            title += _ROMAN[k] if k < len(_ROMAN) else f" ({k + 1})"
        rows.append({"path": rel, "title": title, "artist": spec.artist.name, "style": spec.style,
                     "subject": spec.subject, "date": str(spec.year), "description": desc})

    if ours:  # drop pictures an earlier, larger demo run left behind
        keep = {Path(r["path"]).name for r in rows}
        for p in images.iterdir():
            if re.fullmatch(r"\d{4,}\.jpg", p.name) and p.name not in keep:
                p.unlink()

    with atomic_path(labels) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    meta["complete"] = True
    _write_json(manifest, meta)  # last: its "complete" marks the collection as finished
    return labels
